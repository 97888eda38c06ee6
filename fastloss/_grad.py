"""Fused value-and-gradient: the training entry point, and the contract a torch autograd
bridge builds on."""
from __future__ import annotations

from typing import Any, Callable, overload

from numpy.typing import NDArray

from . import _engine, _fast, _weighted
from ._registry import spec_of
from ._typing import Argnum, ValueAndGrad, ValueAndGrads
from ._validate import LazyInput


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
        shape and dtype to write into; reusing it across calls saves an allocation. It may
        share memory with any argument (the gradient is then computed into a temporary and
        copied), but the arrays of a tuple must not overlap each other (ValueError).
        Each gradient's dtype is the one its input is computed in: float32 for float32
        and narrower floats (float16, bfloat16, float8), float64 for float64.

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
    fast_prepare = _fast.PREPARE.get(spec.name)   # the common call's lean validation

    def loss_and_grad(*args, grad_output=None, out=None, backend=None, sample_weight=None,
                      **kwargs):
        try:
            prep = None
            if fast_prepare is not None and _fast.enabled:
                prep = fast_prepare(args, kwargs)
            if prep is None:
                prep = spec.prepare(*args, **kwargs)
            if (sample_weight is not None or grad_output is not None) and (
                    type(sample_weight).__module__.startswith("dask")
                    or type(grad_output).__module__.startswith("dask")):
                raise LazyInput          # NumPy inputs, Dask weights: lazy all the same
        except LazyInput:              # a Dask array: lazy value and gradients
            if out is not None:
                raise ValueError("out: not supported with Dask inputs (the gradient is a "
                                 "lazy Dask array)") from None
            from . import _dask
            return _dask.value_and_grad(spec, single, positions, args, kwargs, grad_output,
                                        backend, sample_weight)
        if out is None or single:
            outs = None if out is None else (out,)
        elif not isinstance(out, (tuple, list)) or len(out) != len(positions):
            raise TypeError(f"out: expected a tuple of {len(positions)} arrays (one per "
                            f"entry of argnums), got "
                            + (f"{len(out)}" if isinstance(out, (tuple, list))
                               else type(out).__name__))
        else:
            outs = tuple(out)
        dtypes = _engine.input_grad_dtypes(prep, positions)
        if sample_weight is None:
            value, grads = _engine.value_and_grad(prep, positions, grad_output, outs, backend,
                                                  dtypes, spec.differentiable)
        else:
            value, grads = _weighted.value_and_grad(prep, positions, grad_output, outs,
                                                    backend, dtypes, sample_weight,
                                                    spec.differentiable)
        return value, (grads[0] if single else tuple(grads))

    loss_and_grad.__name__ = f"value_and_grad_{spec.name}"
    loss_and_grad.__doc__ = f"Value and gradient of fastloss.{spec.name}; see value_and_grad."
    return loss_and_grad
