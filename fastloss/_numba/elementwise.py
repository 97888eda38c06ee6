"""Element-by-element losses (regression, binary cross-entropy, Poisson/Gaussian NLL,
KL divergence) as fused Numba kernels on flat, already broadcast arrays.

Each loss is one loop (``_<loss>_pts``) computing, for a block of elements, the loss and
its derivative in the input's float type, so that float32 runs 8 lanes wide with the
polynomial exp/log of ``_math``. Its arguments are the kernel's declared arrays (less the
element weight ``w``) and parameters (``fastloss._kernels``), then ``nb, lb``, one
derivative block per declared gradient, and ``want_grad``. One block function per loss,
generated from that declaration (``_<loss>_block``), then applies the element weight,
stores the items, sums the block in float64 and scales the derivatives by the gradient
coefficient, while the block is still in cache. In the forward kernels the derivative goes
to a per-block scratch buffer and is dropped: computing it costs a few instructions, a
second copy of every loop would cost far more code.

Each loss has its own generated block and drivers, so the first call of a loss compiles
that loss only (one driver shared by every element-wise loss used to compile them all,
~0.9 s per loss). Adding an element-wise loss is its declaration and its ``_pts`` loop.
"""
import numpy as np
from numba import njit, prange

from .. import _kernels
from .._constants import BCE_GRAD_EPS, HALF_LOG_2PI
from .._empty import EMPTY as _OUT_EMPTY, EMPTY_READ_ONLY as _EMPTY
from ._common import FM, block_drivers, coef_at, define, sum_partials
from ._math import fcast, fexp, fexpm, flog, flog1p, flog1p_unit, fmaximum
from ._threading import call

KERNELS = [k for k in _kernels.of_family("elementwise") if "numba" in k.backends]
__all__ = [f for k in KERNELS for f in k.functions()]


EB = 16384     # elements per reduction block (fixed: results do not depend on threads)


# ------------------------------------------------------------------ one loop per loss
@njit(cache=True, error_model="numpy", fastmath=FM)
def _l1_pts(x, t, nb, lb, g, want_grad):
    zero = fcast(x[0], 0.0)
    one = fcast(x[0], 1.0)
    for k in range(nb):
        d = x[k] - t[k]
        lb[k] = abs(d)
        g[k] = (one if d > zero else zero) - (one if d < zero else zero)


@njit(cache=True, error_model="numpy", fastmath=FM)
def _mse_pts(x, t, nb, lb, g, want_grad):
    two = fcast(x[0], 2.0)
    for k in range(nb):
        d = x[k] - t[k]
        lb[k] = d * d
        g[k] = two * d


@njit(cache=True, error_model="numpy", fastmath=FM)
def _smooth_l1_pts(x, t, beta, nb, lb, g, want_grad):
    b = fcast(x[0], beta)
    hb = fcast(x[0], 0.5 * beta)
    half = fcast(x[0], 0.5)
    one = fcast(x[0], 1.0)
    for k in range(nb):
        d = x[k] - t[k]
        a = abs(d)
        lb[k] = half * d * d / b if a < b else a - hb
        g[k] = -one if d < -b else (one if d > b else d / b)


@njit(cache=True, error_model="numpy", fastmath=FM)
def _huber_pts(x, t, delta, nb, lb, g, want_grad):
    dl = fcast(x[0], delta)
    hd = fcast(x[0], 0.5 * delta)
    half = fcast(x[0], 0.5)
    for k in range(nb):
        d = x[k] - t[k]
        a = abs(d)
        lb[k] = half * d * d if a < dl else dl * (a - hd)
        g[k] = -dl if d < -dl else (dl if d > dl else d)


@njit(cache=True, error_model="numpy", fastmath=FM)
def _bce_pts(x, t, nb, lb, g, want_grad):
    one = fcast(x[0], 1.0)
    floor = fcast(x[0], -100.0)
    geps = fcast(x[0], BCE_GRAD_EPS)
    for k in range(nb):
        xi = x[k]
        ti = t[k]
        lb[k] = (ti - one) * fmaximum(flog1p(-xi), floor) - ti * fmaximum(flog(xi), floor)
        g[k] = (xi - ti) / fmaximum((one - xi) * xi, geps)


