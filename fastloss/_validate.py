"""Coercion, shape and dtype checks, and their error messages.

Every public loss validates here, once, before dispatch: kernels only ever see
contiguous arrays of the right dtype and plain Python numbers.
"""
import numbers
import warnings

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_INT64 = np.dtype(np.int64)
# Class-index targets: torch accepts int64 ("Long") and uint8 ("Byte"); we also accept the
# other fixed-width integer types, which hold the same values once widened to int64.
INDEX_KINDS = "iu"


class LazyInput(TypeError):
    """A Dask array met validation: the call is redone lazily by fastloss._dask (never
    materialised here)."""


def to_numpy(x, name):
    """`np.asarray` that also takes torch tensors (detached, on the CPU) and rejects objects."""
    if type(x) is np.ndarray and x.dtype.kind in "fiub":   # the common case, kept cheap
        return x
    if type(x).__module__.startswith("dask"):
        raise LazyInput(f"{name}: a Dask array here is only taken when the loss's input "
                        "(its first argument) is one too")
    if type(x).__module__.startswith("torch"):
        x = x.detach().cpu()
        if str(x.dtype) in ("torch.bfloat16",):  # numpy has no bfloat16
            x = x.float()
        x = x.numpy()
    arr = np.asarray(x)
    if arr.dtype == object or arr.dtype.kind in "SUVMmc":
        raise TypeError(f"{name}: expected a real numeric array, got dtype {arr.dtype}")
    return arr


def float_array(x, name, dtype=None):
    """A floating array for `name`: float32/float64 kept; float16 and other small floats
    computed in float32; integer and bool arrays accepted only when `dtype` is given
    (then cast to it, as torch's type promotion would for a target)."""
    arr = to_numpy(x, name)
    kind = arr.dtype.kind
    if kind == "f" or arr.dtype.name == "bfloat16":
        if arr.dtype not in FLOAT_DTYPES:
            arr = arr.astype(np.float32)
        if dtype is not None and arr.dtype != dtype:
            arr = arr.astype(dtype)
        return arr
    if dtype is not None and kind in "biu":
        return arr.astype(dtype)
    raise TypeError(f"{name}: expected a floating-point array (float32 or float64), "
                    f"got dtype {arr.dtype}")


def result_dtype(*arrays):
    """torch's promotion between float32 and float64: the wider wins."""
    return np.result_type(*[a.dtype for a in arrays if a.dtype.kind == "f"])


def index_array(x, name):
    """Class indices as int64; anything but an integer array is a TypeError."""
    arr = to_numpy(x, name)
    if arr.dtype == _INT64:   # the common case first (a dtype == dtype test is cheap)
        return arr
    if arr.dtype.kind not in INDEX_KINDS:
        raise TypeError(f"{name}: expected integer class indices (int64, or another integer "
                        f"type such as uint8), got dtype {arr.dtype}")
    if arr.dtype == np.uint64 and arr.size and arr.max() > np.iinfo(np.int64).max:
        raise IndexError(f"{name}: class index {arr.max()} is out of range")
    return arr.astype(np.int64)


def contiguous(arr, dtype=None):
    """A C-contiguous array of `dtype` (no copy when it already is one)."""
    if arr.flags.c_contiguous and (dtype is None or arr.dtype == dtype):
        return arr
    return np.ascontiguousarray(arr, dtype=dtype if dtype is not None else arr.dtype)


def same_shape(a, b, name_a, name_b, what="the same shape"):
    if a.shape != b.shape:
        raise ValueError(f"{name_b}: expected {what} as {name_a} {a.shape}, got {b.shape}")


def broadcast_shape(a, b, name_a, name_b, warn=True):
    """The broadcast of shapes a and b, warning like torch when they differ."""
    a, b = tuple(a), tuple(b)
    if a == b:
        return a
    try:
        shape = np.broadcast_shapes(a, b)
    except ValueError:
        raise ValueError(f"{name_b} of shape {b} cannot be broadcast with "
                         f"{name_a} of shape {a}") from None
    if warn:
        warnings.warn(f"Using a {name_b} size {b} that is different to the {name_a} size "
                      f"{a}. This will likely lead to incorrect results due to "
                      "broadcasting. Please ensure they have the same size.",
                      UserWarning, stacklevel=4)
    return shape


def real(x, name):
    if type(x) is float:
        return x
    if isinstance(x, bool) or not isinstance(x, numbers.Real):
        if isinstance(x, np.ndarray) and x.ndim == 0 and x.dtype.kind in "fiu":
            return float(x)
        raise TypeError(f"{name}: expected a real number, got {type(x).__name__}")
    return float(x)


def boolean(x, name):
    if not isinstance(x, (bool, np.bool_)):
        raise TypeError(f"{name}: expected True or False, got {x!r}")
    return bool(x)


def integer(x, name):
    if type(x) is int:
        return x
    if isinstance(x, bool) or not isinstance(x, numbers.Integral):
        raise TypeError(f"{name}: expected an integer, got {x!r}")
    return int(x)


_NO_WEIGHT = {d: np.empty(0, d) for d in FLOAT_DTYPES}


def class_weight(weight, n_classes, dtype, name="weight"):
    """A 1-D per-class weight of length n_classes, or an empty array when None."""
    if weight is None:
        return _NO_WEIGHT[dtype]
    w = float_array(weight, name, dtype=dtype)
    if w.ndim != 1 or w.shape[0] != n_classes:
        raise ValueError(f"{name}: expected a 1-D array of {n_classes} class weights, "
                         f"got shape {w.shape}")
    return contiguous(w, dtype)
