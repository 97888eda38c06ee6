"""The triplet loss with a distance function, and the pairwise distance it defaults to."""
from __future__ import annotations
import functools
from typing import Any, Callable

import numpy as np
from numpy.typing import NDArray

from .._registry import loss
from .._typing import ArrayLike
from .._validate import boolean, contiguous, float_array, real, result_dtype
from ._common import Prepared, check_reduction, wrt
from .embedding import triplet_margin_loss

_PAIRWISE_KEYWORDS = {"p", "eps", "keepdim"}


def pairwise_distance(x1, x2, p=2.0, eps=1e-6, keepdim=False):
    r"""torch's ``pairwise_distance`` on NumPy arrays: :math:`\|x_1 - x_2 + \epsilon\|_p`
    over the last dimension (the inputs broadcast).

    Given as (or inside ``functools.partial``) the ``distance_function`` of
    :func:`triplet_margin_with_distance_loss`, it runs in that loss's fused kernel.

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> float(fastloss.pairwise_distance(np.array([3.0, 0.0]), np.array([0.0, 4.0]), eps=0))
    5.0
    """
    from .._reference.embedding import _norm
    a = float_array(x1, "x1")
    b = float_array(x2, "x2")
    dtype = result_dtype(a, b)
    diff = (a - b) + dtype.type(eps)
    shape = diff.shape
    flat = diff.reshape(-1, shape[-1] if shape else 1)
    out = _norm(flat.astype(np.float64), real(p, "p")).astype(dtype).reshape(shape[:-1])
    return out[..., None] if keepdim else out


class PairwiseDistance:
    """torch.nn.PairwiseDistance on NumPy arrays; recognised by
    :func:`triplet_margin_with_distance_loss` (its ``norm`` and ``eps``) and fused."""

    def __init__(self, p=2.0, eps=1e-6, keepdim=False):
        self.norm, self.eps, self.keepdim = p, eps, keepdim

    def __call__(self, x1, x2):
        return pairwise_distance(x1, x2, self.norm, self.eps, self.keepdim)

    def __repr__(self):
        return f"PairwiseDistance(p={self.norm!r}, eps={self.eps!r}, keepdim={self.keepdim!r})"


def _is_pairwise(fn):
    if fn is pairwise_distance:
        return True
    # torch.pairwise_distance (also torch.nn.functional.pairwise_distance): a builtin
    return (getattr(fn, "__name__", None) == "pairwise_distance"
            and getattr(fn, "__module__", None) in ("torch", "torch.nn.functional",
                                                    "torch._C._VariableFunctions"))


def fused_distance(fn):
    """(p, eps) when `fn` is torch's or fastloss's pairwise distance without keepdim:
    None (the default), ``pairwise_distance`` (or ``functools.partial`` of it with
    keywords), or an object with ``norm`` and ``eps`` attributes (``PairwiseDistance``).
    None when it is any other callable."""
    if fn is None:
        return 2.0, 1e-6
    if isinstance(fn, functools.partial) and _is_pairwise(fn.func) and not fn.args \
            and set(fn.keywords) <= _PAIRWISE_KEYWORDS:
        kw = fn.keywords
        if kw.get("keepdim", False):
            return None
        return real(kw.get("p", 2.0), "distance_function p"), \
            real(kw.get("eps", 1e-6), "distance_function eps")
    if _is_pairwise(fn):
        return 2.0, 1e-6
    if hasattr(fn, "norm") and hasattr(fn, "eps") and not getattr(fn, "keepdim", False) \
            and not callable(getattr(fn, "norm")):
        return real(fn.norm, "distance_function.norm"), real(fn.eps, "distance_function.eps")
    return None


@loss("TripletMarginWithDistanceLoss", differentiable=("anchor", "positive", "negative"),
      kernels=("triplet_margin", "triplet_distance"))
