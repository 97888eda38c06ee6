"""Margin losses.

Elementwise (hinge_embedding, soft_margin, margin_ranking): flat arrays, already broadcast.
Row-wise (multi_margin, multilabel_margin, multilabel_soft_margin): x of shape (N, C), one
loss per row. Subgradients at the kinks are PyTorch's: ``max(0, z)`` built from
``clamp_min`` passes the gradient where ``z >= 0``; the class-margin kernels of PyTorch
(multi_margin, multilabel_margin) count a term only where ``z > 0``, so a NaN term counts
nowhere.
"""
import functools

import numpy as np

from ._common import coef, f64, store

__all__ = ["hinge_embedding_fwd", "hinge_embedding_vg", "soft_margin_fwd", "soft_margin_vg",
           "margin_ranking_fwd", "margin_ranking_vg", "multi_margin_fwd", "multi_margin_vg",
           "multilabel_margin_fwd", "multilabel_margin_vg", "multilabel_soft_margin_fwd",
           "multilabel_soft_margin_vg"]


def ieee(kernel):
    """Run a kernel with NumPy's floating-point warnings off: NaN and infinities are data
    here, propagated as IEEE arithmetic (and PyTorch) propagate them."""
    @functools.wraps(kernel)
    def run(*args):
        with np.errstate(all="ignore"):
            return kernel(*args)
    return run


def _sigmoid(z):
    """1 / (1 + exp(-z)) without overflow for either sign; NaN stays NaN."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _softplus(z):
    """log(1 + exp(z)), exact for any z (no overflow)."""
    return np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z)))


# ---- hinge_embedding: y == 1 -> x; y == -1 -> max(0, margin - x); else the sum of both ----

def _hinge(x, t, margin):
    return (np.where(t != 1, np.maximum(margin - x, 0.0), 0.0)
            + np.where(t != -1, x, 0.0))


@ieee
def hinge_embedding_fwd(x, t, margin, loss_out):
    return store(_hinge(f64(x), f64(t), margin), loss_out)


@ieee
def hinge_embedding_vg(x, t, margin, gscale, gvec, loss_out, gx):
    x, t = f64(x), f64(t)
    # d/dx: -1 from the margin branch where margin - x >= 0 (not for NaN), +1 from the other.
    d = (np.where((t != 1) & (margin - x >= 0), -1.0, 0.0) + np.where(t != -1, 1.0, 0.0))
    gx[...] = coef(gscale, gvec) * d
    return store(_hinge(x, t, margin), loss_out)


# ---- soft_margin: log(1 + exp(-y x)) ----------------------------------------------------

@ieee
def soft_margin_fwd(x, t, loss_out):
    return store(_softplus(-f64(t) * f64(x)), loss_out)


@ieee
def soft_margin_vg(x, t, gscale, gvec, loss_out, gx):
    x, t = f64(x), f64(t)
    z = -t * x
    gx[...] = coef(gscale, gvec) * (-t) * _sigmoid(z)
    return store(_softplus(z), loss_out)


# ---- margin_ranking: max(0, -y (x1 - x2) + margin) ----------------------------------------

@ieee
def margin_ranking_fwd(x1, x2, t, margin, loss_out):
    z = -f64(t) * (f64(x1) - x2) + margin
    return store(np.maximum(z, 0.0), loss_out)


@ieee
def margin_ranking_vg(x1, x2, t, margin, gscale, gvec, loss_out, gx1, gx2):
    t = f64(t)
    z = -t * (f64(x1) - x2) + margin
    # PyTorch multiplies the clamp's gradient by -y even where it is 0: an infinite or NaN
    # target gives NaN there too, and so does this.
    g = np.where(z >= 0, coef(gscale, gvec), 0.0) * -t
    gx1[...] = g
    gx2[...] = -g
    return store(np.maximum(z, 0.0), loss_out)


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


@ieee
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


@ieee
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


@ieee
def multilabel_margin_fwd(x, t, loss_out):
    return store(_multilabel_margin(x, t), loss_out)


@ieee
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


@ieee
def multilabel_soft_margin_fwd(x, y, w, loss_out):
    return store(_mlsm_items(f64(x), f64(y), w), loss_out)


@ieee
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
