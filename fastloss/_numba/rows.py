"""Row losses: multi-class margins, multi-label margins and embedding distances, one loss
per row of an (N, C) or (N, D) array, as fused Numba kernels.

Every loss has one row function computing the row's loss (and, when asked, writing its
gradient) and a block function summing ``ROWS`` rows in float64; its serial and parallel
drivers over the same blocks are generated (``_common.block_drivers``: thread-count
independent sums, no copied driver skeleton).

Adding a row loss is its declaration and its row function alone, of the standard form
``_<name>_row(*arrays, i, *params, cf, *grads, want_grad) -> float64`` (row ``i`` of the
declared 2-D arrays, ``cf`` its gradient coefficient, the gradient rows written when
``want_grad``): its block, drivers and contract functions are then generated from the
declaration (`_generate`). The losses below write theirs out, for their own layouts
(weights by class, per-row scratch, the embeddings' two and three inputs).
"""
import math

import numpy as np
from numba import njit, prange

from .._constants import COSINE_EPS as EPSILON
from .. import _kernels
from .._empty import EMPTY as _EMPTY, EMPTY_2D as _EMPTY2
from ._common import FM, block_drivers, coef_at, define, readonly as _readonly
from ._math import fcast, fexpm, flog1p_unit, fmaximum
from ._threading import call

# triplet_distance is the reference's (a user's Python callable: nothing to compile)
KERNELS = [k for k in _kernels.of_family("rows") if "numba" in k.backends
           and k.name != "triplet_distance"]
__all__ = [f for k in KERNELS for f in k.functions()]


ROWS = 64          # rows per reduction block


# ------------------------------------------------------------------ multi_margin
@njit(cache=True, error_model="numpy", fastmath=FM)
def _multi_margin_row(x, i, ti, wy, p, margin, cf, gx, want_grad):
    # Row i of x (and of gx): indexing the 2-D arrays, not row views x[i] / gx[i], which
    # cost a third of the time per row (array structs built and reference counted, and
    # an empty array allocated per row in the forward).
    # The loops count every j with z_j > 0, the target's own term included, and take that
    # term (computed the same way) back out afterwards: a j != target test in the loop
    # would keep it from running 8 lanes wide.
    c = x.shape[1]
    zero = fcast(x[0, 0], 0.0)
    xt = x[i, ti]
    base = fcast(xt, margin) - xt
    zt = base + xt
    acc = zero
    if p == 1:
        for j in range(c):
            z = base + x[i, j]
            acc += z if z > zero else zero
        acc -= zt if zt > zero else zero
    else:
        for j in range(c):
            z = base + x[i, j]
            acc += z * z if z > zero else zero
        acc -= zt * zt if zt > zero else zero
    if want_grad:
        f = fcast(xt, cf * wy / c)
        two = fcast(xt, 2.0 * cf * wy / c)
        gs = zero
        if p == 1:
            for j in range(c):
                gj = f if base + x[i, j] > zero else zero
                gx[i, j] = gj
                gs += gj
            gs -= f if zt > zero else zero
        else:
            for j in range(c):
                z = base + x[i, j]
                gj = two * z if z > zero else zero
                gx[i, j] = gj
                gs += gj
            gs -= two * zt if zt > zero else zero
        if not math.isfinite(two):   # (also when f is not)
            # the target's own term was added and taken back out: inf - inf; sum the others
            gs = zero
            for j in range(c):
                if j != ti:
                    gs += gx[i, j]
        gx[i, ti] = -gs
    if not math.isfinite(wy) or acc != acc:
        # w_y times each counted term, as torch forms it: no counted term gives 0, where
        # w_y times the row's sum would be 0 * w_y (NaN); and the target's own term is
        # never counted, where adding it and taking it back out gives inf - inf (NaN)
        # for an infinite margin
        loss = 0.0
        for j in range(c):
            z = base + x[i, j]
            if j != ti and z > zero:
                loss += np.float64(z if p == 1 else z * z) * wy
        return loss / c
    return np.float64(acc) * wy / c


