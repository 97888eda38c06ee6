"""Regression losses on flat, already broadcast arrays: x, t and w (w empty = no weight)."""
import numpy as np

from ._common import coef, f64, store, weighted


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
