"""Loss classes with PyTorch's names: each stores its hyper-parameters and calls the
function of the same loss in fastloss.functional. ``backend=`` may be given to any
constructor to pin the backend for that object.

A class with torch's constructor (its own argument order, positional where torch's is) is
written out here. A loss whose class is not (one torch does not have) gets one made from
its registry row (``class_name``) and function: its hyper-parameters (the function's
arguments with defaults) keyword-only, with the function's defaults (`make_class`).

    >>> import numpy as np, fastloss
    >>> criterion = fastloss.CrossEntropyLoss(label_smoothing=0.1)
    >>> loss = criterion(np.zeros((4, 3)), np.array([0, 1, 2, 0]))
    >>> loss, grad = criterion.value_and_grad(np.zeros((4, 3)), np.array([0, 1, 2, 0]))
"""
from __future__ import annotations

import inspect
from typing import Any, Callable, ClassVar, Sequence, cast, overload

from numpy.typing import ArrayLike, NDArray

from . import functional as F
from ._grad import value_and_grad as _value_and_grad
from ._registry import LOSSES, LossSpec
from ._typing import Argnum
from .functional.rows import PairwiseDistance

__all__ = [
    "L1Loss",
    "MSELoss",
    "SmoothL1Loss",
    "HuberLoss",
    "PoissonNLLLoss",
    "GaussianNLLLoss",
    "BCELoss",
    "BCEWithLogitsLoss",
    "NLLLoss",
    "CrossEntropyLoss",
    "KLDivLoss",
    "HingeEmbeddingLoss",
    "MarginRankingLoss",
    "SoftMarginLoss",
    "MultiMarginLoss",
    "MultiLabelMarginLoss",
    "MultiLabelSoftMarginLoss",
    "CosineEmbeddingLoss",
    "TripletMarginLoss",
    "CTCLoss",
    "TripletMarginWithDistanceLoss",
    "PairwiseDistance",
    "LinearCrossEntropyLoss",
]


class _Loss:
    """Base class: ``self(*inputs)`` is ``function(*inputs, **hyper_parameters)``."""
    # the functional form, set by each subclass
    function: ClassVar[Callable[..., NDArray[Any]]]

    def __init__(self, backend: str | None = None, **hyper_parameters: Any) -> None:
        self.backend = backend
        self.hyper_parameters = hyper_parameters

    def __call__(self, *inputs: ArrayLike,
                 sample_weight: ArrayLike | None = None) -> NDArray[Any]:
        return type(self).function(*inputs, backend=self.backend, sample_weight=sample_weight,
                                   **self.hyper_parameters)

    forward = __call__

    @overload
    def value_and_grad(self, *inputs: ArrayLike, argnums: Argnum = 0,
                       grad_output: ArrayLike | None = None,
                       out: NDArray[Any] | None = None,
                       sample_weight: ArrayLike | None = None
                       ) -> tuple[NDArray[Any], NDArray[Any]]:
        ...

    @overload
    def value_and_grad(self, *inputs: ArrayLike, argnums: tuple[Argnum, ...],
                       grad_output: ArrayLike | None = None,
                       out: Sequence[NDArray[Any]] | None = None,
                       sample_weight: ArrayLike | None = None
                       ) -> tuple[NDArray[Any], tuple[NDArray[Any], ...]]:
        ...

    def value_and_grad(self, *inputs: ArrayLike, argnums: Argnum | tuple[Argnum, ...] = 0,
                       grad_output: ArrayLike | None = None,
                       out: NDArray[Any] | Sequence[NDArray[Any]] | None = None,
                       sample_weight: ArrayLike | None = None
                       ) -> tuple[NDArray[Any], NDArray[Any] | tuple[NDArray[Any], ...]]:
        """(loss, gradient) in one pass; see :func:`fastloss.value_and_grad`.

        A tuple ``argnums`` gives a tuple of gradients (and takes a tuple ``out``).
        """
        fn: Any = _value_and_grad(type(self).function, argnums)
        return fn(*inputs, grad_output=grad_output, out=out, backend=self.backend,  # type: ignore[no-any-return]
                  sample_weight=sample_weight, **self.hyper_parameters)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.hyper_parameters.items()
                         if not hasattr(v, "shape"))
        return f"{type(self).__name__}({args})"


class L1Loss(_Loss):
    function = F.l1_loss

    def __init__(self, reduction: str = "mean", *, backend: str | None = None) -> None:
        super().__init__(backend, reduction=reduction)


class MSELoss(_Loss):
    function = F.mse_loss

    def __init__(self, reduction: str = "mean", *, backend: str | None = None) -> None:
        super().__init__(backend, reduction=reduction)


class SmoothL1Loss(_Loss):
    function = F.smooth_l1_loss

    def __init__(self, reduction: str = "mean", beta: float = 1.0, *,
                 backend: str | None = None) -> None:
        super().__init__(backend, reduction=reduction, beta=beta)


class HuberLoss(_Loss):
    function = F.huber_loss

    def __init__(self, reduction: str = "mean", delta: float = 1.0, *,
                 backend: str | None = None) -> None:
        super().__init__(backend, reduction=reduction, delta=delta)


