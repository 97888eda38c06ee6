/* Portable 8-lane vectors (GCC/Clang vector extensions) and the vectorized exp/log the
 * kernels use. Everything here is static inline so that each instruction-set pass
 * (fl_isa_base.c, fl_isa_avx2.c) compiles its own copy for its own target.
 *
 * The math functions are written so that they are right for every input, including the
 * ones -ffast-math would assume away: NaN gives NaN, +-inf and overflow/underflow give
 * the IEEE results (exp: 0 / +inf, with subnormal results kept; log: -inf at 0, NaN
 * below 0). No float->int conversion of a possibly-NaN value is done (that would be
 * undefined behaviour in C): rounding to an integer uses the 1.5*2^p "magic number" add,
 * and exponents are moved with integer bit operations on the float's representation.
 */
#ifndef FL_SIMD_H
#define FL_SIMD_H

#include <stdint.h>
#include <string.h>

/* 32-byte vectors: 8 floats or 4 doubles (one AVX register; two SSE ones). Wider
 * generic vectors are avoided: GCC lowers them through memory. */
#define FL_W32 8
#define FL_W64 4

/* The element types kernels read arrays through: alignment 1, so that a NumPy view at
 * any byte offset (np.frombuffer(buf, np.float32, offset=1)) is read without undefined
 * behaviour. On x86 the loads are the same instructions (vector loads were memcpy already);
 * only the compiler's assumption, and UBSan's alignment check, change. */
typedef float fl_f32u __attribute__((aligned(1)));
typedef double fl_f64u __attribute__((aligned(1)));
typedef int64_t fl_i64u __attribute__((aligned(1)));

typedef float v8sf __attribute__((vector_size(32)));
typedef int32_t v8si __attribute__((vector_size(32)));
typedef float v4sf __attribute__((vector_size(16)));
typedef double v4df __attribute__((vector_size(32)));
typedef int64_t v4di __attribute__((vector_size(32)));
/* Unsigned lanes for the exponent bit tricks: a left shift of a negative value, or a sum
 * that wraps, is undefined behaviour in signed arithmetic (UBSan reports it) and defined
 * modulo 2^32 / 2^64 in unsigned arithmetic, which is what those tricks rely on. */
typedef uint32_t v8su __attribute__((vector_size(32)));
typedef uint64_t v4du __attribute__((vector_size(32)));

#define FL_INLINE static inline __attribute__((always_inline))

/* The width-generic functions (loads, stores, lane masks, selects, |x|, expneg_f64, the
 * logs) for the 32-byte vectors: ld_f32, sel_f64, log_f32, ... */
#define FV v8sf
#define FI v8si
#define FU v8su
#define FW FL_W32
#define FS(name) name##_f32
#define SI(name) name##_i32
#define DV v4df
#define DI v4di
#define DU v4du
#define DW FL_W64
#define DS(name) name##_f64
#define DIS(name) name##_i64
#if defined(__AVX512F__) && defined(__AVX512VL__)
#include <immintrin.h>
#define FGETEXP(x) ((v8sf)_mm256_getexp_ps((__m256)(x)))
#define FGETMANT(x) ((v8sf)_mm256_getmant_ps((__m256)(x), _MM_MANT_NORM_p75_1p5, _MM_MANT_SIGN_src))
#define DGETEXP(x) ((v4df)_mm256_getexp_pd((__m256d)(x)))
#define DGETMANT(x) ((v4df)_mm256_getmant_pd((__m256d)(x), _MM_MANT_NORM_p75_1p5, _MM_MANT_SIGN_src))
#endif
#include "fl_vmath.inc"   /* which undefines its parameters */

/* All lanes from p, elements `stride` apart: element inserts, which unlike a store to a
 * buffer and a vector load do not stall on store-to-load forwarding. */
FL_INLINE v8sf gather_f32(const fl_f32u *p, int64_t s)
{
    return (v8sf){p[0], p[s], p[2 * s], p[3 * s], p[4 * s], p[5 * s], p[6 * s], p[7 * s]};
}
FL_INLINE v4df gather_f64(const fl_f64u *p, int64_t s) { return (v4df){p[0], p[s], p[2 * s], p[3 * s]}; }

