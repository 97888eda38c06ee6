"""Every compiled backend against the NumPy reference on every case it has a kernel for,
and the dispatch mechanism itself (choice, fall-through, context, environment)."""
import warnings

import numpy as np
import pytest

import fastloss
from fastloss import _dispatch
from fastloss._registry import LOSSES
from conftest import all_cases
from helpers import assert_close, run_fastloss

COMPILED = [b for b in _dispatch.backend_names() if b != "numpy"]


def _kernel_of(case, dtype):
    args, kwargs = case.build(dtype)
    with warnings.catch_warnings():   # broadcasting cases warn, as torch does
        warnings.simplefilter("ignore")
        return LOSSES[case.loss].prepare(*args, **kwargs).kernel


def backend_params():
    out = []
    for backend in COMPILED:
        b = _dispatch._BACKENDS[backend]
        if not b.available:
            continue
        for case in all_cases():
            for dtype in (np.float32, np.float64):
                kernel = _kernel_of(case, dtype)
                if b.kernel(kernel + "_fwd") is None and b.kernel(kernel + "_vg") is None:
                    continue   # not provided: calls fall through to the next backend
                for red in case.reductions:
                    out.append(pytest.param(backend, case, np.dtype(dtype), red,
                                            id=f"{backend}-{case.loss}-{case.id}-"
                                               f"{np.dtype(dtype).name}-{red}"))
    return out


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("backend,case,dtype,reduction", backend_params())
def test_backend_matches_reference(backend, case, dtype, reduction):
    args, kwargs = case.build(dtype)
    ref_value, ref_grads, _ = run_fastloss(case.loss, args, kwargs, reduction, "numpy")
    value, grads, value_vg = run_fastloss(case.loss, args, kwargs, reduction, backend)
    rtol = 2e-6 if dtype == np.float32 else 1e-11
    assert value.dtype == ref_value.dtype
    assert_close(value, ref_value, rtol, "value")
    assert_close(value_vg, ref_value, rtol, "value from value_and_grad")
    for name in ref_grads:
        assert grads[name].dtype == ref_grads[name].dtype
        assert_close(grads[name], ref_grads[name], rtol, f"grad of {name}")


ALL_BACKENDS = [b for b in _dispatch.backend_names() if _dispatch._BACKENDS[b].available]


