"""Class losses over a class axis: NLL and cross-entropy."""
from __future__ import annotations

import math


from .._registry import loss
from .._validate import (class_weight, contiguous, float_array, index_array, integer,
                         is_floating, real, result_dtype, to_numpy)
from ._common import ClassTargets, Prepared, check_reduction, wrt
from .._typing import ArrayLike
from .linear import ce_extended, extension_params

# the public functions of this family (fastloss.functional re-exports them)
__all__ = ["nll_loss", "cross_entropy"]


def class_layout(x, name="input"):
    """View input of shape (C,), (N, C) or (N, C, d1, ..., dk) as (N, C, D) and give the
    shape of the per-item result: (), (N,) or (N, d1, ..., dk). No copy of the class axis:
    kernels stride over D."""
    if x.ndim == 2:
        n, c = x.shape
        return (n, c, 1), (n,)
    if x.ndim == 0:
        raise ValueError(f"{name}: expected shape (C,), (N, C) or (N, C, d1, ..., dk), "
                         "got a 0-d array")
    if x.ndim == 1:
        return (1, x.shape[0], 1), ()
    n, c = x.shape[:2]
    d = math.prod(x.shape[2:])
    return (n, c, d), (n, *x.shape[2:])


def class_index_target(target, item_shape, input_shape):
    t = index_array(target, "target")
    if t.shape != item_shape and not (item_shape == () and t.shape == (1,)):
        raise ValueError(f"target: expected class indices of shape {item_shape} for input of "
                         f"shape {input_shape}, got {t.shape}")
    return contiguous(t).reshape(-1) if t.ndim != 1 else contiguous(t)


def _class_prepare(kernel, input, target, weight, ignore_index, reduction, params):
    check_reduction(reduction)
    x = float_array(input, "input")
    layout, item_shape = class_layout(x)
    t = class_index_target(target, item_shape, x.shape)
    w = class_weight(weight, layout[1], x.dtype)
    xc = contiguous(x).reshape(layout)
    return Prepared(kernel, (xc, t, w), (ignore_index, *params), x.dtype, item_shape,
                    reduction, None, (wrt(0, x),),
                    ClassTargets("target", t, w, layout[1], ignore_index, True))


@loss("NLLLoss", kernels=("nll",), batch_axes={"weight": None})
def nll_loss(input: ArrayLike, target: ArrayLike, weight: ArrayLike | None = None, *,
             ignore_index: int = -100, reduction: str = "mean",
             sample_weight: ArrayLike | None = None, backend: str | None = None) -> Prepared:
    r"""Negative log-likelihood: :math:`\ell_i = -w_{y_i} x_{i, y_i}`, 0 where
    :math:`y_i` = ``ignore_index``.

    Parameters
    ----------
    input : array_like of log-probabilities, shape (C,), (N, C) or (N, C, d1, ..., dk)
    target : integer array_like of class indices in [0, C), shape (), (N,) or
        (N, d1, ..., dk). int64 and uint8 are what PyTorch takes; any integer dtype is
        accepted here. An index outside [0, C) that is not ``ignore_index`` raises
        IndexError.
    weight : array_like of shape (C,), optional
        Per-class weights.
    ignore_index : int, default -100
    reduction : {"mean", "sum", "none"}
        "mean" divides by the summed weight of the counted targets (NaN if none count).

    Returns
    -------
    ndarray: 0-d for "mean"/"sum", else shaped like target; input's dtype.

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> float(fastloss.nll_loss(np.log([[0.5, 0.25, 0.25]]), np.array([0])))  # -log 0.5
    0.6931471805599453
    """
    return _class_prepare("nll", input, target, weight, integer(ignore_index, "ignore_index"),
                          reduction, ())


@loss("CrossEntropyLoss", kernels=("ce_class", "ce_prob", "ce_ext_class", "ce_ext_prob"),
      extensions=("z_loss", "softcap"), batch_axes={"weight": None})
