"""Row losses (the ``rows`` kernel family): x of shape (N, C) (multi_margin,
multilabel_margin, multilabel_soft_margin), x1, x2 (cosine) and anchor, positive,
negative (triplet) of shape (N, D), one loss per row.

The class-margin kernels of PyTorch (multi_margin, multilabel_margin) count a term only
where ``z > 0``, so a NaN term counts nowhere. The embedding gradients follow PyTorch's
autograd step by step where it matters for the edge cases: a row whose gradient
coefficient is 0 still gets 0 * (local derivative), so a NaN or an infinity in the row
gives NaN as it does there.
"""
import numpy as np

from .. import _kernels
from .._constants import COSINE_EPS as EPSILON
from ._common import coef, f64, sigmoid as _sigmoid, store

__all__ = [f for k in _kernels.of_family("rows") for f in k.functions()]


# ---- multi_margin: sum_{j != y} w_y max(0, margin - x_y + x_j)^p / C ---------------------

def _multi_margin_terms(x, t, w, margin):
    """z[i, j] = margin - x[i, y_i] + x[i, j], the mask of counted terms (j != y_i, z > 0),
    and the per-row weight w[y_i] (1 when unweighted)."""
    n, c = x.shape
    rows = np.arange(n)
    x = f64(x)
    z = margin - x[rows, t][:, None] + x
    counted = z > 0
    counted[rows, t] = False
    wy = f64(w)[t] if w.size else np.ones(n)
    return z, counted, wy


def multi_margin_fwd(x, t, w, p, margin, loss_out):
    n, c = x.shape
    if n == 0:
        return store(np.zeros(0), loss_out)
    z, counted, wy = _multi_margin_terms(x, t, w, margin)
    return store(_multi_margin_loss(z, counted, wy, p, c), loss_out)


def _multi_margin_loss(z, counted, wy, p, c):
    # w_y times each counted term, as torch does: a row with no counted term is 0 even
    # when w_y is NaN or infinite (w_y times the row's sum would give 0 * w_y)
    h = z if p == 1 else z * z
    return np.sum(np.where(counted, h * wy[:, None], 0.0), axis=1) / c


def multi_margin_vg(x, t, w, p, margin, gscale, gvec, loss_out, gx):
    n, c = x.shape
    if n == 0:
        return store(np.zeros(0), loss_out)
    z, counted, wy = _multi_margin_terms(x, t, w, margin)
    cf = coef(gscale, gvec) * np.ones(n) * wy / c
    g = np.where(counted, cf[:, None] * (1.0 if p == 1 else 2.0 * z), 0.0)
    g[np.arange(n), t] = -np.sum(g, axis=1)
    gx[...] = g
    return store(_multi_margin_loss(z, counted, wy, p, c), loss_out)


# ---- multilabel_margin: targets y_1.. up to the first -1; sum over target j and -------
# ---- non-target i of max(0, 1 - (x_j - x_i)), divided by C --------------------------------

def _multilabel_margin(x, t, coefs=None, gx=None):
    """Per-row losses; with `coefs` (one per row) also writes the gradient into gx.

    A target slot k counts while every slot up to k is >= 0 (the list ends at the first
    -1). A class listed twice counts twice, as in PyTorch."""
    n, c = x.shape
    x = f64(x)
    valid = np.cumprod(t >= 0, axis=1).astype(bool)
    rows = np.arange(n)
    is_target = np.zeros((n, c), bool)
    for k in range(c):
        if not valid[:, k].any():
            break
        sel = rows[valid[:, k]]
        is_target[sel, t[sel, k]] = True
    loss = np.zeros(n)
    g = np.zeros((n, c)) if coefs is not None else None
    for k in range(c):
        v = valid[:, k]
        if not v.any():
            break
        j = np.where(v, t[:, k], 0)
        z = 1.0 - x[rows, j][:, None] + x
        counted = v[:, None] & ~is_target & (z > 0)
        loss += np.sum(np.where(counted, z, 0.0), axis=1)
        if g is not None:
            step = coefs[:, None] * counted
            g += step
            g[rows, j] -= np.sum(step, axis=1)
    if gx is not None:
        gx[...] = g / c
    return loss / c