@njit(cache=True, error_model="numpy", fastmath=FM)
def _bce_logits_pts(x, t, pw, nb, lb, g, want_grad):
    # loss = (1 - t) x + lw softplus(-x), softplus(-x) = max(-x, 0) + log1p(e), e = exp(-|x|)
    # d/dx = lw sigmoid(x) - pw t (pw absent: lw = 1 and sigmoid(x) - t)
    one = fcast(x[0], 1.0)
    zero = fcast(x[0], 0.0)
    if pw.shape[0] == 0:
        if want_grad:
            for k in range(nb):
                xi = x[k]
                ti = t[k]
                e = fexpm(-abs(xi))
                lb[k] = (one - ti) * xi + (fmaximum(-xi, zero) + flog1p_unit(e))
                r = one / (one + e)
                g[k] = (r if xi >= zero else e * r) - ti
        else:
            for k in range(nb):
                xi = x[k]
                e = fexpm(-abs(xi))
                lb[k] = (one - t[k]) * xi + (fmaximum(-xi, zero) + flog1p_unit(e))
    else:
        for k in range(nb):
            xi = x[k]
            ti = t[k]
            p = pw[k]
            lw = one + (p - one) * ti
            e = fexpm(-abs(xi))
            lb[k] = (one - ti) * xi + lw * (fmaximum(-xi, zero) + flog1p_unit(e))
            r = one / (one + e)
            g[k] = lw * (r if xi >= zero else e * r) - p * ti


@njit(cache=True, error_model="numpy", fastmath=FM)
def _poisson_nll_pts(x, t, log_input, full, eps, nb, lb, g, want_grad):
    one = fcast(x[0], 1.0)
    half = fcast(x[0], 0.5)
    two_pi = fcast(x[0], 2.0 * np.pi)
    ep = fcast(x[0], eps)
    zero = fcast(x[0], 0.0)
    if log_input:
        for k in range(nb):
            xi = x[k]
            ti = t[k]
            ex = fexp(xi)
            lb[k] = ex - ti * xi
            g[k] = ex - ti
    else:
        for k in range(nb):
            xi = x[k]
            ti = t[k]
            lb[k] = xi - ti * flog(xi + ep)
            g[k] = one - ti / (xi + ep)
    if full:
        for k in range(nb):
            ti = t[k]
            st = ti * flog(ti) - ti + half * flog(two_pi * ti)
            lb[k] += zero if ti <= one else st


@njit(cache=True, error_model="numpy", fastmath=FM)
def _gaussian_nll_pts(x, t, v, full, eps, nb, lb, g, gv, want_grad):
    half = fcast(x[0], 0.5)
    one = fcast(x[0], 1.0)
    ep = fcast(x[0], eps)
    c = fcast(x[0], HALF_LOG_2PI if full else 0.0)
    for k in range(nb):
        vc = fmaximum(v[k], ep)
        d = x[k] - t[k]
        r = one / vc
        lb[k] = half * (flog(vc) + d * d * r) + c
        g[k] = d * r
        gv[k] = half * (r - d * d * r * r)


@njit(cache=True, error_model="numpy", fastmath=FM)
def _kl_div_pts(x, t, log_target, nb, lb, g, want_grad):
    zero = fcast(x[0], 0.0)
    if log_target:
        for k in range(nb):
            ti = t[k]
            et = fexp(ti)
            lb[k] = et * (ti - x[k])
            g[k] = -et
    else:
        for k in range(nb):
            ti = t[k]
            lb[k] = (zero if ti == zero else ti * flog(ti)) - ti * x[k]
            g[k] = -ti


@njit(cache=True, error_model="numpy", fastmath=FM)
def _hinge_embedding_pts(x, t, margin, nb, lb, g, want_grad):
    mg = fcast(x[0], margin)
    zero = fcast(x[0], 0.0)
    one = fcast(x[0], 1.0)
    for k in range(nb):
        xi = x[k]
        ti = t[k]
        z = mg - xi
        lb[k] = ((fmaximum(z, zero) if ti != one else zero)
                 + (xi if ti != -one else zero))
        g[k] = ((-one if (ti != one and z >= zero) else zero)
                + (one if ti != -one else zero))


