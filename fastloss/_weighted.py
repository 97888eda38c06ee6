"""Per-sample weights (``sample_weight=``, fastloss's extension: torch has none), and the
(sum, denominator) parts of a reduction that the streaming accumulator adds up.

Built on the kernel contract (see `_engine`) without any kernel of its own: a weighted
call runs the loss unreduced, so the kernel writes the per-item losses l_i (one slot per
item: N values, not N x C) in its single pass over the inputs, and

    "sum"  = sum_i s_i l_i
    "mean" = sum_i s_i l_i / sum_i s_i u_i

where u_i is what item i adds to the unweighted denominator: w_{y_i} for a counted class
target (0 for an ignored one) of nll_loss/cross_entropy, the element weight of l1/mse's
``weight``, else denom / n_items (1 for a plain mean, 1/C for kl_div's batchmean over
(N, C)). The gradient is the kernel's gradient of sum_i c_i l_i with c_i = s_i times the
reduction's factor: again one pass, with gvec = s * grad_output.
"""
from __future__ import annotations

import numpy as np

from . import _engine
from ._reduction import mean_of
from ._validate import float_array, grad_output_array, grad_output_scalar

_F64 = np.dtype(np.float64)


def item_weights(prep, sample_weight):
    """`sample_weight` as flat float64, one per item of the reduction="none" result."""
    s = float_array(sample_weight, "sample_weight", dtype=_F64)
    shape = tuple(prep.item_shape)
    try:
        ok = np.broadcast_shapes(s.shape, shape) == shape
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"sample_weight: expected a shape that broadcasts to the unreduced "
                         f"loss's shape {shape}, got {s.shape}")
    return np.ascontiguousarray(np.broadcast_to(s, shape), dtype=_F64).reshape(-1)


def denominator_units(prep):
    """u_i (see the module docstring) as a flat float64 array, or a float when every item
    adds the same. Class targets must have been range-checked already."""
    t = prep.targets
    if prep.denom is None:       # nll_loss / cross_entropy with class indices
        target = t.target.reshape(-1)
        counted = (target != t.ignore_index) if t.ignore_index is not None else None
        if t.weight.size:
            safe = target if counted is None else np.where(counted, target, 0)
            units = t.weight[safe].astype(_F64)
            return units if counted is None else np.where(counted, units, 0.0)
        return 1.0 if counted is None else counted.astype(_F64)
    if prep.denom_items is not None:
        return np.asarray(prep.denom_items, _F64)
    n = prep.n_items
    return prep.denom / n if n else 0.0


def weighted_denominator(prep, s):
    units = denominator_units(prep)
    if isinstance(units, float):
        return units * float(np.sum(s))
    return float(np.dot(s, units))


def _items(prep, backend):
    """The per-item losses (flat, prep.dtype) of one forward pass; range-checks targets."""
    return _engine.forward(prep._replace(reduction="none"), backend).reshape(-1)


def parts(prep, backend=None, sample_weight=None, want_items=False):
    """(total, denominator, items) of a "sum"/"mean" call: its float64 sum and the
    denominator "mean" divides it by (what adds up across batches), and, when asked (or
    weighted), the flat per-item losses. One kernel call; it mirrors `_engine.forward`."""
    if sample_weight is None:
        loss_out = (np.empty(prep.n_items, prep.dtype) if want_items
                    else _engine._EMPTY[prep.dtype])
        items = loss_out if want_items else None
        t = prep.targets
        if t is not None and t.in_forward:
            stats = np.empty(2)
            total, _ = _engine._dispatch.call(
                prep.kernel + "_fwd", (*prep.arrays, *prep.params, loss_out, stats), backend)
            wsum, bad = stats.tolist()
            return float(total), float(_engine._denominator(prep, wsum, int(bad))), items
        denom = prep.denom if t is None else _engine.check_targets(prep, backend)
        total, _ = _engine._dispatch.call(prep.kernel + "_fwd",
                                          (*prep.arrays, *prep.params, loss_out), backend)
        return float(total), float(denom), items
    s = item_weights(prep, sample_weight)
    items = _items(prep, backend)
    return float(np.dot(s, items)), weighted_denominator(prep, s), s * items


def _reduce(reduction, total, denom, dtype):
    if reduction == "sum":
        return np.array(total, dtype)
    return np.array(mean_of(total, denom), dtype)


def forward(prep, backend, sample_weight):
    """A loss call with per-sample weights (see the module docstring)."""
    s = item_weights(prep, sample_weight)
    items = _items(prep, backend)
    if prep.reduction == "none":
        return (s * items).astype(prep.dtype).reshape(prep.item_shape)
    return _reduce(prep.reduction, float(np.dot(s, items)), weighted_denominator(prep, s),
                   prep.dtype)


def value_and_grad(prep, which, grad_output, out, backend, grad_dtypes, sample_weight,
                   names=None, raw_total=False, denom=None):
    """`_engine.value_and_grad` with per-sample weights: the unreduced call with
    grad_output = s * (the reduction's factor), then the weighted reduction of its items.
    `denom` (default: this call's own) is what "mean" divides by: a Dask block passes the
    whole array's."""
    s = item_weights(prep, sample_weight)
    if prep.targets is not None:
        _engine.check_targets(prep, backend)   # before the denominator indexes weights
    if prep.reduction == "none":
        denom = None
        gvec = s if grad_output is None else s * grad_output_array(
            grad_output, tuple(prep.item_shape), _F64)
    else:
        g = 1.0 if grad_output is None else grad_output_scalar(grad_output, prep.reduction)
        if denom is None:
            denom = weighted_denominator(prep, s)
        factor = mean_of(g, denom) if prep.reduction == "mean" else g
        gvec = s * factor
    items, grads = _engine.value_and_grad(
        prep._replace(reduction="none"), which, gvec.reshape(prep.item_shape), out, backend,
        grad_dtypes, names)
    items = items.reshape(-1)
    if prep.reduction == "none":
        value = (s * items).astype(prep.dtype).reshape(prep.item_shape)
    elif raw_total:
        value = float(np.dot(s, items))
    else:
        value = _reduce(prep.reduction, float(np.dot(s, items)), denom, prep.dtype)
    return value, grads


def denominator(prep, backend=None, sample_weight=None):
    """The denominator "mean" divides by, without the loss: it reads the targets and
    weights only (never the logits). Range-checks class targets."""
    if prep.targets is not None:
        denom = _engine.check_targets(prep, backend)
    else:
        denom = prep.denom
    if sample_weight is None:
        return float(denom)
    return weighted_denominator(prep, item_weights(prep, sample_weight))
