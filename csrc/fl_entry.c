/* The exported kernels of fastloss.h: each fills a job, picks the block function for the
 * dtype, the layout and the instruction set, and runs it through fl_run. Compiled once,
 * for the baseline target (it only dispatches). The definitions are made by one macro per
 * family for both dtypes (for the listed element-wise kernels, one per row of fl_list.h);
 * fastloss.h, included first, declares every signature, and the compiler checks these
 * definitions against it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fastloss.h"
#include "fl_kernels.h"
#include "fl_pool.h"
#include "fl_simd.h"

/* Below these class counts (d == 1) the lanes layout runs, else the rows layout; the
 * tiles of classification.inc hold up to FL_SMALL_C classes. Measured on a 2-core Zen 4,
 * one thread, float32, CPU time per call: lanes against rows at C = 32 forward 17 vs
 * 33 ms (1M rows), 28 vs 36 ms value+grad; at 262144 rows, C = 48: 8.8 vs 11.4 ms and
 * 11.3 vs 13.1 ms; C = 64: 7.7 vs 11.3 ms forward but 14.2 vs 11.8 ms value+grad (its
 * strided gradient stores); C = 80: rows win both; C = 100, 256: rows by up to 2x.
 * Probability targets keep 32 (their p is read by strided loads in the lanes layout). */
#ifndef FL_SMALL_C
#define FL_SMALL_C 64
#endif
#define FL_SMALL_C_VG 48
#define FL_SMALL_C_PROB 32

int fl_isa_active = 0;

/* The widest pass this CPU runs (see fl_isa_active). libgcc's checks of AVX-512 also ask
 * the OS (XCR0) whether it saves the 512-bit state. */
