"""Cross-entropy with fastloss's extensions (z_loss, softcap), and the linear
cross-entropy that computes its logits x @ W.T + b: the plain oracle, materialising the
logits in float64 (the compiled backends never do).

Layouts as in fastloss._reference.classification: logits (N, C, D); class targets flat
int64 (N*D,), probabilities (N, C, D); w per class (empty: none). For the linear loss,
x is (N, d), Wf the weight (C*D, d) (row c*D + k holds class c at position k of the
K-dim loss), b the bias (C*D,) or empty.

With cap > 0, z' = cap * tanh(z / cap) replaces the logits; with z_loss = lambda, each
counted item adds lambda * w_y * lse(z')**2 (class targets; lambda * lse**2 for
probabilities), the mean dividing by the same denominator as the cross-entropy.
"""
import numpy as np

from .classification import _class_weights as class_weights, _picked as picked
from ._common import coef, f64, store

__all__ = ["ce_ext_class_fwd", "ce_ext_class_vg", "ce_ext_prob_fwd", "ce_ext_prob_vg",
           "linear_ce_class_fwd", "linear_ce_class_vg", "linear_ce_prob_fwd",
           "linear_ce_prob_vg"]


def _capped(z, cap):
    return cap * np.tanh(z / cap) if cap > 0 else z


def ext_items(z, target, w, probs, ignore_index, eps, z_loss, cap):
    """(items (n, d), d sum(items) / d z (n, C, d)) for logits z (n, C, d)."""
    z = f64(z)
    n, c, d = z.shape
    zc = _capped(z, cap)
    if c == 0:
        items = np.full((n, d), np.nan) if not probs else np.zeros((n, d))
        return items, np.zeros_like(z)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        m = np.max(zc, axis=1, keepdims=True)
        m = np.where(np.isfinite(m), m, 0.0)
        lse = np.log(np.sum(np.exp(zc - m), axis=1, keepdims=True)) + m   # (n, 1, d)
        s = np.exp(zc - lse)
        wc = class_weights(w, c)[None, :, None]
        if probs:
            p = f64(target)
            if eps > 0:
                p = p * (1.0 - eps) + eps / c
            wp = p * wc
            items = np.sum(wp * (lse - zc), axis=1)
            dz = s * np.sum(wp, axis=1, keepdims=True) - wp
            if z_loss:
                items = items + z_loss * lse[:, 0] ** 2
                dz = dz + 2 * z_loss * lse * s
        else:
            tt, counted, bad = picked(target, ignore_index, n, d, c)
            wy = class_weights(w, c)[tt][:, None, :]
            zy = np.take_along_axis(zc, tt[:, None, :], axis=1)
            items = (1.0 - eps) * wy * (lse - zy)
            onehot = np.zeros_like(zc)
            np.put_along_axis(onehot, tt[:, None, :], 1.0, axis=1)
            dz = (1.0 - eps) * wy * (s - onehot)
            if eps > 0:
                items = items + (eps / c) * np.sum(wc * (lse - zc), axis=1, keepdims=True)
                dz = dz + (eps / c) * (np.sum(wc) * s - wc)
            if z_loss:
                items = items + z_loss * wy * lse ** 2
                dz = dz + 2 * z_loss * wy * lse * s
            items = np.where(bad, np.nan, np.where(counted, items[:, 0], 0.0))
            dz = np.where(counted[:, None, :], dz, 0.0)
        if cap > 0:
            dz = dz * (1.0 - (zc / cap) ** 2)
    return items, dz


def _scaled(cf, dz):
    """cf_i * dz for each item, exactly 0 where dz is (an ignored item: its row stays 0
    when cf is NaN, the mean over no counted target, as torch's)."""
    n, _, d = dz.shape
    with np.errstate(invalid="ignore"):
        return np.where(dz == 0, 0.0, (cf * np.ones(n * d)).reshape(n, 1, d) * dz)


def _grad_into(gx, cf, dz):
    gx[...] = _scaled(cf, dz)


def ce_ext_class_fwd(x, t, w, ignore_index, eps, z_loss, cap, loss_out):
    return store(ext_items(x, t, w, False, ignore_index, eps, z_loss, cap)[0], loss_out)


def ce_ext_class_vg(x, t, w, ignore_index, eps, z_loss, cap, gscale, gvec, loss_out, gx):
    items, dz = ext_items(x, t, w, False, ignore_index, eps, z_loss, cap)
    _grad_into(gx, coef(gscale, gvec), dz)
    return store(items, loss_out)


def ce_ext_prob_fwd(x, p, w, eps, z_loss, cap, loss_out):
    return store(ext_items(x, p, w, True, 0, eps, z_loss, cap)[0], loss_out)


def ce_ext_prob_vg(x, p, w, eps, z_loss, cap, gscale, gvec, loss_out, gx):
    items, dz = ext_items(x, p, w, True, 0, eps, z_loss, cap)
    _grad_into(gx, coef(gscale, gvec), dz)
    return store(items, loss_out)


def _logits(x, wf, b, c, d):
    z = f64(x) @ f64(wf).T
    if b.size:
        z = z + f64(b)
    return z.reshape(x.shape[0], c, d)


def _linear_vg(x, wf, b, target, w, probs, c, d, ignore_index, eps, z_loss, cap, gscale,
               gvec, loss_out, gx, gw, gb):
    items, dz = ext_items(_logits(x, wf, b, c, d), target, w, probs, ignore_index, eps,
                          z_loss, cap)
    n = x.shape[0]
    g = _scaled(coef(gscale, gvec), dz).reshape(n, c * d)
    gx[...] = g @ f64(wf)
    gw[...] = g.T @ f64(x)
    if gb.size:
        gb[...] = g.sum(axis=0)
    return store(items, loss_out)


def linear_ce_class_fwd(x, wf, t, b, w, c, d, ignore_index, eps, z_loss, cap, chunk,
                        loss_out):
    items = ext_items(_logits(x, wf, b, c, d), t, w, False, ignore_index, eps, z_loss, cap)[0]
    return store(items, loss_out)


def linear_ce_class_vg(x, wf, t, b, w, c, d, ignore_index, eps, z_loss, cap, chunk, gscale,
                       gvec, loss_out, gx, gw, gb):
    return _linear_vg(x, wf, b, t, w, False, c, d, ignore_index, eps, z_loss, cap, gscale,
                      gvec, loss_out, gx, gw, gb)


def linear_ce_prob_fwd(x, wf, p, b, w, c, d, eps, z_loss, cap, chunk, loss_out):
    items = ext_items(_logits(x, wf, b, c, d), p, w, True, 0, eps, z_loss, cap)[0]
    return store(items, loss_out)


def linear_ce_prob_vg(x, wf, p, b, w, c, d, eps, z_loss, cap, chunk, gscale, gvec, loss_out,
                      gx, gw, gb):
    return _linear_vg(x, wf, b, p, w, True, c, d, 0, eps, z_loss, cap, gscale, gvec,
                      loss_out, gx, gw, gb)
