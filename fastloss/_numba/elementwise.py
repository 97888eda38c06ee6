"""Element-by-element losses (regression, binary cross-entropy, Poisson/Gaussian NLL,
KL divergence) as fused Numba kernels on flat, already broadcast arrays.

Each loss is one loop (``_<loss>_pts``) computing, for a block of elements, the loss and
its derivative in the input's float type, so that float32 runs 8 lanes wide with the
polynomial exp/log of ``_math``. One generic block (``_ew_block``) then applies the
element weight, stores the items, sums the block in float64 and scales the derivatives
by the gradient coefficient, while the block is still in cache. In the forward kernels
the derivative goes to a per-block scratch buffer and is dropped: computing it costs a
few instructions, a second copy of every loop would cost far more code.
"""
import numpy as np
from numba import njit, prange

from ._common import FM, call, coef_at, sum_partials
from ._math import fcast, fexp, fexpm, flog, flog1p, flog1p_unit, fmaximum

__all__ = ["l1_fwd", "l1_vg", "mse_fwd", "mse_vg", "smooth_l1_fwd", "smooth_l1_vg", "huber_fwd",
           "huber_vg", "bce_fwd", "bce_vg", "bce_logits_fwd", "bce_logits_vg", "poisson_nll_fwd",
           "poisson_nll_vg", "gaussian_nll_fwd", "gaussian_nll_vg", "kl_div_fwd", "kl_div_vg",
           "hinge_embedding_fwd", "hinge_embedding_vg", "soft_margin_fwd", "soft_margin_vg",
           "margin_ranking_fwd", "margin_ranking_vg"]


EB = 16384     # elements per reduction block (fixed: results do not depend on threads)

(L1, MSE, SMOOTH_L1, HUBER, BCE, BCE_LOGITS, POISSON, GAUSSIAN, KL_DIV, HINGE, SOFT_MARGIN,
 MARGIN_RANKING) = range(12)
HALF_LOG_2PI = 0.5 * np.log(2.0 * np.pi)
BCE_GRAD_EPS = float(np.float32(1e-12))    # torch's bound on x(1 - x), whatever the dtype


# ------------------------------------------------------------------ one loop per loss
@njit(cache=True, error_model="numpy", fastmath=FM)
def _l1_pts(x, t, nb, lb, g):
    zero = fcast(x[0], 0.0)
    one = fcast(x[0], 1.0)
    for k in range(nb):
        d = x[k] - t[k]
        lb[k] = abs(d)
        g[k] = (one if d > zero else zero) - (one if d < zero else zero)


@njit(cache=True, error_model="numpy", fastmath=FM)
def _mse_pts(x, t, nb, lb, g):
    two = fcast(x[0], 2.0)
    for k in range(nb):
        d = x[k] - t[k]
        lb[k] = d * d
        g[k] = two * d


@njit(cache=True, error_model="numpy", fastmath=FM)
def _smooth_l1_pts(x, t, beta, nb, lb, g):
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
def _huber_pts(x, t, delta, nb, lb, g):
    dl = fcast(x[0], delta)
    hd = fcast(x[0], 0.5 * delta)
    half = fcast(x[0], 0.5)
    for k in range(nb):
        d = x[k] - t[k]
        a = abs(d)
        lb[k] = half * d * d if a < dl else dl * (a - hd)
        g[k] = -dl if d < -dl else (dl if d > dl else d)


@njit(cache=True, error_model="numpy", fastmath=FM)
def _bce_pts(x, t, nb, lb, g):
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
def _poisson_pts(x, t, log_input, full, eps, nb, lb, g):
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
def _gaussian_pts(x, t, v, full, eps, nb, lb, g, gv):
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
def _kl_div_pts(x, t, log_target, nb, lb, g):
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
def _hinge_pts(x, t, margin, nb, lb, g):
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
def _soft_margin_pts(x, t, nb, lb, g):
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
def _margin_ranking_pts(x1, x2, y, margin, nb, lb, g, h):
    mg = fcast(x1[0], margin)
    zero = fcast(x1[0], 0.0)
    one = fcast(x1[0], 1.0)
    for k in range(nb):
        yk = y[k]
        z = -yk * (x1[k] - x2[k]) + mg
        lb[k] = fmaximum(z, zero)
        d = (one if z >= zero else zero) * -yk
        g[k] = d
        h[k] = -d


