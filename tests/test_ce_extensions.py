"""fastloss's own cross-entropy keywords, z_loss and softcap, on cross_entropy and
linear_cross_entropy; linear_cross_entropy's chunking, memory and must-raise cases."""
import tracemalloc

import numpy as np
import pytest

import fastloss
from fastloss import _dispatch

BACKENDS = [b for b in ("numpy", "numba") if _dispatch._BACKENDS[b].available]
CE, LCE = fastloss.cross_entropy, fastloss.linear_cross_entropy
RNG = np.random.default_rng(11)


def _class_case(n=9, c=6, dtype=np.float64):
    x = (RNG.standard_normal((n, c)) * 3).astype(dtype)
    t = RNG.integers(0, c, n)
    t[2] = -100
    w = RNG.uniform(0.5, 2.0, c).astype(dtype)
    return x, t, w


def _composition(x, t, w, eps, z_loss, cap, probs=False):
    """The same loss in plain NumPy float64: softcap, log-softmax, the smoothed
    (weighted) cross-entropy plus z_loss * w_y * lse^2, "mean" over the counted weight."""
    x = x.astype(np.float64)
    z = cap * np.tanh(x / cap) if cap else x
    lse = np.log(np.exp(z - z.max(1, keepdims=True)).sum(1)) + z.max(1)
    logp = z - lse[:, None]
    c = x.shape[1]
    if probs:
        p = t * (1 - eps) + eps / c
        return -(p * w * logp).sum(1) + z_loss * lse ** 2, x.shape[0]
    counted = t != -100
    tt = np.where(counted, t, 0)
    wy = w[tt]
    items = ((1 - eps) * -wy * logp[np.arange(len(t)), tt] - eps / c * (w * logp).sum(1)
             + z_loss * wy * lse ** 2)
    return np.where(counted, items, 0), wy[counted].sum()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("z_loss,softcap", [(1e-2, None), (0.0, 2.5), (0.3, 1.5)])
