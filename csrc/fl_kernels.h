/* What the kernel families share: the job structs (one per family, filled by the
 * exported entry points in fl_entry.c and read by the block functions compiled once per
 * dtype and instruction set from the *.inc templates), and the run-time ISA choice. */
#ifndef FL_KERNELS_H
#define FL_KERNELS_H

#include <stdint.h>

#include "fl_list.h"
#include "fl_pool.h"
#include "fl_simd.h"   /* fl_i64u */

/* Class losses on x of shape (n, c, d): d positions per sample, the class axis strided by
 * d (no transposing copy is ever made). Items are the n*d (sample, position) pairs. */
typedef struct {
    const void *x;           /* (n, c, d) logits / log-probabilities */
    const void *p;           /* ce_prob: target probabilities shaped like x */
    const fl_i64u *t;        /* (n*d) class indices; NULL for ce_prob */
    const void *w;           /* (c) class weights, NULL for none */
    const void *gvec;        /* (n*d) per-item gradient coefficients, NULL for none */
    void *loss_out;          /* (n*d) per-item losses, NULL to skip */
    void *gx;                /* (n, c, d) gradient, NULL in forward kernels */
    int64_t n, c, d;
    int64_t ignore_index;
    double eps;              /* label smoothing */
    double gscale;
    double wsum;             /* sum of the class weights (c without weights) */
    int64_t lanes;           /* items per vector in the lanes layout: 8 (float), 4 (double) */
    int64_t dgroups;         /* lane groups per sample when d > 1: ceil(d / lanes) */
    /* Forward kernels count their own targets (no pass of its own over them): each block
     * writes the summed weight of its counted targets into wsums[lo / per_block] and
     * lowers *bad to its first out-of-range position. NULL wsums: not asked (the _vg
     * kernels, whose targets are checked before they run). */
    double *wsums;
    int64_t *bad;            /* first bad flat position, -1 if none (atomic min) */
    int64_t per_block;       /* units per block, as given to fl_run */
} fl_class_job;

typedef struct {
    const fl_i64u *t;
    const void *w;
    int64_t n, n_classes, ignore_index;
    int use_ignore;
    int64_t bad;             /* first bad flat position, -1 if none (atomic min) */
} fl_targets_job;

/* Element-wise losses on flat arrays of n items: x, t (same length), optional per-item
 * weight w, one float parameter; margin_ranking's second input x2 and its gradient gx2
 * (minus the gradient written to gx), BCE-with-logits' pos_weight pw (NULL: none). */
typedef struct {
    const void *x, *x2, *t, *w, *pw, *gvec;
    void *loss_out, *gx, *gx2;
    int64_t n;
    double p1;
    double gscale;
} fl_pw_job;

/* Row losses on x of shape (n, c), one item per row: multi_margin (class index t, class
 * weight w, power p, margin) and multilabel_soft_margin (targets y shaped like x; weight
 * w of w_rows rows: 0 none, 1 the same row for all, n one per row). */
typedef struct {
    const void *x, *y, *w, *gvec;
    const fl_i64u *t;
    void *loss_out, *gx;
    int64_t n, c, w_rows;
    int p;
    double margin;
    double gscale;
} fl_rows_job;

/* The instruction set the block functions run with: 0 baseline (SSE2 on x86-64, the
 * compiler's default elsewhere), 1 AVX2+FMA, 2 AVX-512 (F, VL, DQ, BW; GCC builds only). */
extern int fl_isa_active;

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define FL_HAVE_AVX2_PASS 1
#else
#define FL_HAVE_AVX2_PASS 0
#endif
#if FL_HAVE_AVX2_PASS && !defined(__clang__)
#define FL_HAVE_AVX512_PASS 1
#else
#define FL_HAVE_AVX512_PASS 0
#endif

#if FL_HAVE_AVX512_PASS
#define FL_DECL(name) fl_block_fn name##_base, name##_avx2, name##_avx512
#define FL_PICK(name) \
    (fl_isa_active == 2 ? name##_avx512 : fl_isa_active == 1 ? name##_avx2 : name##_base)
#elif FL_HAVE_AVX2_PASS
#define FL_DECL(name) fl_block_fn name##_base, name##_avx2
#define FL_PICK(name) (fl_isa_active ? name##_avx2 : name##_base)
#else
#define FL_DECL(name) fl_block_fn name##_base
#define FL_PICK(name) (name##_base)
#endif

#define FL_DECL_BOTH(name) FL_DECL(name##_f32); FL_DECL(name##_f64)
/* the block functions of a listed element-wise kernel (fl_list.h), whatever its form */
#define FL_DECL_KERNEL(name) FL_DECL_BOTH(name##_fwd); FL_DECL_BOTH(name##_vg);
#define FL_DECL_KERNEL_P(name, param) FL_DECL_KERNEL(name)

FL_ELEMENTWISE_KERNELS(FL_DECL_KERNEL, FL_DECL_KERNEL_P, FL_DECL_KERNEL, FL_DECL_KERNEL_P)

FL_DECL_BOTH(targets);
FL_DECL_BOTH(nll_fwd);
FL_DECL_BOTH(nll_vg);
FL_DECL_BOTH(ce_class_fwd_rows);
FL_DECL_BOTH(ce_class_vg_rows);
FL_DECL_BOTH(ce_class_fwd_lanes);
FL_DECL_BOTH(ce_class_vg_lanes);
FL_DECL_BOTH(ce_prob_fwd_rows);
FL_DECL_BOTH(ce_prob_vg_rows);
FL_DECL_BOTH(ce_prob_fwd_lanes);
FL_DECL_BOTH(ce_prob_vg_lanes);
FL_DECL_BOTH(bce_logits_fwd);
FL_DECL_BOTH(bce_logits_vg);
FL_DECL_BOTH(bce_logits_pw_fwd);
FL_DECL_BOTH(bce_logits_pw_vg);
FL_DECL_BOTH(gaussian_nll_fwd);
FL_DECL_BOTH(gaussian_nll_vg);
FL_DECL_BOTH(gaussian_nll_full_fwd);
FL_DECL_BOTH(gaussian_nll_full_vg);
FL_DECL_BOTH(poisson_nll_fwd);
FL_DECL_BOTH(poisson_nll_vg);
FL_DECL_BOTH(poisson_nll_full_fwd);
FL_DECL_BOTH(poisson_nll_full_vg);
FL_DECL_BOTH(poisson_nll_lin_fwd);
FL_DECL_BOTH(poisson_nll_lin_vg);
FL_DECL_BOTH(poisson_nll_lin_full_fwd);
FL_DECL_BOTH(poisson_nll_lin_full_vg);
FL_DECL_BOTH(margin_ranking_fwd);
FL_DECL_BOTH(margin_ranking_vg);
FL_DECL_BOTH(multi_margin_fwd);
FL_DECL_BOTH(multi_margin_vg);
FL_DECL_BOTH(mlsm_fwd);
FL_DECL_BOTH(mlsm_vg);

#endif