@pytest.mark.parametrize("backend", ALL_BACKENDS)
@pytest.mark.parametrize("shape", [(8, 3), (3000, 10), (700, 50), (40, 3000), (6, 4, 5), (4,)],
                         ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("loss", ["cross_entropy", "nll_loss"])
def test_bad_class_index_is_reported_by_every_backend(backend, shape, loss):
    """The forward kernels count the targets themselves; the first bad one (lowest flat
    position, whichever block finds it) must be named, for every reduction, with or
    without class weights, and value_and_grad must refuse it before touching `out=`."""
    rng = np.random.default_rng(len(shape) * 1000 + shape[0])
    x = rng.standard_normal(shape).astype(np.float32)
    c = shape[0] if len(shape) == 1 else shape[1]
    t_shape = () if len(shape) == 1 else (shape[0], *shape[2:])
    t = rng.integers(0, c, t_shape)
    flat = t.reshape(-1)
    flat[flat.size // 3] = -100                       # ignored: fine
    if flat.size > 1:
        flat[flat.size // 2:] = np.where(rng.uniform(size=flat.size - flat.size // 2) < 0.5,
                                         c + 3, -1)     # several bad ones: report the first
    first = flat.size // 2 if flat.size > 1 else 0
    if flat.size == 1:
        t = np.array(c)
    fn = getattr(fastloss, loss)
    for reduction in ("mean", "sum", "none"):
        for weight in (None, np.linspace(0.5, 2.0, c).astype(np.float32)):
            with pytest.raises(IndexError, match=f"at flat position {first} "):
                fn(x, t, weight=weight, reduction=reduction, backend=backend)
    out = np.full(x.shape, 7.0, np.float32)
    with pytest.raises(IndexError, match=f"at flat position {first} "):
        fastloss.value_and_grad(fn)(x, t, out=out, backend=backend)
    assert (out == 7.0).all()


def test_numba_provides_every_kernel():
    numba = _dispatch._BACKENDS["numba"]
    if not numba.available:
        pytest.skip(f"numba backend not available: {numba.error}")
    missing = set(_dispatch._BACKENDS["numpy"].kernel_names()) - set(numba.kernel_names())
    assert not missing, f"numba lacks kernels: {sorted(missing)}"


# ---- dispatch mechanics, with a dummy backend -------------------------------------------

def _fake_mse_fwd(x, t, w, loss_out):
    loss_out[...] = 7.0
    return 42.0 * max(len(x), 1)


def _declining_l1_fwd(x, t, w, loss_out):
    raise _dispatch.Unsupported


@pytest.fixture
def dummy(monkeypatch):
    monkeypatch.setattr(_dispatch, "_ENV_CHOICE", None)   # these tests mean "auto"
    backend = fastloss.Backend("dummy", kernels={"mse_fwd": _fake_mse_fwd,
                                                 "l1_fwd": _declining_l1_fwd})
    fastloss.register_backend(backend)
    yield backend
    _dispatch.unregister_backend("dummy")


X = np.array([1.0, 2.0, 4.0])
T = np.zeros(3)


def test_dummy_backend_is_used_when_forced_and_first_in_auto(dummy):
    assert float(fastloss.mse_loss(X, T, backend="dummy", reduction="sum")) == 126.0
    assert float(fastloss.mse_loss(X, T, reduction="sum")) == 126.0          # auto: dummy first
    assert float(fastloss.mse_loss(X, T, reduction="sum", backend="numpy")) == 21.0
    np.testing.assert_array_equal(fastloss.mse_loss(X, T, reduction="none", backend="dummy"),
                                  [7.0, 7.0, 7.0])


def test_missing_and_declined_kernels_fall_through(dummy):
    # no smooth_l1 kernel in dummy, and its l1 kernel declines: both reach the reference
    assert float(fastloss.smooth_l1_loss(X, T, reduction="sum", backend="dummy")) == 5.5
    assert float(fastloss.l1_loss(X, T, reduction="sum", backend="dummy")) == 7.0


def test_context_manager_and_environment(dummy, monkeypatch):
    with fastloss.use_backend("numpy"):
        assert float(fastloss.mse_loss(X, T, reduction="sum")) == 21.0
        with fastloss.use_backend("dummy"):
            assert float(fastloss.mse_loss(X, T, reduction="sum")) == 126.0
        assert float(fastloss.mse_loss(X, T, reduction="sum")) == 21.0
    monkeypatch.setattr(_dispatch, "_ENV_CHOICE", "numpy")   # as if set at import
    assert float(fastloss.mse_loss(X, T, reduction="sum")) == 21.0
    # an explicit argument beats the context, which beats the environment
    with fastloss.use_backend("dummy"):
        assert float(fastloss.mse_loss(X, T, reduction="sum")) == 126.0
        assert float(fastloss.mse_loss(X, T, reduction="sum", backend="numpy")) == 21.0


def test_unknown_and_unavailable_backends_raise(monkeypatch):
    with pytest.raises(ValueError, match="backend"):
        fastloss.mse_loss(X, T, backend="cuda")
    with pytest.raises(ValueError, match="backend"):
        with fastloss.use_backend("nope"):
            pass
    monkeypatch.setattr(_dispatch, "_ENV_CHOICE", "nope")
    with pytest.raises(ValueError, match="backend"):
        fastloss.mse_loss(X, T)
    broken = fastloss.Backend("broken", module="fastloss._no_such_module")
    fastloss.register_backend(broken, first=False)
    try:
        monkeypatch.setattr(_dispatch, "_ENV_CHOICE", None)
        with pytest.raises(fastloss.BackendNotAvailable, match="not available"):
            fastloss.mse_loss(X, T, backend="broken")
        assert float(fastloss.mse_loss(X, T, reduction="sum")) == 21.0   # auto skips it
    finally:
        _dispatch.unregister_backend("broken")


def test_show_backends_reports_every_backend(capsys):
    status = fastloss.show_backends()
    text = capsys.readouterr().out
    assert set(status) == set(_dispatch.backend_names())
    assert status["numpy"] == (True, None)
    for name, (ok, why) in status.items():
        assert name in text
        if not ok:
            assert why and why in text


def test_environment_variable_is_read_at_import():
    import subprocess
    import sys
    code = ("import fastloss, numpy as np; from fastloss import _dispatch; "
            "print(_dispatch.current_choice(), _dispatch.candidates('mse_fwd')[0][0])")
    env = {**__import__("os").environ, "FASTLOSS_BACKEND": "numpy"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["numpy", "numpy"]


def test_auto_order_follows_measured_preferences(dummy, monkeypatch):
    monkeypatch.setattr(_dispatch, "_PREFERENCES", {"mse_fwd": ["numpy", "numba", "c"]})
    _dispatch.clear_caches()
    try:
        # the measured rank reorders the built-in backends; a plug-in keeps its place
        order = _dispatch._auto_order("mse_fwd")
        assert order[0] == "dummy"
        assert [b for b in order if b != "dummy"] == ["numpy", "numba", "c"]
        assert _dispatch._auto_order("l1_fwd") == _dispatch.backend_names()
    finally:
        _dispatch.clear_caches()


def test_committed_auto_order_names_real_kernels_and_backends():
    from fastloss._reference import __dict__ as reference
    for kernel, order in _dispatch._PREFERENCES.items():
        assert kernel in reference, kernel
        assert set(order) <= {"c", "numba", "numpy"}
