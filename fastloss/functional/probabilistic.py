"""Likelihood and divergence losses: Poisson NLL, Gaussian NLL, KL divergence."""
from __future__ import annotations

import numbers
import warnings

import numpy as np

from .._registry import loss
from .._validate import boolean, float_array, real
from ._common import check_reduction, pointwise, wrt
from .._typing import ArrayLike, Prepared

KL_REDUCTIONS = ("none", "batchmean", "sum", "mean")


@loss("PoissonNLLLoss", kernels=("poisson_nll",))
def poisson_nll_loss(input: ArrayLike, target: ArrayLike, log_input: bool = True,
                     full: bool = False, *, eps: float = 1e-8, reduction: str = "mean",
                     sample_weight: ArrayLike | None = None,
                     backend: str | None = None) -> Prepared:
    r"""Negative log-likelihood of a Poisson target.

    With ``log_input=True`` the input is the log-rate, :math:`\ell_i = e^{x_i} - y_i x_i`;
    with ``log_input=False`` it is the rate, :math:`\ell_i = x_i - y_i \log(x_i + \epsilon)`.
    ``full=True`` adds Stirling's approximation of :math:`\log(y_i!)`,

    .. math:: y_i \log y_i - y_i + \tfrac12 \log(2\pi y_i),

    only where :math:`y_i > 1` (0 elsewhere), as PyTorch does.

    Parameters
    ----------
    input : array_like, any shape, float32 or float64
        Log-rates (``log_input=True``) or rates.
    target : array_like, broadcastable with ``input`` (silently, as in PyTorch)
        Counts; integer targets are cast to ``input``'s dtype.
    log_input : bool, default True
    full : bool, default False
    eps : float, default 1e-8
        Added to the rate inside the log when ``log_input=False``.
    reduction : {"mean", "sum", "none"}
        "mean" divides by the number of elements of the broadcast shape (NaN if none).

    Returns
    -------
    ndarray
        0-d for "mean"/"sum", the broadcast shape for "none"; dtype of the inputs.

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> round(float(fastloss.poisson_nll_loss(np.array([0.0, 1.0]), np.array([1.0, 2.0]),
    ...                                       reduction="sum")), 12)  # (1 - 0) + (e - 2)
    1.718281828459
    """
    log_input = boolean(log_input, "log_input")
    full = boolean(full, "full")
    eps = real(eps, "eps")
    return pointwise("poisson_nll", input, target, reduction,
                     params=(int(log_input), int(full), eps), broadcast="silent")


@loss("GaussianNLLLoss", differentiable=("input", "var"), kernels=("gaussian_nll",))
def gaussian_nll_loss(input: ArrayLike, target: ArrayLike, var: ArrayLike,
                      full: bool = False, eps: float = 1e-6, reduction: str = "mean", *,
                      sample_weight: ArrayLike | None = None,
                      backend: str | None = None) -> Prepared:
    r"""Negative log-likelihood of a Gaussian target with predicted mean and variance.

    .. math:: \ell_i = \tfrac12\left(\log v_i + \frac{(x_i - y_i)^2}{v_i}\right)
              \;[+\ \tfrac12\log 2\pi \text{ if full}],
              \qquad v_i = \max(\mathrm{var}_i, \epsilon)

    The clamp at ``eps`` is invisible to the gradient, as in PyTorch (which clamps under
    ``no_grad``): where ``var < eps`` the gradient with respect to ``var`` is the one at
    ``eps``, :math:`\tfrac12(1/\epsilon - (x-y)^2/\epsilon^2)`, not 0.

    Parameters
    ----------
    input : array_like, any shape, float32 or float64
        Predicted means.
    target : array_like, broadcastable with ``input`` (silently, as in PyTorch)
    var : array_like or float
        Variances, all >= 0 (a negative entry raises ValueError; NaN does not). An array
        either has ``input``'s shape, or ``input``'s shape without its last dimension
        (one variance per row: it is used as if unsqueezed at the end), or ``input``'s
        number of dimensions with exactly one mismatched dimension, of size 1. A Python
        number is one variance for every element.
    full : bool, default False
        Add the constant :math:`\tfrac12\log 2\pi`.
    eps : float, default 1e-6
        Lower clamp of the variance.
    reduction : {"mean", "sum", "none"}
        "mean" divides by the number of elements of the broadcast shape (NaN if none).

    Returns
    -------
    ndarray
        0-d for "mean"/"sum", the broadcast shape for "none"; dtype of the inputs.
        Differentiable in ``input`` and ``var`` (an array ``var``; the gradient has its
        shape).

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> x = np.array([[1.0, 2.0], [0.0, 1.0]]); y = np.zeros((2, 2))
    >>> var = np.array([1.0, 4.0])  # one variance per row: 0.5*(1 + 4) + log(4) + 0.5/4
    >>> round(float(fastloss.gaussian_nll_loss(x, y, var, reduction="sum")), 6)
    4.011294
    """
    full = boolean(full, "full")
    eps = real(eps, "eps")
    x = float_array(input, "input")
    if isinstance(var, numbers.Real) and not isinstance(var, bool):
        # PyTorch takes a Python float as var * ones_like(input): input's shape and dtype.
        if var < 0:
            raise ValueError(f"var: expected a variance >= 0, got {var}")
        v = np.full(x.shape, var, dtype=x.dtype)
        passed = aligned = ()   # d/dvar of a number: the sum over every element
    else:
        v = float_array(var, "var")
        if np.any(v < 0):
            raise ValueError("var: expected variances >= 0, got negative entries")
        passed = aligned = v.shape
        if v.shape != x.shape:
            if v.shape == x.shape[:-1]:
                aligned = (*v.shape, 1)
            elif not (v.ndim == x.ndim and sum(b for a, b in zip(x.shape, v.shape)
                                               if a != b) == 1):
                raise ValueError(f"var: expected input's shape {x.shape}, that shape without "
                                 "its last dimension, or that shape with one dimension of "
                                 f"size 1, got {v.shape}")
        v = v.reshape(aligned)
    check_reduction(reduction)
    prep = pointwise("gaussian_nll", x, target, reduction, params=(int(full), eps),
                     broadcast="silent", extra=(("var", v),))
    full_shape = prep.item_shape
    return prep._replace(wrt=(*prep.wrt, wrt(2, v, full_shape, shape=passed,
                                             aligned=aligned if aligned != passed else None)))