@njit(cache=True, error_model="numpy")
def _multi_margin_block(b, x, t, w, p, margin, gscale, gvec, loss_out, gx, want_grad):
    n = x.shape[0]
    total = 0.0
    for i in range(b * ROWS, min((b + 1) * ROWS, n)):
        ti = t[i]
        wy = 1.0 if w.shape[0] == 0 else np.float64(w[ti])
        li = _multi_margin_row(x, i, ti, wy, p, margin, coef_at(gscale, gvec, i), gx,
                               want_grad)
        if loss_out.shape[0] != 0:
            loss_out[i] = li
        total += li
    return total


_multi_margin_par, _multi_margin_ser = block_drivers(
    globals(), "_multi_margin", "_multi_margin_block",
    ("x", "t", "w", "p", "margin", "gscale", "gvec", "loss_out", "gx", "want_grad"),
    "x.shape[0]", "ROWS")


# ------------------------------------------------------------------ multilabel_margin
@njit(cache=True, error_model="numpy", fastmath=FM)
def _multilabel_margin_row(xr, tr, is_target, counts, cf, gr, want_grad):
    c = xr.shape[0]
    zero = fcast(xr[0], 0.0)
    one = fcast(xr[0], 1.0)
    for j in range(c):
        is_target[j] = False
    n_valid = 0
    for k in range(c):
        if tr[k] < 0:
            break
        is_target[tr[k]] = True
        n_valid += 1
    if want_grad:
        for j in range(c):
            counts[j] = 0
    acc = 0.0
    for k in range(n_valid):
        tk = tr[k]
        base = one - xr[tk]
        part = zero
        for j in range(c):
            z = base + xr[j]
            part += z if (z > zero and not is_target[j]) else zero
        acc += np.float64(part)
        if want_grad:
            # Count the active hinges exactly (integers) and scale once at the end: adding
            # cf/C up to C times in float32 drifts by ~1e-4 relative when C is 32000.
            cnt = 0
            for j in range(c):
                z = base + xr[j]
                if z > zero and not is_target[j]:
                    counts[j] += 1
                    cnt += 1
            counts[tk] -= cnt
    if want_grad:
        f = cf / c
        for j in range(c):
            gr[j] = fcast(xr[0], counts[j] * f)
    return acc / c


@njit(cache=True, error_model="numpy")
def _multilabel_margin_block(b, x, t, gscale, gvec, loss_out, gx, want_grad):
    n, c = x.shape
    is_target = np.empty(c, np.bool_)
    counts = np.empty(c if want_grad else 0, np.int64)
    total = 0.0
    for i in range(b * ROWS, min((b + 1) * ROWS, n)):
        li = _multilabel_margin_row(x[i], t[i], is_target, counts, coef_at(gscale, gvec, i),
                                    gx[i] if want_grad else np.empty(0, gx.dtype), want_grad)
        if loss_out.shape[0] != 0:
            loss_out[i] = li
        total += li
    return total


_multilabel_margin_par, _multilabel_margin_ser = block_drivers(
    globals(), "_multilabel_margin", "_multilabel_margin_block",
    ("x", "t", "gscale", "gvec", "loss_out", "gx", "want_grad"),
    "x.shape[0]", "ROWS")


# ------------------------------------------------------------------ multilabel_soft_margin
@njit(cache=True, error_model="numpy", fastmath=FM)
def _mlsm_row(xr, yr, wr, cf, gr, want_grad):
    c = xr.shape[0]
    zero = fcast(xr[0], 0.0)
    one = fcast(xr[0], 1.0)
    acc = zero
    for j in range(c):
        xj = xr[j]
        yj = yr[j]
        lp = flog1p_unit(fexpm(-abs(xj)))
        # torch's expression: -(y log s(x) + (1 - y) log s(-x)), log s(z) = min(z, 0) - lp
        ls_pos = -fmaximum(-xj, zero) - lp
        ls_neg = -fmaximum(xj, zero) - lp
        term = -(yj * ls_pos + (one - yj) * ls_neg)
        acc += term if wr.shape[0] == 0 else term * wr[j]
    if want_grad:
        f = fcast(xr[0], cf / c)
        for j in range(c):
            xj = xr[j]
            yj = yr[j]
            e = fexpm(-abs(xj))
            r = one / (one + e)
            s_pos = r if xj >= zero else e * r
            s_neg = r if -xj >= zero else e * r
            # torch's chain rule through its forward expression (see the reference)
            g = f if wr.shape[0] == 0 else f * wr[j]
            gr[j] = g * (one - yj) * s_pos - g * yj * s_neg
    return np.float64(acc) / c


