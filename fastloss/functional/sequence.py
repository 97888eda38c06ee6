"""Sequence losses: connectionist temporal classification (CTC)."""
from __future__ import annotations

import numpy as np

from .._registry import loss
from .._typing import ArrayLike
from .._validate import boolean, contiguous, float_array, integer, to_numpy
from .._empty import EMPTY
from ._common import Prepared, check_reduction, wrt

# the public functions of this family (fastloss.functional re-exports them)
__all__ = ["ctc_loss"]



def _lengths(x, name, n, batched):
    """Lengths as int64 of shape (n,): an array, list, tuple, tensor or (unbatched) an int.
    Floating values are refused, as torch refuses them ("must be integral")."""
    a = to_numpy(x, name)
    if a.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected integer lengths, got dtype {a.dtype}")
    if not batched and a.ndim == 0:
        a = a.reshape(1)
    if a.shape != (n,):
        raise ValueError(f"{name}: expected one length per sample, shape ({n},), "
                         f"got shape {a.shape}")
    a = a.astype(np.int64)
    if a.size and a.min() < 0:
        i = int(np.argmin(a))
        raise ValueError(f"{name}: expected lengths >= 0, got {int(a[i])} at position {i}")
    return a


def _padded_targets(t, tl, n, batched):
    """Targets as (N, S) int64, S >= max(target_lengths): torch's padded layout as is,
    the concatenated 1-D layout split by target_lengths."""
    if t.dtype.kind not in "iu" or t.dtype == np.bool_:
        raise TypeError(f"targets: expected integer class indices (int32 or int64), "
                        f"got dtype {t.dtype}")
    max_len = int(tl.max()) if tl.size else 0
    if t.ndim == 2:
        if t.shape[0] != n:
            raise ValueError(f"targets: expected {n} padded rows (N, S), got shape {t.shape}")
        if t.shape[1] < max_len:
            raise ValueError(f"targets: padded targets have {t.shape[1]} columns, fewer than "
                             f"the longest target length {max_len}")
        return contiguous(t.astype(np.int64, copy=False))
    if t.ndim != 1:
        raise ValueError(f"targets: expected padded (N, S) or concatenated 1-D targets, "
                         f"got shape {t.shape}")
    total = int(tl.sum())
    if t.shape[0] != total:
        raise ValueError(f"targets: concatenated targets must have sum(target_lengths) = "
                         f"{total} entries, got {t.shape[0]}")
    out = np.zeros((n, max_len), np.int64)
    if total:
        starts = np.concatenate(([0], np.cumsum(tl)[:-1]))
        row = np.repeat(np.arange(n), tl)
        col = np.arange(total) - np.repeat(starts, tl)
        out[row, col] = t
    return out


@loss("CTCLoss", differentiable=("log_probs",), kernels=("ctc",), extensions=("exact_grad",),
      batch_axes={"log_probs": 1})
