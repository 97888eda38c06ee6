"""Every compiled backend against the NumPy reference on every case (one test, the tolerance
table and kernel declaration of tests/equivalence.py), and the dispatch mechanism itself
(choice, fall-through, context, environment)."""
import warnings

import numpy as np
import pytest

import fastloss
from fastloss import _dispatch
from fastloss._registry import LOSSES
from conftest import all_cases
from equivalence import backend_variants, required_kernels, tolerance
from helpers import assert_close, run_fastloss

VARIANTS = backend_variants()


def _kernel_of(case, dtype):
    args, kwargs = case.build(dtype)
    with warnings.catch_warnings():   # broadcasting cases warn, as torch does
        warnings.simplefilter("ignore")
        return LOSSES[case.loss].prepare(*args, **kwargs).kernel


def backend_params():
    """(variant, case, dtype, reduction, what) for every case x dtype whose kernel the
    backend provides or must provide (tests/equivalence.py); a kernel it neither has nor
    must have falls through to the next backend, which is tested on its own."""
    kernels = {(case, dtype): _kernel_of(case, dtype) for case in all_cases()
               for dtype in (np.dtype(np.float32), np.dtype(np.float64))}
    out = []
    for v in VARIANTS:
        b, required = _dispatch._BACKENDS[v.backend], required_kernels(v.backend)
        for (case, dtype), kernel in kernels.items():
            names = (kernel + "_fwd", kernel + "_vg")
            if not any(b.kernel(k) is not None or k in required for k in names):
                continue
            for red in case.reductions:
                for what in ("value", "grad"):
                    out.append(pytest.param(v, case, dtype, red, what,
                                            id=f"{v.id}-{case.loss}-{case.id}-"
                                               f"{dtype.name}-{red}-{what}"))
    return out


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("variant,case,dtype,reduction,what", backend_params())
def test_backend_matches_reference(variant, case, dtype, reduction, what):
    """One backend, one case, one dtype and reduction: its value ("value": the forward;
    "grad": value_and_grad's value and every gradient) and dtypes against the reference."""
    backend = _dispatch._BACKENDS[variant.backend]
    kernel = _kernel_of(case, dtype) + ("_fwd" if what == "value" else "_vg")
    if kernel in required_kernels(variant.backend):
        assert backend.kernel(kernel) is not None, f"{variant.backend} lacks {kernel}"
    args, kwargs = case.build(dtype)
    rtol = tolerance(variant.backend, dtype)
    ref = run_fastloss(case.loss, args, kwargs, reduction, "numpy", grad=what == "grad")
    with variant.setup():
        got = run_fastloss(case.loss, args, kwargs, reduction, variant.backend,
                           grad=what == "grad")
    if what == "value":
        assert got[0].dtype == ref[0].dtype
        assert_close(got[0], ref[0], rtol, "value")
        return
    assert_close(got[2], ref[0], rtol, "value from value_and_grad")
    assert set(got[1]) == set(ref[1])
    for name in ref[1]:
        assert got[1][name].dtype == ref[1][name].dtype
        assert_close(got[1][name], ref[1][name], rtol, f"grad of {name}")


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.id)
def test_backend_provides_its_required_kernels(variant):
    backend = _dispatch._BACKENDS[variant.backend]
    missing = {k for k in required_kernels(variant.backend) if not callable(backend.kernel(k))}
    assert not missing, f"{variant.backend} lacks kernels: {sorted(missing)}"


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


# ---- NaN and infinite class weights on every kernel layout ------------------------------

def _poisoned_weight(c, dtype, values):
    w = np.linspace(0.5, 2.0, c).astype(dtype)
    for pos, v in values.items():
        w[pos % c] = v
    return w


# (n, c, extra dims): the C rows layout (c >= 32) and lanes layout (small c, or d > 1), the
# Numba small-C tile (c <= 16), per-row path, and wide-row blocked path (c > 2048)
CLASS_LAYOUTS = [(70, 5, ()), (9, 40, ()), (3, 7, (5,)), (2, 2100, ()), (40, 20, ())]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("backend", ALL_BACKENDS)
@pytest.mark.parametrize("layout", CLASS_LAYOUTS, ids=lambda s: "x".join(map(str, s[:2])) +
                         ("-kdim" if s[2] else ""))
@pytest.mark.parametrize("loss,targets,smoothing,poison", [
    (loss, targets, smoothing, poison)
    for loss, targets, smoothing in [("nll_loss", "index", 0.0), ("cross_entropy", "index", 0.0),
                                     ("cross_entropy", "index", 0.2),
                                     ("cross_entropy", "probs", 0.0),
                                     ("cross_entropy", "probs", 0.1)]
    for poison in ["nan_unused", "inf_unused", "nan_used", "inf_used"]
    if not (targets == "probs" and "unused" in poison)])   # probabilities use every class
