"""Element-wise losses (the ``elementwise`` kernel family) on flat, already broadcast
arrays: x (input), t (target), w (element weight; empty: none), and the loss's others
(BCE-with-logits' pw, the Gaussian NLL's variance v, margin ranking's x1 and x2). Flags
arrive as 0/1 integers. Subgradients at the kinks are PyTorch's: ``max(0, z)`` built from
``clamp_min`` passes the gradient where ``z >= 0``."""
import math

import numpy as np

from .. import _kernels
from .._constants import BCE_GRAD_EPS, HALF_LOG_2PI
from ._common import coef, f64, sigmoid as _sigmoid, store, weighted

__all__ = [f for k in _kernels.of_family("elementwise") for f in k.functions()]


# ---- regression: d = x - t ----------------------------------------------------------------

def sign(d):
    """torch's sign for gradients: 0 at 0 and at NaN."""
    return (d > 0).astype(np.float64) - (d < 0)


def l1_fwd(x, t, w, loss_out):
    return store(weighted(np.abs(f64(x) - t), w), loss_out)


def l1_vg(x, t, w, gscale, gvec, loss_out, gx):
    d = f64(x) - t
    gx[...] = weighted(coef(gscale, gvec) * sign(d), w)
    return store(weighted(np.abs(d), w), loss_out)


def mse_fwd(x, t, w, loss_out):
    return store(weighted(np.square(f64(x) - t), w), loss_out)


def mse_vg(x, t, w, gscale, gvec, loss_out, gx):
    d = f64(x) - t
    gx[...] = weighted(coef(gscale, gvec) * 2.0 * d, w)
    return store(weighted(np.square(d), w), loss_out)


def _smooth_l1(d, beta):
    a = np.abs(d)
    return np.where(a < beta, 0.5 * d * d / beta, a - 0.5 * beta)


def smooth_l1_fwd(x, t, w, beta, loss_out):
    return store(weighted(_smooth_l1(f64(x) - t, beta), w), loss_out)


def smooth_l1_vg(x, t, w, beta, gscale, gvec, loss_out, gx):
    d = f64(x) - t
    dl = np.where(d < -beta, -1.0, np.where(d > beta, 1.0, d / beta))
    gx[...] = weighted(coef(gscale, gvec) * dl, w)
    return store(weighted(_smooth_l1(d, beta), w), loss_out)


def _huber(d, delta):
    a = np.abs(d)
    return np.where(a < delta, 0.5 * d * d, delta * (a - 0.5 * delta))


def huber_fwd(x, t, w, delta, loss_out):
    return store(weighted(_huber(f64(x) - t, delta), w), loss_out)


def huber_vg(x, t, w, delta, gscale, gvec, loss_out, gx):
    d = f64(x) - t
    dl = np.where(d < -delta, -delta, np.where(d > delta, delta, d))
    gx[...] = weighted(coef(gscale, gvec) * dl, w)
    return store(weighted(_huber(d, delta), w), loss_out)


# ---- binary cross-entropy ------------------------------------------------------------------

def _bce(x, t):
    x, t = f64(x), f64(t)
    # log(0) = -inf, then clamped at -100 as in torch
    return x, t, ((t - 1.0) * np.maximum(np.log1p(-x), -100.0)
                  - t * np.maximum(np.log(x), -100.0))


def bce_fwd(x, t, w, loss_out):
    return store(weighted(_bce(x, t)[-1], w), loss_out)


def bce_vg(x, t, w, gscale, gvec, loss_out, gx):
    x, t, loss = _bce(x, t)
    gx[...] = weighted(coef(gscale, gvec) * (x - t) / np.maximum((1.0 - x) * x, BCE_GRAD_EPS), w)
    return store(weighted(loss, w), loss_out)


def _bce_logits(x, t, pw):
    """x, t, the positive-term factor 1 + (pw - 1) t, and the unweighted loss
    (1 - t) x + (1 + (pw - 1) t) softplus(-x), softplus(-x) = max(-x, 0) + log1p(e^-|x|)."""
    x, t = f64(x), f64(t)
    # 0 * inf and inf - inf give NaN, as in torch
    lw = 1.0 + (f64(pw) - 1.0) * t if pw.size else 1.0
    softplus_neg = np.maximum(-x, 0.0) + np.log1p(np.exp(-np.abs(x)))
    return x, t, lw, (1.0 - t) * x + lw * softplus_neg


def bce_logits_fwd(x, t, w, pw, loss_out):
    return store(weighted(_bce_logits(x, t, pw)[-1], w), loss_out)


def bce_logits_vg(x, t, w, pw, gscale, gvec, loss_out, gx):
    x, t, lw, loss = _bce_logits(x, t, pw)
    s = _sigmoid(x)
    dl = lw * s - f64(pw) * t if pw.size else s - t
    gx[...] = weighted(coef(gscale, gvec) * dl, w)
    return store(weighted(loss, w), loss_out)


# ---- likelihoods and divergence -------------------------------------------------------------

