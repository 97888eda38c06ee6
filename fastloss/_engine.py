"""Runs a validated loss call on a backend: the forward and the fused value-and-gradient.

The kernel contract, shared by every backend (the NumPy reference defines it):

    <kernel>_fwd(*arrays, *params, loss_out[, target_stats]) -> float
    <kernel>_vg(*arrays, *params, gscale, gvec, loss_out, *grad_outs) -> float

`arrays` are C-contiguous, `params` plain Python numbers. Both return the float64 sum of
the per-item losses. `loss_out` is a 1-D array of one slot per item (written) or of length
0 (not written). `_vg` also writes into each `grad_outs[k]` (shaped like the k-th
differentiable array) the gradient of sum_i c_i * loss_i, where c_i = gscale * gvec[i],
or c_i = gscale when gvec has length 0. Kernels never see reduction names or axes.

Class-index targets cannot be range-checked by a kernel (it cannot raise, least of all in
a parallel loop): an out-of-range target makes its item NaN and is never used to index.
Where a loss declares it (`ClassTargets.in_forward`), the `_fwd` kernel counts the targets
in the same pass and fills `target_stats` (float64[2]: the summed weight of the counted
targets, which "mean" divides by, and the first bad flat position or -1), checked here
after it returns: one pass, one call. Otherwise, and before every `_vg` kernel (whose
gradient scale needs that weight sum, and which must not write into `out=` for a call
that raises), the `class_targets` kernel checks them first.
"""
import operator
from typing import NamedTuple

import numpy as np

from . import _dispatch
from ._empty import EMPTY as _EMPTY
from ._reduction import grad_scale, reduce_total
from ._validate import grad_output_array, grad_output_scalar, masked_error



class ClassTargets(NamedTuple):
    """Class indices a loss call must range-check (see the module docstring)."""
    name: str              # the argument's name, for the error message
    target: np.ndarray     # flat int64
    weight: np.ndarray     # per-class weights (empty: none)
    n_classes: int
    ignore_index: object   # an int, or None when no value is ignored
    in_forward: bool = False   # the _fwd kernel counts them itself (fills target_stats)


class Wrt(NamedTuple):
    """A differentiable argument of a loss call (see `wrt`)."""
    index: int           # its position in Prepared.arrays
    shape: tuple         # its shape as passed
    full: tuple          # the broadcast shape the kernel sees it as
    dtype: np.dtype      # the dtype it is computed in on its own, which its gradient is
                         #   returned in (torch's autograd does so when float32 and float64
                         #   inputs are mixed and promote)
    aligned: tuple = None  # its shape aligned for that broadcast, when it differs from the
                           #   passed shape (a var of shape (N,) used as (N, 1))


def wrt(index, array, full=None, shape=None, aligned=None):
    """The `Wrt` of the validated (not yet promoted) `array`, found at `index` in the
    kernel's arrays and seen there as `full` (default: its own shape)."""
    shape = array.shape if shape is None else tuple(shape)
    return Wrt(index, shape, shape if full is None else tuple(full), array.dtype, aligned)


class Prepared(NamedTuple):
    """A loss call after validation, ready for any backend."""
    kernel: str          # kernel name (fastloss._kernels): "<kernel>_fwd" / "<kernel>_vg"
    arrays: tuple        # C-contiguous arrays, passed first
    params: tuple        # plain numbers, passed next
    dtype: np.dtype      # result dtype
    item_shape: tuple    # shape of the reduction="none" result
    reduction: str       # "none" | "sum" | "mean"
    denom: float         # what "mean" divides the sum by (0 gives NaN)
    wrt: tuple           # a Wrt per differentiable argument, in the registry's order
    targets: ClassTargets = None  # class indices to range-check; a denom of None becomes
                                  #   the summed weight of the counted targets
    denom_items: np.ndarray = None  # flat per-item terms whose sum is denom (l1/mse's
                                    #   weight), for sample_weight; None: denom/n_items each

    @property
    def n_items(self):
        n = 1
        for s in self.item_shape:
            n *= s
        return n


def check_targets(prep, backend=None):
    """Range-check class indices with the `class_targets` kernel; return the denominator
    of "mean" (see `_denominator`)."""
    t = prep.targets
    use_ignore = t.ignore_index is not None
    (wsum, bad), _ = _dispatch.call(
        "class_targets", (t.target, t.weight, t.n_classes,
                          t.ignore_index if use_ignore else 0, use_ignore), backend)
    return _denominator(prep, wsum, bad)


