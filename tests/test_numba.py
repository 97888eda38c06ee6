"""The Numba backend, what is specific to it: vectorized exp/log accuracy, 8-wide AVX2 in
the hot loops, bitwise-identical results for any thread count, the serial and parallel
drivers agreeing, IndexError from a kernel that cannot raise, fork and thread safety.
(Every case against the NumPy reference is test_backends.py's
test_backend_matches_reference, for every backend.)"""
import multiprocessing
import re
import threading

import numpy as np
import pytest

import fastloss
from equivalence import tolerance
from helpers import assert_close

numba = pytest.importorskip("numba")
nb = pytest.importorskip("fastloss._numba")

TIGHT = {np.dtype(d): tolerance("numba", d) for d in (np.float32, np.float64)}


# ---------------------------------------------------------------- vectorized exp / log
def _ulps(actual, exact, dtype):
    exact_d = exact.astype(dtype)
    with np.errstate(all="ignore"):
        return np.abs(actual.astype(np.float64) - exact) / np.spacing(np.abs(exact_d)).astype(
            np.float64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exp_log_accuracy_and_special_values(dtype):
    from fastloss._numba import _math as M

    @numba.njit
    def apply(a, which):
        out = np.empty_like(a)
        for i in range(a.shape[0]):
            if which == 0:
                out[i] = M.fexp(a[i])
            elif which == 1:
                out[i] = M.flog(a[i])
            elif which == 2:
                out[i] = M.flog1p(a[i])
            elif which == 4:
                out[i] = M.flog1p_unit(a[i])
            else:
                out[i] = M.fexpm(a[i])
        return out

    rng = np.random.default_rng(1)
    hi = 88.0 if dtype == np.float32 else 709.0
    fi = np.finfo(dtype)
    # exp: the whole finite range; accuracy where the result is a normal number
    x = rng.uniform(-hi, hi, 200_000).astype(dtype)
    exact = np.exp(x.astype(np.longdouble)).astype(np.float64)
    ok = (exact > fi.tiny) & (exact < fi.max)
    assert np.max(_ulps(apply(x, 0), exact, dtype)[ok]) <= 1.5
    # exp of non-positive arguments (softmax terms)
    z = -rng.exponential(5.0, 200_000).astype(dtype)
    exact = np.exp(z.astype(np.longdouble)).astype(np.float64)
    ok = exact > fi.tiny
    assert np.max(_ulps(apply(z, 3), exact, dtype)[ok]) <= 1.5
    # log over many binades, including subnormals
    y = np.exp(rng.uniform(-80, 80, 200_000)).astype(dtype)
    y = np.concatenate([y, np.array([fi.tiny / 8, fi.tiny, fi.max], dtype)])
    exact = np.log(y.astype(np.longdouble)).astype(np.float64)
    ok = exact != 0
    assert np.max(_ulps(apply(y, 1), exact, dtype)[ok]) <= 1.5
    # log1p on (0, 1], tiny arguments included
    u = np.exp(-rng.uniform(0, 60, 200_000)).astype(dtype)
    exact = np.log1p(u.astype(np.longdouble)).astype(np.float64)
    assert np.max(_ulps(apply(u, 2), exact, dtype)) <= 2.0
    assert np.max(_ulps(apply(u, 4), exact, dtype)) <= 3.0    # one division, a short series
    # special values, as libm
    s = np.array([np.inf, -np.inf, np.nan, 0.0, -0.0, 1000.0, -1000.0], dtype)
    np.testing.assert_array_equal(apply(s, 0), [np.inf, 0, np.nan, 1, 1, np.inf, 0])
    s = np.array([np.inf, np.nan, 0.0, -1.0, 1.0], dtype)
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(apply(s, 1), np.log(s))
    s = np.array([-1.0, 0.0, np.inf, np.nan], dtype)
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(apply(s, 2), np.log1p(s))
    s = np.array([0.0, 1.0, np.nan], dtype)
    np.testing.assert_allclose(apply(s, 4), np.log1p(s), rtol=4 * np.finfo(dtype).eps)
    s = np.array([0.0, -np.inf, np.nan, -200.0, -1000.0], dtype)
    np.testing.assert_array_equal(apply(s, 3), [1, 0, np.nan, np.exp(dtype(-200)), 0])


# ---------------------------------------------------------------- 8-wide AVX2
def _fresh_asm(dispatcher, *args):
    """Assembly of a kernel compiled afresh (Numba does not keep assembly for code loaded
    from its cache), with the kernel's own options."""
    opts = {k: v for k, v in dispatcher.targetoptions.items() if k in ("fastmath",
                                                                          "error_model")}
    fresh = numba.njit(**opts)(dispatcher.py_func)
    fresh(*args)
    return fresh.inspect_asm(fresh.signatures[0])


def _host_has_avx2():
    from llvmlite import binding
    return "avx2" in binding.get_host_cpu_features().flatten()


# at least 8 float32 lanes: ymm (AVX2), or zmm where LLVM goes 16 wide (AVX-512, e.g. Zen 4)
WIDE = r"%[yz]mm"


@pytest.mark.skipif(not _host_has_avx2(), reason="8-wide float32 vectors need an AVX2 CPU")
def test_hot_loops_are_8_wide_avx2():
    from fastloss._numba import classification as C
    from fastloss._numba import elementwise as E
    x = np.random.default_rng(0).standard_normal(64 * 100).astype(np.float32)
    t = np.zeros(64, np.int64)
    e = np.empty(0, np.float32)
    # the whole cross-entropy driver, row primitives inlined into it
    asm = _fresh_asm(C._ce_class_ser, x, t, e, 64, 100, 1, -100, 0.0, 100.0, 1.0, e, e, e,
                     False, True)
    assert re.search(r"vmaxps\s+" + WIDE, asm), "row max is not 8-wide"
    assert len(re.findall(r"vfmadd\d+ps\s+[^\n]*" + WIDE, asm)) >= 6, "exp is not 8-wide"
    assert not re.search(r"call\w*\s+\S*exp", asm), "a scalar libm exp is called"
    lb = np.empty(100, np.float32)
    asm = _fresh_asm(E._bce_logits_pts, x[:100], x[:100], e, 100, lb, np.empty_like(lb), True)
    assert len(re.findall(r"vfmadd\d+ps\s+[^\n]*" + WIDE, asm)) >= 6
    assert re.search(r"(vdivps|vrcpps|vrcp14ps)\s+[^\n]*" + WIDE, asm)


# ---------------------------------------------------------------- threads and determinism
def _big_cases():
    rng = np.random.default_rng(7)
    x = (rng.standard_normal((3000, 50)) * 3).astype(np.float32)
    t = rng.integers(0, 50, 3000)
    xs = (rng.standard_normal((20000, 10)) * 3).astype(np.float32)
    ts = rng.integers(0, 10, 20000)
    z = rng.standard_normal(300_000).astype(np.float32)
    y = rng.uniform(size=300_000).astype(np.float32)
    vg = fastloss.value_and_grad
    return [
        lambda: fastloss.cross_entropy(x, t, backend="numba"),
        lambda: vg(fastloss.cross_entropy)(x, t, backend="numba", label_smoothing=0.1),
        lambda: vg(fastloss.cross_entropy)(xs, ts, backend="numba"),
        lambda: fastloss.nll_loss(x, t, backend="numba", reduction="sum"),
        lambda: vg(fastloss.binary_cross_entropy_with_logits)(z, y, backend="numba"),
        lambda: fastloss.mse_loss(z, y, backend="numba"),
        lambda: vg(fastloss.multi_margin_loss)(x, t, backend="numba"),
    ]


def _as_bytes(result):
    if isinstance(result, tuple):
        return tuple(np.asarray(r).tobytes() for r in result)
    return np.asarray(result).tobytes()


def test_bitwise_identical_for_any_thread_count():
    before = fastloss.get_num_threads()
    try:
        results = {}
        for n in (1, 2, 3):
            fastloss.set_num_threads(n)
            results[n] = [_as_bytes(f()) for f in _big_cases()]
        assert results[1] == results[2] == results[3]
    finally:
        fastloss.set_num_threads(before)


def test_set_num_threads_reaches_numba():
    before = fastloss.get_num_threads()
    try:
        fastloss.set_num_threads(1)
        _big_cases()[0]()
        assert numba.get_num_threads() == 1
        fastloss.set_num_threads(2)
        _big_cases()[0]()
        assert numba.get_num_threads() == min(2, numba.config.NUMBA_NUM_THREADS)
    finally:
        fastloss.set_num_threads(before)


def test_serial_and_parallel_drivers_agree_bitwise():
    from fastloss._numba import classification as C
    rng = np.random.default_rng(3)
    for n, c in ((5000, 40), (5000, 7), (40, 9000)):
        x = rng.standard_normal(n * c).astype(np.float32)
        t = rng.integers(0, c, n)
        e = np.empty(0, np.float32)
        args = (x, t, e, n, c, 1, -100, 0.1, float(c), 0.5, e, np.empty(n, np.float32),
                np.empty_like(x), True, True)   # with the gradient, counting the targets
        small = c <= C.SMALL_C
        par, ser = (C._ce_small_par, C._ce_small_ser) if small else (C._ce_class_par,
                                                                      C._ce_class_ser)
        if small:
            args = args[:5] + args[6:]
        a = [np.copy(v) if isinstance(v, np.ndarray) else v for v in args]
        b = [np.copy(v) if isinstance(v, np.ndarray) else v for v in args]
        assert par(*a) == ser(*b)   # (loss sum, weight sum, first bad position)
        assert a[-4].tobytes() == b[-4].tobytes() and a[-3].tobytes() == b[-3].tobytes()


@pytest.mark.parametrize("c", [17, 33, 48, 49])
def test_small_class_tiles_match_reference(c):
    """The transposed-tile path (c <= SMALL_C) and the rows path just above it, with
    weights, smoothing, ignored and non-finite items, a partial last tile."""
    rng = np.random.default_rng(c)
    n = 150
    x = (rng.standard_normal((n, c)) * 3).astype(np.float32)
    x[3, 2] = np.nan
    x[5, :] = -np.inf
    t = rng.integers(0, c, n)
    t[::7] = -100
    w = rng.uniform(0.2, 2.0, c).astype(np.float32)
    for kw in ({}, {"weight": w, "label_smoothing": 0.1}, {"reduction": "none"}):
        got = fastloss.value_and_grad(fastloss.cross_entropy)(x, t, backend="numba", **kw)
        ref = fastloss.value_and_grad(fastloss.cross_entropy)(x, t, backend="numpy", **kw)
        np.testing.assert_allclose(got[0], ref[0], rtol=2e-5, atol=1e-6)
        np.testing.assert_allclose(got[1], ref[1], rtol=2e-5, atol=1e-6)


def test_wide_rows_match_reference():
    # 9000 classes: several blocks of the online log-sum-exp, the max in a late block,
    # all -inf leading blocks, an all -inf row and a NaN in a late block
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((6, 9000)) * 4).astype(np.float64)
    x[1, 8500] = 60.0
    x[2, :4096] = -np.inf
    x[3, :] = -np.inf
    x[4, 7000] = np.nan
    t = np.array([0, 8500, 5000, 1, 2, 8999])
    for dtype in (np.float32, np.float64):
        xd = x.astype(dtype)
        for smoothing in (0.0, 0.2):
            got = fastloss.value_and_grad(fastloss.cross_entropy)(
                xd, t, label_smoothing=smoothing, reduction="none", backend="numba")
            ref = fastloss.value_and_grad(fastloss.cross_entropy)(
                xd, t, label_smoothing=smoothing, reduction="none", backend="numpy")
            assert_close(got[0], ref[0], TIGHT[np.dtype(dtype)], "value")
            assert_close(got[1], ref[1], TIGHT[np.dtype(dtype)], "grad")