def _poisson_nll(x, t, log_input, full, eps):
    x, t = f64(x), f64(t)
    # inf - inf, 0 * inf and log of <= 0 give NaN as in torch
    loss = np.exp(x) - t * x if log_input else x - t * np.log(x + eps)
    if full:
        stirling = t * np.log(t) - t + 0.5 * np.log(2.0 * math.pi * t)
        # torch masks where t <= 1, so a NaN target keeps its NaN term
        loss = loss + np.where(t <= 1, 0.0, stirling)
    return x, t, loss


def poisson_nll_fwd(x, t, log_input, full, eps, loss_out):
    return store(_poisson_nll(x, t, log_input, full, eps)[-1], loss_out)


def poisson_nll_vg(x, t, log_input, full, eps, gscale, gvec, loss_out, gx):
    x, t, loss = _poisson_nll(x, t, log_input, full, eps)
    dl = np.exp(x) - t if log_input else 1.0 - t / (x + eps)
    gx[...] = coef(gscale, gvec) * dl
    return store(loss, loss_out)


def _gaussian_nll(x, t, v, full, eps):
    # The clamp is not differentiated (torch clamps under no_grad): gradients use the
    # clamped variance as if it were the variance.
    vc = np.maximum(f64(v), eps)
    d = f64(x) - t
    loss = 0.5 * (np.log(vc) + d * d / vc)
    if full:
        loss = loss + HALF_LOG_2PI
    return d, vc, loss


def gaussian_nll_fwd(x, t, v, full, eps, loss_out):
    return store(_gaussian_nll(x, t, v, full, eps)[-1], loss_out)


def gaussian_nll_vg(x, t, v, full, eps, gscale, gvec, loss_out, gx, gv):
    d, vc, loss = _gaussian_nll(x, t, v, full, eps)
    c = coef(gscale, gvec)
    gx[...] = c * d / vc
    gv[...] = 0.5 * c * (1.0 / vc - d * d / (vc * vc))
    return store(loss, loss_out)


def _xlogy_self(t):
    """t * log(t), 0 at t == 0 (torch's xlogy(t, t)): NaN for t < 0 and for NaN."""
    return np.where(t == 0, 0.0, t * np.log(t))


def _kl_div(x, t, log_target):
    x, t = f64(x), f64(t)
    if log_target:
        return x, t, np.exp(t) * (t - x)
    return x, t, _xlogy_self(t) - t * x


def kl_div_fwd(x, t, log_target, loss_out):
    return store(_kl_div(x, t, log_target)[-1], loss_out)


def kl_div_vg(x, t, log_target, gscale, gvec, loss_out, gx):
    x, t, loss = _kl_div(x, t, log_target)
    gx[...] = -coef(gscale, gvec) * (np.exp(t) if log_target else t)
    return store(loss, loss_out)


# ---- element-wise margins ------------------------------------------------------------------

def _softplus(z):
    """log(1 + exp(z)), exact for any z (no overflow)."""
    return np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z)))


# ---- hinge_embedding: y == 1 -> x; y == -1 -> max(0, margin - x); else the sum of both ----

def _hinge(x, t, margin):
    return (np.where(t != 1, np.maximum(margin - x, 0.0), 0.0)
            + np.where(t != -1, x, 0.0))


def hinge_embedding_fwd(x, t, margin, loss_out):
    return store(_hinge(f64(x), f64(t), margin), loss_out)


def hinge_embedding_vg(x, t, margin, gscale, gvec, loss_out, gx):
    x, t = f64(x), f64(t)
    # d/dx: -1 from the margin branch where margin - x >= 0 (not for NaN), +1 from the other.
    d = (np.where((t != 1) & (margin - x >= 0), -1.0, 0.0) + np.where(t != -1, 1.0, 0.0))
    gx[...] = coef(gscale, gvec) * d
    return store(_hinge(x, t, margin), loss_out)


# ---- soft_margin: log(1 + exp(-y x)) ----------------------------------------------------

def soft_margin_fwd(x, t, loss_out):
    return store(_softplus(-f64(t) * f64(x)), loss_out)


def soft_margin_vg(x, t, gscale, gvec, loss_out, gx):
    x, t = f64(x), f64(t)
    z = -t * x
    gx[...] = coef(gscale, gvec) * (-t) * _sigmoid(z)
    return store(_softplus(z), loss_out)


# ---- margin_ranking: max(0, -y (x1 - x2) + margin) ----------------------------------------

def margin_ranking_fwd(x1, x2, t, margin, loss_out):
    z = -f64(t) * (f64(x1) - x2) + margin
    return store(np.maximum(z, 0.0), loss_out)


def margin_ranking_vg(x1, x2, t, margin, gscale, gvec, loss_out, gx1, gx2):
    t = f64(t)
    z = -t * (f64(x1) - x2) + margin
    # PyTorch multiplies the clamp's gradient by -y even where it is 0: an infinite or NaN
    # target gives NaN there too, and so does this.
    g = np.where(z >= 0, coef(gscale, gvec), 0.0) * -t
    gx1[...] = g
    gx2[...] = -g
    return store(np.maximum(z, 0.0), loss_out)