/* The 8x8 block at p (rows `stride` apart, 8 floats each) transposed: col[k] holds
 * element k of every row. 8 loads and 24 shuffles for 64 elements, where gather_f32
 * takes 8 loads and 7 inserts per vector. */
#define FL_SHUF(a, b, ...) __builtin_shufflevector(a, b, __VA_ARGS__)
FL_INLINE void transpose8_f32(const fl_f32u *p, int64_t stride, v8sf col[8])
{
    v8sf a[8], t[8], u[8];
    for (int r = 0; r < 8; r++)
        a[r] = ld_f32(p + r * stride);
    for (int r = 0; r < 8; r += 2) {
        t[r] = FL_SHUF(a[r], a[r + 1], 0, 8, 1, 9, 4, 12, 5, 13);
        t[r + 1] = FL_SHUF(a[r], a[r + 1], 2, 10, 3, 11, 6, 14, 7, 15);
    }
    for (int h = 0; h < 8; h += 4) {
        u[h] = FL_SHUF(t[h], t[h + 2], 0, 1, 8, 9, 4, 5, 12, 13);
        u[h + 1] = FL_SHUF(t[h], t[h + 2], 2, 3, 10, 11, 6, 7, 14, 15);
        u[h + 2] = FL_SHUF(t[h + 1], t[h + 3], 0, 1, 8, 9, 4, 5, 12, 13);
        u[h + 3] = FL_SHUF(t[h + 1], t[h + 3], 2, 3, 10, 11, 6, 7, 14, 15);
    }
    for (int k = 0; k < 4; k++) {
        col[k] = FL_SHUF(u[k], u[k + 4], 0, 1, 2, 3, 8, 9, 10, 11);
        col[k + 4] = FL_SHUF(u[k], u[k + 4], 4, 5, 6, 7, 12, 13, 14, 15);
    }
}
#undef FL_SHUF

/* Eight int64 lanes (two vectors) narrowed to int32 (their low halves, in order). */
FL_INLINE v8si narrow_i64x8(v4di lo, v4di hi)
{
    return __builtin_shufflevector((v8si)lo, (v8si)hi, 0, 2, 4, 6, 8, 10, 12, 14);
}


/* a > b ? a : b per lane (b when either is NaN: callers rely on NaN reaching the result
 * through exp/log, not through the max). That is exactly what (v)maxps computes, one
 * instruction where the generic select takes two. */
FL_INLINE v8sf max_f32(v8sf a, v8sf b)
{
#if defined(__AVX__)
    return __builtin_ia32_maxps256(a, b);
#else
    return sel_f32(a > b, a, b);
#endif
}
FL_INLINE v4df max_f64(v4df a, v4df b)
{
#if defined(__AVX__)
    return __builtin_ia32_maxpd256(a, b);
#else
    return sel_f64(a > b, a, b);
#endif
}

/* Horizontal reductions in a fixed lane order (so results never depend on the ISA's
 * vector width). */
FL_INLINE double hsum_f64(v4df v) { return (v[0] + v[1]) + (v[2] + v[3]); }

/* A float64 accumulator of 8 lanes, as two 4-double vectors. */
typedef struct {
    v4df lo, hi;
} fl_acc;

FL_INLINE void acc_add_f32(fl_acc *acc, v8sf v)
{
    v4sf lo, hi;
    memcpy(&lo, &v, 16);
    memcpy(&hi, (char *)&v + 16, 16);
#if defined(__AVX__) && !defined(__clang__)
    /* GCC 12 splits the generic conversion into 2-lane pieces; this is one vcvtps2pd */
    acc->lo += __builtin_ia32_cvtps2pd256(lo);
    acc->hi += __builtin_ia32_cvtps2pd256(hi);
#else
    acc->lo += __builtin_convertvector(lo, v4df);
    acc->hi += __builtin_convertvector(hi, v4df);
#endif
}
FL_INLINE void acc_add_f64(fl_acc *acc, v4df v) { acc->lo += v; }
FL_INLINE double acc_sum(fl_acc acc) { return hsum_f64(acc.lo) + hsum_f64(acc.hi); }
FL_INLINE float hsum_f32(v8sf v)
{
    return ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]));
}
/* The max of the lanes by a tree of vector maxima (3 steps, where the lane-by-lane chain
 * took 7 dependent compares per softmax row); which NaN, if any, wins is as unspecified
 * as in max_f32. */
