/* fastloss C ABI: the exported kernels of the "c" backend.
 *
 * This file is the single source of the declarations: csrc/build_cffi.py generates the
 * cffi cdef from it (comments and preprocessor lines removed), so it must stay plain C
 * declarations that cffi's parser accepts (no macros in declarations).
 *
 * Conventions, for every fl_<kernel>_<f32|f64>:
 *  - Arrays are C-contiguous, of the dtype in the suffix (class indices are int64).
 *    An optional array is passed with its length (n_w, n_gvec, n_out); length 0 means
 *    "absent" (no weight, coefficient gscale for every item, do not write per-item losses).
 *  - Forward kernels return the float64 sum of the per-item losses and, when n_out > 0,
 *    write the per-item losses into loss_out.
 *  - _vg kernels also write into gx (shaped like x) the gradient of sum_i c_i * loss_i with
 *    c_i = gscale * gvec[i] (gscale when n_gvec == 0).
 *  - Kernels never fail. A class index out of range gives a NaN item and is never used
 *    to index; the caller learns its position from the forward kernels' target_stats
 *    (nll, ce_class: when not NULL, set to {summed weight of the counted targets, first
 *    bad flat position or -1}, counted in the same pass) or, before a _vg kernel, from
 *    fl_class_targets_*.
 *  - Results do not depend on the thread count (fixed blocked reductions).
 * Class losses take x of shape (n, c, d): d positions per sample (1 for (N, C) input);
 * targets t have n*d entries, weights w have c.
 */
#ifndef FASTLOSS_H
#define FASTLOSS_H

#include <stdint.h>

/* Threads used by the kernels (the calling thread included); >= 1. */
void fl_set_num_threads(int n);
int fl_get_num_threads(void);

/* Instruction set in use: 0 baseline, 1 AVX2+FMA. fl_set_isa asks for one (1 is only
 * granted on a CPU that has AVX2 and FMA) and returns the one now in use. */
int fl_isa(void);
int fl_set_isa(int isa);

/* Summed weight of the targets that count (t != ignore_index when use_ignore), and in
 * *bad_pos the first flat position of a target outside [0, n_classes) (-1 if none). */
double fl_class_targets_f32(const int64_t *t, int64_t n, const float *w, int64_t n_w,
                            int64_t n_classes, int64_t ignore_index, int use_ignore,
                            int64_t *bad_pos);
double fl_class_targets_f64(const int64_t *t, int64_t n, const double *w, int64_t n_w,
                            int64_t n_classes, int64_t ignore_index, int use_ignore,
                            int64_t *bad_pos);

/* nll: loss = -w[t] x[t], 0 where t == ignore_index. */
double fl_nll_fwd_f32(const float *x, const int64_t *t, const float *w, int64_t n_w,
                      int64_t n, int64_t c, int64_t d, int64_t ignore_index,
                      float *loss_out, int64_t n_out,
                      double *target_stats);
double fl_nll_fwd_f64(const double *x, const int64_t *t, const double *w, int64_t n_w,
                      int64_t n, int64_t c, int64_t d, int64_t ignore_index,
                      double *loss_out, int64_t n_out,
                      double *target_stats);
double fl_nll_vg_f32(const float *x, const int64_t *t, const float *w, int64_t n_w,
                     int64_t n, int64_t c, int64_t d, int64_t ignore_index,
                     double gscale, const float *gvec, int64_t n_gvec,
                     float *loss_out, int64_t n_out, float *gx);
double fl_nll_vg_f64(const double *x, const int64_t *t, const double *w, int64_t n_w,
                     int64_t n, int64_t c, int64_t d, int64_t ignore_index,
                     double gscale, const double *gvec, int64_t n_gvec,
                     double *loss_out, int64_t n_out, double *gx);

/* ce_class: cross-entropy of logits with class indices, label smoothing eps:
 * (1 - eps) w[t] (lse - x[t]) + eps / c sum_c w_c (lse - x_c); 0 where t == ignore_index. */
double fl_ce_class_fwd_f32(const float *x, const int64_t *t, const float *w, int64_t n_w,
                           int64_t n, int64_t c, int64_t d, int64_t ignore_index,
                           double label_smoothing, float *loss_out, int64_t n_out,
                           double *target_stats);