@njit(cache=True, error_model="numpy")
def _mlsm_block(b, x, y, w, gscale, gvec, loss_out, gx, want_grad):
    n = x.shape[0]
    total = 0.0
    for i in range(b * ROWS, min((b + 1) * ROWS, n)):
        wr = w[0, :0] if w.shape[0] == 0 else (w[0] if w.shape[0] == 1 else w[i])
        li = _mlsm_row(x[i], y[i], wr, coef_at(gscale, gvec, i),
                       gx[i] if want_grad else np.empty(0, gx.dtype), want_grad)
        if loss_out.shape[0] != 0:
            loss_out[i] = li
        total += li
    return total


_mlsm_par, _mlsm_ser = block_drivers(
    globals(), "_mlsm", "_mlsm_block",
    ("x", "y", "w", "gscale", "gvec", "loss_out", "gx", "want_grad"),
    "x.shape[0]", "ROWS")


# ------------------------------------------------------------------ cosine_embedding
@njit(cache=True, error_model="numpy", fastmath=FM)
def _cosine_row(x1, x2, ti, margin, cf, g1, g2, want_grad):
    prod = 0.0
    m1 = 0.0
    m2 = 0.0
    for j in range(x1.shape[0]):
        a = np.float64(x1[j])
        b = np.float64(x2[j])
        prod += a * b
        m1 += a * a
        m2 += b * b
    m1 += EPSILON
    m2 += EPSILON
    denom = math.sqrt(m1 * m2)
    cos = prod / denom
    loss = (1.0 - cos if ti == 1.0 else 0.0) + (max(cos - margin, 0.0) if ti == -1.0 else 0.0)
    if ti == -1.0 and cos - margin != cos - margin:
        loss = cos - margin       # NaN, as np.maximum gives
    if want_grad:
        dcos = (-1.0 if ti == 1.0 else 0.0) + (1.0 if (ti == -1.0 and cos - margin >= 0)
                                               else 0.0)
        g = cf * dcos
        for j in range(x1.shape[0]):
            a = np.float64(x1[j])
            b = np.float64(x2[j])
            g1[j] = g * (b / denom - cos * a / m1)
            g2[j] = g * (a / denom - cos * b / m2)
    return loss


@njit(cache=True, error_model="numpy")
def _cosine_block(b, x1, x2, t, margin, gscale, gvec, loss_out, g1, g2, want_grad):
    n = x1.shape[0]
    total = 0.0
    for i in range(b * ROWS, min((b + 1) * ROWS, n)):
        if want_grad:
            li = _cosine_row(x1[i], x2[i], np.float64(t[i]), margin, coef_at(gscale, gvec, i),
                             g1[i], g2[i], True)
        else:
            e = np.empty(0, g1.dtype)
            li = _cosine_row(x1[i], x2[i], np.float64(t[i]), margin, 0.0, e, e, False)
        if loss_out.shape[0] != 0:
            loss_out[i] = li
        total += li
    return total


_cosine_par, _cosine_ser = block_drivers(
    globals(), "_cosine", "_cosine_block",
    ("x1", "x2", "t", "margin", "gscale", "gvec", "loss_out", "g1", "g2", "want_grad"),
    "x1.shape[0]", "ROWS")


# ------------------------------------------------------------------ triplet_margin
@njit(cache=True, error_model="numpy")
def _sgn(v):
    return (1.0 if v > 0 else 0.0) - (1.0 if v < 0 else 0.0)


@njit(cache=True, error_model="numpy")
def _tdiff(u, v, j, epsd):
    """u - v + eps in the arrays' dtype (as torch rounds it), then float64."""
    return np.float64((u[j] - v[j]) + epsd)


@njit(cache=True, error_model="numpy")
def _tnorm(u, v, epsd, p):
    """||u - v + eps||_p as torch.linalg.vector_norm (NaN propagates)."""
    d = u.shape[0]
    if d == 0:
        return 0.0
    acc = 0.0
    if p == np.inf:
        acc = abs(_tdiff(u, v, 0, epsd))
        for j in range(d):
            acc = fmaximum(acc, abs(_tdiff(u, v, j, epsd)))
        return acc
    if p == 1.0:
        for j in range(d):
            acc += abs(_tdiff(u, v, j, epsd))
        return acc
    if p == 2.0:
        for j in range(d):
            e = _tdiff(u, v, j, epsd)
            acc += e * e
        return math.sqrt(acc)
    for j in range(d):
        acc += abs(_tdiff(u, v, j, epsd)) ** p
    return acc ** (1.0 / p)


