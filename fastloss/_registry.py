"""The table of losses: one row per loss, filled by the ``@loss`` decorator where the loss
is defined (``fastloss/functional/*.py``). Tests, benchmarks, dispatch and docs iterate it;
nothing else keeps a list of losses."""
from __future__ import annotations

import functools
import importlib
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, ParamSpec, Sequence, cast

import numpy as np
from numpy.typing import NDArray

from . import _engine, _fast, _kernels, _weighted
from ._validate import LazyInput

P = ParamSpec("P")


@dataclass(frozen=True)
class Oracle:
    """The torch function (and ``torch.nn`` class) a loss mirrors: what the tests compare
    it with, the golden fixtures are made from and the benchmark times as its torch peer.

    Names, not objects: torch is only ever a test and benchmark oracle, and
    ``import fastloss`` must not import it. `arguments` maps fastloss's argument names to
    torch's where they differ (none do today: fastloss's names are torch's). fastloss's
    own keyword-only arguments (``LossSpec.extensions``) have no torch counterpart and
    are never passed to it.
    """
    function: str                      # "torch.nn.functional.cross_entropy"
    class_name: str | None = None      # "torch.nn.CrossEntropyLoss"
    arguments: tuple = ()              # ((fastloss name, torch name), ...)

    def resolve(self) -> Any:
        """The torch function itself (imports torch)."""
        return _resolve(self.function)

    def resolve_class(self) -> Any:
        """The ``torch.nn`` class (imports torch); None when the loss has none."""
        return None if self.class_name is None else _resolve(self.class_name)

    def argument(self, name: str) -> str:
        """torch's name for fastloss's argument `name`."""
        return dict(self.arguments).get(name, name)