def triplet_margin_with_distance_loss(
        anchor: ArrayLike, positive: ArrayLike, negative: ArrayLike, *,
        distance_function: Callable[[NDArray[Any], NDArray[Any]], ArrayLike] | None = None,
        margin: float = 1.0, swap: bool = False, reduction: str = "mean",
        sample_weight: ArrayLike | None = None, backend: str | None = None) -> Prepared:
    r"""Triplet margin loss with a distance function :math:`d`:

    .. math:: \ell_i = \max(0, \Delta + d(a_i, p_i) - d(a_i, n_i))

    With ``swap=True``, :math:`d(a_i, n_i)` is replaced by
    :math:`\min(d(a_i, n_i), d(p_i, n_i))`.

    Parameters
    ----------
    anchor, positive, negative : array_like of shape (N, D) or (D,), float32 or float64
        The same number of dimensions (more leading dimensions work with the default
        distance, as in torch).
    distance_function : callable or None, default None
        None is torch's ``pairwise_distance`` (p = 2, eps = 1e-6 added to the difference).
        That function itself (``torch.pairwise_distance``, ``torch.nn.functional.
        pairwise_distance`` or ``fastloss.pairwise_distance``), a ``functools.partial`` of
        it with keywords ``p``/``eps``, and any object with ``norm`` and ``eps``
        attributes (``torch.nn.PairwiseDistance``, ``fastloss.PairwiseDistance``) without
        ``keepdim`` run in the fused kernel of :func:`triplet_margin_loss`, swap included:
        torch's function is never called. Any other callable is called once per distance
        (two, three with ``swap``) on the whole NumPy arrays (float32/float64, never row
        by row) and must return one distance per triplet, shape (N,) (or ()). Its
        gradient is only available if it has a ``vjp`` attribute:
        ``distance_function.vjp(x1, x2, g) -> (g1, g2)``, the gradients with respect to
        ``x1`` and ``x2`` of ``sum(g * distance_function(x1, x2))``; without one,
        :func:`fastloss.value_and_grad` raises TypeError (it never falls back to finite
        differences).
    margin : float > 0, default 1.0
    swap : bool, default False
    reduction : {"mean", "sum", "none"}

    Returns
    -------
    ndarray
        0-d for "mean"/"sum", (N,) or () for "none"; dtype of the inputs. Differentiable
        in ``anchor``, ``positive`` and ``negative`` (see ``distance_function``).

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> a = np.array([[0.0, 0.0]]); p = np.array([[3.0, 4.0]]); n = np.array([[0.0, 1.0]])
    >>> l1 = lambda x, y: np.abs(x - y).sum(-1)
    >>> float(fastloss.triplet_margin_with_distance_loss(a, p, n, distance_function=l1))
    7.0
    """
    check_reduction(reduction)
    margin = real(margin, "margin")
    if margin <= 0:
        raise ValueError(f"margin: must be greater than 0, got {margin}")
    swap = boolean(swap, "swap")
    named = [(name, float_array(a, name)) for name, a in
             (("anchor", anchor), ("positive", positive), ("negative", negative))]
    ndims = [a.ndim for _, a in named]
    if len(set(ndims)) != 1:
        raise ValueError("anchor, positive, negative: expected the same number of dimensions, "
                         f"got anchor {ndims[0]}D, positive {ndims[1]}D and negative "
                         f"{ndims[2]}D inputs")
    fused = fused_distance(distance_function)
    if fused is not None:
        return triplet_margin_loss.__wrapped__(  # type: ignore[attr-defined]
            *[a for _, a in named], margin=margin, p=fused[0],
                                               eps=fused[1], swap=swap, reduction=reduction)
    if not callable(distance_function):
        raise TypeError(f"distance_function: expected a callable or None, got "
                        f"{type(distance_function).__name__}")
    dtype = result_dtype(*[a for _, a in named])
    arrays = tuple(contiguous(a, dtype) for _, a in named)
    try:
        item_shape = np.broadcast_shapes(*[a.shape for a in arrays])[:-1]
    except ValueError:
        raise ValueError("anchor, positive, negative: shapes "
                         + ", ".join(str(a.shape) for a in arrays)
                         + " do not broadcast together") from None
    n = int(np.prod(item_shape))
    return Prepared("triplet_distance", arrays, (margin, int(swap), distance_function), dtype,
                    item_shape, reduction, float(n),
                    tuple(wrt(i, a, b.shape) for i, ((_, a), b) in enumerate(zip(named, arrays))))