@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_cross_entropy_extensions_match_their_definition(backend, z_loss, softcap, eps):
    x, t, w = _class_case()
    items, denom = _composition(x, t, w, eps, z_loss, softcap or 0)
    kw = dict(weight=w, label_smoothing=eps, z_loss=z_loss, softcap=softcap, backend=backend)
    np.testing.assert_allclose(CE(x, t, reduction="none", **kw), items, rtol=1e-12)
    np.testing.assert_allclose(CE(x, t, **kw), items.sum() / denom, rtol=1e-12)
    p = RNG.uniform(size=x.shape)
    p /= p.sum(1, keepdims=True)
    items_p, n = _composition(x, p, w, eps, z_loss, softcap or 0, probs=True)
    np.testing.assert_allclose(CE(x, p, reduction="none", **kw), items_p, rtol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("probs", [False, True])
def test_extension_gradients_match_finite_differences(backend, probs):
    x, t, w = _class_case(n=5, c=4)
    if probs:
        t = RNG.uniform(size=x.shape)
        t /= t.sum(1, keepdims=True)
    kw = dict(weight=w, label_smoothing=0.1, z_loss=0.2, softcap=2.0, reduction="sum")
    _, g = fastloss.value_and_grad(CE)(x, t, backend=backend, **kw)
    num = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[i] += 1e-6
        down[i] -= 1e-6
        num[i] = (float(CE(up, t, **kw)) - float(CE(down, t, **kw))) / 2e-6
    np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("backend", ["auto", *BACKENDS])
def test_defaults_change_nothing(backend):
    x, t, w = _class_case(n=40, c=7, dtype=np.float32)
    plain = fastloss.value_and_grad(CE)(x, t, weight=w, backend=backend)
    same = fastloss.value_and_grad(CE)(x, t, weight=w, z_loss=0.0, softcap=None,
                                       backend=backend)
    np.testing.assert_array_equal(plain[0], same[0])
    np.testing.assert_array_equal(plain[1], same[1])
    assert CE.__wrapped__(x, t, z_loss=0.0).kernel == "ce_class"


def test_cross_entropy_extensions_match_torch_composition():
    torch = pytest.importorskip("torch")
    x, t, w = _class_case(n=12, c=5)
    for z_loss, cap in ((0.05, None), (0.0, 3.0), (0.1, 2.0)):
        tx = torch.from_numpy(x.copy()).requires_grad_()
        z = cap * torch.tanh(tx / cap) if cap else tx
        tt = torch.from_numpy(t)
        ce = torch.nn.functional.cross_entropy(z, tt, weight=torch.from_numpy(w),
                                               reduction="none", label_smoothing=0.1)
        counted = tt != -100
        wy = torch.from_numpy(w)[tt.clamp(min=0)]
        items = ce + z_loss * torch.where(counted, wy, 0) * torch.logsumexp(z, 1) ** 2
        loss = items.sum() / torch.where(counted, wy, 0).sum()
        loss.backward()
        v, g = fastloss.value_and_grad(CE)(x, t, weight=w, label_smoothing=0.1, z_loss=z_loss,
                                           softcap=cap)
        np.testing.assert_allclose(v, loss.detach().numpy(), rtol=1e-12)
        np.testing.assert_allclose(g, tx.grad.numpy(), rtol=1e-10, atol=1e-13)


def test_z_loss_matches_optax_composition():
    optax = pytest.importorskip("optax")
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    x, t, _ = _class_case(n=10, c=6, dtype=np.float32)
    t[2] = 1

    def f(logits):
        ce = optax.losses.softmax_cross_entropy_with_integer_labels(logits, jnp.asarray(t))
        return jnp.mean(ce + 0.1 * jax.nn.logsumexp(logits, axis=-1) ** 2)
    ref, ref_g = jax.value_and_grad(f)(jnp.asarray(x))
    v, g = fastloss.value_and_grad(CE)(x, t, z_loss=0.1)
    np.testing.assert_allclose(v, np.asarray(ref), rtol=2e-6)
    np.testing.assert_allclose(g, np.asarray(ref_g), rtol=2e-5, atol=2e-7)


def _lin(n=33, d=7, c=11, dtype=np.float64):
    x = RNG.standard_normal((n, d)).astype(dtype)
    wt = RNG.standard_normal((c, d)).astype(dtype)
    b = RNG.standard_normal(c).astype(dtype)
    t = RNG.integers(0, c, n)
    t[::5] = -100
    return x, wt, b, t


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("z_loss,softcap", [(0.0, None), (0.05, None), (0.1, 2.0)])
def test_linear_cross_entropy_is_cross_entropy_of_the_logits(backend, z_loss, softcap):
    x, wt, b, t = _lin()
    kw = dict(z_loss=z_loss, softcap=softcap, label_smoothing=0.1)
    vg = fastloss.value_and_grad(LCE, argnums=(0, 1, "linear_bias"))
    v, (gx, gw, gb) = vg(x, wt, t, linear_bias=b, backend=backend, **kw)
    logits = x @ wt.T + b
    ref, gz = fastloss.value_and_grad(CE)(logits, t, backend="numpy", **kw)
    np.testing.assert_allclose(v, ref, rtol=1e-12)
    np.testing.assert_allclose(gx, gz @ wt, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(gw, gz.T @ x, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(gb, gz.sum(0), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("reduction", ["none", "mean"])
def test_chunk_size_does_not_change_the_result(backend, reduction):
    x, wt, b, t = _lin(dtype=np.float64)
    vg = fastloss.value_and_grad(LCE, argnums=(0, 1, "linear_bias"))
    base = vg(x, wt, t, linear_bias=b, reduction=reduction, backend=backend)
    for chunk in (1, 4, 32, 33, 1000):
        v, g = vg(x, wt, t, linear_bias=b, reduction=reduction, chunk_size=chunk,
                  backend=backend)
        np.testing.assert_allclose(v, base[0], rtol=1e-13)
        for a, e in zip(g, base[1]):
            np.testing.assert_allclose(a, e, rtol=1e-12, atol=1e-15)


def test_torch_options_give_the_chunk_size():
    torch = pytest.importorskip("torch")
    x, wt, b, t = _lin()
    opts = torch.nn.LinearCrossEntropyOptions(batch_chunk_size=4)
    assert LCE.__wrapped__(x, wt, t, options=opts).params[-1] == 4
    np.testing.assert_allclose(LCE(x, wt, t, options=opts), LCE(x, wt, t), rtol=1e-13)


def test_chunk_rows_follow_the_memory_budget():
    from fastloss._numba.linear import MEMORY_BUDGET, MIN_CHUNK, chunk_rows
    assert chunk_rows(2048, 1000, 1, 4, 0) == 2048            # all logits fit
    rows = chunk_rows(2048, 128000, 1, 4, 0)
    assert rows * 128000 * 4 <= MEMORY_BUDGET and rows >= MIN_CHUNK
    assert chunk_rows(2048, 10 ** 7, 1, 4, 0) == MIN_CHUNK
    assert chunk_rows(100, 128000, 1, 4, 7) == 7


@pytest.mark.skipif(not _dispatch._BACKENDS["numba"].available, reason="needs numba")
def test_linear_cross_entropy_never_holds_all_the_logits():
    n, d, c, chunk = 4096, 16, 2000, 256
    x = RNG.standard_normal((n, d)).astype(np.float32)
    wt = RNG.standard_normal((c, d)).astype(np.float32)
    t = RNG.integers(0, c, n)
    gx, gw = np.empty_like(x), np.empty_like(wt)
    vg = fastloss.value_and_grad(LCE, argnums=(0, 1))
    vg(x, wt, t, chunk_size=chunk, out=(gx, gw), backend="numba")     # compile first
    tracemalloc.start()
    vg(x, wt, t, chunk_size=chunk, out=(gx, gw), backend="numba")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    all_logits = n * c * 4
    one_chunk = chunk * c * 4
    assert peak < one_chunk + wt.nbytes + 4 * n * 8 + (1 << 20), (peak, all_logits)
    assert peak < all_logits / 4


X, W, B, T = _lin()
LCE_RAISES = [
    (dict(input=X[None]), ValueError, "input"),
    (dict(linear_weight=W[0]), ValueError, "linear_weight"),
    (dict(linear_weight=W[:, :5]), ValueError, "in_features"),
    (dict(linear_bias=B[:5]), ValueError, "linear_bias"),
    (dict(input=X[0], linear_weight=W.reshape(11, 1, 7), target=T[:1]), ValueError, "batched"),
    (dict(target=np.zeros((33, 11), np.int64)), TypeError, "target"),
    (dict(target=np.full((33, 11), 0.1), ignore_index=0), ValueError, "ignore_index"),
    (dict(target=T[:5]), ValueError, "target"),
    (dict(target=T + 11), IndexError, "target"),
    (dict(label_smoothing=2.0), ValueError, "label_smoothing"),
    (dict(weight=np.ones(3)), ValueError, "weight"),
    (dict(z_loss=-1.0), ValueError, "z_loss"),
    (dict(softcap=0.0), ValueError, "softcap"),
    (dict(chunk_size=0), ValueError, "chunk_size"),
    (dict(reduction="batchmean"), ValueError, "reduction"),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("change,error,match", LCE_RAISES,
                         ids=[f"{m}-{i}" for i, (_, _, m) in enumerate(LCE_RAISES)])
def test_linear_cross_entropy_bad_input_raises(backend, change, error, match):
    call = dict(input=X, linear_weight=W, target=T)
    call.update(change)
    with pytest.raises(error, match=match):
        LCE(**call, backend=backend)


def test_cross_entropy_extension_errors():
    x, t, _ = _class_case()
    with pytest.raises(ValueError, match="z_loss"):
        CE(x, t, z_loss=-0.1)
    with pytest.raises(ValueError, match="softcap"):
        CE(x, t, softcap=-2.0)
    with pytest.raises(TypeError, match="softcap"):
        CE(x, t, softcap="big")
