"""Row losses (the ``rows`` kernel family): one item per row of an (N, C) or (N, D)
array. The multi-class and multi-label margins, the cosine embedding and triplet margin
losses, and the triplet loss with a distance function (with the pairwise distance it
defaults to)."""
from __future__ import annotations

import functools
import math
from typing import Any, Callable

import numpy as np
from numpy.typing import NDArray

from .._registry import loss
from .._typing import ArrayLike
from .._validate import (boolean, class_weight, contiguous, float_array, index_array,
                         is_floating, real, result_dtype, to_numpy)
from ._common import ClassTargets, Prepared, _broadcasts_to, check_reduction, wrt

# the public functions of this family (fastloss.functional re-exports them)
__all__ = ["multi_margin_loss", "multilabel_margin_loss", "multilabel_soft_margin_loss",
           "cosine_embedding_loss", "triplet_margin_loss",
           "triplet_margin_with_distance_loss", "pairwise_distance"]


# ---- multi-class and multi-label margins ----------------------------------------------------
def class_rows(x, name="input"):
    """(N, C) for input of shape (), (C,) or (N, C) with C > 0 (a 0-d input is one sample
    of one class), PyTorch's rule for the multi-class and multi-label margin losses."""
    if x.ndim > 2 or (x.ndim >= 1 and x.shape[-1] == 0):
        raise ValueError(f"{name}: expected a non-empty vector (C,) or a matrix (N, C) with "
                         f"C > 0, got shape {x.shape}")
    if x.ndim == 2:
        return x.shape
    return 1, (x.shape[0] if x.ndim == 1 else 1)



@loss("MultiMarginLoss", kernels=("multi_margin",), batch_axes={"weight": None})
def multi_margin_loss(input: ArrayLike, target: ArrayLike, p: int = 1, margin: float = 1.0,
                      weight: ArrayLike | None = None, *, reduction: str = "mean",
                      sample_weight: ArrayLike | None = None,
                      backend: str | None = None) -> Prepared:
    r"""Multi-class hinge loss on class scores :math:`x_i` with class-index targets
    :math:`y_i`:

    .. math:: \ell_i = \frac{1}{C}\sum_{j \ne y_i} w_{y_i}\,
              \max(0, \Delta - x_{i,y_i} + x_{i,j})^p

    Parameters
    ----------
    input : array_like, shape (C,) or (N, C), C > 0 (a 0-d input is one class)
    target : integer array_like of class indices in [0, C), shape () or (N,)
        (a single sample may also be (1,)). int64 and uint8 are what PyTorch takes; any
        integer dtype is accepted here. An index outside [0, C) raises IndexError.
    p : {1, 2}, default 1
        Anything else raises ValueError, as in PyTorch.
    margin : float, default 1.0
    weight : array_like of shape (C,), optional
        Per-class weights, applied by the target's class.
    reduction : {"mean", "sum", "none"}
        "mean" divides by N (NaN when N = 0, where PyTorch returns an uninitialised value).

    Returns
    -------
    ndarray
        0-d for "mean"/"sum"; for "none" shaped (N,) when ``target`` is 1-D, else 0-d.
        ``input``'s dtype. Differentiable in ``input``; a term with exactly
        :math:`\Delta - x_{i,y_i} + x_{i,j} = 0` (or NaN) contributes no gradient, as in
        PyTorch.

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> x = np.array([[0.1, 0.2, 0.4, 0.8]]); y = np.array([3])
    >>> round(float(fastloss.multi_margin_loss(x, y)), 6)  # (0.3 + 0.4 + 0.6) / 4
    0.325
    """
    check_reduction(reduction)
    if p not in (1, 2):
        raise ValueError(f"p: only p == 1 and p == 2 are supported, got {p!r}")
    margin = real(margin, "margin")
    x = float_array(input, "input")
    n, c = class_rows(x)
    t = index_array(target, "target")
    if t.ndim > 1 or t.size != n:
        raise ValueError(f"target: expected {n} class indices, of shape ({n},) or (), for "
                         f"input of shape {x.shape}, got shape {t.shape}")
    item_shape = (n,) if t.ndim == 1 else ()
    t = contiguous(t).reshape(-1)
    w = class_weight(weight, c, x.dtype)
    return Prepared("multi_margin", (contiguous(x).reshape(n, c), t, w), (int(p), margin),
                    x.dtype, item_shape, reduction, float(n), (wrt(0, x),),
                    targets=ClassTargets("target", t, w, c, None))