double fl_ce_class_fwd_f64(const double *x, const int64_t *t, const double *w, int64_t n_w,
                           int64_t n, int64_t c, int64_t d, int64_t ignore_index,
                           double label_smoothing, double *loss_out, int64_t n_out,
                           double *target_stats);
double fl_ce_class_vg_f32(const float *x, const int64_t *t, const float *w, int64_t n_w,
                          int64_t n, int64_t c, int64_t d, int64_t ignore_index,
                          double label_smoothing, double gscale, const float *gvec,
                          int64_t n_gvec, float *loss_out, int64_t n_out, float *gx);
double fl_ce_class_vg_f64(const double *x, const int64_t *t, const double *w, int64_t n_w,
                          int64_t n, int64_t c, int64_t d, int64_t ignore_index,
                          double label_smoothing, double gscale, const double *gvec,
                          int64_t n_gvec, double *loss_out, int64_t n_out, double *gx);

/* ce_prob: cross-entropy of logits with class probabilities p (shaped like x):
 * -sum_c w_c ((1 - eps) p_c + eps / c) log softmax(x)_c. */
double fl_ce_prob_fwd_f32(const float *x, const float *p, const float *w, int64_t n_w,
                          int64_t n, int64_t c, int64_t d, double label_smoothing,
                          float *loss_out, int64_t n_out);
double fl_ce_prob_fwd_f64(const double *x, const double *p, const double *w, int64_t n_w,
                          int64_t n, int64_t c, int64_t d, double label_smoothing,
                          double *loss_out, int64_t n_out);
double fl_ce_prob_vg_f32(const float *x, const float *p, const float *w, int64_t n_w,
                         int64_t n, int64_t c, int64_t d, double label_smoothing,
                         double gscale, const float *gvec, int64_t n_gvec,
                         float *loss_out, int64_t n_out, float *gx);
double fl_ce_prob_vg_f64(const double *x, const double *p, const double *w, int64_t n_w,
                         int64_t n, int64_t c, int64_t d, double label_smoothing,
                         double gscale, const double *gvec, int64_t n_gvec,
                         double *loss_out, int64_t n_out, double *gx);

/* Element-wise regression losses on n items, d = x - t, optional per-item weight w:
 * l1 |d|; mse d^2; smooth_l1 (param beta > 0) 0.5 d^2 / beta if |d| < beta else
 * |d| - 0.5 beta; huber (param delta > 0) 0.5 d^2 if |d| < delta else
 * delta (|d| - 0.5 delta). The param is ignored by l1 and mse. */
double fl_l1_fwd_f32(const float *x, const float *t, const float *w, int64_t n_w, int64_t n,
                     double param, float *loss_out, int64_t n_out);
double fl_l1_fwd_f64(const double *x, const double *t, const double *w, int64_t n_w, int64_t n,
                     double param, double *loss_out, int64_t n_out);
double fl_l1_vg_f32(const float *x, const float *t, const float *w, int64_t n_w, int64_t n,
                    double param, double gscale, const float *gvec, int64_t n_gvec,
                    float *loss_out, int64_t n_out, float *gx);
double fl_l1_vg_f64(const double *x, const double *t, const double *w, int64_t n_w, int64_t n,
                    double param, double gscale, const double *gvec, int64_t n_gvec,
                    double *loss_out, int64_t n_out, double *gx);
double fl_mse_fwd_f32(const float *x, const float *t, const float *w, int64_t n_w, int64_t n,
                      double param, float *loss_out, int64_t n_out);
double fl_mse_fwd_f64(const double *x, const double *t, const double *w, int64_t n_w, int64_t n,
                      double param, double *loss_out, int64_t n_out);
double fl_mse_vg_f32(const float *x, const float *t, const float *w, int64_t n_w, int64_t n,
                     double param, double gscale, const float *gvec, int64_t n_gvec,
                     float *loss_out, int64_t n_out, float *gx);
double fl_mse_vg_f64(const double *x, const double *t, const double *w, int64_t n_w, int64_t n,
                     double param, double gscale, const double *gvec, int64_t n_gvec,
                     double *loss_out, int64_t n_out, double *gx);
double fl_smooth_l1_fwd_f32(const float *x, const float *t, const float *w, int64_t n_w,
                            int64_t n, double param, float *loss_out, int64_t n_out);
