"""What the tests share: running a case on fastloss (any backend) and on torch, and
comparing results with tolerances that fit the dtype."""
import numpy as np

import fastloss
from fastloss._registry import LOSSES

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # torch is only ever a test oracle
    torch = F = None

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


def run_torch(name, args, kwargs, reduction, grad=True):
    """(value, {arg: grad}) from torch.nn.functional, same arguments."""
    spec = LOSSES[name]
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
    out = getattr(F, name)(*targs, reduction=reduction, **tkw)
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