@loss("KLDivLoss", kernels=("kl_div",))
def kl_div(input: ArrayLike, target: ArrayLike, *, reduction: str = "mean",
           log_target: bool = False,
           sample_weight: ArrayLike | None = None,
           backend: str | None = None) -> Prepared:
    r"""Kullback-Leibler divergence of ``target`` from the distribution whose log-probabilities
    are ``input``, element by element:

    .. math:: \ell_i = y_i (\log y_i - x_i) \quad\text{or, with log_target,}\quad
              \ell_i = e^{y_i} (y_i - x_i)

    where :math:`y_i \log y_i` is 0 where :math:`y_i = 0` (PyTorch's ``xlogy``); a negative
    target gives NaN, and a zero target still propagates a NaN or infinite ``x_i``
    (:math:`0 \cdot \infty`), exactly as PyTorch.

    Parameters
    ----------
    input : array_like, any shape, float32 or float64
        Log-probabilities.
    target : array_like, broadcastable with ``input`` (silently, as in PyTorch)
        Probabilities, or log-probabilities when ``log_target``.
    reduction : {"mean", "batchmean", "sum", "none"}
        "batchmean" divides the sum by ``input.shape[0]`` (the sum itself for 0-d input),
        which is the mathematical KL divergence averaged over a batch. "mean" divides by
        the number of elements and warns (as PyTorch does) that it is not the KL divergence.
    log_target : bool, default False

    Returns
    -------
    ndarray
        0-d for "mean"/"batchmean"/"sum", the broadcast shape for "none"; dtype of the
        inputs.

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> p = np.array([[0.5, 0.5]]); q = np.array([[0.25, 0.75]])
    >>> round(float(fastloss.kl_div(np.log(q), p, reduction="batchmean")), 6)
    0.143841
    """
    check_reduction(reduction, KL_REDUCTIONS)
    log_target = boolean(log_target, "log_target")
    if reduction == "mean":
        warnings.warn("reduction: 'mean' divides the total loss by both the batch size and "
                      "the support size.'batchmean' divides only by the batch size, and "
                      "aligns with the KL div math definition.'mean' will be changed to "
                      "behave the same as 'batchmean' in the next major release.",
                      UserWarning, stacklevel=3)
    x = float_array(input, "input")
    batchmean = reduction == "batchmean"
    prep = pointwise("kl_div", x, target, "sum" if batchmean else reduction,
                     params=(int(log_target),), broadcast="silent")
    if batchmean and x.ndim != 0:
        prep = prep._replace(reduction="mean", denom=float(x.shape[0]))
    return prep