class PoissonNLLLoss(_Loss):
    function = F.poisson_nll_loss

    def __init__(self, log_input: bool = True, full: bool = False, *, eps: float = 1e-8,
                 reduction: str = "mean", backend: str | None = None) -> None:
        super().__init__(backend, log_input=log_input, full=full, eps=eps,
                         reduction=reduction)


class GaussianNLLLoss(_Loss):
    function = F.gaussian_nll_loss

    def __init__(self, *, full: bool = False, eps: float = 1e-6, reduction: str = "mean",
                 backend: str | None = None) -> None:
        super().__init__(backend, full=full, eps=eps, reduction=reduction)


class BCELoss(_Loss):
    function = F.binary_cross_entropy

    def __init__(self, weight: ArrayLike | None = None, *, reduction: str = "mean",
                 backend: str | None = None) -> None:
        super().__init__(backend, weight=weight, reduction=reduction)


class BCEWithLogitsLoss(_Loss):
    function = F.binary_cross_entropy_with_logits

    def __init__(self, weight: ArrayLike | None = None, *, reduction: str = "mean",
                 pos_weight: ArrayLike | None = None, backend: str | None = None) -> None:
        super().__init__(backend, weight=weight, reduction=reduction, pos_weight=pos_weight)


class NLLLoss(_Loss):
    function = F.nll_loss

    def __init__(self, weight: ArrayLike | None = None, *, ignore_index: int = -100,
                 reduction: str = "mean", backend: str | None = None) -> None:
        super().__init__(backend, weight=weight, ignore_index=ignore_index,
                         reduction=reduction)


class CrossEntropyLoss(_Loss):
    function = F.cross_entropy

    def __init__(self, weight: ArrayLike | None = None, *, ignore_index: int = -100,
                 reduction: str = "mean", label_smoothing: float = 0.0,
                 backend: str | None = None) -> None:
        super().__init__(backend, weight=weight, ignore_index=ignore_index,
                         reduction=reduction, label_smoothing=label_smoothing)


class KLDivLoss(_Loss):
    function = F.kl_div

    def __init__(self, *, reduction: str = "mean", log_target: bool = False,
                 backend: str | None = None) -> None:
        super().__init__(backend, reduction=reduction, log_target=log_target)


class HingeEmbeddingLoss(_Loss):
    function = F.hinge_embedding_loss

    def __init__(self, margin: float = 1.0, *, reduction: str = "mean",
                 backend: str | None = None) -> None:
        super().__init__(backend, margin=margin, reduction=reduction)


class MarginRankingLoss(_Loss):
    function = F.margin_ranking_loss

    def __init__(self, margin: float = 0.0, *, reduction: str = "mean",
                 backend: str | None = None) -> None:
        super().__init__(backend, margin=margin, reduction=reduction)


class SoftMarginLoss(_Loss):
    function = F.soft_margin_loss

    def __init__(self, *, reduction: str = "mean", backend: str | None = None) -> None:
        super().__init__(backend, reduction=reduction)


class MultiMarginLoss(_Loss):
    function = F.multi_margin_loss

    def __init__(self, p: int = 1, margin: float = 1.0, weight: ArrayLike | None = None, *,
                 reduction: str = "mean", backend: str | None = None) -> None:
        super().__init__(backend, p=p, margin=margin, weight=weight, reduction=reduction)


class MultiLabelMarginLoss(_Loss):
    function = F.multilabel_margin_loss

    def __init__(self, *, reduction: str = "mean", backend: str | None = None) -> None:
        super().__init__(backend, reduction=reduction)


class MultiLabelSoftMarginLoss(_Loss):
    function = F.multilabel_soft_margin_loss

    def __init__(self, weight: ArrayLike | None = None, *, reduction: str = "mean",
                 backend: str | None = None) -> None:
        super().__init__(backend, weight=weight, reduction=reduction)


class CosineEmbeddingLoss(_Loss):
    function = F.cosine_embedding_loss

    def __init__(self, margin: float = 0.0, *, reduction: str = "mean",
                 backend: str | None = None) -> None:
        super().__init__(backend, margin=margin, reduction=reduction)


class TripletMarginLoss(_Loss):
    function = F.triplet_margin_loss

    def __init__(self, margin: float = 1.0, p: float = 2.0, eps: float = 1e-6,
                 swap: bool = False, *, reduction: str = "mean",
                 backend: str | None = None) -> None:
        super().__init__(backend, margin=margin, p=p, eps=eps, swap=swap, reduction=reduction)


class CTCLoss(_Loss):
    function = F.ctc_loss

    def __init__(self, blank: int = 0, reduction: str = "mean", zero_infinity: bool = False,
                 *, exact_grad: bool = False, backend: str | None = None) -> None:
        super().__init__(backend, blank=blank, reduction=reduction,
                         zero_infinity=zero_infinity, exact_grad=exact_grad)


