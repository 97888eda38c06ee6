"""Likelihood and divergence losses on flat, already broadcast arrays x (input), t (target)
and, for the Gaussian NLL, v (variance). Flags arrive as 0/1 integers."""
import math

import numpy as np

from .._constants import HALF_LOG_2PI
from ._common import coef, f64, store


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
