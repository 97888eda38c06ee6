"""Shared preparation for the losses: the pieces every family's validation uses."""
import math

import numpy as np

from .._engine import ClassTargets, Prepared, wrt
from .._reduction import check_reduction
from .._validate import broadcast_shape, contiguous, float_array, result_dtype

__all__ = ["Prepared", "check_reduction", "pointwise", "wrt"]


def pointwise(kernel, input, target, reduction, params=(), weights=(), weight_rule="broadcast",
              weight_mean=False, broadcast="warn", target_name="target", extra=(), dtype=None):
    """Prepare a loss computed element by element on input and target.

    The kernel gets (input, target, *extra, *weights, *params), all flat and broadcast to
    the loss shape.

    broadcast: how target and the extra arrays meet input: "warn" (broadcast, with torch's
    warning), "silent" (broadcast), "input" (must broadcast to input's shape without
    enlarging it) or "same" (shapes must match).
    extra: more (name, array) pairs treated like target.
    weights: (name, array or None) pairs, one kernel slot each (None passes an empty
    array: no weight). weight_rule: "broadcast" (broadcasts to the loss shape without
    enlarging it: torch's rule for BCE's weight and pos_weight) or "input" (exactly
    input's shape: torch's rule for l1/mse/huber). weight_mean: "mean" divides by the
    sum of the first weight, when given, instead of the element count.
    dtype: the result dtype, when it is not torch's promotion of all the arrays
    (hinge_embedding_loss returns input's dtype); the other arrays are cast to it.
    """
    check_reduction(reduction)
    x = float_array(input, "input")
    t = float_array(target, target_name, dtype=None if _is_float(target) else x.dtype)
    named = [("input", x), (target_name, t), *[(n, float_array(a, n)) for n, a in extra]]
    dtype = result_dtype(*[a for _, a in named]) if dtype is None else np.dtype(dtype)
    shape = x.shape
    for name, a in named[1:]:
        if broadcast == "same":
            if a.shape != x.shape:
                raise ValueError(f"{name}: expected the same shape as input {x.shape}, "
                                 f"got {a.shape}")
        elif broadcast == "input":
            if not _broadcasts_to(a.shape, x.shape):
                raise ValueError(f"{name}: expected a shape that broadcasts to input's "
                                 f"shape {x.shape}, got {a.shape}")
        else:
            shape = broadcast_shape(shape, a.shape, "input", name,
                                    warn=broadcast == "warn")
    shape = tuple(shape)
    arrays = [_flat(a, shape, dtype) for _, a in named]
    denom = float(math.prod(shape))
    denom_items = None
    for k, (name, a) in enumerate(weights):
        if a is None:
            arrays.append(np.empty(0, dtype))
            continue
        w = float_array(a, name, dtype=dtype)
        if weight_rule == "input" and w.shape != x.shape:
            raise ValueError(f"{name}: expected the same shape as input {x.shape}, "
                             f"got {w.shape}")
        if weight_rule == "broadcast" and not _broadcasts_to(w.shape, shape):
            raise ValueError(f"{name}: expected a shape that broadcasts to the loss shape "
                             f"{shape}, got {w.shape}")
        arrays.append(_flat(w, shape, dtype))
        if weight_mean and k == 0:
            denom = float(np.sum(w, dtype=np.float64))
            denom_items = arrays[-1]
    return Prepared(kernel, tuple(arrays), tuple(params), dtype, shape, reduction,
                    denom, (wrt(0, x, shape),), denom_items=denom_items)


def _broadcasts_to(shape, target_shape):
    try:
        return np.broadcast_shapes(tuple(shape), tuple(target_shape)) == tuple(target_shape)
    except ValueError:
        return False


def _is_float(a):
    return np.asarray(a).dtype.kind == "f" if not type(a).__module__.startswith("torch") \
        else a.is_floating_point()


def _flat(a, shape, dtype):
    if a.shape != tuple(shape):
        a = np.broadcast_to(a, shape)
    return contiguous(a, dtype).reshape(-1)