@loss("MultiLabelMarginLoss", kernels=("multilabel_margin",))
def multilabel_margin_loss(input: ArrayLike, target: ArrayLike, *, reduction: str = "mean",
                           sample_weight: ArrayLike | None = None,
                           backend: str | None = None) -> Prepared:
    r"""Multi-label hinge loss. Each row of ``target`` lists the sample's classes, padded
    with -1: the classes read are those before the first -1. With :math:`J_i` that list
    (a class listed twice counts twice) and :math:`\bar J_i` the classes not in it,

    .. math:: \ell_i = \frac{1}{C}\sum_{j \in J_i}\sum_{k \in \bar J_i}
              \max(0, 1 - (x_{i,j} - x_{i,k}))

    Parameters
    ----------
    input : array_like, shape (C,) or (N, C), C > 0 (a 0-d input is one class)
    target : integer array_like of ``input``'s shape
        Class indices in [0, C), padded with -1. Every entry (after the first -1 too) must
        be in [-1, C), else IndexError, as in PyTorch.
    reduction : {"mean", "sum", "none"}
        "mean" divides by N (NaN when N = 0, where PyTorch returns an uninitialised value).

    Returns
    -------
    ndarray
        0-d for "mean"/"sum"; for "none" shaped (N,) for 2-D input, else 0-d. ``input``'s
        dtype. Differentiable in ``input``; a term with exactly
        :math:`1 - (x_{i,j} - x_{i,k}) = 0` (or NaN) contributes no gradient, as in PyTorch.

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> x = np.array([[0.1, 0.2, 0.4, 0.8]]); y = np.array([[3, 0, -1, 1]])
    >>> round(float(fastloss.multilabel_margin_loss(x, y)), 6)  # targets 3 and 0
    0.85
    """
    check_reduction(reduction)
    x = float_array(input, "input")
    n, c = class_rows(x)
    t = index_array(target, "target")
    expected = x.shape if x.ndim == 2 else (c,)
    if (x.ndim == 2 and t.shape != expected) or (x.ndim < 2 and (t.ndim > 1 or t.size != c)):
        raise ValueError(f"target: expected class indices of shape {expected} for input of "
                         f"shape {x.shape}, got shape {t.shape}")
    t = contiguous(t).reshape(n, c)
    item_shape = (n,) if x.ndim == 2 else ()
    # The range rule is [-1, C) for every entry: the class_targets check with -1 as an
    # ignored index says exactly that (it cannot raise; the engine raises for it).
    return Prepared("multilabel_margin", (contiguous(x).reshape(n, c), t), (), x.dtype,
                    item_shape, reduction, float(n), (wrt(0, x),),
                    targets=ClassTargets("target", t, np.empty(0, x.dtype), c, -1))


@loss("MultiLabelSoftMarginLoss", kernels=("multilabel_soft_margin",))
def multilabel_soft_margin_loss(input: ArrayLike, target: ArrayLike,
                                weight: ArrayLike | None = None, *, reduction: str = "mean",
                                sample_weight: ArrayLike | None = None,
                                backend: str | None = None) -> Prepared:
    r"""Multi-label one-versus-all logistic loss, averaged over the C classes of the last
    dimension:

    .. math:: \ell_i = -\frac{1}{C}\sum_c w_c\left(y_{i,c}\log\sigma(x_{i,c})
              + (1 - y_{i,c})\log\sigma(-x_{i,c})\right)

    Logits of any size give the exact loss; an infinite logit gives what PyTorch gives
    (NaN where :math:`0\cdot\infty` arises).

    Parameters
    ----------
    input : array_like of shape (..., C), at least 1-D, float32 or float64
    target : array_like that broadcasts to ``input``'s shape (without enlarging it)
        0/1 labels or probabilities; integer targets are cast to ``input``'s dtype.
    weight : array_like that broadcasts to ``input``'s shape, optional
        E.g. one weight per class, shape (C,).
    reduction : {"mean", "sum", "none"}
        "mean" divides by the number of samples, the product of the leading dimensions
        (NaN if none).

    Returns
    -------
    ndarray
        0-d for "mean"/"sum", ``input.shape[:-1]`` for "none"; dtype of the inputs.
        Differentiable in ``input``: :math:`w_c((1-y)\sigma(x) - y\,\sigma(-x))/C`.

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> x = np.array([[0.0, 2.0]]); y = np.array([[1.0, 0.0]])
    >>> round(float(fastloss.multilabel_soft_margin_loss(x, y)), 6)  # (log 2 + log(1+e^2))/2
    1.410038
    """
    check_reduction(reduction)
    x = float_array(input, "input")
    if x.ndim == 0:
        raise ValueError("input: expected an array of shape (..., C), got a 0-d array")
    t_np = to_numpy(target, "target")
    y = float_array(t_np, "target", dtype=None if t_np.dtype.kind == "f" else x.dtype)
    w = None if weight is None else to_numpy(weight, "weight")
    w = None if w is None else float_array(w, "weight", dtype=None if is_floating(w.dtype)
                                           else x.dtype)
    named = [("target", y)] + ([("weight", w)] if w is not None else [])
    for name, a in named:
        if not _broadcasts_to(a.shape, x.shape):
            raise ValueError(f"{name}: expected a shape that broadcasts to input's shape "
                             f"{x.shape}, got {a.shape}")
    dtype = result_dtype(x, *[a for _, a in named])
    c = x.shape[-1]
    n = math.prod(x.shape[:-1])
    rows = (n, c)
    yc = contiguous(np.broadcast_to(y, x.shape), dtype).reshape(rows)
    if w is None:
        wc = np.empty(0, dtype)
    elif all(s == 1 for s in w.shape[:-1]):
        # one weight per class, the same for every row: passed once, as (1, C)
        wc = contiguous(np.broadcast_to(w.reshape(-1), (c,)), dtype).reshape(1, c)
    else:
        wc = contiguous(np.broadcast_to(w, x.shape), dtype).reshape(rows)
    return Prepared("multilabel_soft_margin", (contiguous(x, dtype).reshape(rows), yc, wc), (),
                    dtype, x.shape[:-1], reduction, float(n), (wrt(0, x),))


