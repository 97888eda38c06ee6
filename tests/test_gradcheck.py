"""Analytic gradients (NumPy reference) against central finite differences in float64:
a check of the closed forms that needs no torch."""
import numpy as np
import pytest

import fastloss
from fastloss._registry import LOSSES
from conftest import all_cases
from helpers import diff_args, grad_output_for


def fd_params():
    return [pytest.param(c, red, id=f"{c.loss}-{c.id}-{red}")
            for c in all_cases() if c.fd and c.grad for red in ("mean", "none")
            if red in c.reductions]


def _scalar_loss(fn, args, kwargs, name, reduction, go):
    def f(value):
        bound = dict(zip(LOSSES[fn.__name__].parameters, args), **kwargs)
        bound[name] = value
        out = np.asarray(fn(**bound, reduction=reduction, backend="numpy"), np.float64)
        return float(np.sum(out * go))
    return f


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("case,reduction", fd_params())
def test_gradient_matches_finite_differences(case, reduction):
    args, kwargs = case.build(np.float64)
    kwargs = {**kwargs, **dict(case.fd_kwargs)}
    fn = LOSSES[case.loss].function
    wrt = diff_args(case.loss, args, kwargs)
    value = np.asarray(fn(*args, **kwargs, reduction=reduction))
    go = grad_output_for(value.shape, reduction, np.float64)
    _, grads = fastloss.value_and_grad(fn, argnums=wrt)(
        *args, **kwargs, reduction=reduction, grad_output=go, backend="numpy")
    bound = dict(zip(LOSSES[case.loss].parameters, args), **kwargs)
    for name, grad in zip(wrt, grads):
        x0 = np.array(bound[name], dtype=np.float64)
        f = _scalar_loss(fn, args, kwargs, name, reduction, go)
        numeric = np.zeros_like(x0)
        flat, nflat = x0.reshape(-1), numeric.reshape(-1)
        for i in range(flat.size):
            h = 1e-6 * max(1.0, abs(flat[i]))
            orig = flat[i]
            flat[i] = orig + h
            up = f(x0.copy())
            flat[i] = orig - h
            down = f(x0.copy())
            flat[i] = orig
            nflat[i] = (up - down) / (2 * h)
        np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-6,
                                   err_msg=f"d loss / d {name}")
