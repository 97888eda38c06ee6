"""Every loss with a torch twin (the registry's oracle) x case x reduction x dtype, values
and gradients, against torch. A loss torch lacks has no row here: its oracle is the
float64 reference (test_golden.py), finite differences (test_gradcheck.py) and every
backend against the reference (test_backends.py)."""
import numpy as np
import pytest

from fastloss import _fast
from conftest import case_params
from helpers import assert_close, has_twin, run_fastloss, run_torch, tolerance

torch = pytest.importorskip("torch")


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("case,dtype,reduction", case_params(where=lambda c: has_twin(c.loss)))
def test_matches_torch(case, dtype, reduction):
    args, kwargs = case.build(dtype)
    value, grads, value_vg = run_fastloss(case.loss, args, kwargs, reduction)
    t_value, t_grads = run_torch(case.loss, args, kwargs, reduction)
    rtol = tolerance(dtype, case)
    assert value.dtype == t_value.dtype, (value.dtype, t_value.dtype)
    assert_close(value, t_value, rtol, "value")
    assert_close(value_vg, t_value, rtol, "value from value_and_grad")
    if case.grad:
        assert set(grads) == set(t_grads)
        for name in grads:
            assert grads[name].dtype == t_grads[name].dtype
            assert_close(grads[name], t_grads[name], rtol, f"grad of {name}")


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("case,dtype,reduction",
                         case_params(where=lambda c: c.loss in _fast.FORWARD))
def test_matches_torch_on_the_general_path(case, dtype, reduction, monkeypatch):
    """The class losses with a lean path for their common call (fastloss._fast), which
    test_matches_torch takes, again on the general path."""
    monkeypatch.setattr(_fast, "enabled", False)
    test_matches_torch(case, dtype, reduction)