def _denominator(prep, wsum, bad):
    """Raise IndexError for a bad target (`bad` >= 0: its flat position); else the
    denominator of "mean": prep.denom, or when that is None the summed weight `wsum`."""
    if bad >= 0:
        t = prep.targets
        value = int(t.target.reshape(-1)[bad])
        extra = (f" and is not the ignored value {t.ignore_index}"
                 if t.ignore_index is not None else "")
        raise IndexError(f"{t.name}: class index {value} at flat position {bad} is out of "
                         f"range [0, {t.n_classes}){extra}")
    return wsum if prep.denom is None else prep.denom


def forward(prep, backend=None):
    # (kept lean: for a tiny call this function and its callees are the whole cost)
    targets, reduction = prep.targets, prep.reduction
    loss_out = np.empty(prep.n_items, prep.dtype) if reduction == "none" else _EMPTY[prep.dtype]
    if targets is not None and targets.in_forward:
        stats = np.empty(2)
        total, _ = _dispatch.call(prep.kernel + "_fwd",
                                  (*prep.arrays, *prep.params, loss_out, stats), backend)
        wsum, bad = stats.tolist()
        denom = _denominator(prep, wsum, int(bad))
    else:
        denom = prep.denom if targets is None else check_targets(prep, backend)
        total, _ = _dispatch.call(prep.kernel + "_fwd", (*prep.arrays, *prep.params, loss_out),
                                  backend)
    if reduction == "none":
        return loss_out.reshape(prep.item_shape)
    return reduce_total(total, reduction, denom, prep.dtype)


def input_grad_dtypes(prep, which):
    """The dtypes of the gradients of prep.wrt[which]: each input's own (Wrt.dtype), as
    torch's autograd gives them when float32 and float64 inputs are mixed; None in the
    common case where all are prep.dtype (value_and_grad's `grad_dtypes`)."""
    dtypes = [prep.wrt[p].dtype for p in which]
    return None if all(dt == prep.dtype for dt in dtypes) else dtypes


def value_and_grad(prep, which, grad_output=None, out=None, backend=None, grad_dtypes=None,
                   names=None, raw_total=False):
    """Loss value and the gradients of the differentiable arguments numbered `which`
    (positions in prep.wrt). `out` is None or one array per entry of `which`: it may
    overlap any argument (the gradient is then computed into a temporary and copied), but
    not another entry of `out` (ValueError).
    `grad_dtypes` (one per entry of `which`, default prep.dtype) is the dtype each gradient
    is returned in: an input's own, as torch's autograd does when float32 and float64
    inputs are mixed (the kernel computes in the promoted prep.dtype). `names` (one per
    entry of prep.wrt) name the differentiable arguments in error messages. With
    `raw_total` a reduced call returns the kernel's float64 sum instead of the 0-d result
    (a part of a larger sum: fastloss._dask's blocks)."""
    if prep.targets is not None:
        prep = prep._replace(denom=check_targets(prep, backend))
    dtype = prep.dtype
    if prep.reduction == "none":
        loss_out = np.empty(prep.n_items, dtype=dtype)
        gscale = 1.0
        gvec = (np.ones(prep.n_items, dtype=dtype) if grad_output is None
                else grad_output_array(grad_output, prep.item_shape, dtype))
        reads = (*prep.arrays, gvec)
    else:
        loss_out = _EMPTY[dtype]
        gscale = grad_scale(prep.reduction, prep.denom,
                            1.0 if grad_output is None else
                            grad_output_scalar(grad_output, prep.reduction))
        gvec = _EMPTY[dtype]
        reads = prep.arrays

    outs = [None] * len(prep.wrt)
    out_dtypes = [dtype] * len(prep.wrt)
    for k, user_out, gdt in zip(which, out if out is not None else [None] * len(which),
                                grad_dtypes or [dtype] * len(which)):
        outs[k], out_dtypes[k] = user_out, gdt
    if out is not None:
        for w, user_out, gdt in zip(prep.wrt, outs, out_dtypes):
            if user_out is not None:
                _check_out(user_out, w.shape, gdt)
        if len(out) > 1:
            _check_disjoint(out, which, names or [f"argument {k}" for k in range(len(outs))])
    grad_bufs = []
    for w, user_out in zip(prep.wrt, outs):
        canonical = prep.arrays[w.index]
        # The kernel writes a gradient straight into out= only when out cannot overlap
        # anything it reads (the arrays, grad_output): else into a temporary, copied after,
        # so that out= may be any argument, as with NumPy's ufuncs.
        if (user_out is not None and user_out.dtype == dtype and user_out.flags.c_contiguous
                and canonical.size == user_out.size
                and not any(np.may_share_memory(user_out, a) for a in reads)):
            grad_bufs.append(user_out.reshape(canonical.shape))   # a view: written in place
        else:
            grad_bufs.append(np.empty(canonical.shape, dtype=dtype))

    total, _ = _dispatch.call(
        prep.kernel + "_vg",
        (*prep.arrays, *prep.params, gscale, gvec, loss_out, *grad_bufs), backend)

    if prep.reduction == "none":
        value = loss_out.reshape(prep.item_shape)
    elif raw_total:
        value = float(total)
    else:
        value = reduce_total(total, prep.reduction, prep.denom, dtype)
    grads = []
    for k in which:
        w, buf, user_out = prep.wrt[k], grad_bufs[k], outs[k]
        grad = _sum_to(buf, w.aligned or w.shape, w.full).reshape(w.shape)
        if user_out is not None:
            if not np.may_share_memory(grad, user_out):
                np.copyto(user_out, grad)
            grad = user_out
        elif out_dtypes[k] != dtype:
            grad = grad.astype(out_dtypes[k])
        grads.append(grad)
    return value, grads


