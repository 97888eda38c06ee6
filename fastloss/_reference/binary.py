"""Binary cross-entropy on flat arrays x (probabilities or logits) and t of one shape;
w (weight) and pw (pos_weight) are flat, already broadcast to x, or empty (not given)."""
import numpy as np

from .._constants import BCE_GRAD_EPS
from ._common import coef, f64, sigmoid as _sigmoid, store, weighted


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
