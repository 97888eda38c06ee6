"""Dask arrays on a real dask.distributed LocalCluster (two worker processes, started
and stopped here, once for the module): every loss's lazy result equals the in-memory
call on every batched case; gradients too (the "mean" denominator summed in the graph,
shared arguments' gradients summed over the chunks); chunks along the class axis merged
or refused with the fix; NumPy and Dask mixed; kernels on one thread per worker."""
import numpy as np
import pytest

import fastloss
from fastloss._registry import LOSSES
from conftest import all_cases

dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=40)
    c = distributed.Client(cluster)
    try:
        yield c
    finally:
        c.close()
        cluster.close()


def _batch(name, args):
    spec = LOSSES[name]
    axis = spec.batch_axis(spec.parameters[0])
    x = np.asarray(args[0])
    return (axis, x.shape[axis]) if x.ndim > axis else (axis, None)


def _batched_cases():
    out = []
    for c in all_cases():
        args, kwargs = c.build(np.float64)
        axis, n = _batch(c.loss, args)
        if n is None or n < 2 or (c.loss == "ctc_loss" and np.ndim(args[0]) != 3):
            continue
        shape = np.shape(LOSSES[c.loss].function(*args, **kwargs, reduction="none",
                                                 backend="numpy"))
        if not shape or shape[0] != n:
            continue
        out.append(c)
    return out


def _lazy(name, args, kwargs):
    """Every array argument that runs along the batch as a Dask array in uneven chunks
    along the batch (and chunked along its other axes too: those chunks are merged); the
    other arrays stay NumPy, except the first shared one, made Dask (one chunk)."""
    spec = LOSSES[name]
    x = np.asarray(args[0])
    axis0, n = _batch(name, args)
    bound = dict(zip(spec.parameters, args), **kwargs)
    made_shared = False
    out = {}
    for k, a in bound.items():
        if not isinstance(a, np.ndarray) or not a.ndim:
            out[k] = a
            continue
        axis = spec.axis_of(k, a, x.ndim)
        concat = name == "ctc_loss" and np.ndim(bound["targets"]) == 1
        if concat and k == "target_lengths":
            out[k] = a       # concatenated targets are padded from NumPy lengths
        elif axis is not None and a.shape[axis] == n:
            chunks = [max(1, s // 2) for s in a.shape]
            chunks[axis] = max(1, n // 3)
            out[k] = da.from_array(a, chunks=tuple(chunks))
        elif not made_shared and name in ("linear_cross_entropy", "cross_entropy"):
            out[k] = da.from_array(a, chunks=-1)
            made_shared = True
        else:
            out[k] = a
    positional = [out.pop(k) for k in spec.parameters[:len(args)]]
    return positional, out


CASES = _batched_cases()


def test_every_loss_has_batched_cases():
    assert {c.loss for c in CASES} == set(LOSSES)


def _close(got, expected):
    got = np.asarray(got)
    assert got.shape == np.shape(expected) and got.dtype == np.asarray(expected).dtype
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-300, equal_nan=True)


def _wrt(case, args, kwargs):
    spec = LOSSES[case.loss]
    bound = dict(zip(spec.parameters, args), **kwargs)
    return tuple(a for a in spec.differentiable if isinstance(bound.get(a), np.ndarray))


def _lazy_and_expected(case):
    """Every reduction's lazy value, and (for a case with gradients) lazy value and
    gradients (a weighted "mean" among them: the global denominator), with the
    in-memory results they must equal."""
    args, kwargs = case.build(np.float64)
    spec = LOSSES[case.loss]
    fn = spec.function
    largs, lkw = _lazy(case.loss, args, kwargs)
    lazy, expected = [], []
    for red in case.reductions:
        v = fn(*largs, **lkw, reduction=red, backend="numpy")
        assert isinstance(v, da.Array), "the result must stay lazy"
        lazy.append(v)
        expected.append(fn(*args, **kwargs, reduction=red, backend="numpy"))
    if not case.grad:
        return lazy, expected
    wrt = _wrt(case, args, kwargs)
    rng = np.random.default_rng(0)
    shape = np.shape(fn(*args, **kwargs, reduction="none", backend="numpy"))
    for red in case.reductions:
        go = rng.uniform(-1, 2, shape) if red == "none" else 0.75
        sw = rng.uniform(0.1, 2.0, shape) if red == "mean" else None
        f = fastloss.value_and_grad(fn, argnums=wrt)
        v, g = f(*largs, **lkw, reduction=red, grad_output=go, sample_weight=sw,
                 backend="numpy")
        assert isinstance(v, da.Array) and all(isinstance(a, da.Array) for a in g)
        lazy += [v, *g]
        v0, g0 = f(*args, **kwargs, reduction=red, grad_output=go, sample_weight=sw,
                   backend="numpy")
        expected += [v0, *g0]
    return lazy, expected


@pytest.mark.parametrize("case", CASES, ids=[f"{c.loss}-{c.id}" for c in CASES])
def test_dask_equals_in_memory(case):
    """Every batched case, values and gradients, on dask's synchronous scheduler (the
    graph is the same one the cluster runs; the cluster tests below run one case per
    loss, to keep CI's time small)."""
    lazy, expected = _lazy_and_expected(case)
    for got, want in zip(dask.compute(*lazy, scheduler="sync"), expected):
        _close(got, want)


FIRST_CASES = list({c.loss: c for c in reversed(CASES) if c.grad}.values())


@pytest.mark.parametrize("case", FIRST_CASES, ids=[c.loss for c in FIRST_CASES])
def test_dask_on_a_local_cluster_equals_in_memory(client, case):
    """One case per loss on the LocalCluster's two worker processes (pickling of the
    tasks, the workers' own registry and backends)."""
    if case.loss == "log_cosh_loss":
        # pytest --toy-loss registers tests/toy_loss.py in this process only: the workers
        # are fresh processes whose registry has the package's losses (the toy's Dask
        # path is checked on the local scheduler above)
        pytest.skip("the test-only toy loss exists in the test process only")
    lazy, expected = _lazy_and_expected(case)
    for got, want in zip(dask.compute(*lazy), expected):
        _close(got, want)


def test_compiled_kernels_in_workers_with_weights(client):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6000, 50)).astype(np.float32)
    t = rng.integers(0, 50, 6000)
    t[::11] = -100
    s = rng.uniform(0, 2, 6000)
    w = rng.uniform(0.5, 2, 50).astype(np.float32)
    dx, dt = da.from_array(x, chunks=(1000, 25)), da.from_array(t, chunks=1000)
    kw = dict(weight=w, label_smoothing=0.05)
    for backend in ("numba", "auto"):
        v, g = fastloss.value_and_grad(fastloss.cross_entropy)(dx, dt, sample_weight=s,
                                                               backend=backend, **kw)
        v0, g0 = fastloss.value_and_grad(fastloss.cross_entropy)(x, t, sample_weight=s,
                                                                 backend="numpy", **kw)
        assert g.chunks == ((1000,) * 6, (50,)) and g.dtype == np.float32
        v, g = dask.compute(v, g)
        np.testing.assert_allclose(v, v0, rtol=1e-6)
        np.testing.assert_allclose(g, g0, rtol=1e-5, atol=1e-8)
    # each worker ran its kernels on one thread (no oversubscription of the 2 cores),
    # and Numba's threading layer is TBB, which may be entered from any thread
    threads = client.run(lambda: fastloss.get_num_threads())
    assert set(threads.values()) == {1}, threads
    layers = client.run(lambda: __import__("fastloss")._numba._threading.STATE.layer)
    assert set(layers.values()) <= {"tbb", "workqueue"}, layers


