"""Shared preparation for the losses: the pieces every family's validation uses."""
import math

import numpy as np

from .._engine import Prepared
from .._reduction import check_reduction
from .._validate import broadcast_shape, contiguous, float_array, result_dtype

__all__ = ["Prepared", "check_reduction", "pointwise"]


def pointwise(kernel, input, target, reduction, params=(), weight=None, weight_mean=False,
              broadcast="warn", target_name="target", extra=(), weights=None, dtype=None):
    """Prepare a loss computed element by element on input and target.

    broadcast: "warn" (broadcast with torch's warning), "silent" or "same" (shapes must
    match). weight: same shape as input (torch's rule) or None; weight_mean: "mean" divides
    by the summed weight instead of the element count. extra: more (name, array) pairs
    broadcast with input and target and passed to the kernel after them.

    weights: None (the single ``weight`` slot above), or a tuple of (name, array or None)
    that replaces it: each array must broadcast to the loss shape without enlarging it
    (torch's rule for BCE's ``weight`` and ``pos_weight``) and is passed to the kernel,
    in order, after the extra arrays; None passes an empty array. ``weights=()`` gives the
    kernel no weight slot at all.

    broadcast="input": the other arrays must broadcast to input's shape, silently, without
    enlarging it (torch's rule where the output is made like input). dtype: the result
    dtype, when it is not torch's promotion of all the arrays (hinge_embedding_loss, whose
    target is only compared, returns input's dtype); the other arrays are cast to it.
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
    arrays = [_flat(a, shape, dtype) for _, a in named]
    denom = float(math.prod(shape))
    if weights is not None:
        for name, a in weights:
            arrays.append(np.empty(0, dtype) if a is None
                          else _flat(_broadcast_weight(a, name, shape, dtype), shape, dtype))
    elif weight is not None:
        w = float_array(weight, "weight", dtype=dtype)
        if w.shape != x.shape:
            raise ValueError(f"weight: expected the same shape as input {x.shape}, "
                             f"got {w.shape}")
        if weight_mean:
            denom = float(np.sum(w, dtype=np.float64))
        arrays.append(_flat(w, shape, dtype))
    else:
        arrays.append(np.empty(0, dtype))
    return Prepared(kernel, tuple(arrays), tuple(params), dtype, tuple(shape), reduction,
                    denom, ((0, x.shape, tuple(shape)),))


def _broadcast_weight(a, name, shape, dtype):
    """A weight that must broadcast to the loss shape `shape` without enlarging it."""
    w = float_array(a, name, dtype=dtype)
    try:
        ok = np.broadcast_shapes(w.shape, tuple(shape)) == tuple(shape)
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"{name}: expected a shape that broadcasts to the loss shape "
                         f"{tuple(shape)}, got {w.shape}")
    return w


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