def _check_out(out, shape, dtype):
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out: expected a NumPy array, got {type(out).__name__}")
    if isinstance(out, np.ma.MaskedArray):
        raise masked_error("out")
    if out.shape != tuple(shape) or (out.dtype != dtype   # either byte order will do
                                     and out.dtype.newbyteorder("=") != dtype):
        raise ValueError(f"out: expected an array of shape {tuple(shape)} and dtype {dtype}, "
                         f"got shape {out.shape} and dtype {out.dtype}")
    if not out.flags.writeable:
        raise ValueError("out: the array is read-only")


def _check_disjoint(outs, which, names):
    """Two gradients written into overlapping memory would corrupt each other."""
    for j in range(1, len(outs)):
        for i in range(j):
            a, b = outs[i], outs[j]
            if np.may_share_memory(a, b) and np.shares_memory(a, b):
                raise ValueError(f"out: the buffers for the gradients of {names[which[i]]} "
                                 f"and {names[which[j]]} overlap in memory; give each "
                                 "gradient its own array")


def _sum_to(grad, shape, full):
    """Undo broadcasting: sum `grad`, laid out as `full`, down to `shape`."""
    shape, full = tuple(shape), tuple(full)
    if shape == full:
        return grad.reshape(shape)
    g = grad.reshape(full)
    lead = len(full) - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, s in enumerate(shape)
                                      if s == 1 and full[lead + i] != 1)
    return g.sum(axis=axes, keepdims=True).reshape(shape)


def argnums_to_positions(spec, argnums):
    """Map argnums (an index or name, or a tuple of them) to positions in spec.differentiable."""
    single = not isinstance(argnums, (tuple, list))
    items = (argnums,) if single else tuple(argnums)
    params = spec.parameters
    expected = (f"{spec.name} is differentiable in {', '.join(spec.differentiable)} (by name, "
                "or by position among its arguments)")
    if not items:
        raise ValueError(f"argnums: expected at least one argument; {expected}")
    positions = []
    for a in items:
        if isinstance(a, str):
            name = a
        else:
            try:
                i = None if isinstance(a, bool) else operator.index(a)
            except TypeError:
                i = None
            if i is None:
                raise TypeError(f"argnums: expected an int position or a str name, or a "
                                f"tuple of them; {expected}; got {a!r}")
            name = params[i] if -len(params) <= i < len(params) else None
        if name not in spec.differentiable:
            raise ValueError(f"argnums: {expected}, not in {a!r}")
        if spec.differentiable.index(name) in positions:
            raise ValueError(f"argnums: {name} is given twice; {expected}")
        positions.append(spec.differentiable.index(name))
    return single, tuple(positions)