FL_INLINE float hmax_f32(v8sf v)
{
    v8sf a = max_f32(v, __builtin_shufflevector(v, v, 4, 5, 6, 7, 0, 1, 2, 3));
    a = max_f32(a, __builtin_shufflevector(a, a, 2, 3, 0, 1, 6, 7, 4, 5));
    a = max_f32(a, __builtin_shufflevector(a, a, 1, 0, 3, 2, 5, 4, 7, 6));
    return a[0];
}
FL_INLINE double hmax_f64(v4df v)
{
    v4df a = max_f64(v, __builtin_shufflevector(v, v, 2, 3, 0, 1));
    a = max_f64(a, __builtin_shufflevector(a, a, 1, 0, 3, 2));
    return a[0];
}

/* ---- exp ------------------------------------------------------------------------ */

/* exp(x) for x <= 0 (and NaN, -inf), the case of softmax and softplus terms: no
 * overflow handling, and results below FLT_MIN (x < -87.34) flushed to 0 -- they are
 * below 1.2e-38 and vanish in every sum they enter. (A positive x would come out right
 * up to about 88.)
 * Without AVX2: Cephes' expf polynomial on |r| <= ln2/2. */
#if defined(__AVX2__)
/* The constants and steps of the AVX2 expneg, split so that sumexpneg_f32 can overlap
 * the steps of consecutive vectors. */
#define FL_EXPT_L 11.5415603271117073f       /* 8 / ln2 */
#define FL_EXPT_MAGIC 12582912.0f            /* 1.5 * 2^23: adding it rounds to an integer */
#define FL_EXPT_CHI 0.0866433978080749512f   /* float(ln2 / 8) */
#define FL_EXPT_CLO (-2.38081787e-10f)       /* ln2 / 8 - FL_EXPT_CHI */
#define FL_EXPT_C3 1.66680530e-1f            /* exp(r) - 1 ~ r + r^2 (1/2 + C3 r + C4 r^2), */
#define FL_EXPT_C4 4.16603088e-2f            /* minimax on |r| <= 1.01 ln2/16: 1.7e-10 */
#define FL_B8(c) {c, c, c, c, c, c, c, c}
typedef struct {
    v8sf l, magic, nchi, nclo, c3, half, c4;
    v8si tab;
} fl_expt_k;
/* tab: bits(2^(j/8)) - (j << 20), j = 0..7 (see expt_scale) */
static const fl_expt_k fl_expt_k0 __attribute__((aligned(32))) = {
    FL_B8(FL_EXPT_L), FL_B8(FL_EXPT_MAGIC), FL_B8(-FL_EXPT_CHI), FL_B8(-FL_EXPT_CLO),
    FL_B8(FL_EXPT_C3), FL_B8(0.5f), FL_B8(FL_EXPT_C4),
    {0x3f800000, 0x3f7b95c2, 0x3f7837f0, 0x3f75fed7, 0x3f7504f3, 0x3f75672a, 0x3f7744fd,
     0x3f7ac0c7}};
/* a * b + c, rounded once (spelled out: the accuracy below depends on it, and on
 * constant inputs GCC would otherwise fold a separate multiply and add) */
FL_INLINE v8sf fma_f32(v8sf a, v8sf b, v8sf c) { return __builtin_ia32_vfmaddps256(a, b, c); }
#define FL_S8(c) ((v8sf){} + (c))
/* step 1: t = magic + n, n = round(d 8 / ln2) */
FL_INLINE v8sf expt_round(v8sf d, const fl_expt_k *k) { return fma_f32(d, k->l, k->magic); }
/* step 2: exp(d) - 2^(n/8) = 2^(n/8) q: q ~ exp(r) - 1, r = d - n ln2/8, |r| <= ln2/16;
 * the polynomial is in rh = fl(d - n FL_EXPT_CHI) and only its linear term takes the
 * correction n FL_EXPT_CLO (|rh r - rh^2| < 1e-8 relative), which keeps that
 * multiply-add off the path through the polynomial. */