@njit(cache=True, error_model="numpy")
def _tnorm_grad(g, u, v, epsd, p, norm, out, sign):
    """out += sign * (PyTorch's norm_backward of ||u - v + eps||_p times g)."""
    d = u.shape[0]
    if p == 1.0:
        for j in range(d):
            out[j] += sign * (_sgn(_tdiff(u, v, j, epsd)) * g)
    elif p == 2.0:
        for j in range(d):
            out[j] += sign * (g * (0.0 if norm == 0 else _tdiff(u, v, j, epsd) / norm))
    elif p == np.inf:
        count = 0.0
        for j in range(d):
            a = abs(_tdiff(u, v, j, epsd))
            if a == norm or a != a:
                count += 1.0
        for j in range(d):
            e = _tdiff(u, v, j, epsd)
            a = abs(e)
            mask = 1.0 if (a == norm or a != a) else 0.0
            out[j] += sign * (_sgn(e) * ((g / count) * mask))
    elif p < 1.0:
        for j in range(d):
            e = _tdiff(u, v, j, epsd)
            scaled = 0.0 if e == 0 else _sgn(e) * abs(e) ** (p - 1.0)
            out[j] += sign * (scaled * g * norm ** (1.0 - p))
    else:
        f = 0.0 if norm == 0 else g / norm ** (p - 1.0)
        for j in range(d):
            e = _tdiff(u, v, j, epsd)
            scaled = _sgn(e) * abs(e) ** (p - 1.0) if p < 2.0 else e * abs(e) ** (p - 2.0)
            out[j] += sign * (scaled * f)


@njit(cache=True, error_model="numpy")
def _triplet_row(a, pos, neg, margin, p, epsd, swap, cf, ga, gp, gn, want_grad):
    dist_p = _tnorm(a, pos, epsd, p)
    dist_n = _tnorm(a, neg, epsd, p)
    dist_s = 0.0
    dist_neg = dist_n
    if swap:
        dist_s = _tnorm(pos, neg, epsd, p)
        dist_neg = -fmaximum(-dist_n, -dist_s)        # NaN-propagating minimum
    z = margin + dist_p - dist_neg
    loss = fmaximum(z, 0.0)
    if want_grad:
        gz = cf if z >= 0 else 0.0
        d = a.shape[0]
        acc_a = np.zeros(d)
        acc_p = np.zeros(d)
        acc_n = np.zeros(d)
        # g_ap goes to a (+) and pos (-)
        _tnorm_grad(gz, a, pos, epsd, p, dist_p, acc_a, 1.0)
        _tnorm_grad(gz, a, pos, epsd, p, dist_p, acc_p, -1.0)
        if swap:
            half = -gz / 2 if dist_n == dist_s else -gz
            g_n = 0.0 if dist_n > dist_s else half
            g_s = 0.0 if dist_n < dist_s else half
            _tnorm_grad(g_n, a, neg, epsd, p, dist_n, acc_a, 1.0)
            _tnorm_grad(g_n, a, neg, epsd, p, dist_n, acc_n, -1.0)
            _tnorm_grad(g_s, pos, neg, epsd, p, dist_s, acc_p, 1.0)
            _tnorm_grad(g_s, pos, neg, epsd, p, dist_s, acc_n, -1.0)
        else:
            _tnorm_grad(-gz, a, neg, epsd, p, dist_n, acc_a, 1.0)
            _tnorm_grad(-gz, a, neg, epsd, p, dist_n, acc_n, -1.0)
        for j in range(d):
            ga[j] = acc_a[j]
            gp[j] = acc_p[j]
            gn[j] = acc_n[j]
    return loss


@njit(cache=True, error_model="numpy")
def _triplet_block(b, a, pos, neg, margin, p, eps, swap, gscale, gvec, loss_out, ga, gp, gn,
                   want_grad):
    n = a.shape[0]
    total = 0.0
    for i in range(b * ROWS, min((b + 1) * ROWS, n)):
        if want_grad:
            li = _triplet_row(a[i], pos[i], neg[i], margin, p, eps, swap,
                              coef_at(gscale, gvec, i), ga[i], gp[i], gn[i], True)
        else:
            e = np.empty(0, ga.dtype)
            li = _triplet_row(a[i], pos[i], neg[i], margin, p, eps, swap, 0.0, e, e, e, False)
        if loss_out.shape[0] != 0:
            loss_out[i] = li
        total += li
    return total


