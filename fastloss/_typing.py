"""The types of fastloss's public API, for type checkers (fastloss ships ``py.typed``).

Arguments are :data:`numpy.typing.ArrayLike` (anything ``np.asarray`` takes); results are
``numpy.ndarray``. A loss is written as ``prepare(...) -> Prepared`` with its full,
annotated signature, ``backend`` included, and the ``@loss`` decorator
(:func:`fastloss._registry.loss`) turns it into ``Callable[P, ndarray]`` with the same
parameters ``P``: what an editor shows is the loss's own signature returning an array.
"""
from __future__ import annotations

from typing import Any, Protocol, Sequence, Union

from numpy.typing import ArrayLike, NDArray

from ._engine import Prepared

__all__ = ["Array", "ArrayLike", "Argnum", "Prepared", "ValueAndGrad", "ValueAndGrads"]

Array = NDArray[Any]
"""What every loss returns: a NumPy array (0-d for a reduced loss)."""

Argnum = Union[int, str]
"""An argument to differentiate, by position or name."""


class ValueAndGrad(Protocol):
    """What ``value_and_grad(loss_fn)`` (an int or str ``argnums``) returns: the loss's
    own arguments in, ``(loss, gradient)`` out."""

    def __call__(self, *args: Any, grad_output: ArrayLike | None = None,
                 out: NDArray[Any] | None = None, backend: str | None = None,
                 sample_weight: ArrayLike | None = None,
                 **kwargs: Any) -> tuple[NDArray[Any], NDArray[Any]]: ...


class ValueAndGrads(Protocol):
    """What ``value_and_grad(loss_fn, argnums=(...))`` (a tuple) returns: ``(loss, (one
    gradient per entry of argnums))``."""

    def __call__(self, *args: Any, grad_output: ArrayLike | None = None,
                 out: Sequence[NDArray[Any]] | None = None, backend: str | None = None,
                 sample_weight: ArrayLike | None = None,
                 **kwargs: Any) -> tuple[NDArray[Any], tuple[NDArray[Any], ...]]: ...