def multilabel_margin_fwd(x, t, loss_out):
    return store(_multilabel_margin(x, t), loss_out)


def multilabel_margin_vg(x, t, gscale, gvec, loss_out, gx):
    coefs = coef(gscale, gvec) * np.ones(x.shape[0])
    return store(_multilabel_margin(x, t, coefs, gx), loss_out)


# ---- multilabel_soft_margin: mean over C of -w (y log s(x) + (1 - y) log s(-x)) ---------
# w is empty (no weight), (1, C) (the same for every row) or (N, C).

def _log_sigmoid(x):
    return np.minimum(x, 0.0) - np.log1p(np.exp(-np.abs(x)))


def _mlsm_items(x, y, w):
    # PyTorch's own expression, so that 0 * inf gives NaN exactly where it does there.
    terms = -(y * _log_sigmoid(x) + (1.0 - y) * _log_sigmoid(-x))
    if w.size:
        terms = terms * f64(w)
    return np.sum(terms, axis=1) / x.shape[1]


def multilabel_soft_margin_fwd(x, y, w, loss_out):
    return store(_mlsm_items(f64(x), f64(y), w), loss_out)


def multilabel_soft_margin_vg(x, y, w, gscale, gvec, loss_out, gx):
    x, y = f64(x), f64(y)
    n, c = x.shape
    cf = (coef(gscale, gvec) * np.ones(n))[:, None] / c
    # torch's chain rule through its forward expression, g = cf w:
    # g (1 - y) s(x) - g y s(-x), so that an infinite weight gives NaN where it does there
    # (inf * 0 for a hard target, inf - inf for a soft one)
    g = cf * f64(w) if w.size else cf
    gx[...] = g * (1.0 - y) * _sigmoid(x) - g * y * _sigmoid(-x)
    return store(_mlsm_items(x, y, w), loss_out)


# ---- cosine_embedding: y == 1 -> 1 - cos; y == -1 -> max(0, cos - margin); else 0 -------

def _cosine(x1, x2):
    prod = np.sum(x1 * x2, axis=1)
    m1 = np.sum(x1 * x1, axis=1) + EPSILON
    m2 = np.sum(x2 * x2, axis=1) + EPSILON
    denom = np.sqrt(m1 * m2)
    return prod / denom, m1, m2, denom


def _cosine_items(cos, t, margin):
    return np.where(t == 1, 1.0 - cos, 0.0) + np.where(t == -1, np.maximum(cos - margin, 0.0),
                                                       0.0)


def cosine_embedding_fwd(x1, x2, t, margin, loss_out):
    cos = _cosine(f64(x1), f64(x2))[0]
    return store(_cosine_items(cos, t, margin), loss_out)


def cosine_embedding_vg(x1, x2, t, margin, gscale, gvec, loss_out, gx1, gx2):
    x1, x2 = f64(x1), f64(x2)
    cos, m1, m2, denom = _cosine(x1, x2)
    n = x1.shape[0]
    # d loss / d cos: -1 where y == 1; +1 where y == -1 and cos - margin >= 0 (clamp_min).
    dcos = np.where(t == 1, -1.0, 0.0) + np.where((t == -1) & (cos - margin >= 0), 1.0, 0.0)
    g = (coef(gscale, gvec) * np.ones(n) * dcos)[:, None]
    # d cos / d x1 = x2 / denom - cos x1 / m1, and symmetrically for x2
    gx1[...] = g * (x2 / denom[:, None] - cos[:, None] * x1 / m1[:, None])
    gx2[...] = g * (x1 / denom[:, None] - cos[:, None] * x2 / m2[:, None])
    return store(_cosine_items(cos, t, margin), loss_out)


# ---- triplet_margin: max(0, margin + d(a, p) - d(a, n)), d(u, v) = ||u - v + eps||_p ----
# With swap, d(a, n) is replaced by min(d(a, n), d(p, n)).

