"""Coercion, shape and dtype checks, and their error messages.

Every public loss validates here, once, before dispatch: kernels only ever see
contiguous arrays of the right dtype and plain Python numbers.
"""
import numbers
import warnings

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_F32, _F64 = FLOAT_DTYPES
_INT64 = np.dtype(np.int64)
_INT64_MIN, _INT64_MAX = -2 ** 63, 2 ** 63 - 1
# Class-index targets: torch accepts int64 ("Long") and uint8 ("Byte"); we also accept the
# other fixed-width integer types, which hold the same values once widened to int64.
INDEX_KINDS = "iu"


class LazyInput(TypeError):
    """A Dask array met validation: the call is redone lazily by fastloss._dask (never
    materialised here)."""


def is_floating(dtype):
    """True for a real floating dtype: NumPy's (either byte order, float16 to longdouble)
    and the small floats of ml_dtypes (bfloat16, float8_*, float6_*, float4_*), which are
    what JAX's and ml_dtypes' arrays hold; NumPy gives most of those kind "V"."""
    return dtype.kind == "f" or (dtype.kind == "V" and dtype.type.__module__ == "ml_dtypes"
                                 and dtype.type.__name__.startswith(("float", "bfloat")))


def compute_dtype(dtype):
    """The dtype a floating input is computed in: float32 up to 32 bits (float16, bfloat16,
    float8 ...), float64 above (longdouble too, which the kernels do not have), native
    byte order either way."""
    return _F32 if dtype.itemsize <= 4 else _F64


def masked_error(name):
    return TypeError(
        f"{name}: masked arrays (numpy.ma) are not supported: their mask would be ignored. "
        "To leave items out, use ignore_index (class targets) or compute with "
        "reduction=\"none\" and apply the mask to the per-item losses yourself (then "
        "reduce them, and pass the mask as grad_output to value_and_grad); pass "
        f"numpy.ma.getdata({name}) if the mask does not matter")


def to_numpy(x, name):
    """`np.asarray` that also takes torch tensors (detached, on the CPU) and rejects objects,
    strings, complex numbers and masked arrays."""
    if type(x) is np.ndarray and x.dtype.kind in "fiub":   # the common case, kept cheap
        return x
    if type(x).__module__.startswith("dask"):
        raise LazyInput(f"{name}: a Dask array is taken (lazily) by the loss functions and "
                        "value_and_grad, not here; pass a NumPy array (e.g. its .compute())")
    if isinstance(x, np.ma.MaskedArray):
        raise masked_error(name)
    if type(x).__module__.startswith("torch"):
        x = x.detach().cpu()
        if x.is_floating_point() and x.element_size() < 4:
            x = x.float()   # numpy has no bfloat16 or float8; float16 is computed in float32
        x = x.numpy()
    arr = np.asarray(x)
    if arr.dtype.kind not in "fiub" and not is_floating(arr.dtype):
        raise TypeError(f"{name}: expected a real numeric array, got dtype {arr.dtype}")
    return arr


def float_array(x, name, dtype=None):
    """A floating array for `name`: native float32/float64 kept; any other float computed in
    `compute_dtype` (byte-swapped ones in their own precision, float16 and the ml_dtypes
    floats in float32, longdouble in float64); integer and bool arrays accepted only when
    `dtype` is given (then cast to it, as torch's type promotion would for a target)."""
    arr = to_numpy(x, name)
    adt = arr.dtype
    if adt.kind == "f" or is_floating(adt):
        if adt not in FLOAT_DTYPES:
            arr = arr.astype(compute_dtype(adt))
        if dtype is not None and arr.dtype != dtype:
            arr = arr.astype(dtype)
        return arr
    if dtype is not None and adt.kind in "biu":
        return arr.astype(dtype)
    raise TypeError(f"{name}: expected a floating-point array (float32 or float64), "
                    f"got dtype {adt}")


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
    if (arr.dtype.kind == "u" and arr.dtype.itemsize == 8 and arr.size   # either byte order
            and arr.max() > _INT64_MAX):
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
        if (isinstance(x, np.ndarray) and x.ndim == 0 and x.dtype.kind in "fiu"
                and not isinstance(x, np.ma.MaskedArray)):
            return float(x)
        raise TypeError(f"{name}: expected a real number, got {type(x).__name__}")
    try:
        return float(x)
    except OverflowError:   # an int beyond float64's range
        raise ValueError(f"{name}: expected a real number within float64's range, "
                         f"got {x}") from None


def grad_output_scalar(g, reduction):
    """grad_output of a reduced loss as a Python float: a real number, a 0-d array or a
    0-d tensor (not a bool, a string, a complex number or a masked array)."""
    if type(g) is float or type(g) is int:
        return float(g)
    if isinstance(g, np.ma.MaskedArray):
        raise masked_error("grad_output")
    if isinstance(g, numbers.Real) and not isinstance(g, bool):
        return real(g, "grad_output")
    what = f"a real number for reduction={reduction!r}"
    arr = None
    if not isinstance(g, (bool, np.bool_, str, bytes)):
        try:
            arr = to_numpy(g, "grad_output")
        except TypeError:
            pass
    if arr is not None and arr.ndim != 0:
        raise ValueError(f"grad_output: expected {what}, got shape {arr.shape}")
    if arr is None or arr.dtype.kind == "b":
        got = (repr(g)[:40] if isinstance(g, (str, bytes, bool, np.bool_)) else
               type(g).__name__ + (f" of dtype {g.dtype}" if hasattr(g, "dtype") else ""))
        raise TypeError(f"grad_output: expected {what}, got {got}")
    return float(arr)


def grad_output_array(g, shape, dtype):
    """grad_output of an unreduced loss: a real (or integer, or bool: a mask) array of the
    loss's shape, as a flat contiguous array of `dtype`."""
    arr = float_array(g, "grad_output", dtype=dtype)
    if arr.shape != shape:
        raise ValueError(f"grad_output: expected shape {shape} (the shape of the unreduced "
                         f"loss), got {arr.shape}")
    return contiguous(arr, dtype).reshape(-1)


def boolean(x, name):
    if not isinstance(x, (bool, np.bool_)):
        raise TypeError(f"{name}: expected True or False, got {x!r}")
    return bool(x)


def integer(x, name):
    if type(x) is not int:
        if isinstance(x, bool) or not isinstance(x, numbers.Integral):
            raise TypeError(f"{name}: expected an integer, got {x!r}")
        x = int(x)
    if not _INT64_MIN <= x <= _INT64_MAX:   # kernels take it as int64
        raise ValueError(f"{name}: expected an integer in the int64 range "
                         f"[-2**63, 2**63 - 1], got {x}")
    return x


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
