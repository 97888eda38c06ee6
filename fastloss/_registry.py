"""The table of losses: one row per loss, filled by the ``@loss`` decorator where the loss
is defined (``fastloss/functional/*.py``). Tests, benchmarks, dispatch and docs iterate it;
nothing else keeps a list of losses."""
from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, ParamSpec, Sequence, cast

import numpy as np
from numpy.typing import NDArray

from . import _engine, _kernels

P = ParamSpec("P")


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

    @functools.cached_property
    def parameters(self):
        """The loss's own arguments, in order (not ``backend``, which is dispatch's);
        cached: value_and_grad reads it on every call, and inspect.signature costs ~50 us."""
        return tuple(p for p in inspect.signature(self.prepare).parameters if p != "backend")


LOSSES: dict[str, LossSpec] = {}


def loss(class_name: str, differentiable: Sequence[str] = ("input",),
         kernels: Sequence[str] = (), extensions: Sequence[str] = ()
         ) -> Callable[[Callable[P, _engine.Prepared]], Callable[P, NDArray[Any]]]:
    """Turn `prepare(...) -> Prepared` into the public loss function and register it.

    The public function has prepare's signature, which declares the keyword-only
    ``backend: str | None = None`` (prepare ignores it: the public function takes it and
    dispatches on it), and returns the computed ndarray. Type checkers see exactly that:
    prepare's annotated parameters ``P`` and a result of ``numpy.ndarray``. (A prepare
    that does not declare ``backend`` still gets it in the runtime signature, but type
    checkers then reject ``backend=``: tests/test_typing.py fails until it is declared.)
    `extensions` names the keyword-only arguments that torch's function does not have.
    """
    undeclared = [k for k in kernels if k not in _kernels.KERNELS]
    if undeclared:   # a typo here would only show as a LookupError at the first call
        raise ValueError(f"kernels: {', '.join(map(repr, undeclared))} not declared in "
                         "fastloss._kernels")

    def decorate(prepare: Callable[P, _engine.Prepared]) -> Callable[P, NDArray[Any]]:
        name = prepare.__name__

        @functools.wraps(prepare)
        def public(*args: Any, backend: str | None = None, **kwargs: Any) -> NDArray[Any]:
            return _engine.forward(prepare(*args, **kwargs), backend)

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
        LOSSES[name] = LossSpec(name, class_name, public, prepare, tuple(differentiable),
                                tuple(kernels), tuple(extensions))
        return cast("Callable[P, NDArray[Any]]", public)
    return decorate


def spec_of(fn: Any) -> LossSpec:
    """The registry row of a public loss function (or of its name)."""
    key = fn if isinstance(fn, str) else getattr(fn, "__name__", None)
    spec = LOSSES.get(key) if isinstance(key, str) else None
    if spec is None or (not isinstance(fn, str) and spec.function is not fn):
        raise TypeError(f"expected a fastloss loss function, got {fn!r}")
    return spec
