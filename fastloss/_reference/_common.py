"""Shared pieces of the NumPy reference kernels: float64 math, the gradient coefficient
and the per-item store. The reference is written for clarity, not speed: it is the
fallback and the oracle every other backend is tested against."""
import numpy as np


def f64(a):
    return np.asarray(a, dtype=np.float64)


def coef(gscale, gvec):
    """c_i = gscale * gvec[i], or gscale alone when gvec is empty (see fastloss._engine)."""
    return gscale * f64(gvec) if gvec.size else gscale


def store(loss, loss_out):
    """Write the per-item losses when asked; return their float64 sum."""
    if loss_out.size:
        loss_out[...] = loss.reshape(-1)
    with np.errstate(invalid="ignore", over="ignore"):   # inf - inf is NaN: data, not an error
        return float(np.sum(loss))


def weighted(values, w):
    return values * f64(w) if w.size else values