_triplet_par, _triplet_ser = block_drivers(
    globals(), "_triplet", "_triplet_block",
    ("a", "pos", "neg", "margin", "p", "eps", "swap", "gscale", "gvec", "loss_out", "ga", "gp",
     "gn", "want_grad"),
    "a.shape[0]", "ROWS")


# ------------------------------------------------------------------ the contract


def _nothing(x, loss_out):
    """True (after zeroing loss_out) when there are no rows or no columns to work on."""
    if x.shape[0] == 0 or x.shape[1] == 0:
        loss_out[...] = 0
        return True
    return False


def multi_margin_fwd(x, t, w, p, margin, loss_out):
    x, t, w = _readonly(x), _readonly(t), _readonly(w)
    if x.shape[0] == 0:
        return 0.0
    e = _EMPTY[x.dtype]
    return call(_multi_margin_par, _multi_margin_ser, x.size, x, t, w, int(p), float(margin),
                1.0, e, loss_out, _EMPTY2[x.dtype], False)


def multi_margin_vg(x, t, w, p, margin, gscale, gvec, loss_out, gx):
    x, t, w = _readonly(x), _readonly(t), _readonly(w)
    if x.shape[0] == 0:
        return 0.0
    return call(_multi_margin_par, _multi_margin_ser, x.size, x, t, w, int(p), float(margin),
                float(gscale), gvec, loss_out, gx, True)


def multilabel_margin_fwd(x, t, loss_out):
    x, t = _readonly(x), _readonly(t)
    if _nothing(x, loss_out):
        return 0.0
    return call(_multilabel_margin_par, _multilabel_margin_ser, x.size, x, t, 1.0,
                _EMPTY[x.dtype], loss_out, _EMPTY2[x.dtype], False)


def multilabel_margin_vg(x, t, gscale, gvec, loss_out, gx):
    x, t = _readonly(x), _readonly(t)
    if _nothing(x, loss_out):
        return 0.0
    return call(_multilabel_margin_par, _multilabel_margin_ser, x.size, x, t, float(gscale),
                gvec, loss_out, gx, True)


def _mlsm_w(w, x):
    return w if w.ndim == 2 else _readonly(_EMPTY2[x.dtype])


def _mlsm_no_classes(x, loss_out):
    """No classes: each row's loss is a mean over nothing, NaN (as the reference)."""
    loss_out[...] = np.nan
    return float("nan") if x.shape[0] else 0.0


def multilabel_soft_margin_fwd(x, y, w, loss_out):
    x, y, w = _readonly(x), _readonly(y), _readonly(w)
    if x.shape[0] == 0:
        return 0.0
    if x.shape[1] == 0:
        return _mlsm_no_classes(x, loss_out)
    return call(_mlsm_par, _mlsm_ser, x.size, x, y, _mlsm_w(w, x), 1.0, _EMPTY[x.dtype],
                loss_out, _EMPTY2[x.dtype], False)


def multilabel_soft_margin_vg(x, y, w, gscale, gvec, loss_out, gx):
    x, y, w = _readonly(x), _readonly(y), _readonly(w)
    if x.shape[0] == 0:
        return 0.0
    if x.shape[1] == 0:
        return _mlsm_no_classes(x, loss_out)
    return call(_mlsm_par, _mlsm_ser, x.size, x, y, _mlsm_w(w, x), float(gscale), gvec,
                loss_out, gx, True)


def cosine_embedding_fwd(x1, x2, t, margin, loss_out):
    x1, x2, t = _readonly(x1), _readonly(x2), _readonly(t)
    if x1.shape[0] == 0:
        return 0.0
    e2 = _EMPTY2[x1.dtype]
    return call(_cosine_par, _cosine_ser, x1.size, x1, x2, t, float(margin), 1.0,
                _EMPTY[x1.dtype], loss_out, e2, e2, False)


