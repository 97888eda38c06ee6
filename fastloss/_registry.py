"""The table of losses: one row per loss, filled by the ``@loss`` decorator where the loss
is defined (``fastloss/functional/*.py``). Tests, benchmarks, dispatch and docs iterate it;
nothing else keeps a list of losses."""
import functools
import inspect
from dataclasses import dataclass, field

from . import _engine


@dataclass(frozen=True)
class LossSpec:
    name: str                 # the public name, torch's: "cross_entropy"
    class_name: str           # torch's module name: "CrossEntropyLoss"
    function: object          # the public function
    prepare: object           # same arguments -> _engine.Prepared
    differentiable: tuple     # names of the arguments it has a gradient for, in order
    kernels: tuple = field(default=())   # kernel base names it may dispatch to

    @functools.cached_property
    def parameters(self):
        # cached: value_and_grad reads it on every call, and inspect.signature costs ~50 us
        return tuple(inspect.signature(self.prepare).parameters)


LOSSES = {}


def loss(class_name, differentiable=("input",), kernels=()):
    """Turn `prepare(...) -> Prepared` into the public loss function and register it.

    The public function has prepare's signature plus a keyword-only ``backend=None``.
    """
    def decorate(prepare):
        name = prepare.__name__

        @functools.wraps(prepare)
        def public(*args, backend=None, **kwargs):
            return _engine.forward(prepare(*args, **kwargs), backend)

        sig = inspect.signature(prepare)
        public.__signature__ = sig.replace(parameters=[
            *sig.parameters.values(),
            inspect.Parameter("backend", inspect.Parameter.KEYWORD_ONLY, default=None)])
        LOSSES[name] = LossSpec(name, class_name, public, prepare, tuple(differentiable),
                                tuple(kernels))
        return public
    return decorate


def spec_of(fn):
    """The registry row of a public loss function (or of its name)."""
    if isinstance(fn, str):
        key = fn
    else:
        key = getattr(fn, "__name__", None)
    spec = LOSSES.get(key)
    if spec is None or (not isinstance(fn, str) and spec.function is not fn):
        raise TypeError(f"expected a fastloss loss function, got {fn!r}")
    return spec