FL_INLINE v8sf expt_poly(v8sf d, v8sf t, const fl_expt_k *k)
{
    v8sf n = t - k->magic;
    v8sf rh = fma_f32(n, k->nchi, d);
    v8sf u = fma_f32(n, k->nclo, rh);
    v8sf r2 = rh * rh;
    v8sf a = fma_f32(rh, k->c3, k->half);
    v8sf b = fma_f32(r2, k->c4, a);
    return fma_f32(b, r2, u);
}
/* step 2': 2^(n/8) from t (while n >= -1008). Adding n << 20 = (k << 23) + (j << 20)
 * (n = 8k + j) to bits(2^(j/8)) - (j << 20) gives bits(2^(j/8) 2^k), as long as
 * k >= -126. vpermps reads only the low 3 bits of an index lane: those of bits(t) are
 * j; and bits(magic) << 20 vanishes modulo 2^32. */
FL_INLINE v8sf expt_scale(v8sf t, const fl_expt_k *k)
{
    v8si tj = (v8si)__builtin_ia32_permvarsf256((v8sf)k->tab, (v8si)t);
    return (v8sf)(((v8su)t << 20) + (v8su)tj);
}
/* step 3: the result */
FL_INLINE v8sf expt_finish(v8sf scale, v8sf q) { return fma_f32(scale, q, scale); }
#endif

FL_INLINE v8sf expneg_f32(v8sf x)
{
#if defined(__AVX2__)
    /* x = n ln2/8 + r, exp(x) = 2^(n/8) exp(r): 2^(j/8), j = n mod 8, comes from an
     * 8-entry table held in one register, and exp(r), |r| <= ln2/16, needs a degree-4
     * polynomial instead of degree 7: 8 multiply-adds per vector instead of 11. */
    const fl_expt_k *k = &fl_expt_k0;
    v8sf t = expt_round(x, k);
    v8sf y = expt_finish(expt_scale(t, k), expt_poly(x, t, k));
    return (v8sf)(~(x < -87.33654f) & (v8si)y);
#else
    const float magic = 12582912.0f;   /* 1.5 * 2^23: adding it rounds to an integer */
    v8sf t = x * 1.44269504088896341f + magic;
    v8sf n = t - magic;
    v8sf r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    v8sf p = (v8sf){} + 1.9875691500E-4f;
    p = p * r + 1.3981999507E-3f;
    p = p * r + 8.3334519073E-3f;
    p = p * r + 4.1665795894E-2f;
    p = p * r + 1.6666665459E-1f;
    p = p * r + 5.0000001201E-1f;
    p = p * (r * r) + r + 1.0f;
    /* bits(t) = bits(magic) + n, and bits(magic) << 23 vanishes modulo 2^32 */
    v8sf scale = (v8sf)(((v8su)t << 23) + 0x3f800000u);
    return (v8sf)(~(x < -87.33654f) & (v8si)(p * scale));
#endif
}

/* The sum of exp(x_j - m) over the nv vectors at x, for m >= every x_j (the max of a
 * softmax row), in a fixed order. One prefetch of `next` per 64 bytes read (the
 * caller's next data: the loop is compute-bound on cached data).
 *
 * With AVX2 the loop is software-pipelined: each iteration starts a vector (load,
 * x - m, clamp, round), does the polynomial of the one before and finishes the one
 * before that. One exp is a chain of ~40 cycles for ~4 cycles of issue: written one
 * vector after the other, the dependent steps of ten vectors wait in the scheduler at
 * once, more than it holds, and the loop ran at ~5.6 cycles per vector; like this,
 * ~5.1 (the multiply-adds alone need 4 on the two FMA ports). GCC's register
 * allocation decides much here: variants with more stages or unrolled by two spilled
 * a sum or the constants and ran slower.
 *
 * The terms are exp(max(x - m, -87.34)) here: below that, 1.2e-38 instead of 0, which
 * vanishes next to the term exp(0) = 1 every row sum has (a NaN still gives NaN). */