def cross_entropy(input: ArrayLike, target: ArrayLike, weight: ArrayLike | None = None, *,
                  ignore_index: int = -100, reduction: str = "mean",
                  label_smoothing: float = 0.0, z_loss: float = 0.0,
                  softcap: float | None = None, sample_weight: ArrayLike | None = None,
                  backend: str | None = None) -> Prepared:
    r"""Cross-entropy of logits, in one fused pass (log-sum-exp, pick, smooth).

    With class-index targets :math:`y_i`, weights :math:`w` and smoothing :math:`\epsilon`:

    .. math:: \ell_i = (1-\epsilon)\,w_{y_i}(\mathrm{lse}(x_i) - x_{i,y_i})
              + \frac{\epsilon}{C}\sum_c w_c(\mathrm{lse}(x_i) - x_{i,c})

    and 0 where :math:`y_i` = ``ignore_index``. "mean" divides by the summed weight of the
    counted targets (NaN when there are none). With probability targets (float, shaped like
    input) :math:`\ell_i = -\sum_c w_c\,p'_{ic}\log\mathrm{softmax}(x_i)_c` with
    :math:`p' = (1-\epsilon)p + \epsilon/C`, "mean" divides by the number of items, and
    ``ignore_index`` must stay negative.

    Parameters
    ----------
    input : array_like of logits, shape (C,), (N, C) or (N, C, d1, ..., dk)
    target : class indices (see :func:`nll_loss`) or probabilities shaped like input
    weight : array_like of shape (C,), optional
    ignore_index : int, default -100
    reduction : {"mean", "sum", "none"}
    label_smoothing : float in [0, 1], default 0
    z_loss : float >= 0, default 0, keyword-only (fastloss's own)
        Adds :math:`\lambda\,w_{y_i}\,\mathrm{lse}(x_i)^2` to each counted item
        (:math:`\lambda\,\mathrm{lse}^2` with probability targets), fused in the same
        pass with its gradient; "mean" divides by the same denominator.
    softcap : float > 0 or None, default None, keyword-only (fastloss's own)
        Replaces the logits by :math:`c \tanh(x / c)` before the loss (and z_loss), with
        its gradient. With the defaults the loss is torch's, by the same kernels.

    Returns
    -------
    ndarray: 0-d for "mean"/"sum", else shaped (), (N,) or (N, d1, ..., dk).

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> x = np.array([[2.0, 1.0, 0.1]]); t = np.array([0])
    >>> round(float(fastloss.cross_entropy(x, t)), 6)
    0.41703
    """
    eps = real(label_smoothing, "label_smoothing")
    if not 0.0 <= eps <= 1.0:
        raise ValueError(f"label_smoothing: expected a value in [0, 1], got {eps}")
    ignore_index = integer(ignore_index, "ignore_index")
    t_np = to_numpy(target, "target")
    extended = z_loss != 0.0 or softcap is not None
    if extended:
        z_loss, cap = extension_params(z_loss, softcap)
        extended = z_loss != 0.0 or cap != 0.0
    if t_np.dtype.kind in "biu" or not is_floating(t_np.dtype):   # cheap for int targets
        if extended:
            check_reduction(reduction)
            x = float_array(input, "input")
            layout, item_shape = class_layout(x)
            t = class_index_target(t_np, item_shape, x.shape)
            return ce_extended(x, t, weight, ignore_index, reduction, eps, z_loss, cap,
                               layout, item_shape)
        return _class_prepare("ce_class", input, t_np, weight, ignore_index, reduction, (eps,))

    check_reduction(reduction)
    x = float_array(input, "input")
    p = float_array(t_np, "target")
    if p.shape != x.shape:
        raise ValueError(f"target: floating targets are class probabilities and must have "
                         f"input's shape {x.shape}, got {p.shape} (class indices must be "
                         "an integer array)")
    if ignore_index >= 0:
        raise ValueError(f"ignore_index: not supported with probability targets "
                         f"(got {ignore_index}; leave it negative)")
    dtype = result_dtype(x, p)
    layout, item_shape = class_layout(x)
    if extended:
        return ce_extended(x, p, weight, ignore_index, reduction, eps, z_loss, cap, layout,
                           item_shape)
    w = class_weight(weight, layout[1], dtype)
    n_items = layout[0] * layout[2]
    return Prepared("ce_prob", (contiguous(x, dtype).reshape(layout),
                                contiguous(p, dtype).reshape(layout), w),
                    (eps,), dtype, item_shape, reduction, float(n_items),
                    (wrt(0, x),))