@njit(cache=True, error_model="numpy", fastmath=FM)
def _soft_margin_pts(x, t, nb, lb, g, want_grad):
    zero = fcast(x[0], 0.0)
    one = fcast(x[0], 1.0)
    for k in range(nb):
        ti = t[k]
        z = -ti * x[k]
        e = fexpm(-abs(z))
        lb[k] = fmaximum(z, zero) + flog1p_unit(e)
        r = one / (one + e)
        g[k] = -ti * (r if z >= zero else e * r)


@njit(cache=True, error_model="numpy", fastmath=FM)
def _margin_ranking_pts(x1, x2, t, margin, nb, lb, g1, g2, want_grad):
    mg = fcast(x1[0], margin)
    zero = fcast(x1[0], 0.0)
    one = fcast(x1[0], 1.0)
    for k in range(nb):
        yk = t[k]
        z = -yk * (x1[k] - x2[k]) + mg
        lb[k] = fmaximum(z, zero)
        d = (one if z >= zero else zero) * -yk
        g1[k] = d
        g2[k] = -d


# ------------------------------------------------------------------ the block, once per loss
@njit(cache=True, error_model="numpy", fastmath=FM)
def _ew_finish(i0, nb, lb, w, gscale, gvec, loss_out, g, want_grad):
    """Weight, store and sum a block's losses; scale its derivatives into gradients."""
    total = 0.0
    if w.shape[0] != 0:
        for k in range(nb):
            lb[k] *= w[k]
    for k in range(nb):
        total += np.float64(lb[k])
    if loss_out.shape[0] != 0:
        for k in range(nb):
            loss_out[k] = lb[k]
    if want_grad:
        if gvec.shape[0] == 0:
            c = fcast(lb[0], gscale)
            if w.shape[0] == 0:
                for k in range(nb):
                    g[k] *= c
            else:
                for k in range(nb):
                    g[k] *= c * w[k]
        else:
            for k in range(nb):
                ck = fcast(lb[0], coef_at(gscale, gvec, i0 + k))
                g[k] *= ck if w.shape[0] == 0 else ck * w[k]
    return total


# The block of one loss, generated from its declaration. Every array is sliced to the
# block, so the loops index from 0 with a range variable: Numba then needs no
# negative-index fix-up and LLVM vectorizes them. A second gradient (gaussian_nll's var,
# margin_ranking's input2) is scaled like the first (neither loss has an element weight);
# want_grad is passed on, not a literal True, which would compile _ew_finish twice.
_BLOCK = """
@njit(cache=True, error_model="numpy")
def _{name}_block(b, {args}):
    i0 = b * EB
    i1 = min(i0 + EB, {a0}.shape[0])
    nb = i1 - i0
    lb = np.empty(nb, {a0}.dtype)
    if want_grad:
{grad_slices}
    else:
{grad_scratch}
    _{name}_pts({data}, {params}nb, lb, {grad_blocks}, want_grad)
    lo = loss_out[i0:i1]
    total = _ew_finish(i0, nb, lb, {weight}, gscale, gvec, lo, {g0}, want_grad)
{more_grads}    return total
"""

# The contract functions (fastloss._engine) of one loss. Inputs are passed read-only (see
# _readonly), the parameters as the declared Python types, so that one compiled version
# serves every call.
_CONTRACT = """
def {name}_fwd({arrays}, {params}loss_out):
    if {a0}.shape[0] == 0:
        return 0.0
    e = _EMPTY[{a0}.dtype]
    o = _OUT_EMPTY[{a0}.dtype]
    return call(_{name}_par, _{name}_ser, {a0}.shape[0], {inputs}, {converted}1.0, e,
                loss_out, {no_grads}, False)


def {name}_vg({arrays}, {params}gscale, gvec, loss_out, {gouts}):
    if {a0}.shape[0] == 0:
        return 0.0
    return call(_{name}_par, _{name}_ser, {a0}.shape[0], {inputs}, {converted}float(gscale),
                _readonly(gvec), loss_out, {grads_flat}, True)
"""