class TripletMarginWithDistanceLoss(_Loss):
    function = F.triplet_margin_with_distance_loss

    def __init__(self, *,
                 distance_function: Callable[[NDArray[Any], NDArray[Any]], ArrayLike]
                 | None = None,
                 margin: float = 1.0, swap: bool = False, reduction: str = "mean",
                 backend: str | None = None) -> None:
        super().__init__(backend, distance_function=distance_function, margin=margin,
                         swap=swap, reduction=reduction)


class LinearCrossEntropyLoss(_Loss):
    """torch's ``LinearCrossEntropyLoss`` without parameters of its own: fastloss holds
    no weights, so the linear layer's weight (and bias) are given at each call,
    ``criterion(input, linear_weight, target, linear_bias=None)``, instead of
    ``in_features``/``num_classes``/``out_features``/``bias``/``device``/``dtype`` at
    construction. The other arguments are torch's (and fastloss's ``z_loss``,
    ``softcap``, ``chunk_size``); see :func:`fastloss.linear_cross_entropy`."""
    function = F.linear_cross_entropy

    def __init__(self, *, reduction: str = "mean", weight: ArrayLike | None = None,
                 ignore_index: int | None = None, label_smoothing: float = 0.0,
                 options: dict[str, Any] | None = None, z_loss: float = 0.0,
                 softcap: float | None = None, chunk_size: int | None = None,
                 backend: str | None = None) -> None:
        super().__init__(backend, reduction=reduction, weight=weight,
                         ignore_index=ignore_index, label_smoothing=label_smoothing,
                         options=options, z_loss=z_loss, softcap=softcap,
                         chunk_size=chunk_size)

    def __call__(self, input: ArrayLike, linear_weight: ArrayLike,  # type: ignore[override]
                 target: ArrayLike, linear_bias: ArrayLike | None = None, *,
                 sample_weight: ArrayLike | None = None) -> NDArray[Any]:
        return F.linear_cross_entropy(input, linear_weight, target, linear_bias=linear_bias,
                                      backend=self.backend, sample_weight=sample_weight,
                                      **self.hyper_parameters)

    forward = __call__  # type: ignore[assignment]

    def value_and_grad(self, input: ArrayLike, linear_weight: ArrayLike,  # type: ignore[override]
                       target: ArrayLike, linear_bias: ArrayLike | None = None, *,
                       argnums: Argnum | tuple[Argnum, ...] = 0,
                       grad_output: ArrayLike | None = None,
                       out: NDArray[Any] | Sequence[NDArray[Any]] | None = None,
                       sample_weight: ArrayLike | None = None
                       ) -> tuple[NDArray[Any], NDArray[Any] | tuple[NDArray[Any], ...]]:
        """(loss, gradient) in one pass; see :func:`fastloss.value_and_grad`."""
        fn = _value_and_grad(F.linear_cross_entropy, argnums)
        return fn(input, linear_weight, target, linear_bias=linear_bias,  # type: ignore[arg-type]
                  grad_output=grad_output, out=out,  # type: ignore[arg-type]
                  backend=self.backend, sample_weight=sample_weight,
                  **self.hyper_parameters)


def make_class(spec: LossSpec) -> type[_Loss]:
    """The class of a loss that has none written out: ``Cls(*, <hyper-parameters>,
    backend=None)``, the hyper-parameters being the function's arguments that have a
    default (not ``backend``/``sample_weight``), keyword-only, with the same defaults."""
    params = inspect.signature(cast("Callable[..., Any]", spec.prepare)).parameters.values()
    hyper = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in params
             if p.default is not p.empty and p.name not in ("backend", "sample_weight")]
    defaults = {p.name: p.default for p in hyper}

    def __init__(self: _Loss, *, backend: str | None = None, **hyper_parameters: Any) -> None:
        unknown = sorted(set(hyper_parameters) - set(defaults))
        if unknown:
            raise TypeError(f"{type(self).__name__}: unexpected keyword argument(s) "
                            f"{', '.join(unknown)}; it takes {', '.join(defaults)} and backend")
        _Loss.__init__(self, backend, **{**defaults, **hyper_parameters})

    __init__.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD), *hyper,
         inspect.Parameter("backend", inspect.Parameter.KEYWORD_ONLY, default=None,
                           annotation="str | None")], return_annotation=None)
    doc = (f"The class form of :func:`fastloss.{spec.name}`: stores its hyper-parameters "
           f"({', '.join(defaults)}; keyword-only) and calls it.")
    made = type(spec.class_name, (_Loss,), {
        "function": spec.function, "__init__": __init__, "__doc__": doc,
        "__module__": __name__, "__qualname__": spec.class_name})
    return cast("type[_Loss]", made)


def add_missing_classes(namespace: dict[str, Any] | None = None) -> list[type[_Loss]]:
    """Make (`make_class`) the class of every registry loss that has none in this module,
    add it here (and to ``__all__``); the classes made. Idempotent."""
    namespace = globals() if namespace is None else namespace
    made: list[type[_Loss]] = []
    for spec in list(LOSSES.values()):
        if spec.class_name not in namespace:
            cls = namespace[spec.class_name] = make_class(spec)
            namespace["__all__"].append(spec.class_name)
            made.append(cls)
    return made


add_missing_classes()
