"""The "c" backend (fastloss._cffi, csrc/): every kernel against the NumPy reference on
shapes chosen for the C code paths (row and lane layouts, vector tails, chunked wide rows,
strided (N, C, D) layouts, non-finite values), on both instruction sets; plus what only
the C backend has: bitwise independence from the thread count, fork safety, coexistence
with torch, the generated cdef, and life without it. (Every registry case against the
reference, on both instruction sets, and the kernels C must provide are
test_backends.py's, with every backend's: see tests/equivalence.py.)

When the module is not built the tests are skipped with the reason, unless
FASTLOSS_REQUIRE_C=1 (set it in CI after building) turns that into a failure.
"""
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

from fastloss import _dispatch, _reference, _threads

from helpers import assert_close

C = _dispatch._BACKENDS["c"]
if not C.available:
    if os.environ.get("FASTLOSS_REQUIRE_C") == "1":
        raise RuntimeError(f"FASTLOSS_REQUIRE_C=1 but the C backend is missing: {C.error}")
    pytest.skip(f"C backend not built: {C.error}", allow_module_level=True)

from fastloss import _cffi  # noqa: E402  (only importable when built)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

ISAS = _cffi.isas()
DEFAULT_ISA = _cffi.isa()


@pytest.fixture(params=ISAS)
def isa(request):
    _cffi.set_isa(request.param)
    yield request.param
    _cffi.set_isa(DEFAULT_ISA)


@pytest.fixture
def threads():
    """Set the thread count inside a test, restored afterwards."""
    before = _threads.get_num_threads()
    yield _threads.set_num_threads
    _threads.set_num_threads(before)


def test_cdef_is_generated_from_the_header():
    sys.path.insert(0, os.path.join(ROOT, "csrc"))
    try:
        import build_cffi
    finally:
        sys.path.pop(0)
    cdef = build_cffi.cdef_from_header()
    assert "#" not in cdef and "/*" not in cdef
    declared = {tok.split("(")[0].split()[-1] for tok in cdef.split(";") if "(" in tok}
    assert "fl_ce_class_vg_f32" in declared and len(declared) > 60
    assert declared <= set(dir(_cffi.lib))


# ---- kernel level: shapes and values chosen for the C code paths ------------------------

def _spice(x, rng, frac=0.05):
    """Put +-inf, NaN and +-1e4 into a few entries of x (a copy)."""
    x = x.copy()
    flat = x.reshape(-1)
    k = max(1, int(flat.size * frac)) if flat.size else 0
    pos = rng.choice(flat.size, size=min(k, flat.size), replace=False) if k else []
    for i, p in enumerate(pos):
        flat[p] = (np.inf, -np.inf, np.nan, 1e4, -1e4)[i % 5]
    return x


def _compare_kernel(name, arrays, params, n_items, grad_shapes, dtype, rng, rtol=None):
    """Run <name>_fwd and <name>_vg on C and on the reference, with and without per-item
    outputs and gradient coefficients, and compare everything."""
    rtol = rtol or (2e-5 if dtype == np.float32 else 1e-9)
    cf, rf = getattr(_cffi, name + "_fwd"), getattr(_reference, name + "_fwd")
    cv, rv = getattr(_cffi, name + "_vg"), getattr(_reference, name + "_vg")
    empty = np.empty(0, dtype)
    counts_targets = name in COUNTING
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        for with_out in (False, True):
            lo_c = np.empty(n_items, dtype) if with_out else empty
            lo_r = np.empty(n_items, dtype) if with_out else empty
            st_c, st_r = np.full(2, 7.0), np.full(2, 7.0)
            tc = cf(*arrays, *params, lo_c, *((st_c,) if counts_targets else ()))
            tr = rf(*arrays, *params, lo_r, *((st_r,) if counts_targets else ()))
            _close_total(tc, tr, lo_r, rtol, f"{name}_fwd total")
            if counts_targets:   # (summed weight of counted targets, first bad position)
                assert st_c[1] == st_r[1], f"{name}_fwd first bad target"
                assert st_c[0] == pytest.approx(st_r[0], rel=1e-12), f"{name}_fwd weight sum"
            if with_out:
                assert_close(lo_c, lo_r, rtol, f"{name}_fwd items")
        # with and without per-item outputs too: a "mean" call asks for neither, and some
        # kernels then take another path (multilabel_soft_margin's flat one)
        for with_gvec, with_out in ((False, True), (True, True), (False, False)):
            gvec = (rng.uniform(-2, 2, n_items).astype(dtype) if with_gvec else empty)
            gscale = 0.37
            lo_r = np.empty(n_items, dtype)
            lo_c = np.empty(n_items, dtype) if with_out else empty
            gc = [np.full(s, 7.0, dtype) for s in grad_shapes]   # junk: must be overwritten
            gr = [np.empty(s, dtype) for s in grad_shapes]
            tc = cv(*arrays, *params, gscale, gvec, lo_c, *gc)
            tr = rv(*arrays, *params, gscale, gvec, lo_r, *gr)
            _close_total(tc, tr, lo_r, rtol, f"{name}_vg total")
            if with_out:
                assert_close(lo_c, lo_r, rtol, f"{name}_vg items")
            for k, (a, b) in enumerate(zip(gc, gr)):
                assert_close(a, b, rtol, f"{name}_vg grad {k} (gvec={with_gvec}, "
                                         f"items={with_out})")


