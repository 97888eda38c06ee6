"""Embedding losses on rows: x1, x2 (cosine) and anchor, positive, negative (triplet) of
shape (N, D), one loss per row.

The gradients follow PyTorch's autograd step by step where it matters for the edge cases:
a row whose gradient coefficient is 0 still gets 0 * (local derivative), so a NaN or an
infinity in the row gives NaN as it does there.
"""
import numpy as np

from .._constants import COSINE_EPS as EPSILON
from ._common import coef, f64, store

__all__ = ["cosine_embedding_fwd", "cosine_embedding_vg", "triplet_margin_fwd",
           "triplet_margin_vg"]



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