def test_nonfinite_class_weight_every_layout(backend, layout, loss, targets, smoothing,
                                             poison):
    """A NaN or infinite class weight on every kernel layout of every backend, against the
    reference (which follows torch; see test_nonfinite_class_weight_matches_torch). The
    case tables hold small cases only; these reach the wide-row and per-row paths."""
    n, c, extra = layout
    rng = np.random.default_rng(c * 100 + n)
    dtype = np.float32
    x = (rng.standard_normal((n, c, *extra)) * 2).astype(dtype)
    bad = {1: np.nan if "nan" in poison else np.inf, c - 2: -np.inf if "inf" in poison else 1.0}
    w = _poisoned_weight(c, dtype, bad)
    if targets == "probs":
        p = rng.uniform(size=x.shape)
        t = (p / p.sum(axis=1, keepdims=True)).astype(dtype)
    else:
        t = rng.integers(0, c, (n, *extra))
        t.reshape(-1)[::4] = -100
        if "unused" in poison:
            t = np.where(np.isin(t, [1, c - 2]), 0, t)
        else:
            t.reshape(-1)[1::5] = 1
    kwargs = {"weight": w}
    if loss == "cross_entropy":
        kwargs["label_smoothing"] = smoothing
    for reduction in ("none", "sum", "mean"):
        ref_value, ref_grads, _ = run_fastloss(loss, (x, t), kwargs, reduction, "numpy")
        value, grads, value_vg = run_fastloss(loss, (x, t), kwargs, reduction, backend)
        assert_close(value, ref_value, 2e-6, f"value ({reduction})")
        assert_close(value_vg, ref_value, 2e-6, f"value from value_and_grad ({reduction})")
        assert_close(grads["input"], ref_grads["input"], 2e-6, f"grad ({reduction})")
        if "unused" in poison and smoothing == 0.0:
            assert np.isfinite(ref_value).all() and np.isfinite(grads["input"]).all()


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("backend", ALL_BACKENDS)
@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("c", [1, 3, 40])
def test_nonfinite_multi_margin_weight_every_backend(backend, p, c):
    """multi_margin_loss: w_y multiplies each counted term, as in torch; a row with no
    counted term is 0 whatever w_y is, and an infinite w_y gives -inf (not NaN) at the
    target's own gradient."""
    rng = np.random.default_rng(c + 10 * p)
    x = rng.standard_normal((12, c)).astype(np.float32)
    t = rng.integers(0, c, 12)
    t[:4] = 0
    x[0, 0] = 10.0            # row 0: every margin met, no counted term
    w = _poisoned_weight(c, np.float32, {0: np.inf} if c == 1 else {0: np.inf, 2: np.nan})
    if c == 1:
        w[0] = np.nan
    for reduction in ("none", "sum", "mean"):
        ref_value, ref_grads, _ = run_fastloss("multi_margin_loss", (x, t), {"weight": w, "p": p},
                                               reduction, "numpy")
        value, grads, value_vg = run_fastloss("multi_margin_loss", (x, t),
                                              {"weight": w, "p": p}, reduction, backend)
        assert_close(value, ref_value, 2e-6, "value")
        assert_close(value_vg, ref_value, 2e-6, "value from value_and_grad")
        assert_close(grads["input"], ref_grads["input"], 2e-6, "grad")
        if reduction == "none":
            assert value[0] == 0.0
            if c == 1:
                assert (value == 0).all() and (grads["input"] == 0).all()
            else:
                # target 0 (inf weight) with a counted term: infinite, not inf - inf
                assert np.isinf(grads["input"][1, 0])


@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::RuntimeWarning")
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_nonfinite_class_weight_matches_torch(value):
    """Against torch on one call per shape of the rule: where torch's result for a NaN or
    infinite class weight comes from the math, every backend gives it. One documented
    exception: with label smoothing, torch's autograd gives the ignored items' gradient
    rows 0 * w = NaN; fastloss gives them 0 (an ignored item does not depend on input)."""
    torch = pytest.importorskip("torch")
    from helpers import run_torch
    rng = np.random.default_rng(5)
    x = rng.standard_normal((10, 5))
    t = rng.integers(0, 5, 10)
    t[::3] = -100
    t[t == 2] = 0               # class 2 unused
    w = np.linspace(0.5, 2.0, 5)
    w[2] = value                # unused
    w[4] = value if value == value else 1.0
    ignored = t == -100
    for smoothing in (0.0, 0.25):
        for reduction in ("none", "sum", "mean"):
            kwargs = {"weight": w, "label_smoothing": smoothing}
            t_value, t_grads = run_torch("cross_entropy", (x, t), kwargs, reduction)
            for backend in ALL_BACKENDS:
                v, g, _ = run_fastloss("cross_entropy", (x, t), kwargs, reduction, backend)
                assert_close(v, t_value, 1e-9, f"{backend} value")
                tg, gx = t_grads["input"], g["input"]
                if smoothing:
                    assert np.isnan(tg[ignored]).all() and (gx[ignored] == 0).all()
                    tg, gx = tg[~ignored], gx[~ignored]
                else:
                    # the unused class's column: finite (the issue: it was NaN)
                    assert np.isfinite(gx[~np.isin(t, [4]), 2]).all()
                assert_close(gx, tg, 1e-9, f"{backend} grad, smoothing={smoothing}")


def test_first_calls_from_several_threads_at_once_all_find_the_backend():
    """A backend is imported once while other threads making their first call wait for
    it (dask's threaded scheduler does this): none may see it half-loaded (before the
    fix: "backend 'numpy' ... is not available: None")."""
    import threading
    import time

    started = threading.Event()

    slow = _dispatch.Backend("slow", "fastloss._reference")
    real_import = _dispatch.importlib.import_module

    def slow_import(name):
        started.set()
        time.sleep(0.2)
        return real_import(name)

    errors, results = [], []

    def first_call():
        try:
            results.append(slow.kernel("mse_fwd") is not None and slow.available)
        except Exception as exc:      # noqa: BLE001 - reported below
            errors.append(exc)

    old = _dispatch.importlib.import_module
    _dispatch.importlib.import_module = slow_import
    try:
        threads = [threading.Thread(target=first_call) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        _dispatch.importlib.import_module = old
    assert started.is_set() and not errors and results == [True] * 4, (errors, results)
