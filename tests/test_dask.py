"""Dask arrays on a real dask.distributed LocalCluster (two worker processes, started
and stopped here): every loss's lazy result equals the in-memory call; gradients too,
with the "mean" denominator computed in the graph; kernels run one thread per worker."""
import numpy as np
import pytest

import fastloss
from fastloss._registry import LOSSES
from conftest import all_cases

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


def _batched_cases():
    out = []
    for c in all_cases():
        args, kwargs = c.build(np.float64)
        x = args[0]
        if np.ndim(x) == 0 or x.shape[0] < 2:
            continue
        shape = np.shape(LOSSES[c.loss].function(*args, **kwargs, reduction="none",
                                                 backend="numpy"))
        if not shape or shape[0] != x.shape[0]:
            continue
        out.append(c)
    return out


def _lazy(args, n):
    """Batch arrays as Dask arrays in uneven chunks (and chunked along other axes too:
    those chunks are merged)."""
    out = []
    for a in args:
        if isinstance(a, np.ndarray) and a.ndim and a.shape[0] == n:
            out.append(da.from_array(a, chunks=(max(1, n // 3), *[max(1, s // 2)
                                                                 for s in a.shape[1:]])))
        else:
            out.append(a)
    return out


CASES = _batched_cases()


def test_most_losses_have_batched_cases():
    assert {c.loss for c in CASES} == set(LOSSES)


@pytest.mark.parametrize("case", CASES, ids=[f"{c.loss}-{c.id}" for c in CASES])
def test_dask_equals_in_memory(client, case):
    args, kwargs = case.build(np.float64)
    fn = LOSSES[case.loss].function
    lazy = _lazy(args, args[0].shape[0])
    for red in case.reductions:
        got = fn(*lazy, **kwargs, reduction=red, backend="numpy")
        assert isinstance(got, da.Array), "the result must stay lazy"
        expected = fn(*args, **kwargs, reduction=red, backend="numpy")
        value = got.compute()
        assert value.shape == expected.shape and value.dtype == expected.dtype
        np.testing.assert_allclose(value, expected, rtol=1e-12, atol=1e-300, equal_nan=True)


@pytest.mark.parametrize("case", [c for c in CASES if c.grad],
                         ids=[f"{c.loss}-{c.id}" for c in CASES if c.grad])
def test_dask_gradients_equal_in_memory(client, case):
    args, kwargs = case.build(np.float64)
    spec = LOSSES[case.loss]
    bound = dict(zip(spec.parameters, args))
    n = args[0].shape[0]
    wrt = tuple(a for a in spec.differentiable if isinstance(bound.get(a), np.ndarray)
                and bound[a].ndim and bound[a].shape[0] == n)
    lazy = _lazy(args, n)
    for red in [r for r in case.reductions if r in ("mean", "sum", "none", "batchmean")]:
        go = None
        if red == "none":
            shape = np.shape(spec.function(*args, **kwargs, reduction="none"))
            go = np.linspace(-1, 2, int(np.prod(shape))).reshape(shape)
        v, g = fastloss.value_and_grad(spec.function, argnums=wrt)(
            *lazy, **kwargs, reduction=red, grad_output=go, backend="numpy")
        v0, g0 = fastloss.value_and_grad(spec.function, argnums=wrt)(
            *args, **kwargs, reduction=red, grad_output=go, backend="numpy")
        assert isinstance(v, da.Array) and all(isinstance(a, da.Array) for a in g)
        np.testing.assert_allclose(v.compute(), v0, rtol=1e-12, atol=1e-300, equal_nan=True)
        for a, b in zip(g, g0):
            np.testing.assert_allclose(a.compute(), b, rtol=1e-12, atol=1e-300,
                                       equal_nan=True)


def test_compiled_kernels_in_workers_with_weights(client):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6000, 50)).astype(np.float32)
    t = rng.integers(0, 50, 6000)
    t[::11] = -100
    s = rng.uniform(0, 2, 6000)
    w = rng.uniform(0.5, 2, 50).astype(np.float32)
    dx, dt = da.from_array(x, chunks=(1000, 25)), da.from_array(t, chunks=1000)
    kw = dict(weight=w, label_smoothing=0.05)
    v, g = fastloss.value_and_grad(fastloss.cross_entropy)(dx, dt, sample_weight=s, **kw)
    v0, g0 = fastloss.value_and_grad(fastloss.cross_entropy)(x, t, sample_weight=s, **kw)
    assert g.chunks[0] == (1000,) * 6 and g.dtype == np.float32
    np.testing.assert_allclose(v.compute(), v0, rtol=1e-6)
    np.testing.assert_allclose(g.compute(), g0, rtol=1e-5, atol=1e-8)
    # each worker ran its kernels on one thread (no oversubscription), numba on TBB
    threads = client.run(lambda: fastloss.get_num_threads())
    assert set(threads.values()) == {1}, threads


def test_dask_errors_are_clear(client):
    x = da.zeros((10, 3), chunks=5)
    with pytest.raises(ValueError, match="out: not supported with Dask"):
        fastloss.value_and_grad(fastloss.mse_loss)(x, x, out=np.zeros((10, 3)))
    with pytest.raises(TypeError, match="sample_weight: a Dask array here"):
        fastloss.mse_loss(np.zeros(4), np.zeros(4), sample_weight=da.ones(4, chunks=2))
    with pytest.raises(ValueError, match="batch"):
        fastloss.cross_entropy(x, np.zeros(10, np.int64), sample_weight=da.ones(3, chunks=2))