def _resolve(dotted: str) -> Any:
    """``"torch.nn.functional.cross_entropy"`` -> the object: the longest importable
    module prefix, then attributes."""
    parts = dotted.split(".")
    for k in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:k]))
        except ImportError:
            continue
        for attr in parts[k:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(f"cannot import {dotted!r}")


# `oracle=` of @loss when not given: torch's function and class of the loss's own names
SAME_AS_TORCH = "same as torch"


@dataclass(frozen=True)
class LossSpec:
    name: str                 # the public name, torch's: "cross_entropy"
    class_name: str           # torch's module name: "CrossEntropyLoss"
    function: object          # the public function
    prepare: object           # same arguments -> _engine.Prepared
    differentiable: tuple     # names of the arguments it has a gradient for, in order
    kernels: tuple = field(default=())   # kernels it may dispatch to (fastloss._kernels names)
    extensions: tuple = field(default=())  # keyword-only arguments that are fastloss's own
                                           #   (not torch's): z_loss, softcap, exact_grad
    oracle: Oracle | None = None  # the torch twin; None for a loss torch does not have,
                                  #   which is checked against the reference instead
    batch_axes: tuple = field(default=())  # (argument, axis or None) where an argument's
                                           #   batch axis is not its first: None for one
                                           #   shared by every item (linear_weight)

    def batch_axis(self, name):
        """The axis of argument `name` along which items (samples) run, or None when the
        argument is shared by every item. What splits a call into batches (RunningLoss)
        and chunks (Dask). Default 0; per-class weights (``weight``/``pos_weight`` of
        fewer dimensions than the input) are recognised by the callers."""
        return dict(self.batch_axes).get(name, 0)

    def axis_of(self, name, value, input_ndim):
        """`batch_axis` for an actual argument: also None for a non-array, a 0-d array,
        and a ``weight``/``pos_weight`` of fewer dimensions than the input (broadcast
        along the classes, as bce's ``pos_weight`` of shape (C,))."""
        ndim = np.ndim(value) if hasattr(value, "shape") else 0
        if ndim == 0:
            return None
        if name in ("weight", "pos_weight") and ndim < input_ndim:
            return None
        axis = self.batch_axis(name)
        return axis if axis is None or axis < ndim else None

    @functools.cached_property
    def parameters(self):
        """The loss's own arguments, in order (not ``backend``, which is dispatch's, nor
        ``sample_weight``, which the public function applies); cached: value_and_grad
        reads it on every call, and inspect.signature costs ~50 us."""
        return tuple(p for p in inspect.signature(self.prepare).parameters
                     if p not in ("backend", "sample_weight"))


LOSSES: dict[str, LossSpec] = {}


def loss(class_name: str, differentiable: Sequence[str] = ("input",),
         kernels: Sequence[str] = (), extensions: Sequence[str] = (),
         oracle: Oracle | str | None = SAME_AS_TORCH,
         batch_axes: dict[str, int | None] | None = None, family: str | None = None
         ) -> Callable[[Callable[P, _engine.Prepared]], Callable[P, NDArray[Any]]]:
    """Turn `prepare(...) -> Prepared` into the public loss function and register it.

    The public function has prepare's signature, which declares the keyword-only
    ``backend: str | None = None`` (prepare ignores it: the public function takes it and
    dispatches on it), and returns the computed ndarray. Type checkers see exactly that:
    prepare's annotated parameters ``P`` and a result of ``numpy.ndarray``. (A prepare
    that does not declare ``backend`` still gets it in the runtime signature, but type
    checkers then reject ``backend=``: tests/test_typing.py fails until it is declared.)
    `extensions` names the keyword-only arguments that torch's function does not have.
    `oracle` is the torch twin (an `Oracle`); by default ``torch.nn.functional.<name>``
    and ``torch.nn.<class_name>``, the loss's own names; None for a loss that torch does
    not have (focal, z-loss ...): the tests then check it against the NumPy reference
    (float64 golden fixtures, finite differences, every backend) and the benchmark has
    no torch peer for it.
    `batch_axes` the arguments whose batch axis is not their first (see LossSpec).
    `family` is the kernel family of the loss (``fastloss._kernels.FAMILIES``), by default
    that of the module it is defined in (``fastloss.functional.<family>``): a kernel in
    `kernels` that ``fastloss._kernels`` does not declare is declared with that family's
    standard signature (``_kernels.STANDARD``, element-wise ``x t``); in a family without
    one it is a ValueError. (A misspelt standard kernel then fails
    tests/test_kernels.py: no backend provides it.)
    """
    def decorate(prepare: Callable[P, _engine.Prepared]) -> Callable[P, NDArray[Any]]:
        name = prepare.__name__
        home = family or _family_of_module(prepare.__module__)
        for k in kernels:
            if k not in _kernels.KERNELS:
                if home is None:   # a typo would only show as a LookupError at the first call
                    raise ValueError(f"kernels: {k!r} is not declared in fastloss._kernels "
                                     f"(and {name} names no family to declare it with)")
                _kernels.declare_standard(k, home)
        fast = _fast.FORWARD.get(name)   # the common small call's lean path (see _fast)

        @functools.wraps(prepare)
        def public(*args: Any, backend: str | None = None, sample_weight: Any = None,
                   **kwargs: Any) -> NDArray[Any]:
            if fast is not None and sample_weight is None and _fast.enabled:
                result = fast(args, kwargs, backend)
                if result is not None:
                    return result
            try:
                prep = prepare(*args, **kwargs)
            except LazyInput:          # a Dask array: a lazy graph of kernel calls
                from . import _dask
                return _dask.forward(LOSSES[name], args, kwargs, backend, sample_weight)
            if sample_weight is None:
                return _engine.forward(prep, backend)
            if type(sample_weight).__module__.startswith("dask"):   # NumPy in, Dask weights
                from . import _dask
                return _dask.forward(LOSSES[name], args, kwargs, backend, sample_weight)
            return _weighted.forward(prep, backend, sample_weight)

        public.__doc__ = _with_sample_weight_doc(public.__doc__)

        # What help(), inspect and typing.get_type_hints show at run time: prepare's
        # parameters (backend added if it does not declare it), returning an ndarray.
        sig = inspect.signature(prepare)
        params = list(sig.parameters.values())
        if "backend" not in sig.parameters:
            params.append(inspect.Parameter("backend", inspect.Parameter.KEYWORD_ONLY,
                                            default=None))
        public.__signature__ = sig.replace(  # type: ignore[attr-defined]
            parameters=params, return_annotation=np.ndarray)
        public.__annotations__ = {**prepare.__annotations__, "return": np.ndarray}
        twin: Oracle | None
        if isinstance(oracle, str):
            if oracle != SAME_AS_TORCH:
                raise ValueError(f"oracle: expected an Oracle or None, got {oracle!r}")
            twin = Oracle(f"torch.nn.functional.{name}", f"torch.nn.{class_name}")
        else:
            twin = oracle
        LOSSES[name] = LossSpec(name, class_name, public, prepare, tuple(differentiable),
                                tuple(kernels), tuple(extensions), twin,
                                tuple((batch_axes or {}).items()))
        return cast("Callable[P, NDArray[Any]]", public)
    return decorate


def _family_of_module(module: str) -> str | None:
    """``"fastloss.functional.elementwise"`` -> ``"elementwise"``; None for any module
    that is not a family module of fastloss.functional."""
    head, _, tail = module.rpartition(".")
    return tail if head == "fastloss.functional" and tail in _kernels.FAMILIES else None


SAMPLE_WEIGHT_DOC = """\
    sample_weight : array_like, optional, keyword-only
        Per-sample weights :math:`s_i` (fastloss's extension: PyTorch has none), float,
        broadcastable to the ``reduction="none"`` result's shape. "none" returns
        :math:`s_i \\ell_i`, "sum" :math:`\\sum_i s_i \\ell_i`, "mean" divides that by
        :math:`\\sum_i s_i u_i`, where :math:`u_i` is what item :math:`i` adds to the
        unweighted mean's denominator (1 per item; the class weight :math:`w_{y_i}` of a
        counted target and 0 for an ignored one in NLL/cross-entropy; the element weight
        where "mean" divides by ``weight.sum()``). Gradients honour it. Omitted, the
        call is exactly PyTorch's.
"""


def _with_sample_weight_doc(doc: str | None) -> str | None:
    """The docstring with ``sample_weight`` documented at the end of its Parameters (one
    text for every loss, so that it cannot drift between them)."""
    if not doc:
        return doc
    for anchor in ("\n    Returns\n    -------", "\n    Examples\n    --------"):
        at = doc.find(anchor)
        if at >= 0:
            head = doc[:at].rstrip("\n") + "\n"
            if "\n    Parameters\n    ----------" not in head:
                head += "\n    Parameters\n    ----------\n"
            return head + SAMPLE_WEIGHT_DOC + doc[at:]
    return doc.rstrip() + "\n\n    Parameters\n    ----------\n" + SAMPLE_WEIGHT_DOC


def spec_of(fn: Any) -> LossSpec:
    """The registry row of a public loss function (or of its name)."""
    key = fn if isinstance(fn, str) else getattr(fn, "__name__", None)
    spec = LOSSES.get(key) if isinstance(key, str) else None
    if spec is None or (not isinstance(fn, str) and spec.function is not fn):
        raise TypeError(f"expected a fastloss loss function, got {fn!r}")
    return spec
