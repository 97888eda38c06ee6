"""Class-index and class-probability losses on x of shape (N, C, D): N samples, C classes,
D positions per sample (the K extra dims flattened; D = 1 for (N, C) input). Targets are
flat int64 of length N*D, or probabilities shaped like x; w is per class (empty = none)."""
import numpy as np

from ._common import coef, f64, store
from .margin import ieee


@ieee
def class_targets(t, w, n_classes, ignore_index, use_ignore):
    """(summed weight of counted targets, flat position of the first bad target or -1)."""
    t = t.reshape(-1)
    counted = t != ignore_index if use_ignore else np.ones(t.shape, bool)
    bad = counted & ((t < 0) | (t >= n_classes))
    if bad.any():
        return 0.0, int(np.argmax(bad))
    if w.size:
        return float(np.sum(f64(w)[t[counted]])), -1
    return float(np.count_nonzero(counted)), -1


def _log_softmax(x):
    x = f64(x)
    if x.shape[1] == 0:
        return x
    with np.errstate(invalid="ignore", over="ignore"):
        z = x - np.max(x, axis=1, keepdims=True)
        return z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))


def _picked(t, ignore_index, n, d, c):
    """Targets as (n, d) indices safe to gather with (0 where they do not count), which
    count, and which are out of range (their items are NaN, see target_stats)."""
    t = t.reshape(n, d)
    counted = t != ignore_index
    bad = counted & ((t < 0) | (t >= c))
    return np.where(counted & ~bad, t, 0), counted, bad


def _report(t, w, c, ignore_index, target_stats):
    """Fill a forward kernel's target_stats: (summed weight of the counted targets, first
    bad flat position or -1); see fastloss._engine."""
    target_stats[:] = class_targets(t, w, c, ignore_index, True)


def _class_weights(w, c):
    return f64(w) if w.size else np.ones(c)


def _nll(x, t, w, ignore_index):
    n, c, d = x.shape
    tt, counted, bad = _picked(t, ignore_index, n, d, c)
    wt = _class_weights(w, c)[tt] if c else np.zeros(tt.shape)
    xt = np.take_along_axis(f64(x), tt[:, None, :], axis=1)[:, 0, :] if c else np.zeros(tt.shape)
    return np.where(bad, np.nan, np.where(counted, -wt * xt, 0.0))


@ieee
def nll_fwd(x, t, w, ignore_index, loss_out, target_stats):
    _report(t, w, x.shape[1], ignore_index, target_stats)
    return store(_nll(x, t, w, ignore_index), loss_out)


@ieee
def nll_vg(x, t, w, ignore_index, gscale, gvec, loss_out, gx):
    n, c, d = x.shape
    tt, counted, _ = _picked(t, ignore_index, n, d, c)
    gx[...] = 0
    if c:
        wt = _class_weights(w, c)[tt]
        g = np.where(counted, -wt * (coef(gscale, gvec) * np.ones(n * d)).reshape(n, d), 0.0)
        np.put_along_axis(gx, tt[:, None, :], g[:, None, :].astype(gx.dtype), axis=1)
    return store(_nll(x, t, w, ignore_index), loss_out)


def _ce_class(x, t, w, ignore_index, eps):
    n, c, d = x.shape
    logp = _log_softmax(x)
    tt, counted, bad = _picked(t, ignore_index, n, d, c)
    wc = _class_weights(w, c)
    if c == 0:
        return logp, tt, counted, wc, np.where(bad, np.nan, 0.0)
    picked = np.take_along_axis(logp, tt[:, None, :], axis=1)[:, 0, :]
    loss = -wc[tt] * picked
    if eps > 0:
        # -sum_c w_c log p_c as torch forms it (a 0 log-probability times an infinite
        # weight is NaN there too); only counted items take it
        smooth = -np.sum(logp * wc[None, :, None], axis=1)
        loss = (1.0 - eps) * loss + (eps / c) * smooth
    return logp, tt, counted, wc, np.where(bad, np.nan, np.where(counted, loss, 0.0))


@ieee
def ce_class_fwd(x, t, w, ignore_index, label_smoothing, loss_out, target_stats):
    _report(t, w, x.shape[1], ignore_index, target_stats)
    return store(_ce_class(x, t, w, ignore_index, label_smoothing)[-1], loss_out)


@ieee
def ce_class_vg(x, t, w, ignore_index, label_smoothing, gscale, gvec, loss_out, gx):
    n, c, d = x.shape
    eps = label_smoothing
    logp, tt, counted, wc, loss = _ce_class(x, t, w, ignore_index, eps)
    if c:
        s = np.exp(logp)
        onehot = np.zeros_like(s)
        np.put_along_axis(onehot, tt[:, None, :], 1.0, axis=1)
        wt = wc[tt][:, None, :]
        # w_t s_c, less w_t at the target, as torch's log_softmax backward forms it: a
        # NaN or infinite weight reaches its own targets' rows only (never another
        # class's column), and an infinite w_t gives NaN at the target (inf - inf)
        grad = wt * s - np.where(onehot != 0, wt, 0.0)
        if eps > 0:
            grad = (1.0 - eps) * grad + (eps / c) * (np.sum(wc) * s - wc[None, :, None])
        cf = (coef(gscale, gvec) * np.ones(n * d)).reshape(n, 1, d)
        gx[...] = np.where(counted[:, None, :], cf * grad, 0.0)
    return store(loss, loss_out)


def _ce_prob(x, p, w, eps):
    n, c, d = x.shape
    logp = _log_softmax(x)
    p = f64(p)
    if eps > 0:
        p = p * (1.0 - eps) + eps / c
    wp = p * f64(w)[None, :, None] if w.size else p
    return logp, wp, -np.sum(logp * wp, axis=1)


@ieee
def ce_prob_fwd(x, p, w, label_smoothing, loss_out):
    return store(_ce_prob(x, p, w, label_smoothing)[-1], loss_out)


@ieee
def ce_prob_vg(x, p, w, label_smoothing, gscale, gvec, loss_out, gx):
    n, c, d = x.shape
    logp, wp, loss = _ce_prob(x, p, w, label_smoothing)
    cf = (coef(gscale, gvec) * np.ones(n * d)).reshape(n, 1, d)
    gx[...] = cf * (np.exp(logp) * np.sum(wp, axis=1, keepdims=True) - wp)
    return store(loss, loss_out)
