"""Element-wise losses (the ``elementwise`` kernel family): one item per element of
already broadcast arrays. Regression (L1, MSE, SmoothL1, Huber), binary cross-entropy on
probabilities and on logits, Poisson and Gaussian NLL, KL divergence, and the
element-wise margins (hinge embedding, soft margin, margin ranking)."""
from __future__ import annotations

import math
import numbers
import warnings

import numpy as np

from .._registry import loss
from .._typing import ArrayLike, Prepared
from .._validate import (boolean, broadcast_shape, contiguous, float_array, real, result_dtype,
                         to_numpy)
from ._common import check_reduction, pointwise, wrt

# the public functions of this family (fastloss.functional re-exports them)
__all__ = ["l1_loss", "mse_loss", "smooth_l1_loss", "huber_loss",
           "binary_cross_entropy", "binary_cross_entropy_with_logits",
           "poisson_nll_loss", "gaussian_nll_loss", "kl_div", "hinge_embedding_loss",
           "soft_margin_loss", "margin_ranking_loss"]


# ---- regression ---------------------------------------------------------------------------

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


# ---- binary cross-entropy ------------------------------------------------------------------


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


# ---- likelihoods and divergence -------------------------------------------------------------

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


# ---- element-wise margins ------------------------------------------------------------------

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