def _norm(diff, p):
    """||row||_p for each row, as torch.linalg.vector_norm (NaN propagates)."""
    a = np.abs(diff)
    if diff.shape[1] == 0:
        return np.zeros(diff.shape[0])
    if p == np.inf:
        return np.max(a, axis=1)
    if p == 1:
        return np.sum(a, axis=1)
    if p == 2:
        return np.sqrt(np.sum(a * a, axis=1))
    return np.sum(a ** p, axis=1) ** (1.0 / p)


def _sign(x):
    """torch.sgn on reals: 0 at 0 and at NaN."""
    return (x > 0).astype(np.float64) - (x < 0)


def _norm_grad(g, diff, p, norm):
    """PyTorch's norm_backward for one distance per row: g (N,) the gradient of the
    distance, diff (N, D) what was normed, norm (N,) its norm."""
    g, norm = g[:, None], norm[:, None]
    if p == 1:
        return _sign(diff) * g
    if p == 2:
        return g * np.where(norm == 0, 0.0, diff / norm)
    if p == np.inf:
        a = np.abs(diff)
        mask = (a == norm) | np.isnan(a)
        return _sign(diff) * ((g / np.sum(mask, axis=1, keepdims=True)) * mask)
    if p < 1:
        scaled = np.where(diff == 0, 0.0, _sign(diff) * np.abs(diff) ** (p - 1))
        return scaled * g * norm ** (1 - p)
    if p < 2:
        scaled = _sign(diff) * np.abs(diff) ** (p - 1)
    else:
        scaled = diff * np.abs(diff) ** (p - 2)
    return scaled * np.where(norm == 0, 0.0, g / norm ** (p - 1))


def _diff(u, v, eps):
    """u - v + eps rounded to the arrays' dtype, as PyTorch computes it, then float64 for
    the norm: in float32, 1e4 + 1e-6 is 1e4, which decides ties of the inf-norm."""
    return f64((u - v) + u.dtype.type(eps))


def _triplet(a, pos, neg, margin, p, eps, swap):
    d_ap = _diff(a, pos, eps)
    d_an = _diff(a, neg, eps)
    dist_p, dist_n = _norm(d_ap, p), _norm(d_an, p)
    d_pn = dist_s = None
    if swap:
        d_pn = _diff(pos, neg, eps)
        dist_s = _norm(d_pn, p)
    dist_neg = np.minimum(dist_n, dist_s) if swap else dist_n
    z = margin + dist_p - dist_neg
    return z, (d_ap, d_an, d_pn), (dist_p, dist_n, dist_s)


def triplet_margin_fwd(a, pos, neg, margin, p, eps, swap, loss_out):
    z = _triplet(a, pos, neg, margin, p, eps, swap)[0]
    return store(np.maximum(z, 0.0), loss_out)


def triplet_margin_vg(a, pos, neg, margin, p, eps, swap, gscale, gvec, loss_out,
                      ga, gpos, gneg):
    n = a.shape[0]
    z, (d_ap, d_an, d_pn), (dist_p, dist_n, dist_s) = _triplet(
        a, pos, neg, margin, p, eps, swap)
    # clamp_min passes the gradient where z >= 0 (not where z is NaN)
    gz = np.where(z >= 0, coef(gscale, gvec) * np.ones(n), 0.0)
    g_ap = _norm_grad(gz, d_ap, p, dist_p)
    if swap:
        # torch.minimum's gradient: all to the smaller, half each on a tie, all to both
        # when the comparison is NaN
        half = np.where(dist_n == dist_s, -gz / 2, -gz)
        g_n = np.where(dist_n > dist_s, 0.0, half)
        g_s = np.where(dist_n < dist_s, 0.0, half)
        g_an = _norm_grad(g_n, d_an, p, dist_n)
        g_pn = _norm_grad(g_s, d_pn, p, dist_s)
        ga[...] = g_ap + g_an
        gpos[...] = -g_ap + g_pn
        gneg[...] = -g_an - g_pn
    else:
        g_an = _norm_grad(-gz, d_an, p, dist_n)
        ga[...] = g_ap + g_an
        gpos[...] = -g_ap
        gneg[...] = -g_an
    return store(np.maximum(z, 0.0), loss_out)


