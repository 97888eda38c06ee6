"""Naive array-library versions of the losses: what a user writes by hand.

Each forward is written once against an array namespace ``xp`` (NumPy, or ``jax.numpy``
under ``jax.jit``), in the input's dtype, with the usual temporaries — e.g. cross-entropy
is ``log_softmax`` then pick. They are peers in the benchmark table, not references: the
benchmark checks them against fastloss's NumPy reference like any other implementation.
``VALUE_AND_GRAD`` holds hand-written NumPy gradients (JAX differentiates the forward).

Only the default call of each loss is covered (the one ``fastloss._bench.data`` builds:
no weights, default options); ``reduction`` may be "mean", "sum" or "batchmean".
"""
import numpy as np


def _reduce(xp, loss, reduction, batch=None):
    if reduction == "sum":
        return loss.sum()
    if reduction == "batchmean":
        return loss.sum() / batch
    if reduction == "mean":
        return loss.mean()
    raise NotImplementedError(f"naive losses support mean/sum/batchmean, not {reduction!r}")


def _scale(loss_shape, reduction, batch=None):
    """d(reduced)/d(item) for the hand-written gradients."""
    n = int(np.prod(loss_shape))
    return {"sum": 1.0, "mean": 1.0 / max(n, 1), "batchmean": 1.0 / max(batch or 1, 1)}[reduction]


def _log_softmax(xp, x):
    z = x - x.max(axis=1, keepdims=True)
    return z - xp.log(xp.exp(z).sum(axis=1, keepdims=True))


def cross_entropy(xp, x, t, reduction="mean"):
    logp = _log_softmax(xp, x)
    return _reduce(xp, -xp.take_along_axis(logp, t[:, None], axis=1)[:, 0], reduction)


def nll_loss(xp, x, t, reduction="mean"):
    return _reduce(xp, -xp.take_along_axis(x, t[:, None], axis=1)[:, 0], reduction)


def l1_loss(xp, x, t, reduction="mean"):
    return _reduce(xp, xp.abs(x - t), reduction)


def mse_loss(xp, x, t, reduction="mean"):
    d = x - t
    return _reduce(xp, d * d, reduction)


def smooth_l1_loss(xp, x, t, reduction="mean", beta=1.0):
    d = xp.abs(x - t)
    return _reduce(xp, xp.where(d < beta, 0.5 * d * d / beta, d - 0.5 * beta), reduction)


def huber_loss(xp, x, t, reduction="mean", delta=1.0):
    d = xp.abs(x - t)
    return _reduce(xp, xp.where(d < delta, 0.5 * d * d, delta * (d - 0.5 * delta)), reduction)


def binary_cross_entropy(xp, x, t, reduction="mean"):
    log_x = xp.maximum(xp.log(x), -100.0)
    log_1mx = xp.maximum(xp.log(1.0 - x), -100.0)
    return _reduce(xp, -(t * log_x + (1.0 - t) * log_1mx), reduction)


def binary_cross_entropy_with_logits(xp, x, t, reduction="mean"):
    # softplus(x) - x t: smooth at x = 0, so autodiff (JAX) gets sigmoid(x) - t there too
    return _reduce(xp, xp.logaddexp(0.0, x) - x * t, reduction)


def soft_margin_loss(xp, x, t, reduction="mean"):
    return _reduce(xp, xp.logaddexp(0.0, -t * x), reduction)


def hinge_embedding_loss(xp, x, t, reduction="mean", margin=1.0):
    loss = xp.where(t == 1, x, 0.0) + xp.where(t == -1, xp.maximum(margin - x, 0.0), 0.0)
    return _reduce(xp, loss, reduction)


def margin_ranking_loss(xp, x1, x2, t, reduction="mean", margin=0.0):
    return _reduce(xp, xp.maximum(-t * (x1 - x2) + margin, 0.0), reduction)


def kl_div(xp, x, t, reduction="mean"):
    pos = t > 0
    t_log_t = xp.where(pos, t * xp.log(xp.where(pos, t, 1.0)), 0.0)
    return _reduce(xp, t_log_t - t * x, reduction, batch=x.shape[0] if x.ndim else 1)


def poisson_nll_loss(xp, x, t, reduction="mean"):
    return _reduce(xp, xp.exp(x) - t * x, reduction)


def gaussian_nll_loss(xp, x, t, var, reduction="mean", eps=1e-6):
    v = xp.maximum(var, eps)
    d = x - t
    return _reduce(xp, 0.5 * (xp.log(v) + d * d / v), reduction)