def test_graph_building_computes_nothing():
    """Building the graph of a loss and its gradient runs no task (the call stays lazy)."""
    def refuse(*args, **kwargs):
        raise AssertionError("something was computed while building the graph")

    x = da.random.random((400, 30), chunks=(100, 30))
    t = da.random.randint(0, 30, 400, chunks=100)
    with dask.config.set(scheduler=refuse):
        fastloss.cross_entropy(x, t)
        fastloss.cross_entropy(x, t, reduction="none")
        v, g = fastloss.value_and_grad(fastloss.cross_entropy)(x, t)
    assert g.chunks[0] == (100,) * 4


def test_graph_is_one_layer_linear_in_the_chunks():
    """The tasks are written directly (fastloss._dask._Graph): one layer over the inputs'
    layers, a fixed number of tasks per chunk (no tree of dask.delayed calls, whose build
    time grew with chunks x layers), and a NumPy argument shared by every task (a class
    weight) once in the graph, not once per task."""
    w = np.linspace(0.5, 2.0, 30)
    for n in (10, 100):
        x = da.random.random((20 * n, 30), chunks=(20, 30))
        t = da.random.randint(0, 30, 20 * n, chunks=20)
        inputs = set(x.dask.layers) | set(t.dask.layers)
        loss = fastloss.cross_entropy(x, t, weight=w)
        v, g = fastloss.value_and_grad(fastloss.cross_entropy)(x, t, weight=w)
        none = fastloss.cross_entropy(x, t, weight=w, reduction="none")
        # records + the finishing task; denominators + their sum + gradient blocks + the
        # value + the gradient's blocks; a block per chunk
        for result, per_chunk, fixed in ((loss, 1, 1), (v, 3, 2), (g, 3, 2), (none, 1, 0)):
            ours = [name for name in result.dask.layers if name not in inputs]
            assert len(ours) == 1, ours
            tasks = dict(result.dask.layers[ours[0]])
            consts = [k for k, task in tasks.items() if isinstance(task, np.ndarray)]
            assert len(consts) == 1 and np.array_equal(tasks[consts[0]], w)
            assert len(tasks) == per_chunk * n + fixed + 1, (len(tasks), n)
        _close(loss.compute(scheduler="sync"),
               fastloss.cross_entropy(x.compute(scheduler="sync"),
                                      t.compute(scheduler="sync"), weight=w))


