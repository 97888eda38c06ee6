"""ctc_loss beyond the registry cases: length containers, the exact gradient, the rows
past an input's length, and every must-raise case on every backend."""
import numpy as np
import pytest

import fastloss
from fastloss import _dispatch

BACKENDS = [b for b in _dispatch.backend_names() if _dispatch._BACKENDS[b].available]


def _data(T=10, N=3, C=5, S=4, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((T, N, C))
    x = (x - np.log(np.exp(x).sum(axis=2, keepdims=True))).astype(dtype)
    t = rng.integers(1, C, (N, S))
    return x, t


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_lengths_as_arrays_lists_tuples_and_int32_are_identical(backend, reduction):
    x, t = _data()
    il, tl = [10, 8, 6], [4, 2, 3]
    vg = fastloss.value_and_grad(fastloss.ctc_loss)
    base = vg(x, t, np.array(il), np.array(tl), reduction=reduction, backend=backend)
    for a, b, tt in ((il, tl, t), (tuple(il), tuple(tl), t),
                     (np.array(il, np.int32), np.array(tl, np.int32), t.astype(np.int32)),
                     (np.array(il, np.uint8), np.array(tl, np.int16), t.astype(np.int16))):
        got = vg(x, tt, a, b, reduction=reduction, backend=backend)
        np.testing.assert_array_equal(got[0], base[0])
        np.testing.assert_array_equal(got[1], base[1])


@pytest.mark.parametrize("backend", BACKENDS)
def test_concatenated_targets_equal_padded(backend):
    x, t = _data()
    tl = np.array([4, 1, 3])
    flat = np.concatenate([t[i, :tl[i]] for i in range(3)])
    for red in ("none", "mean"):
        np.testing.assert_array_equal(
            fastloss.ctc_loss(x, flat, [10, 9, 8], tl, reduction=red, backend=backend),
            fastloss.ctc_loss(x, t, [10, 9, 8], tl, reduction=red, backend=backend))


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradient_rows_past_the_input_length_are_zero_and_rows_before_sum_to_zero(backend):
    x, t = _data(T=12)
    il = np.array([12, 7, 5])
    _, g = fastloss.value_and_grad(fastloss.ctc_loss)(x, t, il, [4, 3, 2], reduction="sum",
                                                        backend=backend)
    for b in range(3):
        assert (g[il[b]:, b] == 0).all()
        # torch's gradient exp(x) - gamma: each row sums to 1 - 1 = 0 before the end
        np.testing.assert_allclose(g[:il[b], b].sum(axis=1), 0, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_exact_grad_is_torchs_minus_exp_log_probs(backend):
    x, t = _data()
    args = (x, t, [10, 9, 8], [4, 2, 3])
    vg = fastloss.value_and_grad(fastloss.ctc_loss)
    v1, g_torch = vg(*args, reduction="sum", backend=backend)
    v2, g_exact = vg(*args, reduction="sum", exact_grad=True, backend=backend)
    assert float(v1) == float(v2)
    rows = np.zeros_like(x, bool)
    for b, n in enumerate([10, 9, 8]):
        rows[:n, b] = True
    np.testing.assert_allclose(g_torch - g_exact, np.where(rows, np.exp(x), 0), atol=1e-12)
    # the exact one is the derivative (torch's is not: issues #52241, #82545)
    i = (3, 1, 2)
    h = 1e-6
    up, down = x.copy(), x.copy()
    up[i] += h
    down[i] -= h
    fd = (float(fastloss.ctc_loss(up, *args[1:], reduction="sum"))
          - float(fastloss.ctc_loss(down, *args[1:], reduction="sum"))) / (2 * h)
    assert abs(fd - g_exact[i]) < 1e-6
    assert abs(fd - g_torch[i]) > 1e-3


@pytest.mark.parametrize("backend", BACKENDS)
def test_empty_target_is_the_blank_only_path_and_impossible_is_inf(backend):
    x, t = _data(T=5, N=2, S=3)
    loss = fastloss.ctc_loss(x, t, [5, 2], [0, 3], reduction="none", backend=backend)
    assert np.isclose(loss[0], -x[:, 0, 0].sum())
    assert loss[1] == np.inf
    z = fastloss.ctc_loss(x, t, [5, 2], [0, 3], reduction="none", zero_infinity=True,
                          backend=backend)
    assert z[1] == 0 and z[0] == loss[0]
    _, g = fastloss.value_and_grad(fastloss.ctc_loss)(x, t, [5, 2], [0, 3], reduction="sum",
                                                        zero_infinity=True, backend=backend)
    assert (g[:, 1] == 0).all()


def test_mean_divides_by_clamped_target_lengths():
    x, t = _data()
    none = fastloss.ctc_loss(x, t, [10, 9, 8], [4, 0, 3], reduction="none")
    mean = fastloss.ctc_loss(x, t, [10, 9, 8], [4, 0, 3])
    np.testing.assert_allclose(mean, np.mean(none / np.array([4, 1, 3])))


X, T = _data()
RAISES = [
    ("blank", dict(blank=5), ValueError),
    ("blank", dict(blank=-1), ValueError),
    ("input_lengths", dict(input_lengths=[10, 10]), ValueError),
    ("target_lengths", dict(target_lengths=[4]), ValueError),
    ("input_lengths", dict(input_lengths=[11, 10, 10]), ValueError),
    ("input_lengths", dict(input_lengths=[-1, 10, 10]), ValueError),
    ("target_lengths", dict(target_lengths=[4, -1, 2]), ValueError),
    ("input_lengths", dict(input_lengths=[10.0, 10.0, 10.0]), TypeError),
    ("targets", dict(target_lengths=[5, 2, 2]), ValueError),           # padded too narrow
    ("targets", dict(targets=T.reshape(-1)[:7]), ValueError),          # sum(lengths) = 8
    ("targets", dict(targets=np.where(T == 1, 0, T)), ValueError),     # the blank
    ("targets", dict(targets=T + 10), IndexError),
    ("targets", dict(targets=T.astype(np.float64)), TypeError),
    ("targets", dict(targets=T[None]), ValueError),
    ("log_probs", dict(log_probs=X[None]), ValueError),
    ("log_probs", dict(log_probs=X[:, :0]), ValueError),
    ("log_probs", dict(log_probs=X.astype(np.int64)), TypeError),
    ("reduction", dict(reduction="batchmean"), ValueError),
    ("zero_infinity", dict(zero_infinity=1), TypeError),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name,change,error", RAISES,
                         ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(RAISES)])
def test_bad_input_raises_naming_the_argument(backend, name, change, error):
    call = dict(log_probs=X, targets=T, input_lengths=[10, 10, 10], target_lengths=[4, 2, 2])
    call.update(change)
    with pytest.raises(error, match=name):
        fastloss.ctc_loss(**call, backend=backend)
    out = np.full(X.shape, 7.0)
    if call["log_probs"] is X:
        with pytest.raises(error, match=name):
            fastloss.value_and_grad(fastloss.ctc_loss)(**call, out=out, backend=backend)
        assert (out == 7.0).all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_thread_count_does_not_change_the_result(backend):
    x, t = _data(T=200, N=9, C=20, S=30, seed=3)    # large enough for the parallel driver
    il = np.arange(192, 201)
    tl = np.arange(22, 31)
    vg = fastloss.value_and_grad(fastloss.ctc_loss)
    before = fastloss.get_num_threads()
    try:
        results = []
        for n in (1, 2, 3):
            fastloss.set_num_threads(n)
            results.append(vg(x, t, il, tl, backend=backend))
    finally:
        fastloss.set_num_threads(before)
    for v, g in results[1:]:
        np.testing.assert_array_equal(v, results[0][0])
        np.testing.assert_array_equal(g, results[0][1])


# ------------------------------------------------------------------ the Numba kernel's paths
def _numba_paths(monkeypatch, linear, *args, **kwargs):
    """(loss, gradient, samples in linear space, samples in log space) of one
    value_and_grad and one forward call on the Numba backend."""
    from fastloss._numba import sequence as kernel
    monkeypatch.setattr(kernel, "LINEAR", linear)
    before = dict(kernel.STATS)
    v, g = fastloss.value_and_grad(fastloss.ctc_loss)(*args, **kwargs, backend="numba")
    f = fastloss.ctc_loss(*args, **kwargs, backend="numba")
    np.testing.assert_array_equal(f, v)
    return (v, g, kernel.STATS["linear"] - before["linear"],
            kernel.STATS["log"] - before["log"])


@pytest.mark.skipif("numba" not in BACKENDS, reason="the Numba backend is not available")
@pytest.mark.parametrize("exact_grad", [False, True])
def test_linear_space_and_log_space_agree_and_both_ran(monkeypatch, exact_grad):
    """Ordinary samples run in linear space, the ones that underflow it (-1e4 at the
    targets' classes, a near-impossible alignment of probability ~e^-2000) fall back to
    log space; with LINEAR off every sample is in log space: both give the same results
    within float64 rounding, and match the NumPy reference."""
    x, t = _data(T=40, N=6, C=7, S=6, seed=5)
    il = np.array([40, 40, 35, 12, 40, 30])
    tl = np.array([6, 6, 5, 6, 0, 4])
    x[5:9, 1, t[1, 2]] = -1e4           # sample 1: its third label impossible-but-finite
    x[:, 3, t[3]] -= 340.0              # sample 3: every label ~e^-340, six of them
    args = (x, t, il, tl)
    kw = dict(reduction="none", exact_grad=exact_grad)
    v, g, n_lin, n_log = _numba_paths(monkeypatch, True, *args, **kw)
    assert (n_lin, n_log) == (2 * 4, 2 * 2)     # per call: samples 0, 2, 4, 5 | 1, 3
    v_log, g_log, n_lin0, n_log0 = _numba_paths(monkeypatch, False, *args, **kw)
    assert (n_lin0, n_log0) == (0, 2 * 6)
    np.testing.assert_allclose(v, v_log, rtol=1e-12, atol=0)
    np.testing.assert_allclose(g, g_log, rtol=1e-10, atol=1e-13)
    v_ref, g_ref = fastloss.value_and_grad(fastloss.ctc_loss)(*args, **kw, backend="numpy")
    np.testing.assert_allclose(v, v_ref, rtol=1e-12, atol=0)
    np.testing.assert_allclose(g, g_ref, rtol=1e-10, atol=1e-13)


@pytest.mark.skipif("numba" not in BACKENDS, reason="the Numba backend is not available")
def test_linear_space_runs_the_benchmark_shape_without_fallback(monkeypatch):
    """log_softmax of normal logits, T=500, C=32, S=100 (the benchmark's shape, 2
    samples): every state stays in float64's range, no sample falls back."""
    x, t = _data(T=500, N=2, C=32, S=100, seed=7)
    v, g, n_lin, n_log = _numba_paths(monkeypatch, True, x, t, [500, 480], [100, 90],
                                      reduction="none")
    assert (n_lin, n_log) == (4, 0)
    v_log, g_log, _, _ = _numba_paths(monkeypatch, False, x, t, [500, 480], [100, 90],
                                      reduction="none")
    np.testing.assert_allclose(v, v_log, rtol=1e-12, atol=0)
    np.testing.assert_allclose(g, g_log, rtol=1e-9, atol=1e-12)


@pytest.mark.skipif("numba" not in BACKENDS, reason="the Numba backend is not available")
def test_linear_space_step_is_packed_simd():
    """The linear-space state update (and the exp of its band) compile to packed double
    vectors, 4 wide (ymm) or 8 wide (zmm), not a scalar loop."""
    import re
    from llvmlite import binding
    if "avx2" not in binding.get_host_cpu_features().flatten():
        pytest.skip("packed 4-wide doubles need an AVX2 CPU")
    import numba
    from fastloss._numba import sequence as kernel
    n = 64
    a = np.random.default_rng(0).uniform(size=(6, n))
    for fn, args in ((kernel._lin_step, (a[0], a[1], a[2], a[3], a[4], 0.5, a[5])),
                     (kernel._exp_band, (-a[0], a[1]))):
        fresh = numba.njit(fastmath=fn.targetoptions["fastmath"],
                           error_model="numpy")(fn.py_func)
        fresh(*args)
        asm = fresh.inspect_asm(fresh.signatures[0])
        assert re.search(r"vfmadd\d+pd\s+[^\n]*%[yz]mm", asm), fn.__name__
        assert not re.search(r"call\w*\s+\S*exp", asm), fn.__name__


@pytest.mark.skipif("numba" not in BACKENDS, reason="the Numba backend is not available")
def test_linear_and_log_space_agree_on_random_inputs(monkeypatch):
    """Random shapes, lengths, blanks, repeats, temperatures, -inf and -800 cells, both
    gradient conventions, zero_infinity, float32 and float64: the Numba kernel with linear
    space (and its fallbacks) equals the all-log-space kernel within float64 rounding,
    with the same NaN and inf positions, and its forward equals value_and_grad's value."""
    from fastloss._numba import sequence as kernel
    vg = fastloss.value_and_grad(fastloss.ctc_loss)
    rng = np.random.default_rng(1)
    paths = {"linear": 0, "log": 0}
    for _ in range(40):
        T, N, C, S = (int(rng.integers(1, 60)), int(rng.integers(1, 5)),
                      int(rng.integers(2, 40)), int(rng.integers(0, 25)))
        blank = int(rng.integers(0, C))
        x = rng.standard_normal((T, N, C)) * rng.choice([0.5, 1.5, 5, 30])
        x -= np.log(np.exp(x - x.max(2, keepdims=True)).sum(2, keepdims=True)) \
            + x.max(2, keepdims=True)
        if rng.random() < 0.2:
            x[rng.integers(0, T), :, rng.integers(0, C)] = -np.inf
        if rng.random() < 0.2:
            x[rng.integers(0, T), :, rng.integers(0, C)] = -800.0
        t = rng.integers(0, C - 1, (N, max(S, 1)))
        t = np.where(t >= blank, t + 1, t)
        if rng.random() < 0.3 and S > 1:
            t[:, 1::2] = t[:, ::2][:, :t[:, 1::2].shape[1]]
        il, tl = rng.integers(0, T + 1, N), rng.integers(0, S + 1, N)
        dtype = rng.choice([np.float32, np.float64])
        x = x.astype(dtype)
        for exact in (False, True):
            kw = dict(blank=blank, reduction="none", exact_grad=exact,
                      zero_infinity=bool(rng.random() < 0.5), backend="numba")
            monkeypatch.setattr(kernel, "LINEAR", True)
            before = dict(kernel.STATS)
            v, g = vg(x, t, il, tl, **kw)
            f = fastloss.ctc_loss(x, t, il, tl, **kw)
            for k in paths:
                paths[k] += kernel.STATS[k] - before[k]
            monkeypatch.setattr(kernel, "LINEAR", False)
            v_log, g_log = vg(x, t, il, tl, **kw)
            np.testing.assert_array_equal(f, v)
            np.testing.assert_array_equal(np.isnan(g), np.isnan(g_log))
            np.testing.assert_array_equal(np.isinf(v), np.isinf(v_log))
            if dtype == np.float64:
                np.testing.assert_allclose(v, v_log, rtol=1e-12, atol=0)
                np.testing.assert_allclose(g, g_log, rtol=1e-9, atol=1e-12)
            else:
                np.testing.assert_allclose(v, v_log, rtol=1e-6, atol=0)
                np.testing.assert_allclose(g, g_log, rtol=1e-5, atol=1e-6)
    assert paths["linear"] > 0 and paths["log"] > 0, paths