def _close_total(tc, tr, items, rtol, what):
    if np.isnan(tr):
        assert np.isnan(tc), what
        return
    scale = max(1.0, float(np.sum(np.abs(items[np.isfinite(items)]))) if items.size else 1.0)
    assert tc == pytest.approx(tr, rel=rtol, abs=rtol * scale), what


# kernels whose forward counts the class targets itself (fills target_stats)
COUNTING = ("nll", "ce_class")

CE_SHAPES = [(37, 5, 1), (19, 40, 1), (4, 3000, 1), (3, 7, 13), (2, 50, 9), (1, 2, 1),
             (9, 1, 1), (0, 4, 1), (3, 5, 0), (17, 31, 1), (16, 32, 1),
             # float tiles transposed in 8x8 blocks (c >= 4: whole and partial blocks, the
             # last unit read by lanes when a block would pass the array's end), the
             # forward's lanes up to 63 classes and value+grad's up to 47, rows' tails
             (40, 4, 1), (64, 8, 1), (16, 12, 1), (25, 20, 1), (24, 47, 1), (24, 50, 1),
             (17, 63, 1), (9, 64, 1), (7, 70, 1), (11, 101, 1)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", CE_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("weighted,eps,spice", [(False, 0.0, False), (True, 0.2, False),
                                                (False, 0.1, True), (True, 0.0, True)])