def test_numpy_and_dask_mixed_on_the_local_scheduler():
    rng = np.random.default_rng(1)
    x, t = rng.standard_normal((90, 7)), rng.integers(0, 7, 90)
    s = rng.uniform(0, 2, 90)
    expected = fastloss.cross_entropy(x, t, sample_weight=s, backend="numpy")
    dx, dt, ds = (da.from_array(a, chunks=25) for a in (x, t, s))
    for args, sw in (((dx, t), s), ((x, dt), s), ((x, t), ds), ((dx, dt), ds)):
        got = fastloss.cross_entropy(*args, sample_weight=sw, backend="numpy")
        assert isinstance(got, da.Array)
        _close(got.compute(scheduler="sync"), expected)
    v, g = fastloss.value_and_grad(fastloss.cross_entropy)(x, t, sample_weight=ds,
                                                           backend="numpy")
    v0, g0 = fastloss.value_and_grad(fastloss.cross_entropy)(x, t, sample_weight=s,
                                                             backend="numpy")
    _close(v.compute(scheduler="sync"), v0)
    _close(g.compute(scheduler="sync"), g0)


def test_class_axis_chunks_merged_or_refused_with_the_fix():
    rng = np.random.default_rng(2)
    x, t = rng.standard_normal((64, 40)), rng.integers(0, 40, 64)
    dx = da.from_array(x, chunks=(16, 10))           # 4 chunks along the classes
    got = fastloss.cross_entropy(dx, t, reduction="none")
    assert got.chunks == ((16,) * 4,)
    _close(got.compute(scheduler="sync"), fastloss.cross_entropy(x, t, reduction="none"))
    with dask.config.set({"array.chunk-size": "512B"}):   # merged rows would not fit
        with pytest.raises(ValueError, match=r"input: merging its chunks .* rechunk along "
                                             r"the batch first: input\.rechunk\(\{0: 12, "
                                             r"1: -1\}\)"):
            fastloss.cross_entropy(dx, t)
    # already whole along the classes: no merge, so no limit
    with dask.config.set({"array.chunk-size": "512B"}):
        fastloss.cross_entropy(da.from_array(x, chunks=(16, 40)), t)


def test_ctc_concatenated_targets_and_lengths_as_lists():
    rng = np.random.default_rng(3)
    T, N, C = 12, 5, 6
    lp = rng.standard_normal((T, N, C))
    lp -= np.log(np.exp(lp).sum(-1, keepdims=True))
    tl = [3, 1, 4, 2, 0]
    il = [12, 10, 12, 8, 9]
    targets = rng.integers(1, C, sum(tl))
    dlp = da.from_array(lp, chunks=(4, 2, 3))
    for red in ("mean", "sum", "none"):
        got = fastloss.ctc_loss(dlp, targets, il, tl, reduction=red, backend="numpy")
        _close(got.compute(scheduler="sync"),
               fastloss.ctc_loss(lp, targets, il, tl, reduction=red, backend="numpy"))
    with pytest.raises(ValueError, match=r"targets: with Dask inputs, ctc_loss needs padded"):
        fastloss.ctc_loss(dlp, da.from_array(targets), il, tl)


def test_dask_errors_are_clear():
    x = da.zeros((10, 3), chunks=5)
    with pytest.raises(ValueError, match="out: not supported with Dask"):
        fastloss.value_and_grad(fastloss.mse_loss)(x, x, out=np.zeros((10, 3)))
    with pytest.raises(ValueError, match="input: a Dask call needs a batch axis"):
        fastloss.mse_loss(da.zeros((), chunks=()), np.zeros(()))
    with pytest.raises(TypeError, match="a Dask array is taken"):
        fastloss.RunningLoss(fastloss.mse_loss).update(x, x)
    t = np.zeros(10, np.int64)
    with pytest.raises(ValueError, match=r"sample_weight: expected a shape that broadcasts "
                                         r"to the unreduced loss's shape \(10,\), got \(3,\)"):
        fastloss.cross_entropy(x, t, sample_weight=da.ones(3, chunks=2))
    with pytest.raises(ValueError, match=r"grad_output: expected shape \(10,\)"):
        fastloss.value_and_grad(fastloss.cross_entropy)(x, t, reduction="none",
                                                        grad_output=np.ones(4))
    with pytest.raises(TypeError, match="grad_output: expected a real number"):
        fastloss.value_and_grad(fastloss.cross_entropy)(x, t, grad_output="a")
