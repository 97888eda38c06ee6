"""Linear cross-entropy (the logits x @ W.T + b never materialised), and the
cross-entropy extensions z_loss and softcap shared with ``cross_entropy``."""
from __future__ import annotations
import math
from typing import Any

import numpy as np

from .._registry import loss
from .._typing import ArrayLike
from .._validate import (class_weight, contiguous, float_array, index_array, integer, real,
                         result_dtype, to_numpy)
from .._empty import EMPTY
from ._common import ClassTargets, Prepared, check_reduction, wrt

# the public functions of this family (fastloss.functional re-exports them)
__all__ = ["linear_cross_entropy"]



def extension_params(z_loss, softcap):
    """(z_loss, cap) as plain floats: cap 0.0 means no softcap."""
    z = real(z_loss, "z_loss")
    if not z >= 0:
        raise ValueError(f"z_loss: expected a coefficient >= 0, got {z}")
    if softcap is None:
        return z, 0.0
    cap = real(softcap, "softcap")
    if not (cap > 0 and math.isfinite(cap)):
        raise ValueError(f"softcap: expected None or a finite value > 0, got {cap}")
    return z, cap


def ce_extended(x, t, weight, ignore_index, reduction, eps, z_loss, cap, layout, item_shape):
    """The Prepared of cross_entropy with z_loss or softcap (kernels ce_ext_*)."""
    if t.dtype.kind not in "fc":
        w = class_weight(weight, layout[1], x.dtype)
        xc = contiguous(x).reshape(layout)
        return Prepared("ce_ext_class", (xc, t, w), (ignore_index, eps, z_loss, cap),
                        x.dtype, item_shape, reduction, None, (wrt(0, x),),
                        ClassTargets("target", t, w, layout[1], ignore_index))
    dtype = result_dtype(x, t)
    w = class_weight(weight, layout[1], dtype)
    return Prepared("ce_ext_prob", (contiguous(x, dtype).reshape(layout),
                                    contiguous(t, dtype).reshape(layout), w),
                    (eps, z_loss, cap), dtype, item_shape, reduction,
                    float(layout[0] * layout[2]), (wrt(0, x),))


@loss("LinearCrossEntropyLoss", differentiable=("input", "linear_weight", "linear_bias"),
      kernels=("linear_ce_class", "linear_ce_prob"),
      extensions=("z_loss", "softcap", "chunk_size"),
      batch_axes={"linear_weight": None, "linear_bias": None, "weight": None})
