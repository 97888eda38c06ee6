"""Margin losses: hinge embedding, soft margin, margin ranking, multi-class and
multi-label margins."""
from __future__ import annotations

import math

import numpy as np

from .._registry import loss
from .._validate import (broadcast_shape, class_weight, contiguous, float_array, index_array,
                         is_floating, real, result_dtype, to_numpy)
from ._common import (ClassTargets, Prepared, _broadcasts_to, check_reduction, pointwise,
                      wrt)
from .._typing import ArrayLike


def class_rows(x, name="input"):
    """(N, C) for input of shape (), (C,) or (N, C) with C > 0 (a 0-d input is one sample
    of one class), PyTorch's rule for the multi-class and multi-label margin losses."""
    if x.ndim > 2 or (x.ndim >= 1 and x.shape[-1] == 0):
        raise ValueError(f"{name}: expected a non-empty vector (C,) or a matrix (N, C) with "
                         f"C > 0, got shape {x.shape}")
    if x.ndim == 2:
        return x.shape
    return 1, (x.shape[0] if x.ndim == 1 else 1)


@loss("HingeEmbeddingLoss", kernels=("hinge_embedding",))
def hinge_embedding_loss(input: ArrayLike, target: ArrayLike, margin: float = 1.0, *,
                         reduction: str = "mean",
                         sample_weight: ArrayLike | None = None,
                         backend: str | None = None) -> Prepared:
    r"""Hinge embedding loss, for inputs that are distances and targets that are 1 or -1:

    .. math:: \ell_i = \begin{cases} x_i & y_i = 1 \\ \max(0, \Delta - x_i) & y_i = -1
              \end{cases}

    where :math:`\Delta` is ``margin``. As in PyTorch, a target that is neither 1 nor -1
    gets both terms, :math:`x_i + \max(0, \Delta - x_i)`.

    Parameters
    ----------
    input : array_like, any shape, float32 or float64
    target : array_like, broadcastable with ``input`` (silently, as in PyTorch)
        Usually 1 or -1; integer targets are accepted.
    margin : float, default 1.0
    reduction : {"mean", "sum", "none"}
        "mean" divides by the number of elements of the broadcast shape (NaN if none).

    Returns
    -------
    ndarray
        0-d for "mean"/"sum", the broadcast shape for "none"; ``input``'s dtype (the target
        is only compared). Differentiable in ``input``; at :math:`x_i = \Delta` the margin
        term passes its gradient -1, as PyTorch's ``clamp_min`` does.

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> x = np.array([0.3, 2.0, 0.3]); y = np.array([1.0, -1.0, -1.0])
    >>> fastloss.hinge_embedding_loss(x, y, reduction="none")
    array([0.3, 0. , 0.7])
    """
    margin = real(margin, "margin")
    x = float_array(input, "input")
    return pointwise("hinge_embedding", x, target, reduction, params=(margin,),
                     broadcast="silent", dtype=x.dtype)


@loss("SoftMarginLoss", kernels=("soft_margin",))
def soft_margin_loss(input: ArrayLike, target: ArrayLike, *, reduction: str = "mean",
                     sample_weight: ArrayLike | None = None,
                     backend: str | None = None) -> Prepared:
    r"""Two-class logistic loss, :math:`\ell_i = \log(1 + e^{-y_i x_i})`, targets 1 or -1.

    Computed as :math:`\max(z, 0) + \log(1 + e^{-|z|})` with :math:`z = -y_i x_i`, exact
    for every :math:`z`. PyTorch evaluates ``log1p(exp(z))`` literally, which overflows to
    ``inf`` (and a NaN gradient) once :math:`z` exceeds about 88 in float32 or 709 in
    float64; there this function returns the finite value :math:`z` and the gradient
    :math:`-y_i`. Everywhere else the two agree.

    Parameters
    ----------
    input : array_like, any shape, float32 or float64
    target : array_like that broadcasts to ``input``'s shape (without enlarging it)
        Usually 1 or -1; integer targets are cast to ``input``'s dtype.
    reduction : {"mean", "sum", "none"}
        "mean" divides by the number of elements (NaN if none).

    Returns
    -------
    ndarray
        0-d for "mean"/"sum", ``input``'s shape for "none"; dtype of the inputs.
        Differentiable in ``input``: :math:`-y_i\,\sigma(-y_i x_i)`.

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> round(float(fastloss.soft_margin_loss(np.array([0.0, 2.0]), np.array([1.0, -1.0]),
    ...                                       reduction="sum")), 6)  # log 2 + log(1 + e^2)
    2.820075
    """
    return pointwise("soft_margin", input, target, reduction, broadcast="input")


@loss("MarginRankingLoss", differentiable=("input1", "input2"), kernels=("margin_ranking",))
def margin_ranking_loss(input1: ArrayLike, input2: ArrayLike, target: ArrayLike,
                        margin: float = 0.0, *, reduction: str = "mean",
                        sample_weight: ArrayLike | None = None,
                        backend: str | None = None) -> Prepared:
    r"""Ranking loss: :math:`\ell_i = \max(0, -y_i (x_{1,i} - x_{2,i}) + \Delta)`, where
    :math:`y_i = 1` says :math:`x_1` should rank higher and :math:`y_i = -1` lower.

    Parameters
    ----------
    input1, input2 : array_like, float32 or float64
    target : array_like, usually of 1 and -1 (integer targets are accepted)
        The three must have the same number of dimensions and broadcast together
        (silently, as in PyTorch).
    margin : float, default 0
    reduction : {"mean", "sum", "none"}
        "mean" divides by the number of elements of the broadcast shape (NaN if none).

    Returns
    -------
    ndarray
        0-d for "mean"/"sum", the broadcast shape for "none"; dtype of the inputs.
        Differentiable in ``input1`` and ``input2`` (:math:`\mp y_i` where the hinge is
        active, including where it is exactly 0, as PyTorch's ``clamp_min``).

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> x1 = np.array([1.0, 0.0]); x2 = np.array([0.0, 1.0]); y = np.array([1.0, 1.0])
    >>> fastloss.margin_ranking_loss(x1, x2, y, margin=0.5, reduction="none")
    array([0. , 1.5])
    """
    check_reduction(reduction)
    margin = real(margin, "margin")
    x1 = float_array(input1, "input1")
    x2 = float_array(input2, "input2")
    t_np = to_numpy(target, "target")
    t = float_array(t_np, "target", dtype=None if t_np.dtype.kind == "f" else x1.dtype)
    for name, a in (("input2", x2), ("target", t)):
        if a.ndim != x1.ndim:
            raise ValueError(f"{name}: expected {x1.ndim} dimensions like input1 (input1, "
                             f"input2 and target must have as many), got shape {a.shape}")
    shape = broadcast_shape(x1.shape, x2.shape, "input1", "input2", warn=False)
    shape = broadcast_shape(shape, t.shape, "input1 and input2", "target", warn=False)
    dtype = result_dtype(x1, x2, t)
    arrays = tuple(contiguous(np.broadcast_to(a, shape), dtype).reshape(-1) for a in (x1, x2, t))
    return Prepared("margin_ranking", arrays, (margin,), dtype, shape, reduction,
                    float(math.prod(shape)), (wrt(0, x1, shape), wrt(1, x2, shape)))


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
