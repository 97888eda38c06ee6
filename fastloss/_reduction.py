"""Reduction rules, in one place.

Kernels return the float64 sum of the per-item losses (and write the items when asked);
everything a reduction name means is decided here.
"""
import numpy as np

REDUCTIONS = ("none", "mean", "sum")


def check_reduction(reduction, allowed=REDUCTIONS):
    if reduction not in allowed:
        raise ValueError(f"reduction: expected one of {', '.join(map(repr, allowed))}, "
                         f"got {reduction!r}")
    return reduction


def mean_of(total, denom):
    """total / denom with PyTorch's conventions: a mean over nothing is NaN, not an error."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.float64(total) / np.float64(denom)


def reduce_total(total, reduction, denom, dtype):
    """The 0-d result of a 'sum' or 'mean' reduction, in the caller's dtype."""
    value = mean_of(total, denom) if reduction == "mean" else np.float64(total)
    return np.asarray(value, dtype=dtype)


def grad_scale(reduction, denom, grad_output):
    """The factor d(result)/d(sum of items) times grad_output, for 'sum' and 'mean'."""
    g = np.float64(grad_output)
    return float(mean_of(g, denom)) if reduction == "mean" else float(g)
