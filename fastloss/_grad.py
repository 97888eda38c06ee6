"""Fused value-and-gradient: the training entry point, and the contract a torch autograd
bridge builds on."""
from __future__ import annotations

from typing import Any, Callable, overload

import numpy as np
from numpy.typing import NDArray

from . import _engine, _weighted
from ._registry import spec_of
from ._validate import LazyInput
from ._typing import Argnum, ValueAndGrad, ValueAndGrads

_F32, _F64 = np.dtype(np.float32), np.dtype(np.float64)


@overload
def value_and_grad(loss_fn: Callable[..., NDArray[Any]], argnums: Argnum = 0) -> ValueAndGrad:
    ...


@overload
def value_and_grad(loss_fn: Callable[..., NDArray[Any]],
                   argnums: tuple[Argnum, ...]) -> ValueAndGrads:
    ...


def value_and_grad(loss_fn: Callable[..., NDArray[Any]],
                   argnums: Argnum | tuple[Argnum, ...] = 0) -> ValueAndGrad | ValueAndGrads:
    """Wrap a fastloss loss so that it returns ``(loss, grad)`` in one pass.

    Parameters
    ----------
    loss_fn : callable
        A public fastloss loss, e.g. ``fastloss.cross_entropy``.
    argnums : int, str or tuple of them, default 0
        Which arguments to differentiate, by position or name. Each must be one of the
        loss's floating inputs (``input``; ``input1``/``input2``; ``anchor``/``positive``/
        ``negative``; ``input``/``var`` for ``gaussian_nll_loss``).

    Returns
    -------
    callable
        ``f(*args, grad_output=None, out=None, backend=None, sample_weight=None, **kwargs)
        -> (loss, grad)``
        taking the loss's own arguments. ``loss`` is what ``loss_fn`` returns. ``grad`` is
        the gradient of ``loss`` (times ``grad_output``) with respect to the chosen argument,
        shaped like it, or a tuple of them when ``argnums`` is a tuple — the same numbers
        ``loss.backward(grad_output)`` gives in PyTorch.

        ``grad_output`` is a scalar for ``reduction="mean"``/``"sum"`` (default 1) and an
        array shaped like the unreduced loss for ``reduction="none"`` (default ones).
        ``out`` is an array (a tuple of arrays, for a tuple ``argnums``) of the gradient's
        shape and dtype to write into; reusing it across calls saves an allocation.

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> x = np.array([[2.0, 0.0, -1.0]]); t = np.array([0])
    >>> loss, g = fastloss.value_and_grad(fastloss.cross_entropy)(x, t)
    >>> g.shape
    (1, 3)
    """
    spec = spec_of(loss_fn)
    single, positions = _engine.argnums_to_positions(spec, argnums)

    def loss_and_grad(*args, grad_output=None, out=None, backend=None, sample_weight=None,
                      **kwargs):
        try:
            prep = spec.prepare(*args, **kwargs)
        except LazyInput:              # a Dask array: lazy value and gradients
            if out is not None:
                raise ValueError("out: not supported with Dask inputs (the gradient is a "
                                 "lazy Dask array)") from None
            from . import _dask
            return _dask.value_and_grad(spec, single, positions, args, kwargs, grad_output,
                                        backend, sample_weight)
        outs = None if out is None else ((out,) if single else tuple(out))
        if outs is not None and len(outs) != len(positions):
            raise ValueError(f"out: expected {len(positions)} arrays, got {len(outs)}")
        dtypes = _input_dtypes(spec, positions, args, kwargs, prep.dtype)
        if sample_weight is None:
            value, grads = _engine.value_and_grad(prep, positions, grad_output, outs, backend,
                                                  dtypes)
        else:
            value, grads = _weighted.value_and_grad(prep, positions, grad_output, outs,
                                                    backend, dtypes, sample_weight)
        return value, (grads[0] if single else tuple(grads))

    loss_and_grad.__name__ = f"value_and_grad_{spec.name}"
    loss_and_grad.__doc__ = f"Value and gradient of fastloss.{spec.name}; see value_and_grad."
    return loss_and_grad


def _input_dtypes(spec, positions, args, kwargs, computed):
    """The dtype each requested gradient is returned in: the input's own when it is a
    float32 or float64 array (or tensor) and the loss was computed in the other one (mixed
    inputs promote, and torch's autograd returns each gradient in its input's dtype);
    else `computed`. None when no input differs (the common case)."""
    names = spec.parameters
    dtypes = []
    for p in positions:
        i = names.index(spec.differentiable[p])
        value = args[i] if i < len(args) else kwargs.get(names[i])
        dt = getattr(value, "dtype", None)
        if dt is not None and not isinstance(dt, np.dtype):   # a torch tensor's dtype
            dt = {"torch.float32": _F32, "torch.float64": _F64}.get(str(dt))
        dtypes.append(dt if dt in (_F32, _F64) else computed)
    return None if all(dt == computed for dt in dtypes) else dtypes