def multi_margin_loss(xp, x, t, reduction="mean", margin=1.0):
    c = x.shape[1]
    xt = xp.take_along_axis(x, t[:, None], axis=1)
    hinge = xp.maximum(margin - xt + x, 0.0)
    # the target's own term is max(margin, 0) = margin: subtract it instead of masking
    return _reduce(xp, (hinge.sum(axis=1) - margin) / c, reduction)


def multilabel_soft_margin_loss(xp, x, t, reduction="mean"):
    ls = -xp.logaddexp(0.0, -x)          # log sigmoid(x)
    lms = -xp.logaddexp(0.0, x)          # log sigmoid(-x)
    return _reduce(xp, -(t * ls + (1.0 - t) * lms).mean(axis=1), reduction)


def cosine_embedding_loss(xp, x1, x2, t, reduction="mean", margin=0.0):
    eps = 1e-12
    cos = (x1 * x2).sum(axis=1) / xp.sqrt(((x1 * x1).sum(axis=1) + eps)
                                          * ((x2 * x2).sum(axis=1) + eps))
    loss = xp.where(t == 1, 1.0 - cos, 0.0) + xp.where(t == -1, xp.maximum(cos - margin, 0.0), 0.0)
    return _reduce(xp, loss, reduction)


def triplet_margin_loss(xp, a, p, n, reduction="mean", margin=1.0, eps=1e-6):
    d_ap = xp.sqrt(((a - p + eps) ** 2).sum(axis=1))
    d_an = xp.sqrt(((a - n + eps) ** 2).sum(axis=1))
    return _reduce(xp, xp.maximum(d_ap - d_an + margin, 0.0), reduction)


def triplet_margin_with_distance_loss(xp, a, p, n, reduction="mean", margin=1.0):
    # the default distance is torch's pairwise_distance, ||a - b + 1e-6||_2
    return triplet_margin_loss(xp, a, p, n, reduction=reduction, margin=margin)


FORWARD = {f.__name__: f for f in (
    cross_entropy, nll_loss, l1_loss, mse_loss, smooth_l1_loss, huber_loss,
    binary_cross_entropy, binary_cross_entropy_with_logits, soft_margin_loss,
    hinge_embedding_loss, margin_ranking_loss, kl_div, poisson_nll_loss, gaussian_nll_loss,
    multi_margin_loss, multilabel_soft_margin_loss, cosine_embedding_loss,
    triplet_margin_loss, triplet_margin_with_distance_loss)}


# --- hand-written NumPy gradients with respect to the first argument ------------------

def _ce_vg(x, t, reduction="mean"):
    logp = _log_softmax(np, x)
    n = x.shape[0]
    value = _reduce(np, -np.take_along_axis(logp, t[:, None], axis=1)[:, 0], reduction)
    g = np.exp(logp)
    g[np.arange(n), t] -= 1
    g *= x.dtype.type(_scale((n,), reduction))
    return value, g


def _nll_vg(x, t, reduction="mean"):
    n = x.shape[0]
    g = np.zeros_like(x)
    g[np.arange(n), t] = -_scale((n,), reduction)
    return nll_loss(np, x, t, reduction), g


def _elementwise(grad_of):
    def vg(x, *rest, reduction="mean"):
        name = grad_of.__name__[:-5]     # "<loss>_grad"
        value = FORWARD[name](np, x, *rest, reduction=reduction)
        return value, grad_of(x, *rest) * x.dtype.type(_scale(x.shape, reduction))
    return vg


def l1_loss_grad(x, t):
    return np.sign(x - t)


def mse_loss_grad(x, t):
    return 2 * (x - t)


def smooth_l1_loss_grad(x, t):
    return np.clip(x - t, -1.0, 1.0)


def huber_loss_grad(x, t):
    return np.clip(x - t, -1.0, 1.0)


def binary_cross_entropy_grad(x, t):
    return (x - t) / np.maximum((1 - x) * x, x.dtype.type(1e-12))


def binary_cross_entropy_with_logits_grad(x, t):
    return 1 / (1 + np.exp(-x)) - t


def soft_margin_loss_grad(x, t):
    return -t / (1 + np.exp(t * x))


def poisson_nll_loss_grad(x, t):
    return np.exp(x) - t


def gaussian_nll_loss_grad(x, t, var):
    return (x - t) / np.maximum(var, x.dtype.type(1e-6))


VALUE_AND_GRAD = {"cross_entropy": _ce_vg, "nll_loss": _nll_vg}
VALUE_AND_GRAD.update({g.__name__[:-5]: _elementwise(g) for g in (
    l1_loss_grad, mse_loss_grad, smooth_l1_loss_grad, huber_loss_grad,
    binary_cross_entropy_grad, binary_cross_entropy_with_logits_grad, soft_margin_loss_grad,
    poisson_nll_loss_grad, gaussian_nll_loss_grad)})
