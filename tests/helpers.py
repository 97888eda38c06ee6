"""What the tests share: running a case on fastloss (any backend) and on its oracle
(the torch twin the registry names, or the float64 reference for a loss torch lacks),
and comparing results with tolerances that fit the dtype."""
import numpy as np

import fastloss
from fastloss._registry import LOSSES

try:
    import torch
except ImportError:  # torch is only ever a test oracle
    torch = None

DTYPES = (np.float32, np.float64)


def grad_output_for(value_shape, reduction, dtype):
    """A fixed, non-trivial grad_output so that the chain rule is really exercised."""
    if reduction == "none":
        n = int(np.prod(value_shape))
        return (np.linspace(-1.5, 2.0, n) if n else np.zeros(0)).reshape(value_shape).astype(dtype)
    return 0.75


def diff_args(name, args, kwargs):
    """Names of the differentiable arguments this call passes as arrays."""
    spec = LOSSES[name]
    bound = dict(zip(spec.parameters, args), **kwargs)
    return tuple(a for a in spec.differentiable
                 if isinstance(bound.get(a), np.ndarray) and bound[a].dtype.kind == "f")


def run_fastloss(name, args, kwargs, reduction, backend="numpy", grad=True):
    """(value, {arg: grad}) from fastloss."""
    fn = LOSSES[name].function
    kwargs = {**kwargs, "reduction": reduction}
    if not grad:
        return np.asarray(fn(*args, backend=backend, **kwargs)), {}
    wrt = diff_args(name, args, kwargs)
    value = np.asarray(fn(*args, backend=backend, **kwargs))
    go = grad_output_for(value.shape, reduction, value.dtype)
    v2, grads = fastloss.value_and_grad(fn, argnums=wrt)(*args, grad_output=go, backend=backend,
                                                        **kwargs)
    return value, dict(zip(wrt, grads)), np.asarray(v2)


def has_twin(name):
    """Whether the registry names a torch function this loss mirrors."""
    return LOSSES[name].oracle is not None


def run_torch(name, args, kwargs, reduction, grad=True):
    """(value, {arg: grad}) from the loss's torch twin (the registry's oracle), same
    arguments (renamed where the oracle maps them)."""
    spec = LOSSES[name]
    if spec.oracle is None:
        raise ValueError(f"{name} has no torch twin (its registry oracle is None)")
    own = sorted(set(kwargs) & set(spec.extensions))
    if own:   # fastloss's own keywords: torch has no such argument
        raise ValueError(f"{name}: {', '.join(own)} cannot be passed to torch")
    wrt = diff_args(name, args, kwargs) if grad else ()

    def conv(pname, a):
        if isinstance(a, np.ndarray):
            t = torch.from_numpy(a.copy())
            if pname in wrt:
                t.requires_grad_(True)
            return t
        return a

    targs = [conv(p, a) for p, a in zip(spec.parameters, args)]
    tkw = {k: conv(k, v) for k, v in kwargs.items()}
    out = spec.oracle.resolve()(*targs, reduction=reduction,
                                **{spec.oracle.argument(k): v for k, v in tkw.items()})
    value = out.detach().numpy()
    grads = {}
    if wrt:
        go = grad_output_for(value.shape, reduction, value.dtype)
        out.backward(torch.as_tensor(go, dtype=out.dtype))
        named = dict(zip(spec.parameters, targs), **tkw)
        for a in wrt:
            g = named[a].grad
            grads[a] = np.zeros(named[a].shape, value.dtype) if g is None else g.numpy()
    return value, grads


def run_reference64(name, args, kwargs, reduction, grad=True):
    """(value, {arg: grad}) from the NumPy reference computed in float64 (every float
    argument widened), given back in the dtypes fastloss returns for the arguments as
    passed: the oracle of a loss that torch does not have. grad_output is the one the
    other runners use, made in the result's dtype, then widened."""
    spec = LOSSES[name]

    def up(a):
        return a.astype(np.float64) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a
    kwargs = {**kwargs, "reduction": reduction}
    wargs, wkw = [up(a) for a in args], {k: up(v) for k, v in kwargs.items()}
    dtype = np.asarray(spec.function(*args, backend="numpy", **kwargs)).dtype
    value = np.asarray(spec.function(*wargs, backend="numpy", **wkw))
    grads = {}
    wrt = diff_args(name, args, kwargs) if grad else ()
    if wrt:
        go = grad_output_for(value.shape, reduction, dtype)
        go = go.astype(np.float64) if isinstance(go, np.ndarray) else go
        _, gs = fastloss.value_and_grad(spec.function, argnums=wrt)(
            *wargs, grad_output=go, backend="numpy", **wkw)
        bound = dict(zip(spec.parameters, args), **kwargs)
        grads = {a: g.astype(bound[a].dtype) for a, g in zip(wrt, gs)}
    return value.astype(dtype), grads


def run_oracle(name, args, kwargs, reduction, grad=True):
    """(value, {arg: grad}) from the loss's oracle: its torch twin, else the float64
    reference (see run_reference64)."""
    run = run_torch if has_twin(name) else run_reference64
    return run(name, args, kwargs, reduction, grad=grad)


def tolerance(dtype, case=None):
    if np.dtype(dtype) == np.float32:
        return case.rtol32 if case is not None else 2e-5
    return case.rtol64 if case is not None else 1e-9


def assert_close(actual, expected, rtol, what=""):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    finite = np.isfinite(expected)
    scale = float(np.max(np.abs(expected[finite]))) if finite.any() else 1.0
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * max(1.0, scale),
                               equal_nan=True, err_msg=what)


def first_weighted_cases(bridged):
    """pytest params: the first case of each loss in `bridged` whose function takes
    fastloss's sample_weight= (the bridges' weighted tests)."""
    import inspect

    import pytest
    from conftest import all_cases
    seen, out = set(), []
    for c in all_cases():
        if (c.loss in bridged and c.loss not in seen and "sample_weight"
                in inspect.signature(LOSSES[c.loss].function).parameters):
            seen.add(c.loss)
            out.append(pytest.param(c, id=f"{c.loss}-{c.id}"))
    return out


def with_reductions(cases, reductions):
    """pytest params (case, reduction) for each case (a case or a pytest.param of one)
    and each of `reductions` the case has: no skipped combinations."""
    import pytest
    out = []
    for c in cases:
        case = c.values[0] if hasattr(c, "values") else c
        for r in reductions:
            if r in case.reductions:
                out.append(pytest.param(case, r, id=f"{case.loss}-{case.id}-{r}"))
    return out
