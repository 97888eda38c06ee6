"""Embedding losses: cosine embedding and triplet margin, one loss per row of vectors."""
from __future__ import annotations

import math

import numpy as np

from .._registry import loss
from .._validate import (boolean, contiguous, float_array, is_floating, real, result_dtype,
                         to_numpy)
from ._common import Prepared, check_reduction, wrt
from .._typing import ArrayLike


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
