"""The NumPy reference against torch's results frozen in tests/golden (made by
make_golden.py): the oracle check that runs without torch."""
import os

import numpy as np
import pytest

from conftest import case_params
from helpers import assert_close, run_fastloss, tolerance
from make_golden import HERE, digest, key

_files = {}


def golden(name):
    if name not in _files:
        path = os.path.join(HERE, f"{name}.npz")
        _files[name] = dict(np.load(path)) if os.path.exists(path) else None
    return _files[name]


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("case,dtype,reduction", case_params())
def test_reference_matches_golden(case, dtype, reduction):
    data = golden(case.loss)
    assert data is not None, f"no fixture for {case.loss}: run python tests/make_golden.py"
    k = key(case, dtype, reduction)
    assert f"{k}|value" in data, f"fixture lacks {case.loss} {k}: run python tests/make_golden.py"
    args, kwargs = case.build(dtype)
    assert str(data[f"{k}|digest"]) == digest(args, kwargs), \
        "case inputs changed since the fixture was made: run python tests/make_golden.py"
    value, grads, _ = run_fastloss(case.loss, args, kwargs, reduction, grad=case.grad)
    rtol = tolerance(dtype, case)
    assert_close(value, data[f"{k}|value"], rtol, "value")
    for arg, g in grads.items():
        assert_close(g, data[f"{k}|grad|{arg}"], rtol, f"grad of {arg}")