def ctc_loss(log_probs: ArrayLike, targets: ArrayLike, input_lengths: ArrayLike,
             target_lengths: ArrayLike, blank: int = 0, reduction: str = "mean",
             zero_infinity: bool = False, *, exact_grad: bool = False,
             sample_weight: ArrayLike | None = None,
             backend: str | None = None) -> Prepared:
    r"""Connectionist temporal classification loss: the negative log-likelihood of the
    target sequence summed over all its alignments with the input.

    .. math:: \ell_n = -\log \sum_{\pi \in \mathcal{B}^{-1}(y_n)} \prod_{t < T_n}
              p_{t, n, \pi_t}

    where :math:`\mathcal{B}` removes repeats then blanks, :math:`T_n` is
    ``input_lengths[n]`` and :math:`p = \exp(\text{log\_probs})`. Computed by the
    log-space forward(-backward) recursion over the states of the target with blanks
    interleaved, for each sample in parallel.

    Parameters
    ----------
    log_probs : array_like of shape (T, N, C), or (T, C) for one unbatched sample
        Log-probabilities (e.g. a ``log_softmax`` over C), float32 or float64.
    targets : integer array_like
        Padded (N, S) with S >= max(target_lengths), or the N targets concatenated, 1-D of
        length sum(target_lengths); unbatched: (S,) (or (1, S)). int32 or int64 (any
        integer dtype). Each used entry must be in [0, C) and differ from ``blank``
        (ValueError/IndexError otherwise, where torch computes a meaningless number).
    input_lengths, target_lengths : array_like of N integers (array, list or tuple alike;
        an int for an unbatched sample)
        Each input length in [0, T], each target length >= 0.
    blank : int in [0, C), default 0
    reduction : {"mean", "sum", "none"}
        "mean" divides each loss by its target length clamped to >= 1, then averages over
        the batch (NaN for an empty batch), as torch does.
    zero_infinity : bool, default False
        Give an impossible alignment (infinite loss) a loss of 0 and a zero gradient.
    exact_grad : bool, default False, keyword-only (fastloss's own)
        torch's gradient with respect to ``log_probs`` is :math:`e^{x_{t,c}} -
        \gamma_{t,c}` (:math:`\gamma` the posterior occupancy of class c at time t): the
        gradient as if ``log_probs`` were the output of a ``log_softmax`` whose backward
        is folded in; it is not the derivative of this loss in ``log_probs`` (torch
        issues #52241, #82545, #181534). fastloss matches torch by default; with
        ``exact_grad=True`` it returns the true derivative :math:`-\gamma_{t,c}`.

    Returns
    -------
    ndarray
        0-d for "mean"/"sum", (N,) (or () unbatched) for "none"; ``log_probs``' dtype.
        An impossible alignment (input too short for the target and its repeats) gives
        inf (0 with ``zero_infinity``); an empty target takes the all-blank path.
        Differentiable in ``log_probs``: rows t >= input_lengths[n] get a zero gradient;
        where the loss is inf (without ``zero_infinity``) or NaN the gradient rows of the
        sample are NaN, as in torch.

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> lp = np.log(np.full((2, 1, 2), 0.5))              # T=2, N=1, C=2 (blank 0)
    >>> # alignments of target [1]: "1 1", "1 -", "- 1", each of probability 1/4
    >>> round(float(fastloss.ctc_loss(lp, np.array([[1]]), [2], [1])), 6)  # -log 3/4
    0.287682
    """
    check_reduction(reduction)
    zero_infinity = boolean(zero_infinity, "zero_infinity")
    exact_grad = boolean(exact_grad, "exact_grad")
    x = float_array(log_probs, "log_probs")
    if x.ndim not in (2, 3):
        raise ValueError(f"log_probs: expected shape (T, N, C) or unbatched (T, C), "
                         f"got shape {x.shape}")
    if x.size == 0:
        raise ValueError(f"log_probs: must not be empty (as in torch), got shape {x.shape}")
    batched = x.ndim == 3
    T, C = x.shape[0], x.shape[-1]
    n = x.shape[1] if batched else 1
    blank = integer(blank, "blank")
    if not 0 <= blank < C:
        raise ValueError(f"blank: expected a class index in [0, {C}) (the label range), "
                         f"got {blank}")
    il = _lengths(input_lengths, "input_lengths", n, batched)
    tl = _lengths(target_lengths, "target_lengths", n, batched)
    if il.size and il.max() > T:
        i = int(np.argmax(il))
        raise ValueError(f"input_lengths: expected lengths <= T = {T} (log_probs' first "
                         f"dimension), got {int(il[i])} at position {i}")
    t = to_numpy(targets, "targets")
    if not batched and t.ndim == 1 and t.shape[0] != int(tl.sum()):
        t = t.reshape(1, -1)           # an unbatched target padded beyond its length
    tp = _padded_targets(t, tl, n, batched)
    used = np.arange(tp.shape[1]) < tl[:, None]
    bad = used & ((tp < 0) | (tp >= C))
    if bad.any():
        r, c = map(int, np.argwhere(bad)[0])
        raise IndexError(f"targets: class index {int(tp[r, c])} of sample {r} (position "
                         f"{c}) is out of range [0, {C})")
    bad = used & (tp == blank)
    if bad.any():
        r, c = map(int, np.argwhere(bad)[0])
        raise ValueError(f"targets: sample {r} has the blank index {blank} at position {c}; "
                         "targets must not contain blank")
    scale = (1.0 / np.maximum(tl, 1)).astype(np.float64) if reduction == "mean" else EMPTY[np.dtype(np.float64)]
    xc = contiguous(x).reshape(T, n, C)
    return Prepared("ctc", (xc, tp, il, tl, scale), (blank, int(zero_infinity), int(exact_grad)),
                    x.dtype, (n,) if batched else (), reduction, float(n),
                    (wrt(0, x),))
