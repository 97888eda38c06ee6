"""A read-only memmap (np.load(..., mmap_mode="r")) runs the same compiled Numba kernels
as a writable array: no second compile (the kernels take their inputs read-only)."""
import numpy as np
import pytest

import fastloss
from fastloss._registry import LOSSES
from conftest import all_cases

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _signatures():
    numba = pytest.importorskip("numba")
    from fastloss import _numba
    out = {}
    for mod in (_numba.classification, _numba.elementwise, _numba.rows, _numba._common):
        for k, v in vars(mod).items():
            if isinstance(v, numba.core.registry.CPUDispatcher):
                out[f"{mod.__name__}.{k}"] = len(v.signatures)
    return out


def _first_cases(dtype):
    seen = {}
    for c in all_cases():
        if c.loss not in seen and c.grad:
            seen[c.loss] = c.build(dtype)
    return seen


def _readonly_copies(tmp_path, args, kwargs):
    def ro(i, a):
        if isinstance(a, np.ndarray) and a.ndim:
            path = tmp_path / f"a{i}.npy"
            np.save(path, a)
            m = np.load(path, mmap_mode="r")
            assert not m.flags.writeable
            return m
        return a
    return tuple(ro(i, a) for i, a in enumerate(args)), kwargs


@pytest.mark.parametrize("dtype", [np.float32])
def test_readonly_memmap_compiles_nothing_new(tmp_path, dtype):
    if not fastloss._dispatch._BACKENDS["numba"].available:
        pytest.skip("numba backend missing")
    cases = _first_cases(dtype)

    def run(name, args, kwargs):
        fn = LOSSES[name].function
        for red in ("mean", "none"):
            fn(*args, **kwargs, reduction=red, backend="numba")
        wrt = tuple(a for a in LOSSES[name].differentiable
                    if isinstance(dict(zip(LOSSES[name].parameters, args)).get(a), np.ndarray))
        fastloss.value_and_grad(fn, argnums=wrt)(*args, **kwargs, backend="numba")
    for name, (args, kwargs) in cases.items():       # compile (or load) the writable ones
        run(name, args, kwargs)
    before = _signatures()
    for name, (args, kwargs) in cases.items():
        (tmp_path / name).mkdir()
        ro_args, ro_kwargs = _readonly_copies(tmp_path / name, args, kwargs)
        run(name, ro_args, ro_kwargs)
        got = LOSSES[name].function(*ro_args, **ro_kwargs, backend="numba")
        np.testing.assert_allclose(got, LOSSES[name].function(*args, **kwargs,
                                                              backend="numba"), rtol=1e-6)
    after = _signatures()
    new = {k: (before.get(k, 0), v) for k, v in after.items() if v != before.get(k, 0)}
    assert not new, f"read-only inputs compiled new specialisations: {new}"