def test_ce_class_paths(shape, dtype, weighted, eps, spice, isa):
    rng = np.random.default_rng(hash((shape, weighted, eps, spice)) % 2**32)
    n, c, d = shape
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    if spice:
        x = _spice(x, rng)
    t = rng.integers(0, max(c, 1), n * d).astype(np.int64)
    t[rng.uniform(size=t.size) < 0.2] = -100
    w = rng.uniform(0.2, 2.0, c).astype(dtype) if weighted else np.empty(0, dtype)
    _compare_kernel("ce_class", (x, t, w), (-100, eps), n * d, [shape], dtype, rng)
    _compare_kernel("nll", (x, t, w), (-100,), n * d, [shape], dtype, rng)
    if t.size > 2:
        # out-of-range targets (the forward reports the first one, its item is NaN) after
        # a few good ones; the _vg kernels are only ever called with checked targets
        bad = t.copy()
        bad[t.size // 2:] = np.where(rng.uniform(size=t.size - t.size // 2) < 0.5, c, -1)
        for name, params in (("ce_class", (-100, eps)), ("nll", (-100,))):
            items_c, items_r = np.empty(t.size, dtype), np.empty(t.size, dtype)
            st_c, st_r = np.empty(2), np.empty(2)
            with np.errstate(all="ignore"):
                tc = getattr(_cffi, name + "_fwd")(x, bad, w, *params, items_c, st_c)
                getattr(_reference, name + "_fwd")(x, bad, w, *params, items_r, st_r)
            assert st_c[1] == st_r[1] >= t.size // 2 and st_c[0] == st_r[0] == 0.0
            assert np.isnan(tc) and np.isnan(items_c[bad != -100][t.size // 2:]).all()
            assert_close(items_c, items_r, 2e-5 if dtype == np.float32 else 1e-9, name)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ce_wide_rows_chunks(dtype, isa):
    """Rows wider than one chunk (2048): a chunk of only -inf before finite ones, a NaN in
    a later chunk, +inf, and a row of only -inf."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((5, 5000, 1)).astype(dtype)
    x[0, :2048] = -np.inf                 # first chunk all -inf, then finite: finite loss
    x[1, :2048] = -np.inf
    x[1, 4000] = np.nan                   # NaN after a -inf chunk: NaN
    x[2, 100] = np.inf                    # +inf: NaN (inf - inf)
    x[3, :] = -np.inf                     # all -inf: NaN
    x[4, 3000] = 50.0                     # the max in a later chunk: rescaling
    t = np.array([3000, 3000, 7, 0, 1], np.int64)
    w = np.empty(0, dtype)
    _compare_kernel("ce_class", (x, t, w), (-100, 0.0), 5, [x.shape], dtype, rng)
    out = np.empty(5, dtype)
    _cffi.ce_class_fwd(x, t, w, -100, 0.0, out, np.empty(2))
    assert np.isfinite(out[0]) and np.isnan(out[1:4]).all() and np.isfinite(out[4])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(6, 5, 1), (4, 45, 1), (3, 4, 11), (0, 3, 1), (2, 0, 1)],
                         ids=lambda s: "x".join(map(str, s)))
def test_ce_prob_paths(shape, dtype, isa):
    rng = np.random.default_rng(7)
    x = (rng.standard_normal(shape) * 2).astype(dtype)
    p = rng.uniform(size=shape)
    p = (p / np.maximum(p.sum(axis=1, keepdims=True), 1e-300)).astype(dtype)
    for w in (np.empty(0, dtype), rng.uniform(0.5, 2, shape[1]).astype(dtype)):
        for eps in ((0.0, 0.3) if shape[1] else (0.0,)):   # eps / C needs C > 0
            _compare_kernel("ce_prob", (x, p, w), (eps,), shape[0] * shape[2], [shape], dtype,
                            rng)


def test_class_targets_reports_first_bad_position():
    t = np.array([0, 2, -100, 5, 1, -3, 7], np.int64)
    w = np.array([1.0, 2.0, 3.0])
    assert _cffi.class_targets(t, w, 3, -100, True) == _reference.class_targets(t, w, 3, -100,
                                                                                 True)
    assert _cffi.class_targets(t, w, 3, -100, True)[1] == 3
    assert _cffi.class_targets(t[:3], w, 3, -100, True) == (1.0 + 3.0, -1)   # w[0] + w[2]
    big = np.zeros(300_000, np.int64)
    big[[123_456, 250_000]] = 9
    assert _cffi.class_targets(big, np.empty(0), 3, -100, False)[1] == 123_456


N_PW = [0, 1, 7, 8, 9, 17, 100, 70_001]   # 17: past one 16-lane vector (AVX-512)


def _pw_arrays(name, n, dtype, rng):
    x = rng.standard_normal(n).astype(dtype) * 3
    t = rng.standard_normal(n).astype(dtype) * 3
    if name == "bce":
        x = rng.uniform(0, 1, n).astype(dtype)
        x[:: 11] = 0.0
        x[5:: 13] = 1.0
        t = rng.uniform(0, 1, n).astype(dtype)
    elif name in ("hinge_embedding", "soft_margin", "margin_ranking"):
        t = rng.choice(np.array([1.0, -1.0, 0.5]), n).astype(dtype)
    elif name == "kl_div":   # probabilities with zeros (the log-target run uses log(t))
        t = np.where(rng.uniform(size=n) < 0.2, 0.0, rng.uniform(0, 1, n)).astype(dtype)
    return _spice(x, rng) if name != "bce" else x, t


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", N_PW)
@pytest.mark.parametrize("name", ["l1", "mse", "smooth_l1", "huber", "bce", "bce_logits",
                                  "hinge_embedding", "soft_margin", "margin_ranking", "kl_div", "gaussian_nll",
                                  "poisson_nll"])
def test_pointwise_kernels(name, n, dtype, isa):
    rng = np.random.default_rng(n + 1)
    x, t = _pw_arrays(name, n, dtype, rng)
    empty = np.empty(0, dtype)
    w = rng.uniform(0.1, 2, n).astype(dtype)
    runs = {
        "l1": [((x, t, empty), ()), ((x, t, w), ())],
        "mse": [((x, t, empty), ()), ((x, t, w), ())],
        "smooth_l1": [((x, t, empty), (0.5,)), ((x, t, w), (2.0,))],
        "huber": [((x, t, empty), (0.7,)), ((x, t, w), (3.0,))],
        "bce": [((x, t, empty), ()), ((x, t, w), ())],
        "bce_logits": [((x, t, empty, empty), ()),
                       ((x, t, w, rng.uniform(0.5, 3, n).astype(dtype)), ())],
        "hinge_embedding": [((x, t), (1.0,)), ((x, t), (-0.5,))],
        "soft_margin": [((x, t), ())],
        "margin_ranking": [((x, _spice(t * 2, rng), t), (0.3,))],
        "kl_div": [((x, _spice(t, rng)), (False,)),
                   ((x, _spice(np.log(t, where=t > 0, out=np.full_like(t, -np.inf)),
                                rng)), (True,))],
        # variances below eps, zero and negative ones among them (clamped), spiced
        "gaussian_nll": [((x, t, _spice(v, rng)), (full, eps))
                         for v in [np.where(rng.uniform(size=n) < 0.1, -0.5,
                                            rng.uniform(0, 2, n) ** 3).astype(dtype)]
                         for full, eps in ((False, 1e-6), (True, 0.1))],
        # log input: spiced x, counts (0, 1 and above: Stirling's mask) as targets; linear
        # input: positive rates with zeros and a few negative ones (log of <= 0: NaN)
        "poisson_nll": [((xx, _spice(np.floor(np.abs(t) * 2), rng)), (log_input, full, 1e-8))
                        for log_input, xx in ((True, x),
                                              (False, np.where(rng.uniform(size=n) < 0.05, -1.0,
                                                               np.abs(x)).astype(dtype)))
                        for full in (False, True)],
    }[name]
    grads = 2 if name in ("margin_ranking", "gaussian_nll") else 1
    for arrays, params in runs:
        _compare_kernel(name, arrays, params, n, [(n,)] * grads, dtype, rng)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
# (7000, 10), (900, 37): several blocks (FL_BLOCK_WORK), whose flat runs start at a row
# (their weight phase 0); (50, 300): a shared weight row too long for the flat path's copy
@pytest.mark.parametrize("shape", [(13, 10), (5, 1), (3, 37), (0, 4), (40, 8), (7000, 10),
                                   (900, 37), (50, 300)],
                         ids=lambda s: "x".join(map(str, s)))
def test_row_margin_kernels(shape, dtype, isa):
    rng = np.random.default_rng(shape[1])
    n, c = shape
    x = _spice(rng.standard_normal(shape).astype(dtype), rng)
    t = rng.integers(0, c, n).astype(np.int64)
    empty = np.empty(0, dtype)
    for w in (empty, rng.uniform(0.5, 2, c).astype(dtype)):
        for p, margin in ((1, 1.0), (2, 0.5)):
            _compare_kernel("multi_margin", (x, t, w), (p, margin), n, [shape], dtype, rng)
    y = rng.uniform(0, 1, shape).astype(dtype)
    for w in (empty, rng.uniform(0.5, 2, (1, c)).astype(dtype),
              rng.uniform(0.5, 2, shape).astype(dtype)):
        _compare_kernel("multilabel_soft_margin", (x, y, w), (), n, [shape], dtype, rng)


# ---- determinism across thread counts ------------------------------------------------------

def _all_outputs(threads_n, set_threads):
    """Totals, items and gradients of one large call per kernel family, as bytes."""
    set_threads(threads_n)
    rng = np.random.default_rng(11)
    x = rng.standard_normal((3000, 300, 1)).astype(np.float32)
    t = rng.integers(0, 300, 3000)
    xs = rng.standard_normal((40_000, 10, 1)).astype(np.float32)
    ts = rng.integers(0, 10, 40_000)
    xd = rng.standard_normal((7, 12, 5000)).astype(np.float32)
    td = rng.integers(0, 12, 7 * 5000)
    f = rng.standard_normal(500_000).astype(np.float32)
    g = rng.standard_normal(500_000).astype(np.float32)
    e = np.empty(0, np.float32)
    out = []
    for xx, tt in ((x, t), (xs, ts), (xd, td)):
        lo, gx, stats = np.empty(tt.size, np.float32), np.empty_like(xx), np.empty(2)
        out += [_cffi.ce_class_fwd(xx, tt, e, -100, 0.1, lo, stats), lo.tobytes(),
                stats.tobytes()]
        out += [_cffi.ce_class_vg(xx, tt, e, -100, 0.0, 0.5, e, lo, gx), gx.tobytes()]
    lo, gx = np.empty(f.size, np.float32), np.empty_like(f)
    out += [_cffi.bce_logits_vg(f, (g > 0).astype(np.float32), e, e, 1.0, e, lo, gx),
            gx.tobytes(), _cffi.mse_fwd(f, g, e, e)]
    out += [_cffi.multi_margin_fwd(x[:, :, 0], t, e, 1, 1.0, e)]
    out += [_cffi.class_targets(ts, e, 10, -100, True)]
    return out


def test_bitwise_identical_across_thread_counts(threads):
    one = _all_outputs(1, threads)
    for n in (2, 3):
        assert _all_outputs(n, threads) == one, f"{n} threads differ from 1"


def test_python_threads_call_kernels_concurrently(threads):
    """Kernels release the GIL; calls from several Python threads at once share the pool
    (the ones that find it busy run serially) and all get the single-thread result."""
    import concurrent.futures
    threads(2)
    rng = np.random.default_rng(9)
    x = rng.standard_normal((3000, 100, 1)).astype(np.float32)
    t = rng.integers(0, 100, 3000)
    e = np.empty(0, np.float32)

    def run(_):
        lo = np.empty(3000, np.float32)
        stats = np.empty(2)
        return _cffi.ce_class_fwd(x, t, e, -100, 0.0, lo, stats), lo.tobytes(), stats.tobytes()

    expected = run(None)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(run, range(16)))
    assert all(r == expected for r in results)


# ---- processes: fork, torch, no C ------------------------------------------------------------

def _run_python(code, env=None, timeout=120):
    full_env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
                **(env or {})}
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=full_env,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_forked_child_can_call_kernels(threads):
    """The parent uses the thread pool, forks; the child calls a parallel kernel (it would
    hang with OpenMP's pool) and must get the parent's result."""
    threads(2)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4000, 200, 1)).astype(np.float32)
    t = rng.integers(0, 200, 4000)
    e = np.empty(0, np.float32)
    expected = _cffi.ce_class_fwd(x, t, e, -100, 0.0, e, np.empty(2))
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:   # the child: never return into pytest
        try:
            got = _cffi.ce_class_fwd(x, t, e, -100, 0.0, e, np.empty(2))
            os.write(w, repr(got).encode())
        finally:
            os._exit(0)
    os.close(w)
    import select
    ready, _, _ = select.select([r], [], [], 60)
    if not ready:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        pytest.fail("the forked child hung in a C kernel")
    got = float(os.read(r, 100).decode())
    os.close(r)
    os.waitpid(pid, 0)
    assert got == expected


def test_coexists_with_torch():
    """torch (with its own OpenMP pool busy) and the C kernels in one process, in turns:
    no hang, and the C results are the reference's."""
    pytest.importorskip("torch")
    _run_python("""
        import numpy as np, torch
        import fastloss
        from fastloss import _threads
        torch.set_num_threads(2); _threads.set_num_threads(2)
        rng = np.random.default_rng(0)
        x = rng.standard_normal((20000, 100)).astype(np.float32)
        t = rng.integers(0, 100, 20000)
        ref = float(fastloss.cross_entropy(x, t, backend="numpy"))
        for _ in range(5):
            tv = float(torch.nn.functional.cross_entropy(torch.from_numpy(x), torch.from_numpy(t)))
            cv = float(fastloss.cross_entropy(x, t, backend="c"))
            assert abs(cv - ref) < 1e-5 * abs(ref) and abs(tv - ref) < 1e-4 * abs(ref), (cv, tv, ref)
        print("ok")
    """)


def test_works_without_the_compiled_module():
    """As after an install without a compiler: the C module cannot be imported. fastloss
    imports, says why "c" is missing, and computes on the other backends."""
    out = _run_python("""
        import sys
        sys.modules["fastloss._fastloss_c"] = None   # makes `import` fail with ImportError
        import numpy as np, fastloss
        from fastloss import _dispatch
        status = fastloss.show_backends()
        assert status["c"][0] is False
        assert "C kernels not built" in status["c"][1], status["c"][1]
        x = np.array([[2.0, 1.0, 0.1]]); t = np.array([0])
        assert abs(float(fastloss.cross_entropy(x, t)) - 0.4170300) < 1e-6
        try:
            fastloss.cross_entropy(x, t, backend="c")
        except ValueError as exc:   # fastloss.BackendNotAvailable
            assert "not available" in str(exc)
        else:
            raise AssertionError("backend='c' should raise when C is missing")
        print("ok")
    """)
    assert "c      missing" in out


def test_fastloss_no_c_disables_the_backend():
    out = _run_python("""
        import fastloss
        status = fastloss.show_backends()
        assert status["c"][0] is False and "FASTLOSS_NO_C=1" in status["c"][1], status
    """, env={"FASTLOSS_NO_C": "1"})
    assert "FASTLOSS_NO_C=1" in out