# ---- embeddings ----------------------------------------------------------------------------
def _broadcast_rows(named):
    """The broadcast shape of the (name, array) pairs, with an error naming the argument
    that does not fit."""
    shape = named[0][1].shape
    for i, (name, a) in enumerate(named[1:], 1):
        try:
            shape = np.broadcast_shapes(shape, a.shape)
        except ValueError:
            before = " and ".join(n for n, _ in named[:i])
            raise ValueError(f"{name} of shape {a.shape} cannot be broadcast with {before} "
                             f"(broadcast shape so far {shape})") from None
    return shape


@loss("CosineEmbeddingLoss", differentiable=("input1", "input2"),
      kernels=("cosine_embedding",))
def cosine_embedding_loss(input1: ArrayLike, input2: ArrayLike, target: ArrayLike,
                          margin: float = 0.0, *, reduction: str = "mean",
                          sample_weight: ArrayLike | None = None,
                          backend: str | None = None) -> Prepared:
    r"""Cosine embedding loss, for pairs labelled similar (1) or dissimilar (-1):

    .. math:: \ell_i = \begin{cases} 1 - \cos(x_{1,i}, x_{2,i}) & y_i = 1 \\
              \max(0, \cos(x_{1,i}, x_{2,i}) - \Delta) & y_i = -1 \end{cases}
              \qquad \cos(u, v) = \frac{u \cdot v}{\sqrt{(\|u\|^2 + \epsilon)
              (\|v\|^2 + \epsilon)}}

    with PyTorch's :math:`\epsilon` = float32 ``1e-12``; a target that is neither 1 nor -1
    gives 0.

    Parameters
    ----------
    input1, input2 : array_like of shape (N, D) with a 1-D target, or (D,) with a 0-d one
        float32 or float64; the two broadcast together (e.g. one of them (1, D)).
    target : array_like of shape (N,) (or (1,), broadcast) or ()
        1 or -1, float or integer.
    margin : float, default 0
        Usually in [-1, 1].
    reduction : {"mean", "sum", "none"}
        "mean" divides by N (NaN if N = 0).

    Returns
    -------
    ndarray
        0-d for "mean"/"sum", (N,) or () for "none"; dtype of the inputs. Differentiable
        in ``input1`` and ``input2``.

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> a = np.array([[1.0, 0.0], [1.0, 1.0]]); b = np.array([[0.0, 1.0], [1.0, 1.0]])
    >>> fastloss.cosine_embedding_loss(a, b, np.array([1, -1]), reduction="none").round(6)
    array([1., 1.])
    """
    check_reduction(reduction)
    margin = real(margin, "margin")
    x1 = float_array(input1, "input1")
    x2 = float_array(input2, "input2")
    t = to_numpy(target, "target")
    if t.dtype.kind not in "biu" and not is_floating(t.dtype):
        raise TypeError(f"target: expected 1 and -1 as numbers, got dtype {t.dtype}")
    if t.ndim > 1:
        raise ValueError(f"target: expected a 0-d or 1-D target, got shape {t.shape}")
    for name, a in (("input1", x1), ("input2", x2)):
        if a.ndim != t.ndim + 1:
            raise ValueError(f"{name}: a {t.ndim}-D target expects {t.ndim + 1}-D inputs, "
                             f"got shape {a.shape}")
    full = _broadcast_rows([("input1", x1), ("input2", x2)])
    if t.ndim == 1:
        # one label per row, broadcasting with the rows of the inputs
        try:
            full = (np.broadcast_shapes(full[:1], t.shape)[0], full[1])
        except ValueError:
            raise ValueError(f"target: expected one label per row of the inputs "
                             f"({full[0]} rows), got shape {t.shape}") from None
    dtype = result_dtype(x1, x2)
    n, d = (full if len(full) == 2 else (1, full[0]))
    rows = (n, d)
    # Only t == 1 and t == -1 matter: coded exactly in the float dtype the kernel reads.
    code = np.where(t == 1, 1, np.where(t == -1, -1, 0)).astype(dtype)
    tc = contiguous(np.broadcast_to(code, full[:-1])).reshape(n)
    arrays = (contiguous(np.broadcast_to(x1, full), dtype).reshape(rows),
              contiguous(np.broadcast_to(x2, full), dtype).reshape(rows), tc)
    return Prepared("cosine_embedding", arrays, (margin,), dtype, full[:-1], reduction,
                    float(n), (wrt(0, x1, full), wrt(1, x2, full)))