double fl_smooth_l1_fwd_f64(const double *x, const double *t, const double *w, int64_t n_w,
                            int64_t n, double param, double *loss_out, int64_t n_out);
double fl_smooth_l1_vg_f32(const float *x, const float *t, const float *w, int64_t n_w,
                           int64_t n, double param, double gscale, const float *gvec,
                           int64_t n_gvec, float *loss_out, int64_t n_out, float *gx);
double fl_smooth_l1_vg_f64(const double *x, const double *t, const double *w, int64_t n_w,
                           int64_t n, double param, double gscale, const double *gvec,
                           int64_t n_gvec, double *loss_out, int64_t n_out, double *gx);
double fl_huber_fwd_f32(const float *x, const float *t, const float *w, int64_t n_w,
                        int64_t n, double param, float *loss_out, int64_t n_out);
double fl_huber_fwd_f64(const double *x, const double *t, const double *w, int64_t n_w,
                        int64_t n, double param, double *loss_out, int64_t n_out);
double fl_huber_vg_f32(const float *x, const float *t, const float *w, int64_t n_w,
                       int64_t n, double param, double gscale, const float *gvec,
                       int64_t n_gvec, float *loss_out, int64_t n_out, float *gx);
double fl_huber_vg_f64(const double *x, const double *t, const double *w, int64_t n_w,
                       int64_t n, double param, double gscale, const double *gvec,
                       int64_t n_gvec, double *loss_out, int64_t n_out, double *gx);

/* Binary cross-entropy on probabilities x (same element-wise signature as above; the
 * param is ignored): (t - 1) max(log(1 - x), -100) - t max(log x, -100), times w. */
double fl_bce_fwd_f32(const float *x, const float *t, const float *w, int64_t n_w, int64_t n,
                      double param, float *loss_out, int64_t n_out);
double fl_bce_fwd_f64(const double *x, const double *t, const double *w, int64_t n_w, int64_t n,
                      double param, double *loss_out, int64_t n_out);
double fl_bce_vg_f32(const float *x, const float *t, const float *w, int64_t n_w, int64_t n,
                     double param, double gscale, const float *gvec, int64_t n_gvec,
                     float *loss_out, int64_t n_out, float *gx);
double fl_bce_vg_f64(const double *x, const double *t, const double *w, int64_t n_w, int64_t n,
                     double param, double gscale, const double *gvec, int64_t n_gvec,
                     double *loss_out, int64_t n_out, double *gx);

/* Binary cross-entropy on logits: w ((1 - t) x + (1 + (pw - 1) t) softplus(-x)); pw
 * (pos_weight, already broadcast to n items) absent when n_pw == 0. */
double fl_bce_logits_fwd_f32(const float *x, const float *t, const float *w, int64_t n_w,
                             const float *pw, int64_t n_pw, int64_t n,
                             float *loss_out, int64_t n_out);
double fl_bce_logits_fwd_f64(const double *x, const double *t, const double *w, int64_t n_w,
                             const double *pw, int64_t n_pw, int64_t n,
                             double *loss_out, int64_t n_out);
double fl_bce_logits_vg_f32(const float *x, const float *t, const float *w, int64_t n_w,
                            const float *pw, int64_t n_pw, int64_t n, double gscale,
                            const float *gvec, int64_t n_gvec, float *loss_out, int64_t n_out,
                            float *gx);
double fl_bce_logits_vg_f64(const double *x, const double *t, const double *w, int64_t n_w,
                            const double *pw, int64_t n_pw, int64_t n, double gscale,
                            const double *gvec, int64_t n_gvec, double *loss_out, int64_t n_out,
                            double *gx);

/* hinge_embedding: t == 1: x; t == -1: max(0, margin - x); other t: the sum of both. */
double fl_hinge_embedding_fwd_f32(const float *x, const float *t, int64_t n, double margin,
                                  float *loss_out, int64_t n_out);
double fl_hinge_embedding_fwd_f64(const double *x, const double *t, int64_t n, double margin,
                                  double *loss_out, int64_t n_out);
double fl_hinge_embedding_vg_f32(const float *x, const float *t, int64_t n, double margin,
                                 double gscale, const float *gvec, int64_t n_gvec,
                                 float *loss_out, int64_t n_out, float *gx);
