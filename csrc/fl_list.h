/* The element-wise kernels of a standard form, one row each: the list from which the
 * prototypes (fastloss.h), the ISA block declarations (fl_kernels.h), the exported entry
 * points (fl_entry.c), the block functions and the kinds of the element-wise loop
 * (elementwise.inc) are all generated. Adding such a kernel is its row here and its math
 * (a `case FL_K_<name>:` of elementwise.inc's FN(pw_elem)); tests/test_kernels.py checks
 * the prototypes against fastloss._kernels. No #include, no comment inside the list: the
 * cffi cdef is this header run through the preprocessor (csrc/build_cffi.py).
 *
 * Each form is a macro argument of FL_ELEMENTWISE_KERNELS, called once per row:
 *   XTW(name)          x, t (n items) and the optional element weight w (n_w: 0 none)
 *   XTW_P(name, p)     ... and one float parameter named p (the declaration's name)
 *   XT(name)           x, t
 *   XT_P(name, p)      x, t and one float parameter named p
 * The kernels of another form (bce_logits' pos_weight, margin_ranking's two inputs) are
 * written out in fastloss.h and fl_entry.c. */
#ifndef FL_LIST_H
#define FL_LIST_H

#define FL_ELEMENTWISE_KERNELS(XTW, XTW_P, XT, XT_P) \
    XTW(l1)                                          \
    XTW(mse)                                         \
    XTW_P(smooth_l1, beta)                           \
    XTW_P(huber, delta)                              \
    XTW(bce)                                         \
    XT_P(hinge_embedding, margin)                    \
    XT(soft_margin)                                  \
    XT_P(kl_div, log_target)

#endif