# ------------------------------------------------------------------ the generic block
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


@njit(cache=True, error_model="numpy")
def _ew_block(b, kind, x, t, v, w, pw, p0, p1, p2, gscale, gvec, loss_out, gx, gv,
              want_grad):
    # Every array is sliced to the block, so the loops index from 0 with a range variable:
    # Numba then needs no negative-index fix-up and LLVM vectorizes them.
    i0 = b * EB
    i1 = min(i0 + EB, x.shape[0])
    nb = i1 - i0
    xs, ts, vs, ws, pws = x[i0:i1], t[i0:i1], v[i0:i1], w[i0:i1], pw[i0:i1]
    lb = np.empty(nb, x.dtype)
    if want_grad:
        g, h = gx[i0:i1], gv[i0:i1]
    else:
        g = np.empty(nb, x.dtype)
        h = np.empty(nb if (kind == GAUSSIAN or kind == MARGIN_RANKING) else 0, x.dtype)
    if kind == L1:
        _l1_pts(xs, ts, nb, lb, g)
    elif kind == MSE:
        _mse_pts(xs, ts, nb, lb, g)
    elif kind == SMOOTH_L1:
        _smooth_l1_pts(xs, ts, p0, nb, lb, g)
    elif kind == HUBER:
        _huber_pts(xs, ts, p0, nb, lb, g)
    elif kind == BCE:
        _bce_pts(xs, ts, nb, lb, g)
    elif kind == BCE_LOGITS:
        _bce_logits_pts(xs, ts, pws, nb, lb, g, want_grad)
    elif kind == POISSON:
        _poisson_pts(xs, ts, p0 != 0.0, p1 != 0.0, p2, nb, lb, g)
    elif kind == GAUSSIAN:
        _gaussian_pts(xs, ts, vs, p0 != 0.0, p1, nb, lb, g, h)
    elif kind == KL_DIV:
        _kl_div_pts(xs, ts, p0 != 0.0, nb, lb, g)
    elif kind == HINGE:
        _hinge_pts(xs, ts, p0, nb, lb, g)
    elif kind == SOFT_MARGIN:
        _soft_margin_pts(xs, ts, nb, lb, g)
    else:
        _margin_ranking_pts(xs, ts, vs, p0, nb, lb, g, h)
    lo = loss_out[i0:i1]
    total = _ew_finish(i0, nb, lb, ws, gscale, gvec, lo, g, want_grad)
    if (kind == GAUSSIAN or kind == MARGIN_RANKING) and want_grad:
        # the second gradient is scaled like gx (neither loss has an element weight)
        # want_grad (True here), not a literal True: a literal would compile _ew_finish twice
        _ew_finish(i0, nb, lb, ws[:0], gscale, gvec, lo[:0], h, want_grad)
    return total