@loss("TripletMarginLoss", differentiable=("anchor", "positive", "negative"),
      kernels=("triplet_margin",))
def triplet_margin_loss(anchor: ArrayLike, positive: ArrayLike, negative: ArrayLike,
                        margin: float = 1.0, p: float = 2, eps: float = 1e-6,
                        swap: bool = False, *, reduction: str = "mean",
                        sample_weight: ArrayLike | None = None,
                        backend: str | None = None) -> Prepared:
    r"""Triplet margin loss:

    .. math:: \ell_i = \max(0, \Delta + d(a_i, p_i) - d(a_i, n_i)), \qquad
              d(u, v) = \|u - v + \epsilon\|_p

    over the last dimension (PyTorch's ``pairwise_distance``). With ``swap=True``,
    :math:`d(a_i, n_i)` is replaced by :math:`\min(d(a_i, n_i), d(p_i, n_i))`.

    Parameters
    ----------
    anchor, positive, negative : array_like of shape (N, D) or (D,), float32 or float64
        The same number of dimensions, broadcasting together (e.g. one of them (1, D)).
        More leading dimensions (..., D) work too, as in PyTorch.
    margin : float > 0, default 1.0
        ``margin <= 0`` raises ValueError, as in PyTorch.
    p : float > 0, default 2
        The norm's degree; any positive value, ``inf`` included. (PyTorch also takes
        p <= 0, which is not a norm: ValueError here.)
    eps : float, default 1e-6
        Added to every difference, as in PyTorch.
    swap : bool, default False
    reduction : {"mean", "sum", "none"}
        "mean" divides by the number of triplets (NaN if none).

    Returns
    -------
    ndarray
        0-d for "mean"/"sum", the leading shape (N,) or () for "none"; dtype of the
        inputs. Differentiable in ``anchor``, ``positive`` and ``negative``, with PyTorch's
        subgradients (0 for a zero difference; split in half on a tie of the swap).

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> a = np.array([[0.0, 0.0]]); p = np.array([[3.0, 4.0]]); n = np.array([[0.0, 1.0]])
    >>> round(float(fastloss.triplet_margin_loss(a, p, n, eps=0.0)), 6)  # 1 + 5 - 1
    5.0
    """
    check_reduction(reduction)
    margin = real(margin, "margin")
    if margin <= 0:
        raise ValueError(f"margin: expected a value > 0, got {margin}")
    p = real(p, "p")
    if not p > 0:
        raise ValueError(f"p: expected a norm degree > 0 (inf allowed), got {p}")
    eps = real(eps, "eps")
    swap = boolean(swap, "swap")
    named = [(name, float_array(a, name)) for name, a in
             (("anchor", anchor), ("positive", positive), ("negative", negative))]
    for name, a in named[1:]:
        if a.ndim != named[0][1].ndim:
            raise ValueError(f"{name}: anchor, positive and negative must have the same "
                             "number of dimensions, got shapes "
                             + ", ".join(str(b.shape) for _, b in named))
    full = _broadcast_rows(named)
    dtype = result_dtype(*[a for _, a in named])
    d = full[-1] if full else 1
    n = math.prod(full[:-1])
    arrays = tuple(contiguous(np.broadcast_to(a, full), dtype).reshape(n, d) for _, a in named)
    return Prepared("triplet_margin", arrays, (margin, p, eps, int(swap)), dtype, full[:-1],
                    reduction, float(n),
                    tuple(wrt(i, a, full) for i, (_, a) in enumerate(named)))


# ---- the triplet loss with a distance function ----------------------------------------------
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
    from .._reference.rows import _norm
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