# ---- triplet_distance: the triplet loss with a user's distance function (any callable
# other than torch's pairwise distance, which runs in the triplet_margin kernels). Its
# params are (margin, swap, distance_function): the one kernel whose params hold a Python
# object, as the work is the callable's, called once per distance on the whole arrays.

def _distance(fn, x1, x2, shape, which):
    d = np.asarray(fn(x1, x2))
    if d.dtype.kind not in "fiu":
        raise TypeError(f"distance_function: expected it to return real numbers for {which}, "
                        f"got dtype {d.dtype}")
    if d.shape != tuple(shape):
        raise ValueError(f"distance_function: expected one distance per triplet, shape "
                         f"{tuple(shape)}, for {which}; it returned shape {d.shape}")
    return f64(d)


def _distances(a, p, n, swap, fn, shape):
    d_ap = _distance(fn, a, p, shape, "(anchor, positive)")
    d_an = _distance(fn, a, n, shape, "(anchor, negative)")
    d_pn = _distance(fn, p, n, shape, "(positive, negative)") if swap else None
    return d_ap, d_an, d_pn


def _shape(a, p, n):
    return np.broadcast_shapes(a.shape, p.shape, n.shape)[:-1]


def triplet_distance_fwd(a, pos, neg, margin, swap, fn, loss_out):
    d_ap, d_an, d_pn = _distances(a, pos, neg, swap, fn, _shape(a, pos, neg))
    d_neg = np.minimum(d_an, d_pn) if swap else d_an
    return store(np.maximum(margin + d_ap - d_neg, 0.0), loss_out)


def _vjp(fn, x1, x2, g, which):
    g1, g2 = fn.vjp(x1, x2, g.astype(x1.dtype))
    g1, g2 = f64(g1), f64(g2)
    for got, want, name in ((g1, x1, "x1"), (g2, x2, "x2")):
        if got.shape != want.shape:
            raise ValueError(f"distance_function.vjp: expected the gradient of {name} for "
                             f"{which} in shape {want.shape}, got {got.shape}")
    return g1, g2


def triplet_distance_vg(a, pos, neg, margin, swap, fn, gscale, gvec, loss_out, ga, gpos, gneg):
    if not callable(getattr(fn, "vjp", None)):
        raise TypeError("distance_function: its gradient is needed and it has none; give the "
                        "callable a `vjp(x1, x2, g) -> (g1, g2)` attribute returning the "
                        "gradients of sum(g * distance_function(x1, x2)) (fastloss never "
                        "differentiates a callable numerically)")
    shape = _shape(a, pos, neg)
    d_ap, d_an, d_pn = _distances(a, pos, neg, swap, fn, shape)
    d_neg = np.minimum(d_an, d_pn) if swap else d_an
    z = margin + d_ap - d_neg
    # clamp_min passes the gradient where z >= 0; torch.minimum splits it on a tie
    gz = np.where(z >= 0, coef(gscale, gvec) * np.ones(shape), 0.0)
    ga1, gp1 = _vjp(fn, a, pos, gz, "(anchor, positive)")
    if swap:
        half = np.where(d_an == d_pn, -gz / 2, -gz)
        g_n = np.where(d_an > d_pn, 0.0, half)
        g_s = np.where(d_an < d_pn, 0.0, half)
        ga2, gn2 = _vjp(fn, a, neg, g_n, "(anchor, negative)")
        gp3, gn3 = _vjp(fn, pos, neg, g_s, "(positive, negative)")
        ga[...] = ga1 + ga2
        gpos[...] = gp1 + gp3
        gneg[...] = gn2 + gn3
    else:
        ga2, gn2 = _vjp(fn, a, neg, -gz, "(anchor, negative)")
        ga[...] = ga1 + ga2
        gpos[...] = gp1
        gneg[...] = gn2
    return store(np.maximum(z, 0.0), loss_out)