def test_float32_accumulates_in_float64():
    # a million equal losses: a float32 running sum would drift by far more than 1e-7
    x = np.zeros((1_000_000, 3), np.float32)
    t = np.zeros(1_000_000, np.int64)
    got = float(fastloss.cross_entropy(x, t, reduction="sum", backend="numba"))
    assert abs(got - 1e6 * np.log(3.0)) / (1e6 * np.log(3.0)) < 1e-7


# ---------------------------------------------------------------- errors
@pytest.mark.parametrize("n", [10, 200_000])
def test_bad_target_raises_index_error_naming_it(n):
    x = np.zeros((n, 4), np.float32)
    t = np.zeros(n, np.int64)
    t[n // 2] = 7
    t[n - 1] = -3
    with pytest.raises(IndexError, match=rf"class index 7 at flat position {n // 2}\b"):
        fastloss.cross_entropy(x, t, backend="numba")
    with pytest.raises(IndexError, match="class index 7"):
        fastloss.value_and_grad(fastloss.nll_loss)(x, t, backend="numba")


# ---------------------------------------------------------------- fork and Python threads
def _child_ce(queue):
    rng = np.random.default_rng(11)
    x = rng.standard_normal((4000, 100)).astype(np.float32)
    t = rng.integers(0, 100, 4000)
    queue.put(float(fastloss.cross_entropy(x, t, backend="numba")))


def test_forked_child_runs_parallel_kernels():
    rng = np.random.default_rng(11)
    x = rng.standard_normal((4000, 100)).astype(np.float32)
    t = rng.integers(0, 100, 4000)
    expected = float(fastloss.cross_entropy(x, t, backend="numba"))   # parent uses threads
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_child_ce, args=(queue,)) for _ in range(2)]
    for p in procs:
        p.start()
    got = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert got == [expected, expected]


