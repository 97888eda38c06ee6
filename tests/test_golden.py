"""The NumPy reference against its oracle's results frozen in tests/golden (made by
make_golden.py): torch's for a loss with a torch twin, the float64 reference's for a loss
torch lacks (the registry's `oracle` says which); the oracle check that runs without
torch.

fastloss runs on the inputs stored in the fixture, the very ones torch saw, so the check
does not depend on this machine's NumPy math (exp/log differ in the last bit between CPUs);
the case as built here must still match them within a tolerance."""
import os

import numpy as np
import pytest

from conftest import case_params
from helpers import assert_close, run_fastloss, tolerance
from make_golden import (HERE, INPUT_RTOL, input_key, key, oracle_name, stored_oracle,
                         unpack_inputs)

_files = {}

STALE = "case inputs changed since the fixture was made: run python tests/make_golden.py"


def golden(name):
    if name not in _files:
        path = os.path.join(HERE, f"{name}.npz")
        _files[name] = dict(np.load(path)) if os.path.exists(path) else None
    return _files[name]


def assert_same_inputs(fresh, stored):
    """The case as built now against the inputs stored with the fixture: the same structure,
    dtypes and shapes, equal integers and Python scalars, floats within INPUT_RTOL."""
    (fargs, fkw), (sargs, skw) = fresh, stored
    assert len(fargs) == len(sargs) and sorted(fkw) == sorted(skw), f"{STALE} (arguments)"
    for slot, f, s in [*((f"argument {i}", f, s) for i, (f, s) in enumerate(zip(fargs, sargs))),
                       *((k, fkw[k], skw[k]) for k in sorted(fkw))]:
        assert isinstance(f, np.ndarray) == isinstance(s, np.ndarray), f"{STALE} ({slot})"
        if not isinstance(f, np.ndarray):
            assert type(f) is type(s) and f == s, f"{STALE} ({slot}: {f!r}, stored {s!r})"
            continue
        assert f.dtype == s.dtype and f.shape == s.shape, \
            f"{STALE} ({slot}: {f.dtype}{f.shape}, stored {s.dtype}{s.shape})"
        if f.dtype.kind == "f":
            np.testing.assert_allclose(f, s, rtol=INPUT_RTOL.get(f.dtype, 0.0), atol=0,
                                       equal_nan=True, err_msg=f"{STALE} ({slot})")
        else:
            np.testing.assert_array_equal(f, s, err_msg=f"{STALE} ({slot})")


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("case,dtype,reduction", case_params())
def test_reference_matches_golden(case, dtype, reduction):
    data = golden(case.loss)
    assert data is not None, f"no fixture for {case.loss}: run python tests/make_golden.py"
    assert stored_oracle(data) == oracle_name(case.loss), \
        (f"the fixture of {case.loss} was made from {stored_oracle(data)}, its registry "
         f"oracle is {oracle_name(case.loss)}: run python tests/make_golden.py {case.loss}")
    k = key(case, dtype, reduction)
    assert f"{k}|value" in data, f"fixture lacks {case.loss} {k}: run python tests/make_golden.py"
    stored = unpack_inputs(data, input_key(case, dtype))
    assert stored is not None, f"fixture lacks the inputs of {case.loss} {k}: " \
                               "run python tests/make_golden.py"
    assert_same_inputs(case.build(dtype), stored)
    args = [np.copy(a) if isinstance(a, np.ndarray) else a for a in stored[0]]
    kwargs = {n: np.copy(a) if isinstance(a, np.ndarray) else a for n, a in stored[1].items()}
    value, grads, _ = run_fastloss(case.loss, args, kwargs, reduction, grad=case.grad)
    rtol = tolerance(dtype, case)
    assert_close(value, data[f"{k}|value"], rtol, "value")
    for arg, g in grads.items():
        assert_close(g, data[f"{k}|grad|{arg}"], rtol, f"grad of {arg}")


def test_every_fixture_is_a_registry_loss():
    """The other direction: a fixture of a loss the registry lacks is stale. (The test
    suite's own toy loss, registered by --toy-loss, keeps its fixture here too.)"""
    import toy_loss
    from fastloss._registry import LOSSES
    names = {f[:-len(".npz")] for f in os.listdir(HERE) if f.endswith(".npz")}
    stale = sorted(names - set(LOSSES) - {toy_loss.NAME})
    assert not stale, f"fixtures of losses the registry lacks: {stale} (delete them)"


def test_a_loss_without_a_twin_gets_its_fixture_from_the_float64_reference(monkeypatch):
    """With its oracle None, mse_loss's fixture is the reference computed in float64 and
    rounded to each result's dtype (torch is never called), and the torch-made fixture
    on disk no longer matches the registry."""
    import dataclasses

    import helpers
    import make_golden
    from fastloss._registry import LOSSES
    spec = LOSSES["mse_loss"]
    monkeypatch.setitem(LOSSES, "mse_loss", dataclasses.replace(spec, oracle=None))
    with pytest.raises(ValueError, match="mse_loss has no torch twin"):
        helpers.run_torch("mse_loss", (), {}, "mean")

    def no_torch(*args, **kwargs):
        raise AssertionError("torch was asked for a loss without a twin")
    monkeypatch.setattr(helpers, "run_torch", no_torch)
    data = make_golden.fixture("mse_loss")
    assert stored_oracle(data) == make_golden.REFERENCE64 == oracle_name("mse_loss")
    assert stored_oracle(golden("mse_loss")) != oracle_name("mse_loss")
    case = next(c for c in make_golden.CASES["mse_loss"] if c.id == "2d")
    (x, t), _ = case.build(np.float32)
    for red in ("none", "sum"):
        stored = data[f"{key(case, np.float32, red)}|value"]
        d = x.astype(np.float64) - t.astype(np.float64)
        exact = d * d if red == "none" else np.sum(d * d)
        assert stored.dtype == np.float32
        np.testing.assert_allclose(stored, np.float32(exact), rtol=1e-7)
        grad = data[f"{key(case, np.float32, red)}|grad|input"]
        go = helpers.grad_output_for(exact.shape, red, np.float32)
        go = go.astype(np.float64) if isinstance(go, np.ndarray) else go
        assert grad.dtype == np.float32
        np.testing.assert_allclose(grad, (2 * d * go).astype(np.float32), rtol=1e-7)
