"""Reduction rules, in one place.

Kernels return the float64 sum of the per-item losses (and write the items when asked);
everything a reduction name means is decided here.
"""
import math

import numpy as np

REDUCTIONS = ("none", "mean", "sum")


def check_reduction(reduction, allowed=REDUCTIONS):
    if reduction not in allowed:
        raise ValueError(f"reduction: expected one of {', '.join(map(repr, allowed))}, "
                         f"got {reduction!r}")
    return reduction


def mean_of(total, denom):
    """total / denom with IEEE semantics instead of ZeroDivisionError: a mean over nothing
    is NaN, as in PyTorch. (Plain floats: np.errstate would cost microseconds per call.)"""
    total, denom = float(total), float(denom)
    if denom != 0.0:
        return total / denom
    if total == 0.0 or total != total:
        return math.nan
    return math.copysign(math.inf, total) * math.copysign(1.0, denom)


def reduce_total(total, reduction, denom, dtype):
    """The 0-d result of a 'sum' or 'mean' reduction, in the caller's dtype."""
    if reduction == "sum":
        return np.array(total, dtype)
    return np.array(total / denom if denom else mean_of(total, denom), dtype)


def grad_scale(reduction, denom, grad_output):
    """The factor d(result)/d(sum of items) times grad_output, for 'sum' and 'mean'."""
    g = float(grad_output)
    return mean_of(g, denom) if reduction == "mean" else g