double fl_hinge_embedding_vg_f64(const double *x, const double *t, int64_t n, double margin,
                                 double gscale, const double *gvec, int64_t n_gvec,
                                 double *loss_out, int64_t n_out, double *gx);

/* soft_margin: log(1 + exp(-t x)). */
double fl_soft_margin_fwd_f32(const float *x, const float *t, int64_t n,
                              float *loss_out, int64_t n_out);
double fl_soft_margin_fwd_f64(const double *x, const double *t, int64_t n,
                              double *loss_out, int64_t n_out);
double fl_soft_margin_vg_f32(const float *x, const float *t, int64_t n, double gscale,
                             const float *gvec, int64_t n_gvec, float *loss_out, int64_t n_out,
                             float *gx);
double fl_soft_margin_vg_f64(const double *x, const double *t, int64_t n, double gscale,
                             const double *gvec, int64_t n_gvec, double *loss_out, int64_t n_out,
                             double *gx);

/* margin_ranking: max(0, -t (x1 - x2) + margin); gx1 and gx2 = -gx1. */
double fl_margin_ranking_fwd_f32(const float *x1, const float *x2, const float *t, int64_t n,
                                 double margin, float *loss_out, int64_t n_out);
double fl_margin_ranking_fwd_f64(const double *x1, const double *x2, const double *t, int64_t n,
                                 double margin, double *loss_out, int64_t n_out);
double fl_margin_ranking_vg_f32(const float *x1, const float *x2, const float *t, int64_t n,
                                double margin, double gscale, const float *gvec, int64_t n_gvec,
                                float *loss_out, int64_t n_out, float *gx1, float *gx2);
double fl_margin_ranking_vg_f64(const double *x1, const double *x2, const double *t, int64_t n,
                                double margin, double gscale, const double *gvec, int64_t n_gvec,
                                double *loss_out, int64_t n_out, double *gx1, double *gx2);

/* multi_margin on x of shape (n, c), class indices t (n), class weights w:
 * sum_{j != t} w_t max(0, margin - x_t + x_j)^p / c, p = 1 or 2. */
double fl_multi_margin_fwd_f32(const float *x, const int64_t *t, const float *w, int64_t n_w,
                              int64_t n, int64_t c, int p, double margin,
                              float *loss_out, int64_t n_out);
double fl_multi_margin_fwd_f64(const double *x, const int64_t *t, const double *w, int64_t n_w,
                              int64_t n, int64_t c, int p, double margin,
                              double *loss_out, int64_t n_out);
double fl_multi_margin_vg_f32(const float *x, const int64_t *t, const float *w, int64_t n_w,
                             int64_t n, int64_t c, int p, double margin, double gscale,
                             const float *gvec, int64_t n_gvec, float *loss_out, int64_t n_out,
                             float *gx);
double fl_multi_margin_vg_f64(const double *x, const int64_t *t, const double *w, int64_t n_w,
                             int64_t n, int64_t c, int p, double margin, double gscale,
                             const double *gvec, int64_t n_gvec, double *loss_out, int64_t n_out,
                             double *gx);

/* multilabel_soft_margin on x and y of shape (n, c): mean over c of
 * -w (y log sigmoid(x) + (1 - y) log sigmoid(-x)); w has w_rows rows of c (0: no weight,
 * 1: one row for all, n: one per row). */
double fl_multilabel_soft_margin_fwd_f32(const float *x, const float *y, const float *w,
                                        int64_t w_rows, int64_t n, int64_t c,
                                        float *loss_out, int64_t n_out);
double fl_multilabel_soft_margin_fwd_f64(const double *x, const double *y, const double *w,
                                        int64_t w_rows, int64_t n, int64_t c,
                                        double *loss_out, int64_t n_out);
double fl_multilabel_soft_margin_vg_f32(const float *x, const float *y, const float *w,
                                       int64_t w_rows, int64_t n, int64_t c, double gscale,
                                       const float *gvec, int64_t n_gvec, float *loss_out,
                                       int64_t n_out, float *gx);
double fl_multilabel_soft_margin_vg_f64(const double *x, const double *y, const double *w,
                                       int64_t w_rows, int64_t n, int64_t c, double gscale,
                                       const double *gvec, int64_t n_gvec, double *loss_out,
                                       int64_t n_out, double *gx);

#endif
