"""The lean path of the common small call: cross_entropy / nll_loss on a C-contiguous
(N, C) float32/float64 NumPy array with int64 class indices, no class weight, no label
smoothing or extension, reduction "mean", "sum" or "none".

Why: for an 8x10 call the kernel is ~0.1 us and the general path's validation (a dozen
helper calls), the `Prepared` and `ClassTargets` records and the dispatch cost the rest of
~5 us. Here the arguments are only *recognised*, with exact type tests that hold exactly
when every check of the general path would pass with the same result; the kernel is then
called through the same dispatcher (`_dispatch.call`), with the same arguments, and
reduced by the same rule. Anything else -- another type or dtype, a weight, a view, an
unexpected keyword, a bad class index -- returns None and the call takes the general
path, which validates and raises exactly as before (a bad index is only seen after the
kernel ran: the call is then redone on the general path, which raises its IndexError).
So the semantics are not forked: ``enabled = False`` (``FASTLOSS_NO_FAST_PATH=1``)
turns the path off, and tests/test_fast_path.py checks both paths bit for bit and error
for error.

`FORWARD[name](args, kwargs, backend)` is the loss call (read by the registry's public
function); `PREPARE[name](args, kwargs)` the same recognition giving the `Prepared` that
value_and_grad then runs as usual (fastloss._grad).
"""
import os

import numpy as np

from . import _dispatch
from ._empty import EMPTY
from ._engine import ClassTargets, Prepared, Wrt
from ._reduction import reduce_total
from ._validate import _NO_WEIGHT

enabled = os.environ.get("FASTLOSS_NO_FAST_PATH") != "1"

_F32, _F64, _I64 = np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.int64)
_INT64_MIN, _INT64_MAX = -2 ** 63, 2 ** 63 - 1
_REDUCTIONS = ("mean", "sum", "none")
_NLL_KEYS = frozenset(("input", "target", "weight", "ignore_index", "reduction"))
_CE_KEYS = _NLL_KEYS | {"label_smoothing", "z_loss", "softcap"}


def _common(args, kwargs, keys):
    """(x, t, ignore_index, reduction) of a common-case class-loss call, else None.

    Each test stands for a check of the general path that then passes with nothing to
    convert: `type(...) is np.ndarray` (no subclass: masked arrays, matrices), the dtype
    objects themselves (a byte-swapped or otherwise unusual dtype is not them), C order
    (no copy would be made), an int ignore_index in int64's range, a reduction by name.
    """
    n_args = len(args)
    if n_args == 3:
        if args[2] is not None or "weight" in kwargs:
            return None
    elif n_args > 3 or kwargs.get("weight") is not None:
        return None
    if kwargs and not keys.issuperset(kwargs):
        return None
    # input and target, by position or by name (the torch bridge passes every argument
    # by name); given both ways, the general path raises
    if n_args >= 2:
        if "input" in kwargs or "target" in kwargs:
            return None
        x, t = args[0], args[1]
    elif n_args == 1:
        if "input" in kwargs:
            return None
        x, t = args[0], kwargs.get("target")
    else:
        x, t = kwargs.get("input"), kwargs.get("target")
    if type(x) is not np.ndarray or type(t) is not np.ndarray:
        return None
    dt = x.dtype
    if ((dt is not _F32 and dt is not _F64) or t.dtype is not _I64 or x.ndim != 2
            or t.ndim != 1 or t.shape[0] != x.shape[0]
            or not x.flags.c_contiguous or not t.flags.c_contiguous):
        return None
    ignore_index = kwargs.get("ignore_index", -100)
    if type(ignore_index) is not int or not _INT64_MIN <= ignore_index <= _INT64_MAX:
        return None
    reduction = kwargs.get("reduction", "mean")
    if type(reduction) is not str or reduction not in _REDUCTIONS:
        return None
    return x, t, ignore_index, reduction


def _ce_params(kwargs):
    """(label_smoothing,) when it is 0 and no extension is on (z_loss 0, softcap None),
    as cross_entropy's checks would leave them; else None."""
    eps = kwargs.get("label_smoothing", 0.0)
    z_loss = kwargs.get("z_loss", 0.0)
    if ((type(eps) is not float and type(eps) is not int) or eps != 0
            or (type(z_loss) is not float and type(z_loss) is not int) or z_loss != 0
            or kwargs.get("softcap") is not None):
        return None
    return (float(eps),)


def _forward(kernel, x, t, ignore_index, params, reduction, backend):
    """What _engine.forward computes from _class_prepare's Prepared, or None when a class
    index is bad (the general path then raises)."""
    dt = x.dtype
    n, c = x.shape
    loss_out = np.empty(n, dt) if reduction == "none" else EMPTY[dt]
    stats = np.empty(2)
    total, _ = _dispatch.call(kernel, (x.reshape(n, c, 1), t, _NO_WEIGHT[dt], ignore_index,
                                       *params, loss_out, stats), backend)
    wsum, bad = stats.tolist()
    if bad >= 0:
        return None
    if reduction == "none":
        return loss_out.reshape(n)
    return reduce_total(total, reduction, wsum, dt)


def _prepared(kernel, x, t, ignore_index, params, reduction):
    """The Prepared that _class_prepare builds for this call."""
    n, c = x.shape
    w = _NO_WEIGHT[x.dtype]
    return Prepared(kernel, (x.reshape(n, c, 1), t, w), (ignore_index, *params), x.dtype,
                    (n,), reduction, None, (Wrt(0, x.shape, x.shape, x.dtype),),
                    ClassTargets("target", t, w, c, ignore_index, True))


def nll_forward(args, kwargs, backend):
    common = _common(args, kwargs, _NLL_KEYS)
    if common is None:
        return None
    x, t, ignore_index, reduction = common
    return _forward("nll_fwd", x, t, ignore_index, (), reduction, backend)


def ce_forward(args, kwargs, backend):
    common = _common(args, kwargs, _CE_KEYS)
    if common is None:
        return None
    params = _ce_params(kwargs)
    if params is None:
        return None
    x, t, ignore_index, reduction = common
    return _forward("ce_class_fwd", x, t, ignore_index, params, reduction, backend)


def nll_prepare(args, kwargs):
    common = _common(args, kwargs, _NLL_KEYS)
    if common is None:
        return None
    x, t, ignore_index, reduction = common
    return _prepared("nll", x, t, ignore_index, (), reduction)


def ce_prepare(args, kwargs):
    common = _common(args, kwargs, _CE_KEYS)
    params = None if common is None else _ce_params(kwargs)
    if params is None:
        return None
    x, t, ignore_index, reduction = common
    return _prepared("ce_class", x, t, ignore_index, params, reduction)


FORWARD = {"cross_entropy": ce_forward, "nll_loss": nll_forward}
PREPARE = {"cross_entropy": ce_prepare, "nll_loss": nll_prepare}