static int cpu_best_isa(void)
{
#if FL_HAVE_AVX2_PASS
    __builtin_cpu_init();
    if (!(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")))
        return 0;
#if FL_HAVE_AVX512_PASS
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl")
        && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw"))
        return 2;
#endif
    return 1;
#else
    return 0;
#endif
}

__attribute__((constructor)) static void fl_isa_init(void) { fl_isa_active = cpu_best_isa(); }

int fl_isa(void) { return fl_isa_active; }

/* Ask for pass `isa` (0, 1, 2); granted up to the widest the CPU runs. Returns the one set. */
int fl_set_isa(int isa)
{
    int best = cpu_best_isa();
    fl_isa_active = isa < 0 ? 0 : isa > best ? best : isa;
    return fl_isa_active;
}

void fl_set_num_threads(int n) { fl_pool_set_threads(n); }
int fl_get_num_threads(void) { return fl_pool_get_threads(); }

/* ---- class targets ---------------------------------------------------------------- */

#define FL_TARGETS(SUF, REAL)                                                              \
    double fl_class_targets_##SUF(const int64_t *t, int64_t n, const REAL *w, int64_t n_w,  \
                                  int64_t n_classes, int64_t ignore_index, int use_ignore,  \
                                  int64_t *bad_pos)                                         \
    {                                                                                       \
        fl_targets_job J = {t, n_w ? w : NULL, n, n_classes, ignore_index, use_ignore, -1}; \
        double sum = fl_run(FL_PICK(targets_##SUF), &J, n, fl_per_block(1));                \
        *bad_pos = J.bad;                                                                   \
        return J.bad >= 0 ? 0.0 : sum;                                                      \
    }
FL_TARGETS(f32, float)
FL_TARGETS(f64, double)

/* ---- class losses ----------------------------------------------------------------- */

static double class_wsum(const void *w, int64_t n_w, int64_t c, int is_f64)
{
    if (!n_w)
        return (double)c;
    double s = 0.0;
    for (int64_t j = 0; j < c; j++)
        s += is_f64 ? ((const fl_f64u *)w)[j] : (double)((const fl_f32u *)w)[j];
    return s;
}

/* fl_run, and for a forward kernel given `stats` (its blocks count the targets, see
 * fl_class_job.wsums) stats[0] = the summed weight of the counted targets and stats[1] =
 * the first bad flat position (-1 if none; the weight sum is then 0). */
#define FL_LOCAL_BLOCKS 1024

static double run_counted(fl_class_job *J, fl_block_fn *fn, int64_t units, int64_t per_block,
                          double *stats)
{
    if (!stats)
        return fl_run(fn, J, units, per_block);
    int64_t n_blocks = units > 0 ? (units + per_block - 1) / per_block : 0;
    double local[FL_LOCAL_BLOCKS];
    double *wsums = n_blocks <= FL_LOCAL_BLOCKS ? local : malloc((size_t)n_blocks * sizeof(double));
    int64_t bad = -1;
    double total, wsum = 0.0;
    if (wsums == NULL) {   /* no memory for the per-block sums: count in a pass of their own */
        fl_targets_job T = {J->t, J->w, J->n * J->d, J->c, J->ignore_index, 1, -1};
        wsum = fl_run(J->lanes == FL_W64 ? FL_PICK(targets_f64) : FL_PICK(targets_f32), &T,
                      T.n, fl_per_block(1));
        bad = T.bad;
        total = fl_run(fn, J, units, per_block);
    } else {
        J->wsums = wsums;
        J->bad = &bad;
        J->per_block = per_block;
        total = fl_run(fn, J, units, per_block);
        for (int64_t b = 0; b < n_blocks; b++)   /* in block order: thread-count independent */
            wsum += wsums[b];
        if (wsums != local)
            free(wsums);
    }
    stats[0] = bad >= 0 ? 0.0 : wsum;
    stats[1] = (double)bad;
    return total;
}

static double run_class(fl_class_job *J, fl_block_fn *rows, fl_block_fn *lanes, int64_t small_c,
                        double *stats)
{
    if (J->d == 1 && J->c >= small_c && rows)
        return run_counted(J, rows, J->n, fl_per_block(J->c), stats);
    J->dgroups = (J->d + J->lanes - 1) / J->lanes;
    int64_t units = J->d == 1 ? (J->n + J->lanes - 1) / J->lanes : J->n * J->dgroups;
    return run_counted(J, lanes, units, fl_per_block(J->c * J->lanes), stats);
}

static fl_class_job class_job(const void *x, const void *p, const fl_i64u *t, const void *w,
                              int64_t n_w, int64_t n, int64_t c, int64_t d,
                              int64_t ignore_index, double eps, double gscale,
                              const void *gvec, int64_t n_gvec, void *loss_out, int64_t n_out,
                              void *gx, int is_f64)
{
    fl_class_job J;
    memset(&J, 0, sizeof J);
    J.x = x;
    J.p = p;
    J.t = t;
    J.w = n_w ? w : NULL;
    J.gvec = n_gvec ? gvec : NULL;
    J.loss_out = n_out ? loss_out : NULL;
    J.gx = gx;
    J.n = n;
    J.c = c;
    J.d = d;
    J.ignore_index = ignore_index;
    J.eps = eps;
    J.gscale = gscale;
    J.lanes = is_f64 ? FL_W64 : FL_W32;
    J.wsum = eps > 0.0 ? class_wsum(w, n_w, c, is_f64) : 0.0;
    return J;
}

static double nll_run(fl_class_job *J, fl_block_fn *fn, double *stats)
{
    return run_counted(J, fn, J->n, fl_per_block(J->gx ? J->c * J->d : J->d), stats);
}

#define FL_NLL(SUF, REAL, IS64)                                                                \
    double fl_nll_fwd_##SUF(const REAL *x, const int64_t *t, const REAL *w, int64_t n_w,       \
                            int64_t n, int64_t c, int64_t d, int64_t ignore_index,             \
                            REAL *loss_out, int64_t n_out, double *target_stats)               \
    {                                                                                          \
        fl_class_job J = class_job(x, NULL, t, w, n_w, n, c, d, ignore_index, 0.0, 0.0, NULL,  \
                                   0, loss_out, n_out, NULL, IS64);                            \
        return nll_run(&J, FL_PICK(nll_fwd_##SUF), target_stats);                              \
    }                                                                                          \
    double fl_nll_vg_##SUF(const REAL *x, const int64_t *t, const REAL *w, int64_t n_w,        \
                           int64_t n, int64_t c, int64_t d, int64_t ignore_index,              \
                           double gscale, const REAL *gvec, int64_t n_gvec, REAL *loss_out,    \
                           int64_t n_out, REAL *gx)                                            \
    {                                                                                          \
        fl_class_job J = class_job(x, NULL, t, w, n_w, n, c, d, ignore_index, 0.0, gscale,     \
                                   gvec, n_gvec, loss_out, n_out, gx, IS64);                   \
        return nll_run(&J, FL_PICK(nll_vg_##SUF), NULL);                                                \
    }
FL_NLL(f32, float, 0)
FL_NLL(f64, double, 1)

#define FL_CE_CLASS(SUF, REAL, IS64)                                                            \
    double fl_ce_class_fwd_##SUF(const REAL *x, const int64_t *t, const REAL *w, int64_t n_w,   \
                                 int64_t n, int64_t c, int64_t d, int64_t ignore_index,         \
                                 double label_smoothing, REAL *loss_out, int64_t n_out,         \
                                 double *target_stats)                                          \
    {                                                                                           \
        fl_class_job J = class_job(x, NULL, t, w, n_w, n, c, d, ignore_index, label_smoothing,  \
                                   0.0, NULL, 0, loss_out, n_out, NULL, IS64);                  \
        return run_class(&J, FL_PICK(ce_class_fwd_rows_##SUF), FL_PICK(ce_class_fwd_lanes_##SUF), \
                         FL_SMALL_C, target_stats);                                                         \
    }                                                                                           \
    double fl_ce_class_vg_##SUF(const REAL *x, const int64_t *t, const REAL *w, int64_t n_w,    \
                                int64_t n, int64_t c, int64_t d, int64_t ignore_index,          \
                                double label_smoothing, double gscale, const REAL *gvec,        \
                                int64_t n_gvec, REAL *loss_out, int64_t n_out, REAL *gx)        \
    {                                                                                           \
        fl_class_job J = class_job(x, NULL, t, w, n_w, n, c, d, ignore_index, label_smoothing,  \
                                   gscale, gvec, n_gvec, loss_out, n_out, gx, IS64);            \
        return run_class(&J, FL_PICK(ce_class_vg_rows_##SUF), FL_PICK(ce_class_vg_lanes_##SUF), \
                         FL_SMALL_C_VG, NULL);                                                                 \
    }
FL_CE_CLASS(f32, float, 0)
FL_CE_CLASS(f64, double, 1)

/* With no classes each item's loss is an empty sum, 0 (as the reference has it). */
static double ce_prob_run(fl_class_job *J, fl_block_fn *rows, fl_block_fn *lanes, size_t itemsize)
{
    if (J->c == 0) {
        if (J->loss_out)
            memset(J->loss_out, 0, (size_t)(J->n * J->d) * itemsize);
        return 0.0;
    }
    return run_class(J, rows, lanes, FL_SMALL_C_PROB, NULL);
}

#define FL_CE_PROB(SUF, REAL, IS64)                                                             \
    double fl_ce_prob_fwd_##SUF(const REAL *x, const REAL *p, const REAL *w, int64_t n_w,       \
                                int64_t n, int64_t c, int64_t d, double label_smoothing,        \
                                REAL *loss_out, int64_t n_out)                                  \
    {                                                                                           \
        fl_class_job J = class_job(x, p, NULL, w, n_w, n, c, d, 0, label_smoothing, 0.0, NULL,  \
                                   0, loss_out, n_out, NULL, IS64);                             \
        return ce_prob_run(&J, FL_PICK(ce_prob_fwd_rows_##SUF), FL_PICK(ce_prob_fwd_lanes_##SUF), \
                           sizeof(REAL));                                                       \
    }                                                                                           \
    double fl_ce_prob_vg_##SUF(const REAL *x, const REAL *p, const REAL *w, int64_t n_w,        \
                               int64_t n, int64_t c, int64_t d, double label_smoothing,         \
                               double gscale, const REAL *gvec, int64_t n_gvec,                 \
                               REAL *loss_out, int64_t n_out, REAL *gx)                         \
    {                                                                                           \
        fl_class_job J = class_job(x, p, NULL, w, n_w, n, c, d, 0, label_smoothing, gscale,     \
                                   gvec, n_gvec, loss_out, n_out, gx, IS64);                    \
        return ce_prob_run(&J, FL_PICK(ce_prob_vg_rows_##SUF), FL_PICK(ce_prob_vg_lanes_##SUF), \
                           sizeof(REAL));                                                       \
    }
FL_CE_PROB(f32, float, 0)
FL_CE_PROB(f64, double, 1)

/* ---- element-wise losses ---------------------------------------------------------- */

/* x2: margin_ranking's second input; pw: BCE-with-logits' pos_weight (NULL: none). */
static double pw_run(fl_block_fn *fn, const void *x, const void *x2, const void *t,
                     const void *w, int64_t n_w, const void *pw, int64_t n, double param,
                     double gscale, const void *gvec, int64_t n_gvec, void *loss_out,
                     int64_t n_out, void *gx, void *gx2)
{
    fl_pw_job J = {x, x2, t, n_w ? w : NULL, pw, n_gvec ? gvec : NULL, n_out ? loss_out : NULL,
                   gx, gx2, n, param, gscale};
    return fl_run(fn, &J, n, fl_per_block(1));
}

/* The listed element-wise kernels (fl_list.h): those of x, t and an optional weight w,
 * without a parameter (l1, mse, bce) ... */
#define FL_PW(NAME, SUF, REAL)                                                                  \
    double fl_##NAME##_fwd_##SUF(const REAL *x, const REAL *t, const REAL *w, int64_t n_w,      \
                                 int64_t n, REAL *loss_out, int64_t n_out)                      \
    {                                                                                           \
        return pw_run(FL_PICK(NAME##_fwd_##SUF), x, NULL, t, w, n_w, NULL, n, 0.0, 0.0, NULL,   \
                      0, loss_out, n_out, NULL, NULL);                                          \
    }                                                                                           \
    double fl_##NAME##_vg_##SUF(const REAL *x, const REAL *t, const REAL *w, int64_t n_w,       \
                                int64_t n, double gscale, const REAL *gvec, int64_t n_gvec,     \
                                REAL *loss_out, int64_t n_out, REAL *gx)                        \
    {                                                                                           \
        return pw_run(FL_PICK(NAME##_vg_##SUF), x, NULL, t, w, n_w, NULL, n, 0.0, gscale, gvec, \
                      n_gvec, loss_out, n_out, gx, NULL);                                       \
    }
/* ... and with one, named as fastloss.h names it (smooth_l1's beta, huber's delta) */
#define FL_PW_PARAM(NAME, PARAM, SUF, REAL)                                                     \
    double fl_##NAME##_fwd_##SUF(const REAL *x, const REAL *t, const REAL *w, int64_t n_w,      \
                                 int64_t n, double PARAM, REAL *loss_out, int64_t n_out)        \
    {                                                                                           \
        return pw_run(FL_PICK(NAME##_fwd_##SUF), x, NULL, t, w, n_w, NULL, n, PARAM, 0.0, NULL, \
                      0, loss_out, n_out, NULL, NULL);                                          \
    }                                                                                           \
    double fl_##NAME##_vg_##SUF(const REAL *x, const REAL *t, const REAL *w, int64_t n_w,       \
                                int64_t n, double PARAM, double gscale, const REAL *gvec,       \
                                int64_t n_gvec, REAL *loss_out, int64_t n_out, REAL *gx)        \
    {                                                                                           \
        return pw_run(FL_PICK(NAME##_vg_##SUF), x, NULL, t, w, n_w, NULL, n, PARAM, gscale,     \
                      gvec, n_gvec, loss_out, n_out, gx, NULL);                                 \
    }
/* ... and the same without the weight (hinge_embedding, soft_margin): w NULL */
#define FL_PW_NO_W(NAME, SUF, REAL)                                                             \
    double fl_##NAME##_fwd_##SUF(const REAL *x, const REAL *t, int64_t n, REAL *loss_out,       \
                                 int64_t n_out)                                                 \
    {                                                                                           \
        return pw_run(FL_PICK(NAME##_fwd_##SUF), x, NULL, t, NULL, 0, NULL, n, 0.0, 0.0, NULL,  \
                      0, loss_out, n_out, NULL, NULL);                                          \
    }                                                                                           \
    double fl_##NAME##_vg_##SUF(const REAL *x, const REAL *t, int64_t n, double gscale,         \
                                const REAL *gvec, int64_t n_gvec, REAL *loss_out,               \
                                int64_t n_out, REAL *gx)                                        \
    {                                                                                           \
        return pw_run(FL_PICK(NAME##_vg_##SUF), x, NULL, t, NULL, 0, NULL, n, 0.0, gscale,      \
                      gvec, n_gvec, loss_out, n_out, gx, NULL);                                 \
    }
#define FL_PW_NO_W_PARAM(NAME, PARAM, SUF, REAL)                                                \
    double fl_##NAME##_fwd_##SUF(const REAL *x, const REAL *t, int64_t n, double PARAM,         \
                                 REAL *loss_out, int64_t n_out)                                 \
    {                                                                                           \
        return pw_run(FL_PICK(NAME##_fwd_##SUF), x, NULL, t, NULL, 0, NULL, n, PARAM, 0.0,      \
                      NULL, 0, loss_out, n_out, NULL, NULL);                                    \
    }                                                                                           \
    double fl_##NAME##_vg_##SUF(const REAL *x, const REAL *t, int64_t n, double PARAM,          \
                                double gscale, const REAL *gvec, int64_t n_gvec,                \
                                REAL *loss_out, int64_t n_out, REAL *gx)                        \
    {                                                                                           \
        return pw_run(FL_PICK(NAME##_vg_##SUF), x, NULL, t, NULL, 0, NULL, n, PARAM, gscale,    \
                      gvec, n_gvec, loss_out, n_out, gx, NULL);                                 \
    }
/* one entry point pair per dtype for each row of the list (fl_list.h), by its form */
#define FL_ENTRY_XTW(NAME) FL_PW(NAME, f32, float) FL_PW(NAME, f64, double)
#define FL_ENTRY_XTW_P(NAME, PARAM) \
    FL_PW_PARAM(NAME, PARAM, f32, float) FL_PW_PARAM(NAME, PARAM, f64, double)
#define FL_ENTRY_XT(NAME) FL_PW_NO_W(NAME, f32, float) FL_PW_NO_W(NAME, f64, double)
#define FL_ENTRY_XT_P(NAME, PARAM) \
    FL_PW_NO_W_PARAM(NAME, PARAM, f32, float) FL_PW_NO_W_PARAM(NAME, PARAM, f64, double)

FL_ELEMENTWISE_KERNELS(FL_ENTRY_XTW, FL_ENTRY_XTW_P, FL_ENTRY_XT, FL_ENTRY_XT_P)

#define FL_BINARY_MARGIN(SUF, REAL)                                                              \
    double fl_bce_logits_fwd_##SUF(const REAL *x, const REAL *t, const REAL *w, int64_t n_w,     \
                                   const REAL *pw, int64_t n_pw, int64_t n, REAL *loss_out,      \
                                   int64_t n_out)                                                \
    {                                                                                            \
        fl_block_fn *fn = n_pw ? FL_PICK(bce_logits_pw_fwd_##SUF) : FL_PICK(bce_logits_fwd_##SUF); \
        return pw_run(fn, x, NULL, t, w, n_w, n_pw ? pw : NULL, n, 0.0, 0.0, NULL, 0, loss_out, \
                      n_out, NULL, NULL);                                                               \
    }                                                                                            \
    double fl_bce_logits_vg_##SUF(const REAL *x, const REAL *t, const REAL *w, int64_t n_w,      \
                                  const REAL *pw, int64_t n_pw, int64_t n, double gscale,        \
                                  const REAL *gvec, int64_t n_gvec, REAL *loss_out,              \
                                  int64_t n_out, REAL *gx)                                       \
    {                                                                                            \
        fl_block_fn *fn = n_pw ? FL_PICK(bce_logits_pw_vg_##SUF) : FL_PICK(bce_logits_vg_##SUF); \
        return pw_run(fn, x, NULL, t, w, n_w, n_pw ? pw : NULL, n, 0.0, gscale, gvec, n_gvec,          \
                      loss_out, n_out, gx, NULL);                                                \
    }                                                                                            \
    double fl_margin_ranking_fwd_##SUF(const REAL *x1, const REAL *x2, const REAL *t, int64_t n, \
                                       double margin, REAL *loss_out, int64_t n_out)             \
    {                                                                                            \
        return pw_run(FL_PICK(margin_ranking_fwd_##SUF), x1, x2, t, NULL, 0, NULL, n, margin, 0.0,     \
                      NULL, 0, loss_out, n_out, NULL, NULL);                                     \
    }                                                                                            \
    double fl_margin_ranking_vg_##SUF(const REAL *x1, const REAL *x2, const REAL *t, int64_t n,  \
                                      double margin, double gscale, const REAL *gvec,            \
                                      int64_t n_gvec, REAL *loss_out, int64_t n_out, REAL *gx1,  \
                                      REAL *gx2)                                                 \
    {                                                                                            \
        return pw_run(FL_PICK(margin_ranking_vg_##SUF), x1, x2, t, NULL, 0, NULL, n, margin, gscale,   \
                      gvec, n_gvec, loss_out, n_out, gx1, gx2);                                  \
    }
FL_BINARY_MARGIN(f32, float)
FL_BINARY_MARGIN(f64, double)

/* gaussian_nll: the variance v rides in the job's second input, its gradient gv in gx2 */
#define FL_GAUSSIAN_NLL(SUF, REAL)                                                               \
    double fl_gaussian_nll_fwd_##SUF(const REAL *x, const REAL *t, const REAL *v, int64_t n,     \
                                     int full, double eps, REAL *loss_out, int64_t n_out)        \
    {                                                                                            \
        fl_block_fn *fn = full ? FL_PICK(gaussian_nll_full_fwd_##SUF)                            \
                               : FL_PICK(gaussian_nll_fwd_##SUF);                                \
        return pw_run(fn, x, v, t, NULL, 0, NULL, n, eps, 0.0, NULL, 0, loss_out, n_out, NULL,   \
                      NULL);                                                                     \
    }                                                                                            \
    double fl_gaussian_nll_vg_##SUF(const REAL *x, const REAL *t, const REAL *v, int64_t n,      \
                                    int full, double eps, double gscale, const REAL *gvec,       \
                                    int64_t n_gvec, REAL *loss_out, int64_t n_out, REAL *gx,     \
                                    REAL *gv)                                                    \
    {                                                                                            \
        fl_block_fn *fn = full ? FL_PICK(gaussian_nll_full_vg_##SUF)                             \
                               : FL_PICK(gaussian_nll_vg_##SUF);                                 \
        return pw_run(fn, x, v, t, NULL, 0, NULL, n, eps, gscale, gvec, n_gvec, loss_out, n_out, \
                      gx, gv);                                                                   \
    }
FL_GAUSSIAN_NLL(f32, float)
FL_GAUSSIAN_NLL(f64, double)

/* poisson_nll: one block kind per (log_input, full), so each loop is straight */
#define FL_POISSON_PICK(SUF, MODE)                                                           \
    (log_input ? (full ? FL_PICK(poisson_nll_full_##MODE##_##SUF)                            \
                       : FL_PICK(poisson_nll_##MODE##_##SUF))                                \
               : (full ? FL_PICK(poisson_nll_lin_full_##MODE##_##SUF)                        \
                       : FL_PICK(poisson_nll_lin_##MODE##_##SUF)))
#define FL_POISSON_NLL(SUF, REAL)                                                               \
    double fl_poisson_nll_fwd_##SUF(const REAL *x, const REAL *t, int64_t n, int log_input,     \
                                    int full, double eps, REAL *loss_out, int64_t n_out)        \
    {                                                                                           \
        return pw_run(FL_POISSON_PICK(SUF, fwd), x, NULL, t, NULL, 0, NULL, n, eps, 0.0, NULL,  \
                      0, loss_out, n_out, NULL, NULL);                                          \
    }                                                                                           \
    double fl_poisson_nll_vg_##SUF(const REAL *x, const REAL *t, int64_t n, int log_input,      \
                                   int full, double eps, double gscale, const REAL *gvec,       \
                                   int64_t n_gvec, REAL *loss_out, int64_t n_out, REAL *gx)     \
    {                                                                                           \
        return pw_run(FL_POISSON_PICK(SUF, vg), x, NULL, t, NULL, 0, NULL, n, eps, gscale, gvec, \
                      n_gvec, loss_out, n_out, gx, NULL);                                       \
    }
FL_POISSON_NLL(f32, float)
FL_POISSON_NLL(f64, double)

/* ---- row losses ------------------------------------------------------------------- */

static double rows_run(fl_block_fn *fn, const void *x, const void *y, const fl_i64u *t,
                       const void *w, int64_t w_rows, int64_t n, int64_t c, int p, double margin,
                       double gscale, const void *gvec, int64_t n_gvec, void *loss_out,
                       int64_t n_out, void *gx)
{
    fl_rows_job J = {x, y, w_rows ? w : NULL, n_gvec ? gvec : NULL, t, n_out ? loss_out : NULL,
                     gx, n, c, w_rows, p, margin, gscale};
    return fl_run(fn, &J, n, fl_per_block(c));
}

#define FL_ROWS(SUF, REAL)                                                                       \
    double fl_multi_margin_fwd_##SUF(const REAL *x, const int64_t *t, const REAL *w,             \
                                     int64_t n_w, int64_t n, int64_t c, int p, double margin,    \
                                     REAL *loss_out, int64_t n_out)                              \
    {                                                                                            \
        return rows_run(FL_PICK(multi_margin_fwd_##SUF), x, NULL, t, w, n_w ? 1 : 0, n, c, p,    \
                        margin, 0.0, NULL, 0, loss_out, n_out, NULL);                            \
    }                                                                                            \
    double fl_multi_margin_vg_##SUF(const REAL *x, const int64_t *t, const REAL *w, int64_t n_w, \
                                    int64_t n, int64_t c, int p, double margin, double gscale,   \
                                    const REAL *gvec, int64_t n_gvec, REAL *loss_out,            \
                                    int64_t n_out, REAL *gx)                                     \
    {                                                                                            \
        return rows_run(FL_PICK(multi_margin_vg_##SUF), x, NULL, t, w, n_w ? 1 : 0, n, c, p,     \
                        margin, gscale, gvec, n_gvec, loss_out, n_out, gx);                      \
    }                                                                                            \
    double fl_multilabel_soft_margin_fwd_##SUF(const REAL *x, const REAL *y, const REAL *w,      \
                                               int64_t w_rows, int64_t n, int64_t c,             \
                                               REAL *loss_out, int64_t n_out)                    \
    {                                                                                            \
        return rows_run(FL_PICK(mlsm_fwd_##SUF), x, y, NULL, w, w_rows, n, c, 0, 0.0, 0.0, NULL, \
                        0, loss_out, n_out, NULL);                                               \
    }                                                                                            \
    double fl_multilabel_soft_margin_vg_##SUF(const REAL *x, const REAL *y, const REAL *w,       \
                                              int64_t w_rows, int64_t n, int64_t c,              \
                                              double gscale, const REAL *gvec, int64_t n_gvec,   \
                                              REAL *loss_out, int64_t n_out, REAL *gx)           \
    {                                                                                            \
        return rows_run(FL_PICK(mlsm_vg_##SUF), x, y, NULL, w, w_rows, n, c, 0, 0.0, gscale,     \
                        gvec, n_gvec, loss_out, n_out, gx);                                      \
    }
FL_ROWS(f32, float)
FL_ROWS(f64, double)