def cosine_embedding_vg(x1, x2, t, margin, gscale, gvec, loss_out, gx1, gx2):
    x1, x2, t = _readonly(x1), _readonly(x2), _readonly(t)
    if x1.shape[0] == 0:
        return 0.0
    return call(_cosine_par, _cosine_ser, x1.size, x1, x2, t, float(margin), float(gscale),
                gvec, loss_out, gx1, gx2, True)


def triplet_margin_fwd(a, pos, neg, margin, p, eps, swap, loss_out):
    a, pos, neg = _readonly(a), _readonly(pos), _readonly(neg)
    if a.shape[0] == 0:
        return 0.0
    e2 = _EMPTY2[a.dtype]
    # eps in the arrays' dtype: the differences u - v + eps round as torch's do
    return call(_triplet_par, _triplet_ser, a.size, a, pos, neg, float(margin), float(p),
                a.dtype.type(eps), bool(swap), 1.0, _EMPTY[a.dtype], loss_out, e2, e2, e2,
                False)


def triplet_margin_vg(a, pos, neg, margin, p, eps, swap, gscale, gvec, loss_out, ga, gpos,
                      gneg):
    a, pos, neg = _readonly(a), _readonly(pos), _readonly(neg)
    if a.shape[0] == 0:
        return 0.0
    return call(_triplet_par, _triplet_ser, a.size, a, pos, neg, float(margin), float(p),
                a.dtype.type(eps), bool(swap), float(gscale), gvec, loss_out, ga, gpos, gneg,
                True)


# ------------------------------------------------------------------ generated, per loss
_BLOCK = """
@njit(cache={cache}, error_model="numpy")
def _{name}_block(b, {args}):
    total = 0.0
    for i in range(b * ROWS, min((b + 1) * ROWS, {a0}.shape[0])):
        li = _{name}_row({arrays}, i, {params}coef_at(gscale, gvec, i), {gouts}, want_grad)
        if loss_out.shape[0] != 0:
            loss_out[i] = li
        total += li
    return total
"""

# Inputs read-only and parameters as their declared types: one compiled version serves
# every call (see _common.readonly); gvec and the outputs writable, as the losses above.
_CONTRACT = """
def {name}_fwd({arrays}, {params}loss_out):
    if {a0}.shape[0] == 0:
        return 0.0
    e2 = _EMPTY2[{a0}.dtype]
    return call(_{name}_par, _{name}_ser, {a0}.size, {inputs}, {converted}1.0,
                _EMPTY[{a0}.dtype], loss_out, {no_grads}, False)


def {name}_vg({arrays}, {params}gscale, gvec, loss_out, {gouts}):
    if {a0}.shape[0] == 0:
        return 0.0
    return call(_{name}_par, _{name}_ser, {a0}.size, {inputs}, {converted}float(gscale),
                gvec, loss_out, {gouts}, True)
"""


def _generate(k, namespace, cache=True):
    """Define the block, drivers and contract functions of the row kernel `k` from its
    declaration and its ``_<name>_row`` function, unless its contract functions are
    written out (the losses above). ``cache=False``: a test's kernel, kept out of Numba's
    on-disk cache."""
    if all(f in namespace for f in k.functions()):
        return
    if "_" + k.name + "_row" not in namespace:
        raise NameError(f"row kernel {k.name!r} is declared (fastloss._kernels) but has "
                        f"neither its contract functions nor a row function _{k.name}_row")
    a0 = k.arrays[0]
    params = [p for p, _ in k.params]
    gouts = ["g" + a for a in k.grads]
    args = [*k.arrays, *params, "gscale", "gvec", "loss_out", *gouts, "want_grad"]
    pre = "".join(p + ", " for p in params)
    define(namespace, _BLOCK.format(cache=cache, name=k.name, args=", ".join(args), a0=a0,
                                    arrays=", ".join(k.arrays), params=pre,
                                    gouts=", ".join(gouts)))
    block_drivers(namespace, "_" + k.name, "_" + k.name + "_block", args, f"{a0}.shape[0]",
                  "ROWS", cache=cache)
    define(namespace, _CONTRACT.format(
        name=k.name, arrays=", ".join(k.arrays), params=pre, a0=a0,
        inputs=", ".join(f"_readonly({a})" for a in k.arrays),
        converted="".join(f"{t}({p}), " for p, t in k.params),
        no_grads=", ".join("e2" for _ in gouts), gouts=", ".join(gouts)))


for _k in KERNELS:
    _generate(_k, globals())
del _k
