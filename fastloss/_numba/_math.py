"""Scalar building blocks of the Numba kernels: a vectorizable exp and log.

numba 0.68 has no SVML, so ``math.exp``/``math.log`` inside a loop stay scalar libm
calls. These polynomial versions use only arithmetic, ``floor`` and integer<->float
bit-casts (tiny LLVM intrinsics below), so LLVM's loop vectorizer turns a loop of them
into 8-wide AVX2 code. Accuracy: ~1 ulp in float32, a few ulp in float64. Special values
follow libm (exp: +-inf, NaN, overflow to inf, underflow to 0; log: 0 -> -inf, x < 0 ->
NaN, inf -> inf, subnormal inputs handled) through selects, never through branches, so
no fastmath flag that assumes finite values is needed.

``fexp``, ``fexpm``, ``flog``, ``flog1p``, ``flog1p_unit`` and ``fmaximum`` dispatch on
the argument's type, so kernels written once run at float32 speed on float32 data.
``fcast(ref, v)`` turns the Python float ``v`` into ``ref``'s type: a bare literal like
``0.5`` is float64 in Numba and would silently widen a float32 loop.
"""
import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

# Only 'contract' (FMA): no reassoc here, Cody-Waite reduction must stay as written.
STRICT = {"contract"}

_F32 = ir.FloatType()
_F64 = ir.DoubleType()


def _ll(ty):
    return _F32 if ty == types.float32 else _F64


@intrinsic
def fmaximum(typingctx, a, b):
    """max(a, b) propagating NaN (llvm.maximum): vectorizable as a reduction without
    'nnan', unlike ``max`` or a compare-and-select."""
    if not (isinstance(a, types.Float) and a == b):
        return None

    def codegen(context, builder, sig, args):
        lt = _ll(sig.args[0])
        name = "llvm.maximum.f32" if lt == _F32 else "llvm.maximum.f64"
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(lt, [lt, lt]), name)
        return builder.call(fn, args)
    return a(a, a), codegen