@njit(cache=True, error_model="numpy", parallel=True)
def _ew_par(kind, x, t, v, w, pw, p0, p1, p2, gscale, gvec, loss_out, gx, gv, want_grad):
    partial = np.empty((x.shape[0] + EB - 1) // EB)
    # prange(0, n), not prange(n): Numba types the index of prange(n) as uint64 in the
    # parallel loop body but as int64 when typing the function, and so compiled _ew_block
    # (all twelve losses) twice; with an explicit start both are int64.
    for b in prange(0, partial.shape[0]):
        partial[b] = _ew_block(b, kind, x, t, v, w, pw, p0, p1, p2, gscale, gvec, loss_out,
                               gx, gv, want_grad)
    return sum_partials(partial)


@njit(cache=True, error_model="numpy")
def _ew_ser(kind, x, t, v, w, pw, p0, p1, p2, gscale, gvec, loss_out, gx, gv, want_grad):
    partial = np.empty((x.shape[0] + EB - 1) // EB)
    for b in range(partial.shape[0]):
        partial[b] = _ew_block(b, kind, x, t, v, w, pw, p0, p1, p2, gscale, gvec, loss_out,
                               gx, gv, want_grad)
    return sum_partials(partial)


# ------------------------------------------------------------------ margin_ranking forward
# Its own fused loop: three inputs read once and the losses summed in float64 as they are
# made (the generic block above writes the losses and both derivatives to per-block
# scratch arrays and reads them back, which made this read-bound loss compute-bound).
@njit(cache=True, error_model="numpy", fastmath=FM)
def _margin_ranking_fwd_block(b, x1, x2, y, margin, loss_out):
    i0 = b * EB
    i1 = min(i0 + EB, x1.shape[0])
    nb = i1 - i0
    a1, a2, ys = x1[i0:i1], x2[i0:i1], y[i0:i1]
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


@njit(cache=True, error_model="numpy", parallel=True)
def _margin_ranking_fwd_par(x1, x2, y, margin, loss_out):
    partial = np.empty((x1.shape[0] + EB - 1) // EB)
    for b in prange(0, partial.shape[0]):
        partial[b] = _margin_ranking_fwd_block(b, x1, x2, y, margin, loss_out)
    return sum_partials(partial)


@njit(cache=True, error_model="numpy")
def _margin_ranking_fwd_ser(x1, x2, y, margin, loss_out):
    partial = np.empty((x1.shape[0] + EB - 1) // EB)
    for b in range(partial.shape[0]):
        partial[b] = _margin_ranking_fwd_block(b, x1, x2, y, margin, loss_out)
    return sum_partials(partial)


def _readonly(a):
    """`a`, or a read-only view of it. Numba compiles a separate version of a kernel for
    read-only arrays (np.broadcast_to views: margin_ranking_loss's inputs are read-only,
    the others' are not), and for _ew_par that is the whole twelve-loss driver again
    (~10 s cold). Every input is passed read-only, so one version serves every call."""
    if a.flags.writeable:
        a = a.view()
        a.flags.writeable = False
    return a


def _empty(dtype):
    e = np.empty(0, dtype)
    e.flags.writeable = False
    return e


_EMPTY = {np.dtype(np.float32): _empty(np.float32), np.dtype(np.float64): _empty(np.float64)}
_OUT_EMPTY = {np.dtype(np.float32): np.empty(0, np.float32),
              np.dtype(np.float64): np.empty(0, np.float64)}


def _run(kind, x, t, v=None, w=None, pw=None, p0=0.0, p1=0.0, p2=0.0, gscale=1.0, gvec=None,
         loss_out=None, gx=None, gv=None, want_grad=False):
    e = _EMPTY[x.dtype]          # inputs: read-only (see _readonly)
    o = _OUT_EMPTY[x.dtype]      # outputs: writable
    if x.shape[0] == 0:
        return 0.0
    return call(_ew_par, _ew_ser, x.shape[0], kind, _readonly(x), _readonly(t),
                e if v is None else _readonly(v), e if w is None else _readonly(w),
                e if pw is None else _readonly(pw), float(p0), float(p1), float(p2),
                float(gscale), e if gvec is None else _readonly(gvec), loss_out,
                o if gx is None else gx.reshape(-1), o if gv is None else gv.reshape(-1),
                want_grad)


# ------------------------------------------------------------------ the contract
def l1_fwd(x, t, w, loss_out):
    return _run(L1, x, t, w=w, loss_out=loss_out)


def l1_vg(x, t, w, gscale, gvec, loss_out, gx):
    return _run(L1, x, t, w=w, gscale=gscale, gvec=gvec, loss_out=loss_out, gx=gx,
                want_grad=True)


def mse_fwd(x, t, w, loss_out):
    return _run(MSE, x, t, w=w, loss_out=loss_out)


def mse_vg(x, t, w, gscale, gvec, loss_out, gx):
    return _run(MSE, x, t, w=w, gscale=gscale, gvec=gvec, loss_out=loss_out, gx=gx,
                want_grad=True)


def smooth_l1_fwd(x, t, w, beta, loss_out):
    return _run(SMOOTH_L1, x, t, w=w, p0=beta, loss_out=loss_out)


def smooth_l1_vg(x, t, w, beta, gscale, gvec, loss_out, gx):
    return _run(SMOOTH_L1, x, t, w=w, p0=beta, gscale=gscale, gvec=gvec, loss_out=loss_out,
                gx=gx, want_grad=True)


def huber_fwd(x, t, w, delta, loss_out):
    return _run(HUBER, x, t, w=w, p0=delta, loss_out=loss_out)


def huber_vg(x, t, w, delta, gscale, gvec, loss_out, gx):
    return _run(HUBER, x, t, w=w, p0=delta, gscale=gscale, gvec=gvec, loss_out=loss_out,
                gx=gx, want_grad=True)


def bce_fwd(x, t, w, loss_out):
    return _run(BCE, x, t, w=w, loss_out=loss_out)


def bce_vg(x, t, w, gscale, gvec, loss_out, gx):
    return _run(BCE, x, t, w=w, gscale=gscale, gvec=gvec, loss_out=loss_out, gx=gx,
                want_grad=True)


def bce_logits_fwd(x, t, w, pw, loss_out):
    return _run(BCE_LOGITS, x, t, w=w, pw=pw, loss_out=loss_out)


def bce_logits_vg(x, t, w, pw, gscale, gvec, loss_out, gx):
    return _run(BCE_LOGITS, x, t, w=w, pw=pw, gscale=gscale, gvec=gvec, loss_out=loss_out,
                gx=gx, want_grad=True)


def poisson_nll_fwd(x, t, log_input, full, eps, loss_out):
    return _run(POISSON, x, t, p0=log_input, p1=full, p2=eps, loss_out=loss_out)


def poisson_nll_vg(x, t, log_input, full, eps, gscale, gvec, loss_out, gx):
    return _run(POISSON, x, t, p0=log_input, p1=full, p2=eps, gscale=gscale, gvec=gvec,
                loss_out=loss_out, gx=gx, want_grad=True)


def gaussian_nll_fwd(x, t, v, full, eps, loss_out):
    return _run(GAUSSIAN, x, t, v=v, p0=full, p1=eps, loss_out=loss_out)


def gaussian_nll_vg(x, t, v, full, eps, gscale, gvec, loss_out, gx, gv):
    return _run(GAUSSIAN, x, t, v=v, p0=full, p1=eps, gscale=gscale, gvec=gvec,
                loss_out=loss_out, gx=gx, gv=gv, want_grad=True)


def kl_div_fwd(x, t, log_target, loss_out):
    return _run(KL_DIV, x, t, p0=log_target, loss_out=loss_out)


def kl_div_vg(x, t, log_target, gscale, gvec, loss_out, gx):
    return _run(KL_DIV, x, t, p0=log_target, gscale=gscale, gvec=gvec, loss_out=loss_out,
                gx=gx, want_grad=True)


def hinge_embedding_fwd(x, t, margin, loss_out):
    return _run(HINGE, x, t, p0=margin, loss_out=loss_out)


def hinge_embedding_vg(x, t, margin, gscale, gvec, loss_out, gx):
    return _run(HINGE, x, t, p0=margin, gscale=gscale, gvec=gvec, loss_out=loss_out, gx=gx,
                want_grad=True)


def soft_margin_fwd(x, t, loss_out):
    return _run(SOFT_MARGIN, x, t, loss_out=loss_out)


def soft_margin_vg(x, t, gscale, gvec, loss_out, gx):
    return _run(SOFT_MARGIN, x, t, gscale=gscale, gvec=gvec, loss_out=loss_out, gx=gx,
                want_grad=True)


def margin_ranking_fwd(x1, x2, t, margin, loss_out):
    if x1.shape[0] == 0:
        return 0.0
    return call(_margin_ranking_fwd_par, _margin_ranking_fwd_ser, x1.shape[0], _readonly(x1),
                _readonly(x2), _readonly(t), float(margin), loss_out)


def margin_ranking_vg(x1, x2, t, margin, gscale, gvec, loss_out, gx1, gx2):
    return _run(MARGIN_RANKING, x1, x2, v=t, p0=margin, gscale=gscale, gvec=gvec,
                loss_out=loss_out, gx=gx1, gv=gx2, want_grad=True)