def _generate(k, namespace):
    """Define the block, drivers and contract functions of the element-wise kernel `k`
    (its ``_<name>_pts`` loop is written out above; a contract function written out by
    hand, like margin_ranking_fwd, is kept)."""
    if "_" + k.name + "_pts" not in namespace:
        raise NameError(f"element-wise kernel {k.name!r} is declared (fastloss._kernels) "
                        f"but has no loop _{k.name}_pts")
    a0 = k.arrays[0]
    params = [p for p, _ in k.params]
    gouts = ["g" + a for a in k.grads]
    blocks = [g + "_b" for g in gouts]
    args = [*k.arrays, *params, "gscale", "gvec", "loss_out", *gouts, "want_grad"]
    pre = "".join(p + ", " for p in params)
    block = _BLOCK.format(
        name=k.name, args=", ".join(args), a0=a0,
        grad_slices="\n".join(f"        {b} = {g}[i0:i1]" for b, g in zip(blocks, gouts)),
        grad_scratch="\n".join(f"        {b} = np.empty(nb, {a0}.dtype)" for b in blocks),
        data=", ".join(f"{a}[i0:i1]" for a in k.arrays if a != "w"), params=pre,
        grad_blocks=", ".join(blocks),
        weight="w[i0:i1]" if "w" in k.arrays else f"{a0}[:0]", g0=blocks[0],
        more_grads="".join(f"    if want_grad:\n        _ew_finish(i0, nb, lb, {a0}[:0], gscale,"
                           f" gvec, lo[:0], {b}, want_grad)\n" for b in blocks[1:]))
    define(namespace, block)
    block_drivers(namespace, "_" + k.name, "_" + k.name + "_block", args, f"{a0}.shape[0]", "EB")
    contract = _CONTRACT.format(
        name=k.name, arrays=", ".join(k.arrays), params=pre, a0=a0,
        inputs=", ".join(f"_readonly({a})" for a in k.arrays),
        converted="".join(f"{t}({p}), " for p, t in k.params),
        no_grads=", ".join("o" for _ in gouts), gouts=", ".join(gouts),
        grads_flat=", ".join(f"{g}.reshape(-1)" for g in gouts))
    kept = {f: namespace[f] for f in k.functions() if f in namespace}
    define(namespace, contract)
    namespace.update(kept)


def _readonly(a):
    """`a`, or a read-only view of it. Numba compiles a separate version of a kernel for
    read-only arrays (np.broadcast_to views: margin_ranking_loss's inputs are read-only,
    the others' are not), which would compile each loss's driver a second time. Every
    input is passed read-only, so one version serves every call."""
    if a.flags.writeable:
        a = a.view()
        a.flags.writeable = False
    return a




# ------------------------------------------------------------------ margin_ranking forward
# Its own fused loop: three inputs read once and the losses summed in float64 as they are
# made (the generic block writes the losses and both derivatives to per-block scratch
# arrays and reads them back, which made this read-bound loss compute-bound).
@njit(cache=True, error_model="numpy", fastmath=FM)
def _margin_ranking_fwd_block(b, x1, x2, t, margin, loss_out):
    i0 = b * EB
    i1 = min(i0 + EB, x1.shape[0])
    nb = i1 - i0
    a1, a2, ys = x1[i0:i1], x2[i0:i1], t[i0:i1]
    mg = fcast(x1[0], margin)
    zero = fcast(x1[0], 0.0)
    total = 0.0
    if loss_out.shape[0] != 0:
        lo = loss_out[i0:i1]
        for k in range(nb):
            z = -ys[k] * (a1[k] - a2[k]) + mg
            lk = zero if z < zero else z      # max(z, 0) keeping NaN
            lo[k] = lk
            total += np.float64(lk)
    else:
        for k in range(nb):
            z = -ys[k] * (a1[k] - a2[k]) + mg
            total += np.float64(zero if z < zero else z)
    return total


_margin_ranking_fwd_par, _margin_ranking_fwd_ser = block_drivers(
    globals(), "_margin_ranking_fwd", "_margin_ranking_fwd_block",
    ("x1", "x2", "t", "margin", "loss_out"), "x1.shape[0]", "EB")


def margin_ranking_fwd(x1, x2, t, margin, loss_out):
    if x1.shape[0] == 0:
        return 0.0
    return call(_margin_ranking_fwd_par, _margin_ranking_fwd_ser, x1.shape[0], _readonly(x1),
                _readonly(x2), _readonly(t), float(margin), loss_out)


for _k in KERNELS:
    _generate(_k, globals())
del _k
