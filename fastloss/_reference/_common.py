"""Shared pieces of the NumPy reference kernels: float64 math, the gradient coefficient
and the per-item store. The reference is written for clarity, not speed: it is the
fallback and the oracle every other backend is tested against."""
import functools

import numpy as np


def ieee(kernel):
    """Run a kernel with NumPy's floating-point warnings off: NaN and infinities are data
    here, propagated as IEEE arithmetic (and PyTorch) propagate them. The reference's one
    policy: ``fastloss._reference`` applies it to every kernel of the contract, so that
    no kernel needs an ``np.errstate`` of its own."""
    @functools.wraps(kernel)
    def run(*args):
        with np.errstate(all="ignore"):
            return kernel(*args)
    return run


def f64(a):
    return np.asarray(a, dtype=np.float64)


def coef(gscale, gvec):
    """c_i = gscale * gvec[i], or gscale alone when gvec is empty (see fastloss._engine)."""
    return gscale * f64(gvec) if gvec.size else gscale


def store(loss, loss_out):
    """Write the per-item losses when asked; return their float64 sum."""
    if loss_out.size:
        loss_out[...] = loss.reshape(-1)
    return float(np.sum(loss))


def sigmoid(z):
    """1 / (1 + exp(-z)) without overflow for either sign (exp only of -|z|); NaN stays
    NaN."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def weighted(values, w):
    return values * f64(w) if w.size else values
