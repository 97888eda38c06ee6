"""Regression losses: L1, MSE, SmoothL1, Huber."""
from __future__ import annotations

from .._registry import loss
from .._validate import real
from ._common import pointwise
from .._typing import ArrayLike, Prepared


@loss("L1Loss", kernels=("l1",))
def l1_loss(input: ArrayLike, target: ArrayLike, *, reduction: str = "mean",
            weight: ArrayLike | None = None,
            sample_weight: ArrayLike | None = None,
            backend: str | None = None) -> Prepared:
    r"""Mean absolute error, :math:`\ell_i = w_i\,|x_i - y_i|`.

    Parameters
    ----------
    input : array_like, any shape, float32 or float64
    target : array_like, broadcastable to ``input`` (a warning is given when the shapes
        differ, as in PyTorch); integer targets are cast to ``input``'s dtype.
    reduction : {"mean", "sum", "none"}
    weight : array_like of ``input``'s shape, optional
        Per-element weights; with ``reduction="mean"`` the weighted sum is divided by
        ``weight.sum()``.

    Returns
    -------
    ndarray
        0-d for "mean"/"sum", the broadcast shape for "none"; dtype of the inputs.

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> float(fastloss.l1_loss(np.array([1.0, 2.0]), np.array([0.0, 0.0])))
    1.5
    """
    return pointwise("l1", input, target, reduction, weights=(("weight", weight),),
                     weight_rule="input", weight_mean=True)


@loss("MSELoss", kernels=("mse",))
def mse_loss(input: ArrayLike, target: ArrayLike, *, reduction: str = "mean",
             weight: ArrayLike | None = None,
             sample_weight: ArrayLike | None = None,
             backend: str | None = None) -> Prepared:
    r"""Mean squared error, :math:`\ell_i = w_i\,(x_i - y_i)^2`.

    Parameters and returns as :func:`l1_loss` (``weight`` mean divides by ``weight.sum()``).

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> float(fastloss.mse_loss(np.array([1.0, 2.0]), np.array([0.0, 0.0])))
    2.5
    """
    return pointwise("mse", input, target, reduction, weights=(("weight", weight),),
                     weight_rule="input", weight_mean=True)


@loss("SmoothL1Loss", kernels=("smooth_l1", "l1"))
def smooth_l1_loss(input: ArrayLike, target: ArrayLike, *, reduction: str = "mean",
                   beta: float = 1.0,
                   sample_weight: ArrayLike | None = None,
                   backend: str | None = None) -> Prepared:
    r"""Smooth L1: :math:`0.5 d^2/\beta` where :math:`|d| < \beta`, else :math:`|d| - 0.5\beta`,
    with :math:`d = x - y`. ``beta = 0`` is exactly :func:`l1_loss`; ``beta < 0`` raises.

    Parameters and returns as :func:`l1_loss` (no weight).

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> float(fastloss.smooth_l1_loss(np.array([0.5, 3.0]), np.zeros(2)))
    1.3125
    """
    beta = real(beta, "beta")
    if not beta >= 0:   # NaN too, as in PyTorch
        raise ValueError(f"beta: expected a value >= 0, got {beta}")
    if beta == 0:
        return pointwise("l1", input, target, reduction, weights=(("weight", None),))
    return pointwise("smooth_l1", input, target, reduction, params=(beta,),
                     weights=(("weight", None),))


@loss("HuberLoss", kernels=("huber",))
def huber_loss(input: ArrayLike, target: ArrayLike, reduction: str = "mean",
               delta: float = 1.0, weight: ArrayLike | None = None, *,
               sample_weight: ArrayLike | None = None, backend: str | None = None) -> Prepared:
    r"""Huber: :math:`0.5 d^2` where :math:`|d| < \delta`, else
    :math:`\delta(|d| - 0.5\delta)`; equals ``delta * smooth_l1_loss(beta=delta)``.

    ``delta`` must be > 0. With ``weight`` (``input``'s shape) each element is multiplied
    by its weight and "mean" divides by the element count, as PyTorch does.

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> # (0.5 * 0.5**2 + 2 * (3 - 0.5 * 2)) / 2
    >>> float(fastloss.huber_loss(np.array([0.5, 3.0]), np.zeros(2), delta=2.0))
    2.0625
    """
    delta = real(delta, "delta")
    if not delta > 0:
        raise ValueError(f"delta: expected a value > 0, got {delta}")
    return pointwise("huber", input, target, reduction, params=(delta,),
                     weights=(("weight", weight),), weight_rule="input")