FL_INLINE v8sf sumexpneg_f32(const fl_f32u *x, int64_t nv, v8sf m, const fl_f32u *next)
{
    v8sf s = {};
    int64_t i = 0;
#if defined(__AVX2__)
    if (nv >= 2) {
        const v8sf lo = FL_S8(-87.33654f);
        const fl_expt_k *k = &fl_expt_k0;
        v8sf d1, t1, d0, t0, q, c;
#define FL_EXPT_START(j, d, t) \
    (d = __builtin_ia32_maxps256(lo, ld_f32(x + 8 * (j)) - m), t = expt_round(d, k))
        FL_EXPT_START(0, d1, t1);
        for (i = 2; i <= nv; i++) {
            /* here: vector i - 2 started (d1, t1), i - 3 has its polynomial (q, c) */
            d0 = d1, t0 = t1;
            __builtin_prefetch(next + 8 * (i - 2));
            FL_EXPT_START(i - 1, d1, t1);
            if (i > 2)
                s += expt_finish(c, q);
            q = expt_poly(d0, t0, k), c = expt_scale(t0, k);
        }
#undef FL_EXPT_START
        s += expt_finish(c, q);
        s += expt_finish(expt_scale(t1, k), expt_poly(d1, t1, k));
        __builtin_prefetch(next + 8 * (nv - 1));
        return s;
    }
#endif
    v8sf s1 = {};
    for (; i + 2 <= nv; i += 2) {
        __builtin_prefetch(next + 8 * i);
        s += expneg_f32(ld_f32(x + 8 * i) - m);
        s1 += expneg_f32(ld_f32(x + 8 * i + 8) - m);
    }
    if (i < nv) {
        __builtin_prefetch(next + 8 * i);
        s += expneg_f32(ld_f32(x + 8 * i) - m);
    }
    return s + s1;
}

/* The same for double: two sums, one prefetch per two vectors. */
FL_INLINE v4df sumexpneg_f64(const fl_f64u *x, int64_t nv, v4df m, const fl_f64u *next)
{
    v4df s0 = {}, s1 = {};
    int64_t i = 0;
    for (; i + 2 <= nv; i += 2) {
        __builtin_prefetch(next + 4 * i);
        __builtin_prefetch(next + 4 * i + 4);
        s0 += expneg_f64(ld_f64(x + 4 * i) - m);
        s1 += expneg_f64(ld_f64(x + 4 * i + 4) - m);
    }
    if (i < nv) {
        __builtin_prefetch(next + 4 * i);
        s0 += expneg_f64(ld_f64(x + 4 * i) - m);
    }
    return s0 + s1;
}

/* ---- 64-byte vectors: the AVX-512 pass ------------------------------------------ */

/* 16 floats or 8 doubles per vector, for the kernels the AVX-512 pass compiles wide
 * (fl_isa_pass.h). Only there: without AVX-512, GCC lowers 64-byte generic vectors
 * through memory. GCC only (fl_isa_avx512.c): clang's target attribute does not define
 * __AVX512F__ for the preprocessor. */
#if defined(__AVX512F__) && defined(__AVX512VL__) && defined(__AVX512DQ__) && defined(__AVX512BW__)
#include <immintrin.h>

#define FL_W32X16 16
#define FL_W64X8 8
typedef float v16sf __attribute__((vector_size(64)));
typedef int32_t v16si __attribute__((vector_size(64)));
typedef uint32_t v16su __attribute__((vector_size(64)));
typedef double v8df __attribute__((vector_size(64)));
typedef int64_t v8di __attribute__((vector_size(64)));
typedef uint64_t v8du __attribute__((vector_size(64)));