def linear_cross_entropy(input: ArrayLike, linear_weight: ArrayLike, target: ArrayLike, *,
                         linear_bias: ArrayLike | None = None,
                         weight: ArrayLike | None = None, reduction: str = "mean",
                         ignore_index: int | None = None, label_smoothing: float = 0.0,
                         options: dict[str, Any] | None = None, z_loss: float = 0.0,
                         softcap: float | None = None, chunk_size: int | None = None,
                         sample_weight: ArrayLike | None = None,
                         backend: str | None = None) -> Prepared:
    r"""Cross-entropy of the logits :math:`z = x W^\top + b`, without materialising them.

    The same result as ``cross_entropy(input @ W.T + b, target, ...)`` (for a weight of
    shape (C, d1, ..., dK, d), logits of shape (N, C, d1, ..., dK)). The rows are done in
    chunks: one matrix product per chunk into a reused buffer, the fused cross-entropy
    (and its gradient, written over the chunk's logits) while the rows are in cache,
    then the gradient products with respect to ``input``, ``linear_weight`` and
    ``linear_bias`` accumulated. Extra memory: one chunk's logits (plus the gradients).

    Parameters
    ----------
    input : array_like of shape (d,) or (N, d), float32 or float64
    linear_weight : array_like of shape (C, d) or (C, d1, ..., dK, d)
        A K-dim weight needs a batched input.
    target : class indices of shape (), (N,) or (N, d1, ..., dK), or class probabilities
        of the logits' shape (as in torch, a target of the logits' shape is taken as
        probabilities, and must then be floating).
    linear_bias : array_like of shape (C,) or (C, d1, ..., dK), optional
    weight : array_like of shape (C,), optional
        Per-class weights, as in :func:`cross_entropy`.
    reduction : {"mean", "sum", "none"}
    ignore_index : int, optional
        Default None: -100 for class indices; must stay None with probabilities.
    label_smoothing : float in [0, 1], default 0
    options : torch.nn.LinearCrossEntropyOptions, optional
        torch's chunking options: only its ``batch_chunk_size`` is used (as
        ``chunk_size``); the result does not depend on it.
    z_loss : float >= 0, default 0, keyword-only (fastloss's own)
        Adds :math:`\lambda\,w_{y_i}\,\mathrm{lse}(z_i)^2` to each counted item
        (:math:`\lambda\,\mathrm{lse}^2` with probabilities), fused in the same pass.
    softcap : float > 0 or None, default None, keyword-only (fastloss's own)
        Replaces the logits by :math:`c \tanh(z / c)` before the loss (and z_loss).
    chunk_size : int >= 1, optional, keyword-only (fastloss's own)
        Rows per chunk. Default: all rows if their logits fit in ``MEMORY_BUDGET`` bytes
        (128 MiB), else as many rows as fit (at least 64).

    Returns
    -------
    ndarray
        As :func:`cross_entropy` on the logits. Differentiable in ``input``,
        ``linear_weight`` and ``linear_bias``.

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> x = np.array([[1.0, 0.0]]); W = np.array([[2.0, 0.0], [1.0, 0.0], [0.1, 0.0]])
    >>> round(float(fastloss.linear_cross_entropy(x, W, np.array([0]))), 6)
    0.41703
    """
    check_reduction(reduction)
    eps = real(label_smoothing, "label_smoothing")
    if not 0.0 <= eps <= 1.0:
        raise ValueError(f"label_smoothing: expected a value in [0, 1], got {eps}")
    z_loss, cap = extension_params(z_loss, softcap)
    x = float_array(input, "input")
    wt = float_array(linear_weight, "linear_weight")
    if x.ndim not in (1, 2):
        raise ValueError(f"input: expected dimensionality 1 or 2, (d,) or (N, d), got "
                         f"{x.ndim} (shape {x.shape})")
    if wt.ndim < 2:
        raise ValueError(f"linear_weight: expected dimensionality at least 2, (C, d), got "
                         f"{wt.ndim} (shape {wt.shape})")
    if x.shape[-1] != wt.shape[-1]:
        raise ValueError(f"linear_weight: expected equal input and linear_weight last "
                         f"dimensions (in_features), got {x.shape[-1]} and {wt.shape[-1]}, "
                         "respectively")
    c, out_features = wt.shape[0], wt.shape[1:-1]
    if out_features and x.ndim == 1:
        raise ValueError(f"input: a K-dim loss (linear_weight of shape {wt.shape}) requires "
                         f"a batched input (N, {x.shape[-1]}), got shape {x.shape}")
    dtype = result_dtype(x, wt)
    b = EMPTY[dtype]
    if linear_bias is not None:
        b = float_array(linear_bias, "linear_bias")
        if b.shape != (c, *out_features):
            raise ValueError(f"linear_bias: expected shape {(c, *out_features)}, got "
                             f"{b.shape}")
        dtype = result_dtype(x, wt, b)
    d = math.prod(out_features)
    n = x.shape[0] if x.ndim == 2 else 1
    batch = x.shape[:-1]
    logits_shape = (*batch, c, *out_features)
    chunk = _chunk_rows(chunk_size, options)
    t_np = to_numpy(target, "target")
    probs = t_np.shape == logits_shape
    xs = contiguous(x, dtype).reshape(n, x.shape[-1])
    wf = contiguous(wt, dtype).reshape(c * d, wt.shape[-1])
    bf = contiguous(b, dtype).reshape(-1)
    w = class_weight(weight, c, dtype)
    grads = (wrt(0, x), wrt(1, wt), wrt(3, b))
    item_shape = (*batch, *out_features)
    if probs:
        if t_np.dtype.kind != "f":
            raise TypeError(f"target: a target of the logits' shape {logits_shape} holds "
                            f"class probabilities and must be floating, got dtype "
                            f"{t_np.dtype}")
        if ignore_index is not None:
            raise ValueError("ignore_index: cannot be specified when target contains "
                             "probabilities")
        p = contiguous(float_array(t_np, "target"), dtype).reshape(n, c, d)
        return Prepared("linear_ce_prob", (xs, wf, p, bf, w),
                        (c, d, eps, z_loss, cap, chunk), dtype, item_shape, reduction,
                        float(n * d), grads)
    ignore_index = -100 if ignore_index is None else integer(ignore_index, "ignore_index")
    t = index_array(t_np, "target")
    if t.shape != item_shape and not (item_shape == () and t.shape == (1,)):
        raise ValueError(f"target: expected class indices of shape {item_shape} (or "
                         f"probabilities of the logits' shape {logits_shape}), got "
                         f"{t.shape}")
    t = contiguous(t).reshape(-1)
    return Prepared("linear_ce_class", (xs, wf, t, bf, w),
                    (c, d, ignore_index, eps, z_loss, cap, chunk), dtype, item_shape,
                    reduction, None, grads,  # type: ignore[arg-type]  # None: the counted weight
                    ClassTargets("target", t, w, c, ignore_index))


def _chunk_rows(chunk_size, options):
    if chunk_size is None and options is not None:
        chunk_size = getattr(options, "batch_chunk_size", None)
    if chunk_size is None:
        return 0                       # chosen by the kernel from the shapes
    chunk_size = integer(chunk_size, "chunk_size")
    if chunk_size < 1:
        raise ValueError(f"chunk_size: expected a number of rows >= 1, got {chunk_size}")
    return chunk_size