def test_concurrent_calls_from_python_threads():
    cases = _big_cases()
    expected = [_as_bytes(f()) for f in cases]
    errors = []

    def work(k):
        try:
            for r in range(6):
                i = (k + r) % len(cases)
                if _as_bytes(cases[i]()) != expected[i]:
                    errors.append(f"thread {k}: case {i} differs")
        except Exception as exc:  # reported below: an exception in a thread is otherwise lost
            errors.append(f"thread {k}: {exc!r}")

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors


def test_tbb_layer_is_used_when_the_tbb_package_is_installed():
    """pip's tbb wheel puts libtbb in <prefix>/lib, which the loader does not search in a
    virtualenv: fastloss loads it from there, else the fork-safe layer is silently lost."""
    import importlib.metadata
    import subprocess
    import sys
    try:
        importlib.metadata.version("tbb")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("the tbb package is not installed")
    import importlib.util
    if importlib.util.find_spec("numba.np.ufunc.tbbpool") is None:
        # e.g. numba 0.62.0's wheels ship no tbbpool: OpenMP is then the best there is
        pytest.skip("this Numba was built without its TBB threading layer")
    code = ("import numpy as np, numba, fastloss\n"
            "x = np.ones((4000, 100), np.float32)\n"
            "fastloss.cross_entropy(x, np.zeros(4000, np.int64), backend='numba')\n"
            "print(numba.threading_layer())")
    env = {k: v for k, v in __import__("os").environ.items() if k != "NUMBA_THREADING_LAYER"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.stdout.strip() == "tbb", out.stderr[-2000:]


_OMP_FORK_SCRIPT = """
import multiprocessing as mp, numpy as np, numba, fastloss
def child(q):
    x = np.linspace(-3, 3, 400_000, dtype=np.float32).reshape(4000, 100)
    q.put(float(fastloss.cross_entropy(x, np.arange(4000) % 100, backend="numba")))
if __name__ == "__main__":
    x = np.linspace(-3, 3, 400_000, dtype=np.float32).reshape(4000, 100)
    parent = float(fastloss.cross_entropy(x, np.arange(4000) % 100, backend="numba"))
    assert numba.threading_layer() == "omp", numba.threading_layer()
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=child, args=(q,))
    p.start()
    got = q.get(timeout=120)
    p.join(timeout=60)
    assert p.exitcode == 0 and got == parent, (p.exitcode, got, parent)
    print("ok")
"""


def test_forked_child_on_openmp_layer_uses_serial_kernels(tmp_path):
    # Without TBB, GNU OpenMP kills a forked child that starts its threads: fastloss must
    # notice the fork and run the (bitwise identical) serial drivers there.
    import os
    import subprocess
    import sys
    try:
        from numba.np.ufunc import omppool  # noqa: F401
    except ImportError:
        pytest.skip("Numba's OpenMP layer is not available here")
    script = tmp_path / "omp_fork.py"
    script.write_text(_OMP_FORK_SCRIPT)
    env = dict(os.environ, NUMBA_THREADING_LAYER="omp")
    root = os.path.dirname(os.path.dirname(os.path.abspath(fastloss.__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run([sys.executable, str(script)], env=env, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


def test_multilabel_margin_gradient_is_exact_for_wide_rows():
    """The gradient counts active hinges as integers: summing 1/C in float32 once per
    hinge drifted by ~1e-4 relative at C = 32000. Inputs on a 1/8 grid make every hinge
    decision exact in float32, so the backends must agree to rounding."""
    rng = np.random.default_rng(7)
    c = 16384
    x = (rng.integers(-16, 16, (6, c)) / 8).astype(np.float32)
    t = np.full((6, c), -1, np.int64)
    t[:, :40] = rng.integers(0, c, (6, 40))
    vg = fastloss.value_and_grad(fastloss.multilabel_margin_loss)
    v_nb, g_nb = vg(x, t, backend="numba")
    v_np, g_np = vg(x, t, backend="numpy")
    np.testing.assert_allclose(v_nb, v_np, rtol=1e-6)
    np.testing.assert_allclose(g_nb, g_np, rtol=1e-6, atol=0)