#define FV v16sf
#define FI v16si
#define FU v16su
#define FW FL_W32X16
#define FS(name) name##_f32x16
#define SI(name) name##_i32x16
#define DV v8df
#define DI v8di
#define DU v8du
#define DW FL_W64X8
#define DS(name) name##_f64x8
#define DIS(name) name##_i64x8
#define FGETEXP(x) ((v16sf)_mm512_getexp_ps((__m512)(x)))
#define FGETMANT(x) ((v16sf)_mm512_getmant_ps((__m512)(x), _MM_MANT_NORM_p75_1p5, _MM_MANT_SIGN_src))
#define DGETEXP(x) ((v8df)_mm512_getexp_pd((__m512d)(x)))
#define DGETMANT(x) ((v8df)_mm512_getmant_pd((__m512d)(x), _MM_MANT_NORM_p75_1p5, _MM_MANT_SIGN_src))
#include "fl_vmath.inc"   /* which undefines its parameters */

/* (v)maxps / (v)maxpd: the second operand where either is NaN, as max_f32 */
FL_INLINE v16sf max_f32x16(v16sf a, v16sf b) { return (v16sf)_mm512_max_ps((__m512)a, (__m512)b); }
FL_INLINE v8df max_f64x8(v8df a, v8df b) { return (v8df)_mm512_max_pd((__m512d)a, (__m512d)b); }

/* expneg_f32's AVX2 algorithm on 16 lanes, the same operations (so the same values lane
 * by lane): 2^(j/8) from the 8-entry table, repeated so that vpermps' 16-entry index
 * (the low 4 bits of bits(t), n mod 16) reads entry n mod 8, then the degree-4
 * polynomial of expt_poly and the scaling of expt_scale. */
FL_INLINE v16sf fma_f32x16(v16sf a, v16sf b, v16sf c)
{
    return (v16sf)_mm512_fmadd_ps((__m512)a, (__m512)b, (__m512)c);
}
FL_INLINE v16sf expneg_f32x16(v16sf x)
{
    static const v16si tab __attribute__((aligned(64))) = {
        0x3f800000, 0x3f7b95c2, 0x3f7837f0, 0x3f75fed7, 0x3f7504f3, 0x3f75672a, 0x3f7744fd,
        0x3f7ac0c7, 0x3f800000, 0x3f7b95c2, 0x3f7837f0, 0x3f75fed7, 0x3f7504f3, 0x3f75672a,
        0x3f7744fd, 0x3f7ac0c7};
    const v16sf magic = (v16sf){} + FL_EXPT_MAGIC;
    v16sf t = fma_f32x16(x, (v16sf){} + FL_EXPT_L, magic);
    v16sf n = t - magic;
    v16sf rh = fma_f32x16(n, (v16sf){} - FL_EXPT_CHI, x);
    v16sf u = fma_f32x16(n, (v16sf){} - FL_EXPT_CLO, rh);
    v16sf r2 = rh * rh;
    v16sf a = fma_f32x16(rh, (v16sf){} + FL_EXPT_C3, (v16sf){} + 0.5f);
    v16sf b = fma_f32x16(r2, (v16sf){} + FL_EXPT_C4, a);
    v16sf q = fma_f32x16(b, r2, u);
    v16si tj = (v16si)_mm512_permutexvar_ps((__m512i)t, (__m512)tab);
    v16sf scale = (v16sf)(((v16su)t << 20) + (v16su)tj);
    v16sf y = fma_f32x16(scale, q, scale);
    return (v16sf)(~(x < -87.33654f) & (v16si)y);
}

/* A float64 accumulator of 16 lanes (two 8-double vectors); doubles use its first. */
typedef struct {
    v8df lo, hi;
} fl_accw;

FL_INLINE void acc_add_f32x16(fl_accw *acc, v16sf v)
{
    v8sf lo = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7);
    v8sf hi = __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
    acc->lo += (v8df)_mm512_cvtps_pd((__m256)lo);
    acc->hi += (v8df)_mm512_cvtps_pd((__m256)hi);
}
FL_INLINE void acc_add_f64x8(fl_accw *acc, v8df v) { acc->lo += v; }
FL_INLINE double hsum_f64x8(v8df v)
{
    return ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]));
}
FL_INLINE double accw_sum(fl_accw acc) { return hsum_f64x8(acc.lo) + hsum_f64x8(acc.hi); }
#endif

#endif
