"""What the framework bridges (fastloss.torch, fastloss.jax) share; imports neither
framework."""
import inspect

import numpy as np

# Target gradients the bridges provide beyond the registry's differentiable arguments:
# these losses depend on input - target only, so d/dtarget = -d/dinput (for a target of
# input's shape).
NEGATED = {"l1_loss": ("target", "input"), "mse_loss": ("target", "input"),
           "smooth_l1_loss": ("target", "input"), "huber_loss": ("target", "input")}


def binder(sig, name):
    """A fast ``sig.bind(...).arguments`` with defaults applied, as a dict (inspect's
    costs more than a small loss)."""
    P = inspect.Parameter
    positional = [n for n, p in sig.parameters.items()
                  if p.kind in (P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD)]
    defaults = {n: p.default for n, p in sig.parameters.items() if p.default is not P.empty}
    names = set(sig.parameters)
    required = [n for n in sig.parameters if n not in defaults]
    n_pos = len(positional)

    def bind(args, kwargs):
        if len(args) > n_pos:
            raise TypeError(f"{name}() takes {n_pos} positional arguments but {len(args)} "
                            "were given")
        values = dict(defaults)
        values.update(zip(positional, args))
        for k in kwargs:
            if k not in names:
                raise TypeError(f"{name}() got an unexpected keyword argument {k!r}")
            if k in positional[:len(args)]:
                raise TypeError(f"{name}() got multiple values for argument {k!r}")
        values.update(kwargs)
        if len(values) != len(names):
            missing = [n for n in required if n not in values]
            raise TypeError(f"{name}() missing required argument(s): {', '.join(missing)}")
        return values
    return bind


def has_sample_weight(spec):
    """Whether the loss's public function takes fastloss's ``sample_weight=``."""
    return "sample_weight" in inspect.signature(spec.function).parameters


def value_and_grads(spec, values, positions, grad_output, backend):
    """(value, gradients of spec.differentiable[positions]) of one call in one fused pass,
    with ``values`` naming every parameter; a ``sample_weight`` among them is applied as
    the public functions apply it (``fastloss._weighted``). Each gradient comes back in
    the computed dtype: the bridges cast it to their tensors' own."""
    from . import _engine, _fast, _weighted
    values = dict(values)
    sample_weight = values.pop("sample_weight", None)
    fast_prepare = _fast.PREPARE.get(spec.name) if _fast.enabled else None
    prep = None if fast_prepare is None else fast_prepare((), values)
    if prep is None:
        prep = spec.prepare(**values)
    if sample_weight is None:
        return _engine.value_and_grad(prep, positions, grad_output, None, backend)
    return _weighted.value_and_grad(prep, positions, grad_output, None, backend, None,
                                    sample_weight)


def layout(spec, values):
    """(item shape, computed dtype) of a call, from fastloss's own validation run on
    zero-filled arrays of the arguments' shapes and dtypes: `values` maps each parameter
    to its value, with arrays given as (shape, numpy dtype) pairs. np.zeros is calloc'd,
    so a contiguous dummy touches no memory. Raises what the validation raises (e.g. for
    lengths that must add up, which zeros do not)."""
    dummies = {n: (np.zeros(v[1][0], v[1][1]) if isinstance(v, tuple) and len(v) == 2
                   and v[0] == "__array__" else v) for n, v in values.items()
               if n != "sample_weight"}     # weights do not change the shape or dtype
    prep = spec.prepare(**dummies)
    return prep.item_shape, np.dtype(prep.dtype)


def array_spec(shape, dtype):
    """The placeholder `layout` takes for an array argument."""
    return ("__array__", (tuple(int(s) for s in shape), dtype))


def negated_derivable(input_shape, target_shape):
    """Whether d/dtarget = -d/dinput can be summed from the input's gradient: when the
    target broadcasts to input's shape (the input itself is not enlarged)."""
    try:
        return np.broadcast_shapes(tuple(input_shape), tuple(target_shape)) == tuple(input_shape)
    except ValueError:
        return False


def negated_grad(grad_input, target_shape):
    """-grad_input summed over the axes the target was broadcast along."""
    from ._engine import _sum_to
    g = np.negative(grad_input)
    return _sum_to(g, tuple(target_shape), g.shape).reshape(tuple(target_shape))
