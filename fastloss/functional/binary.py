"""Binary cross-entropy, on probabilities and on logits."""
from __future__ import annotations

import numpy as np

from .._registry import loss
from .._validate import float_array
from ._common import pointwise
from .._typing import ArrayLike, Prepared


def _check_unit_interval(a, name):
    """PyTorch's BCE refuses probabilities outside [0, 1] (NaN included); kernels cannot
    raise, so the range is checked here, with two reductions and no temporary."""
    if a.size and not (np.min(a) >= 0 and np.max(a) <= 1):
        flat = a.reshape(-1)
        bad = int(np.flatnonzero(~((flat >= 0) & (flat <= 1)))[0])
        raise ValueError(f"{name}: expected values in [0, 1], got {flat[bad]} at flat "
                         f"position {bad}")


@loss("BCELoss", kernels=("bce",))
def binary_cross_entropy(input: ArrayLike, target: ArrayLike,
                         weight: ArrayLike | None = None, *, reduction: str = "mean",
                         sample_weight: ArrayLike | None = None,
                         backend: str | None = None) -> Prepared:
    r"""Binary cross-entropy of probabilities, each log clamped at -100 as in PyTorch:

    .. math:: \ell_i = -w_i\left(y_i \max(\log x_i, -100)
              + (1 - y_i)\max(\log(1 - x_i), -100)\right)

    so that :math:`x_i \in \{0, 1\}` gives a finite loss. The gradient is PyTorch's,
    :math:`w_i (x_i - y_i) / \max(x_i(1 - x_i), 10^{-12})` (the bound is float32's
    ``1e-12``), finite at 0 and 1 too.

    Parameters
    ----------
    input : array_like, any shape, float32 or float64
        Probabilities in [0, 1]; anything else (NaN included) raises ValueError.
    target : array_like of ``input``'s shape
        Probabilities in [0, 1]; anything else raises ValueError. Integer targets are
        cast to ``input``'s dtype.
    weight : array_like, optional
        Per-element weights, broadcast to ``input``'s shape (they may not enlarge it).
    reduction : {"mean", "sum", "none"}
        "mean" divides by the number of elements (not by the summed weight; NaN if none).

    Returns
    -------
    ndarray
        0-d for "mean"/"sum", ``input``'s shape for "none"; dtype of input and target.

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> round(float(fastloss.binary_cross_entropy(np.array([0.8, 0.4]),
    ...                                           np.array([1.0, 0.0]))), 6)
    0.366985
    """
    x = float_array(input, "input")
    prep = pointwise("bce", x, target, reduction, broadcast="same",
                     weights=(("weight", weight),))
    _check_unit_interval(x, "input")
    _check_unit_interval(prep.arrays[1], "target")
    return prep


@loss("BCEWithLogitsLoss", kernels=("bce_logits",))
def binary_cross_entropy_with_logits(input: ArrayLike, target: ArrayLike,
                                     weight: ArrayLike | None = None, *,
                                     reduction: str = "mean",
                                     pos_weight: ArrayLike | None = None,
                                     sample_weight: ArrayLike | None = None,
                                     backend: str | None = None) -> Prepared:
    r"""Binary cross-entropy of logits, fused and stable for any logit:

    .. math:: \ell_i = w_i\left((1 - y_i)\,x_i + (1 + (p_i - 1) y_i)
              \left(\max(-x_i, 0) + \log(1 + e^{-|x_i|})\right)\right)

    i.e. :math:`-w_i (p_i y_i \log\sigma(x_i) + (1 - y_i)\log(1 - \sigma(x_i)))`, where
    :math:`p` is ``pos_weight`` (1 when not given). Logits of any size (``±1e4``) give the
    exact loss; infinite logits give what PyTorch gives (NaN where :math:`0\cdot\infty`
    arises). The gradient is :math:`w_i((1 + (p_i - 1) y_i)\sigma(x_i) - p_i y_i)`.

    Parameters
    ----------
    input : array_like, any shape, float32 or float64
        Logits.
    target : array_like of ``input``'s shape
        Targets, usually in [0, 1] (not checked, as in PyTorch).
    weight : array_like, optional
        Per-element weights, broadcast to ``input``'s shape (they may not enlarge it).
    reduction : {"mean", "sum", "none"}
        "mean" divides by the number of elements (NaN if none).
    pos_weight : array_like, optional
        Weight of the positive term, broadcast to ``input``'s shape, e.g. one per class
        along the last dimension.

    Returns
    -------
    ndarray
        0-d for "mean"/"sum", ``input``'s shape for "none". float32 and float64 arguments
        together compute and return float64 (PyTorch returns target's dtype there).

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> x = np.array([1e4, -1e4, 0.0]); y = np.array([0.0, 1.0, 1.0])
    >>> fastloss.binary_cross_entropy_with_logits(x, y, reduction="none")
    array([1.00000000e+04, 1.00000000e+04, 6.93147181e-01])
    """
    return pointwise("bce_logits", input, target, reduction, broadcast="same",
                     weights=(("weight", weight), ("pos_weight", pos_weight)))