@intrinsic
def prefetch(typingctx, arr, i):
    """Hint the CPU to fetch the cache line of arr[i] (llvm.prefetch, read, keep in all
    levels): lets a row's memory arrive while the previous row is being computed."""
    if not (isinstance(arr, types.Array) and isinstance(i, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        aryty = sig.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        ptr = builder.gep(ary.data, [args[1]])
        i8p = ir.IntType(8).as_pointer()
        fn = cgutils.get_or_insert_function(
            builder.module,
            ir.FunctionType(ir.VoidType(), [i8p, ir.IntType(32), ir.IntType(32), ir.IntType(32)]),
            "llvm.prefetch.p0")
        i32 = ir.IntType(32)
        builder.call(fn, [builder.bitcast(ptr, i8p), ir.Constant(i32, 0), ir.Constant(i32, 3),
                          ir.Constant(i32, 1)])
        return context.get_dummy_value()
    return types.none(arr, i), codegen


def _float_bits(ty):
    """The bit layout of a Numba float type: (LLVM int type of its width, exponent bias,
    mantissa bits, LLVM float type). The bits of 1.0 are bias << mantissa bits."""
    if ty == types.float32:
        return ir.IntType(32), 127, 23, _F32
    return ir.IntType(64), 1023, 52, _F64


@intrinsic
def _scale2(typingctx, y, n):
    """y * 2**n for an integral-valued float n with |n| <= 2 * (max exponent): split into
    two powers of two so that neither overflows nor underflows on its own."""
    if not (isinstance(y, types.Float) and y == n):
        return None

    def codegen(context, builder, sig, args):
        yv, nv = args
        it, bias, shift, ft = _float_bits(sig.args[0])
        ni = builder.fptosi(nv, it)
        h = builder.ashr(ni, ir.Constant(it, 1))
        lo = builder.sub(ni, h)
        p1 = builder.bitcast(builder.shl(builder.add(h, ir.Constant(it, bias)),
                                         ir.Constant(it, shift)), ft)
        p2 = builder.bitcast(builder.shl(builder.add(lo, ir.Constant(it, bias)),
                                         ir.Constant(it, shift)), ft)
        return builder.fmul(builder.fmul(yv, p1), p2)
    return y(y, n), codegen


@intrinsic
def _scale1(typingctx, y, n):
    """y * 2**n for an integral-valued float n in the normal exponent range."""
    if not (isinstance(y, types.Float) and y == n):
        return None

    def codegen(context, builder, sig, args):
        yv, nv = args
        it, bias, shift, ft = _float_bits(sig.args[0])
        ni = builder.fptosi(nv, it)
        p = builder.bitcast(builder.shl(builder.add(ni, ir.Constant(it, bias)),
                                        ir.Constant(it, shift)), ft)
        return builder.fmul(yv, p)
    return y(y, n), codegen


@intrinsic
def _scale_rnd(typingctx, y, t):
    """y * 2**n where t = n + 1.5 * 2**(mantissa bits) was rounded by adding that magic
    constant: n sits in t's low bits, so 2**n = bits((bits(t) << shift) + bits(1.0)) (the
    magic's own bits shift out). For n in the normal exponent range."""
    if not (isinstance(y, types.Float) and y == t):
        return None

    def codegen(context, builder, sig, args):
        yv, tv = args
        it, bias, shift, ft = _float_bits(sig.args[0])
        one = bias << shift
        p = builder.bitcast(builder.add(builder.shl(builder.bitcast(tv, it),
                                                    ir.Constant(it, shift)),
                                        ir.Constant(it, one)), ft)
        return builder.fmul(yv, p)
    return y(y, t), codegen


@intrinsic
def _frexp1(typingctx, x):
    """(m, e) with x = m * 2**e, m in [1, 2), for a positive normal x; e as a float."""
    if not isinstance(x, types.Float):
        return None

    def codegen(context, builder, sig, args):
        (xv,) = args
        it, bias, shift, ft = _float_bits(sig.args[0])
        mmask, one = (1 << shift) - 1, bias << shift
        bits = builder.bitcast(xv, it)
        e = builder.sub(builder.lshr(bits, ir.Constant(it, shift)), ir.Constant(it, bias))
        m = builder.bitcast(builder.or_(builder.and_(bits, ir.Constant(it, mmask)),
                                        ir.Constant(it, one)), ft)
        ef = builder.sitofp(e, ft)
        tup = context.get_value_type(sig.return_type)
        out = cgutils.get_null_value(tup)
        out = builder.insert_value(out, m, 0)
        return builder.insert_value(out, ef, 1)
    return types.UniTuple(x, 2)(x), codegen


# ---------------------------------------------------------------- float32
_E32 = dict(
    lo=np.float32(-105.0), hi=np.float32(89.0), log2e=np.float32(1.44269504088896341),
    ln2hi=np.float32(0.693359375), ln2lo=np.float32(-2.12194440e-4), half=np.float32(0.5),
    one=np.float32(1.0),
    p0=np.float32(1.9875691500e-4), p1=np.float32(1.3981999507e-3),
    p2=np.float32(8.3334519073e-3), p3=np.float32(4.1665795894e-2),
    p4=np.float32(1.6666665459e-1), p5=np.float32(5.0000001201e-1))
E32_LO, E32_HI, E32_LOG2E = _E32["lo"], _E32["hi"], _E32["log2e"]
E32_LN2HI, E32_LN2LO, F32_HALF, F32_ONE = (_E32["ln2hi"], _E32["ln2lo"], _E32["half"],
                                           _E32["one"])
E32_P0, E32_P1, E32_P2, E32_P3, E32_P4, E32_P5 = (_E32[k] for k in
                                                  ("p0", "p1", "p2", "p3", "p4", "p5"))


@njit(cache=True, error_model="numpy", fastmath=STRICT)
def exp_f32(x):
    """exp(x) in float32 (Cephes expf polynomial, Cody-Waite reduction)."""
    xc = x if x > E32_LO else E32_LO          # NaN -> E32_LO; restored at the end
    xc = xc if xc < E32_HI else E32_HI        # (each a single vmaxps / vminps)
    n = np.floor(xc * E32_LOG2E + F32_HALF)
    r = xc - n * E32_LN2HI
    r = r - n * E32_LN2LO
    p = E32_P0
    p = p * r + E32_P1
    p = p * r + E32_P2
    p = p * r + E32_P3
    p = p * r + E32_P4
    p = p * r + E32_P5
    y = p * (r * r) + r + F32_ONE
    y = _scale2(y, n)
    return y if x == x else x


EM32_LO = np.float32(-87.33654)   # exp(EM32_LO) ~ the smallest normal float32


EM32_RND = np.float32(12582912.0)   # 1.5 * 2**23: adding it rounds to an integer
# exp(r) ~ 1 + r (1 + r (c2 + c3 r + c4 r^2 + c5 r^3 + c6 r^4)) on |r| <= ln2/2: a
# relative-error fit (iteratively reweighted least squares on Chebyshev nodes), 3e-9
# before rounding the coefficients; measured <= 0.88 ulp overall in float32 (the
# Cephes degree-7 form above: 1.01 ulp), one FMA fewer and no separate add.
EM32_C2, EM32_C3, EM32_C4, EM32_C5, EM32_C6 = (
    np.float32(0.4999999403953552),
    np.float32(0.1666652113199234),
    np.float32(0.04166838899254799),
    np.float32(0.0083687175065279),
    np.float32(0.0013814592966809869),
)


@njit(cache=True, error_model="numpy", fastmath=STRICT)
def expm_f32(z):
    """exp(z) for z <= 0 (or NaN), flushing results below the normal range to 0: the
    cheaper exp of softmax and log-sum-exp terms, whose arguments are x - max(x).

    No clamp and no floor: n = round(z log2(e)) comes from adding 1.5 * 2**23 (and 2**n
    from the bits of that sum); a z too negative for that gives garbage that the final
    select replaces by 0. NaN propagates through r. 10 multiply-class operations a
    vector (what bounds a sum-of-exps loop: two FMA pipes), against 11 with floor and
    the Cephes polynomial."""
    t = z * E32_LOG2E + EM32_RND
    n = t - EM32_RND
    r = z - n * E32_LN2HI
    r = r - n * E32_LN2LO
    p = EM32_C6
    p = p * r + EM32_C5
    p = p * r + EM32_C4
    p = p * r + EM32_C3
    p = p * r + EM32_C2
    q = p * r + F32_ONE
    y = _scale_rnd(q * r + F32_ONE, t)
    return F32_ZERO if z < EM32_LO else y


# ---------------------------------------------------------------- float64
E64_LO, E64_HI = -746.0, 710.0
E64_LOG2E = 1.4426950408889634
E64_LN2HI, E64_LN2LO = 6.93147180369123816490e-01, 1.90821492927058770002e-10
# Taylor coefficients 1/k!, k = 13 .. 2: on |r| <= ln2/2 the truncation is ~4e-18.
_INV_FACT = [1.0]
for _k in range(1, 14):
    _INV_FACT.append(_INV_FACT[-1] / _k)
(C13, C12, C11, C10, C9, C8, C7, C6, C5, C4, C3, C2) = _INV_FACT[13:1:-1]


@njit(cache=True, error_model="numpy", fastmath=STRICT)
def exp_f64(x):
    """exp(x) in float64 (degree-13 polynomial, Cody-Waite reduction)."""
    xc = x if x > E64_LO else E64_LO
    xc = xc if xc < E64_HI else E64_HI
    n = np.floor(xc * E64_LOG2E + 0.5)
    r = xc - n * E64_LN2HI
    r = r - n * E64_LN2LO
    p = C13
    p = p * r + C12
    p = p * r + C11
    p = p * r + C10
    p = p * r + C9
    p = p * r + C8
    p = p * r + C7
    p = p * r + C6
    p = p * r + C5
    p = p * r + C4
    p = p * r + C3
    p = p * r + C2
    y = p * (r * r) + r + 1.0
    y = _scale2(y, n)
    return y if x == x else x


EM64_LO = -708.3964185322641   # exp(EM64_LO) ~ the smallest normal float64


EM64_RND = 6755399441055744.0   # 1.5 * 2**52


@njit(cache=True, error_model="numpy", fastmath=STRICT)
def expm_f64(z):
    """exp(z) for z <= 0 (or NaN), flushing results below the normal range to 0 (n by
    rounding with 1.5 * 2**52, as in expm_f32)."""
    t = z * E64_LOG2E + EM64_RND
    n = t - EM64_RND
    r = z - n * E64_LN2HI
    r = r - n * E64_LN2LO
    p = C13
    p = p * r + C12
    p = p * r + C11
    p = p * r + C10
    p = p * r + C9
    p = p * r + C8
    p = p * r + C7
    p = p * r + C6
    p = p * r + C5
    p = p * r + C4
    p = p * r + C3
    p = p * r + C2
    y = _scale_rnd(p * (r * r) + r + 1.0, t)
    return 0.0 if z < EM64_LO else y


# ---------------------------------------------------------------- log (fdlibm)
L32 = dict(tiny=np.float32(1.17549435e-38), up=np.float32(33554432.0), upe=np.float32(25.0),
           sqrt2=np.float32(1.41421356), two=np.float32(2.0), zero=np.float32(0.0),
           ln2hi=np.float32(6.9313812256e-01), ln2lo=np.float32(9.0580006145e-06),
           lg1=np.float32(0.66666662693), lg2=np.float32(0.40000972152),
           lg3=np.float32(0.28498786688), lg4=np.float32(0.24279078841),
           inf=np.float32(np.inf), nan=np.float32(np.nan))
L32_TINY, L32_UP, L32_UPE, L32_SQRT2, F32_TWO, F32_ZERO = (L32[k] for k in (
    "tiny", "up", "upe", "sqrt2", "two", "zero"))
L32_LN2HI, L32_LN2LO, L32_LG1, L32_LG2, L32_LG3, L32_LG4 = (L32[k] for k in (
    "ln2hi", "ln2lo", "lg1", "lg2", "lg3", "lg4"))
F32_INF, F32_NAN = L32["inf"], L32["nan"]


@njit(cache=True, error_model="numpy", fastmath=STRICT)
def log_f32(x):
    """log(x) in float32 (fdlibm's logf reduction and polynomial)."""
    tiny = x < L32_TINY
    xs = x * L32_UP if tiny else x
    m, e = _frexp1(xs)
    e = e - L32_UPE if tiny else e
    big = m > L32_SQRT2
    m = m * F32_HALF if big else m
    e = e + F32_ONE if big else e
    f = m - F32_ONE
    s = f / (F32_TWO + f)
    z = s * s
    w = z * z
    r = z * (L32_LG1 + w * L32_LG3) + w * (L32_LG2 + w * L32_LG4)
    hfsq = F32_HALF * f * f
    y = e * L32_LN2HI - ((hfsq - (s * (hfsq + r) + e * L32_LN2LO)) - f)
    y = -F32_INF if x == F32_ZERO else y
    y = x if x == F32_INF else y
    y = F32_NAN if x < F32_ZERO else y
    return y if x == x else x


L64_TINY, L64_UP, L64_UPE, L64_SQRT2 = 2.2250738585072014e-308, 18014398509481984.0, 54.0, \
    1.4142135623730951
L64_LN2HI, L64_LN2LO = 6.93147180369123816490e-01, 1.90821492927058770002e-10
LG1, LG2, LG3, LG4 = (6.666666666666735130e-01, 3.999999999940941908e-01,
                      2.857142874366239149e-01, 2.222219843214978396e-01)
LG5, LG6, LG7 = 1.818357216161805012e-01, 1.531383769920937332e-01, 1.479819860511658591e-01


@njit(cache=True, error_model="numpy", fastmath=STRICT)
def log_f64(x):
    """log(x) in float64 (fdlibm's log reduction and polynomial)."""
    tiny = x < L64_TINY
    xs = x * L64_UP if tiny else x
    m, e = _frexp1(xs)
    e = e - L64_UPE if tiny else e
    big = m > L64_SQRT2
    m = m * 0.5 if big else m
    e = e + 1.0 if big else e
    f = m - 1.0
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    r = z * (LG1 + w * (LG3 + w * (LG5 + w * LG7))) + w * (LG2 + w * (LG4 + w * LG6))
    hfsq = 0.5 * f * f
    y = e * L64_LN2HI - ((hfsq - (s * (hfsq + r) + e * L64_LN2LO)) - f)
    y = -np.inf if x == 0.0 else y
    y = x if x == np.inf else y
    y = np.nan if x < 0.0 else y
    return y if x == x else x


@njit(cache=True, error_model="numpy", fastmath=STRICT)
def log1p_f32(u):
    """log(1 + u) in float32, accurate for tiny u (for u >= -1)."""
    w = u + F32_ONE
    c = (u - (w - F32_ONE)) / w       # the rounding error of 1 + u, to first order
    c = c if (w < F32_INF and w > F32_ZERO) else F32_ZERO
    return log_f32(w) + c


@njit(cache=True, error_model="numpy", fastmath=STRICT)
def log1p_f64(u):
    """log(1 + u) in float64, accurate for tiny u (for u >= -1)."""
    w = u + 1.0
    c = (u - (w - 1.0)) / w
    c = c if (w < np.inf and w > 0.0) else 0.0
    return log_f64(w) + c


# log(1 + u) for u in [0, 1] (softplus and log-sigmoid terms, u = exp(-|x|)): with
# s = u / (2 + u) in [0, 1/3], log(1 + u) = 2 atanh(s) = 2 s (1 + s^2/3 + s^4/5 + ...),
# one division and a short polynomial; no cancellation for tiny u, NaN propagates.
_U32 = [np.float32(1.0 / (2 * k + 1)) for k in range(7)]
U32_0, U32_1, U32_2, U32_3, U32_4, U32_5, U32_6 = _U32
_U64 = [1.0 / (2 * k + 1) for k in range(17)]
(U64_0, U64_1, U64_2, U64_3, U64_4, U64_5, U64_6, U64_7, U64_8, U64_9, U64_10, U64_11,
 U64_12, U64_13, U64_14, U64_15, U64_16) = _U64


@njit(cache=True, error_model="numpy", fastmath=STRICT)
def log1p_unit_f32(u):
    """log(1 + u) in float32 for u in [0, 1] (or NaN)."""
    s = u / (F32_TWO + u)
    z = s * s
    p = U32_6
    p = p * z + U32_5
    p = p * z + U32_4
    p = p * z + U32_3
    p = p * z + U32_2
    p = p * z + U32_1
    p = p * z + U32_0
    return (s + s) * p


@njit(cache=True, error_model="numpy", fastmath=STRICT)
def log1p_unit_f64(u):
    """log(1 + u) in float64 for u in [0, 1] (or NaN)."""
    s = u / (2.0 + u)
    z = s * s
    p = U64_16
    p = p * z + U64_15
    p = p * z + U64_14
    p = p * z + U64_13
    p = p * z + U64_12
    p = p * z + U64_11
    p = p * z + U64_10
    p = p * z + U64_9
    p = p * z + U64_8
    p = p * z + U64_7
    p = p * z + U64_6
    p = p * z + U64_5
    p = p * z + U64_4
    p = p * z + U64_3
    p = p * z + U64_2
    p = p * z + U64_1
    p = p * z + U64_0
    return (s + s) * p


# ---------------------------------------------------------------- type dispatch
def fexp(x):
    """exp(x) in x's float type (vectorizable)."""
    raise NotImplementedError("fexp is only callable from Numba-compiled code")


def fexpm(x):
    """exp(x) for x <= 0 in x's float type, flushed to 0 below the normal range."""
    raise NotImplementedError("fexpm is only callable from Numba-compiled code")


def flog(x):
    """log(x) in x's float type (vectorizable)."""
    raise NotImplementedError("flog is only callable from Numba-compiled code")


def flog1p(x):
    """log(1 + x) in x's float type (vectorizable)."""
    raise NotImplementedError("flog1p is only callable from Numba-compiled code")


def flog1p_unit(x):
    """log(1 + x) for x in [0, 1], in x's float type (vectorizable, cheaper than flog1p)."""
    raise NotImplementedError("flog1p_unit is only callable from Numba-compiled code")


def fcast(ref, v):
    """v converted to the float type of ref."""
    raise NotImplementedError("fcast is only callable from Numba-compiled code")


def _by_float_type(generic, impl_f32, impl_f64):
    """Make `generic(x)` compile to impl_f32 or impl_f64 according to x's float type."""
    @overload(generic, jit_options={"fastmath": STRICT})
    def typed(x):
        if x == types.float32:
            return lambda x: impl_f32(x)
        if x == types.float64:
            return lambda x: impl_f64(x)
    return typed


for _generic, _f32, _f64 in ((fexp, exp_f32, exp_f64), (fexpm, expm_f32, expm_f64),
                             (flog, log_f32, log_f64), (flog1p, log1p_f32, log1p_f64),
                             (flog1p_unit, log1p_unit_f32, log1p_unit_f64)):
    _by_float_type(_generic, _f32, _f64)


@overload(fcast)
def _fcast(ref, v):
    if ref == types.float32:
        return lambda ref, v: np.float32(v)
    if ref == types.float64:
        return lambda ref, v: np.float64(v)
