"""fastloss.jax: the losses as JAX functions under jit, grad and vmap (registry-driven),
checked against optax where it has the same loss and against jax.grad of a jax.numpy
reference elsewhere."""
import numpy as np
import pytest

jax = pytest.importorskip("jax")
fj = pytest.importorskip("fastloss.jax")
import jax.numpy as jnp  # noqa: E402

import fastloss  # noqa: E402
from fastloss._registry import LOSSES  # noqa: E402
from conftest import all_cases  # noqa: E402
from helpers import (diff_args, first_weighted_cases, grad_output_for,  # noqa: E402
                     with_reductions)

try:
    import optax
except ImportError:
    optax = None


def test_every_loss_is_bridged_or_excluded():
    missing = [n for n in LOSSES if n not in fj.BRIDGED and n not in fj.EXCLUDED]
    assert not missing, (f"not bridged to JAX: {missing}; bridge them or add them to "
                         "fastloss.jax.EXCLUDED with the reason")


def _float32_call(case, reduction):
    """(args, kwargs with the reduction, the loss's function) of a case in float32, or a
    skip for subnormal inputs (XLA flushes them)."""
    args, kwargs = case.build(np.float32)
    if any(_has_subnormal(a) for a in (*args, *kwargs.values())):
        pytest.skip("XLA's CPU threads flush subnormals to zero, the host callback too")
    return args, {**kwargs, "reduction": reduction}, LOSSES[case.loss].function


def _check_jit_and_grad(case, reduction, weighted):
    """The JAX function under jit and jit(grad) against fastloss on the same float32
    arrays, unweighted or with fastloss's sample_weight= (a traced argument too, whose
    cotangent must be zero)."""
    args, kwargs, fn = _float32_call(case, reduction)
    s = None
    if weighted:
        shape = np.shape(fn(*args, **{**kwargs, "reduction": "none"}, backend="numpy"))
        s = np.random.default_rng(5).uniform(0.0, 2.0, shape).astype(np.float32)
    weights = {} if s is None else {"sample_weight": s}
    expected = np.asarray(fn(*args, **kwargs, **weights, backend="numpy"))
    names = LOSSES[case.loss].parameters
    bound = dict(zip(names, args), **kwargs)
    arrays = {n: v for n, v in bound.items() if isinstance(v, np.ndarray)}
    others = {n: v for n, v in bound.items() if n not in arrays}
    jfn = getattr(fj, case.loss)
    w0 = None if s is None else jnp.asarray(s)

    def f(arrs, w):
        return jfn(**arrs, **others, **({} if w is None else {"sample_weight": w}),
                   backend="numpy")
    if (reduction == "none" and case.loss == "ctc_loss" and np.ndim(bound["targets"]) == 1
            and np.ndim(bound["log_probs"]) == 3):
        # documented limit: concatenated targets are only checked against the lengths'
        # values, which a tracer does not have, so the unreduced shape is not inferred
        with pytest.raises(NotImplementedError, match="reduction='none' cannot be inferred"):
            jax.jit(f)({n: jnp.asarray(v) for n, v in arrays.items()}, w0)
        return
    got = jax.jit(f)({n: jnp.asarray(v) for n, v in arrays.items()}, w0)
    np.testing.assert_allclose(np.asarray(got), expected.astype(got.dtype), rtol=1e-6,
                               atol=1e-6, equal_nan=True)
    wrt = diff_args(case.loss, args, kwargs) if case.grad else ()
    if not wrt:
        return
    go = grad_output_for(expected.shape, reduction, np.float32)
    _, want = fastloss.value_and_grad(fn, argnums=wrt)(*args, **kwargs, grad_output=go,
                                                        **weights, backend="numpy")
    consts = {n: jnp.asarray(v) for n, v in arrays.items() if n not in wrt}
    diff = {n: jnp.asarray(arrays[n]) for n in wrt}
    if s is None:
        grads = jax.jit(jax.grad(lambda d: jnp.sum(f({**consts, **d}, None) * go)))(diff)
    else:
        grads, g_s = jax.jit(jax.grad(lambda d, w: jnp.sum(f({**consts, **d}, w) * go),
                                      argnums=(0, 1)))(diff, w0)
        assert not np.any(np.asarray(g_s))
    for n, w in zip(wrt, want):
        np.testing.assert_allclose(np.asarray(grads[n]), w, rtol=2e-5, atol=2e-6,
                                   equal_nan=True, err_msg=n)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("case,reduction", with_reductions(
    [c for c in all_cases() if c.loss in fj.BRIDGED], ["mean", "none"]))
def test_jit_grad_match_fastloss_on_arrays(case, reduction):
    _check_jit_and_grad(case, reduction, weighted=False)

def _has_subnormal(a):
    if not (isinstance(a, np.ndarray) and a.dtype.kind == "f"):
        return False
    m = np.abs(a)
    return bool(np.any((m > 0) & (m < np.finfo(a.dtype).tiny)))


def test_subnormals_are_flushed_inside_jit_as_documented():
    x = np.array([1e-44, 0.5], np.float32)
    y = np.array([1.0, 0.0], np.float32)
    eager = fj.binary_cross_entropy(x, y, reduction="none")
    jitted = jax.jit(lambda a, b: fj.binary_cross_entropy(a, b, reduction="none"))(x, y)
    np.testing.assert_allclose(eager, fastloss.binary_cross_entropy(x, y, reduction="none"))
    assert float(jitted[0]) == 100.0     # log(0) clamped at -100: the input was flushed
    assert "subnormal" in fj.__doc__


def _rng(seed=0):
    return np.random.default_rng(seed)


def _check(ours, ref, *arrays, rtol=2e-5, atol=1e-6):
    """Value, gradient of every array argument, under jit; ours vs the reference."""
    np.testing.assert_allclose(jax.jit(ours)(*arrays), ref(*arrays), rtol=rtol, atol=atol)
    argnums = tuple(range(len(arrays)))
    g1 = jax.jit(jax.grad(lambda *a: jnp.sum(jnp.sin(ours(*a))), argnums))(*arrays)
    g2 = jax.grad(lambda *a: jnp.sum(jnp.sin(ref(*a))), argnums)(*arrays)
    for a, b in zip(g1, g2):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


X = jnp.asarray(_rng(0).standard_normal((12, 7)), jnp.float32)
Y = jnp.asarray(_rng(1).standard_normal((12, 7)), jnp.float32)
LABELS = jnp.asarray(_rng(2).integers(0, 7, 12))
SIGNS = jnp.asarray(np.where(_rng(3).uniform(size=12) < 0.5, -1.0, 1.0), jnp.float32)
PROBS = jax.nn.softmax(Y, axis=1)


@pytest.mark.skipif(optax is None, reason="optax not installed")
@pytest.mark.parametrize("red", ["none", "mean"])
def test_against_optax(red):
    mean = (lambda v: v) if red == "none" else jnp.mean
    _check(lambda x: fj.cross_entropy(x, LABELS, reduction=red),
           lambda x: mean(optax.losses.softmax_cross_entropy_with_integer_labels(x, LABELS)), X)
    # probability targets are constants here (their cotangent is zero): input only
    _check(lambda x: fj.cross_entropy(x, PROBS, reduction=red),
           lambda x: mean(optax.losses.softmax_cross_entropy(x, PROBS)), X)
    _check(lambda x: fj.binary_cross_entropy_with_logits(x, jax.nn.sigmoid(Y), reduction=red),
           lambda x: mean(optax.losses.sigmoid_binary_cross_entropy(x, jax.nn.sigmoid(Y))), X)
    _check(lambda x, y: fj.huber_loss(x, y, reduction=red, delta=0.7),
           lambda x, y: mean(optax.losses.huber_loss(x, y, delta=0.7)), X, Y)
    _check(lambda x, y: 0.5 * fj.mse_loss(x, y, reduction=red),
           lambda x, y: mean(optax.losses.l2_loss(x, y)), X, Y)
    x1 = X[:, 0]
    _check(lambda x: fj.margin_ranking_loss(x, jnp.zeros_like(x), SIGNS, margin=1.0,
                                            reduction=red),
           lambda x: mean(optax.losses.hinge_loss(x, SIGNS)), x1)
    logp = jax.nn.log_softmax(X, axis=1)
    _check(lambda lp: fj.kl_div(lp, PROBS, reduction="none").sum(-1),
           lambda lp: optax.losses.kl_divergence(lp, PROBS), logp)
    _check(lambda lp: fj.kl_div(lp, jnp.log(PROBS), reduction="none", log_target=True).sum(-1),
           lambda lp: optax.losses.kl_divergence_with_log_targets(lp, jnp.log(PROBS)), logp)
    _check(lambda a, b: fj.cosine_embedding_loss(a, b, jnp.ones(12), reduction=red),
           lambda a, b: mean(optax.losses.cosine_distance(a, b)), X, Y, rtol=1e-4)


# jax.numpy references for the losses optax lacks (torch's definitions)
def _nll(x, t):
    return -jnp.take_along_axis(x, t[:, None], 1)[:, 0]


def _smooth_l1(x, y, beta):
    d = jnp.abs(x - y)
    return jnp.where(d < beta, 0.5 * d ** 2 / beta, d - 0.5 * beta)


def _poisson(x, y):
    return jnp.exp(x) - y * x


def _gauss(x, y, v):
    return 0.5 * (jnp.log(v) + (x - y) ** 2 / v)


def _hinge_emb(x, y, m):
    return jnp.where(y == 1, x, jnp.maximum(0.0, m - x))


def _soft_margin(x, y):
    return jnp.log1p(jnp.exp(-y * x))


def _multi_margin(x, t, margin):
    xy = jnp.take_along_axis(x, t[:, None], 1)
    h = jnp.maximum(0.0, margin - xy + x)
    return (h.sum(1) - margin) / x.shape[1]   # the j = y term is exactly `margin`


def _mlsm(x, y):
    return -(y * jax.nn.log_sigmoid(x) + (1 - y) * jax.nn.log_sigmoid(-x)).mean(-1)


def _bce(p, y):
    return -(y * jnp.log(p) + (1 - y) * jnp.log1p(-p))


def _triplet(a, p, n, margin, eps):
    d = lambda u, v: jnp.sqrt(jnp.sum((u - v + eps) ** 2, -1))   # noqa: E731
    return jnp.maximum(0.0, margin + d(a, p) - d(a, n))


def test_against_jax_numpy_references():
    pos = jnp.abs(Y) + 0.5
    prob = jax.nn.sigmoid(X)
    target01 = (Y > 0).astype(jnp.float32)
    _check(lambda x: fj.nll_loss(x, LABELS, reduction="none"), lambda x: _nll(x, LABELS), X)
    _check(lambda x, y: fj.l1_loss(x, y, reduction="none"), lambda x, y: jnp.abs(x - y), X, Y)
    _check(lambda x, y: fj.smooth_l1_loss(x, y, reduction="none", beta=0.5),
           lambda x, y: _smooth_l1(x, y, 0.5), X, Y)
    _check(lambda x: fj.poisson_nll_loss(x, pos, reduction="none"),
           lambda x: _poisson(x, pos), X)
    _check(lambda x, v: fj.gaussian_nll_loss(x, Y, v, reduction="none"),
           lambda x, v: _gauss(x, Y, v), X, pos)
    _check(lambda x: fj.hinge_embedding_loss(x, SIGNS, margin=0.8, reduction="none"),
           lambda x: _hinge_emb(x, SIGNS, 0.8), X[:, 0])
    _check(lambda x: fj.soft_margin_loss(x, SIGNS, reduction="none"),
           lambda x: _soft_margin(x, SIGNS), X[:, 0])
    _check(lambda x: fj.multi_margin_loss(x, LABELS, margin=0.6, reduction="none"),
           lambda x: _multi_margin(x, LABELS, 0.6), X)
    _check(lambda x: fj.multilabel_soft_margin_loss(x, target01, reduction="none"),
           lambda x: _mlsm(x, target01), X)
    _check(lambda p: fj.binary_cross_entropy(p, target01, reduction="none"),
           lambda p: _bce(p, target01), prob, rtol=1e-4)
    _check(lambda a, p, n: fj.triplet_margin_loss(a, p, n, margin=2.0, reduction="none"),
           lambda a, p, n: _triplet(a, p, n, 2.0, 1e-6), X, Y, X[::-1])


def test_vmap_maps_the_loss_over_a_new_axis():
    ref = jax.vmap(lambda x, t: -jnp.take_along_axis(jax.nn.log_softmax(x), t[:, None],
                                                      1).mean())
    xb = jnp.stack([X, 2 * X, -X])
    tb = jnp.stack([LABELS, LABELS, (LABELS + 1) % 7])
    got = jax.vmap(fj.cross_entropy)(xb, tb)
    np.testing.assert_allclose(got, ref(xb, tb), rtol=2e-6)
    g = jax.jit(jax.vmap(jax.grad(fj.cross_entropy)))(xb, tb)
    g_ref = jax.vmap(jax.grad(lambda x, t: -jnp.take_along_axis(
        jax.nn.log_softmax(x), t[:, None], 1).mean()))(xb, tb)
    np.testing.assert_allclose(g, g_ref, rtol=1e-5, atol=1e-7)
    per = jax.vmap(lambda x, t: fj.cross_entropy(x, t, reduction="none"))(xb, tb)
    assert per.shape == (3, 12)


def test_target_gradient_and_constants():
    gx, gy = jax.grad(lambda x, y: fj.mse_loss(x, y), argnums=(0, 1))(X, Y)
    np.testing.assert_allclose(gy, -gx)
    # a target fastloss does not differentiate is a constant (zero cotangent)
    gp = jax.grad(lambda p: fj.cross_entropy(X, p))(PROBS)
    assert not np.any(np.asarray(gp))


def test_low_precision_and_static_arguments():
    xb = X.astype(jnp.bfloat16)
    out = jax.jit(fj.cross_entropy)(xb, LABELS)
    assert out.dtype == jnp.bfloat16
    g = jax.grad(lambda x: fj.cross_entropy(x, LABELS).astype(jnp.float32))(xb)
    assert g.dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(out, np.float32),
                               float(fastloss.cross_entropy(np.asarray(xb, np.float32),
                                                            np.asarray(LABELS))), rtol=1e-2)
    # a Python number var is static; a different label_smoothing retraces
    v1 = fj.gaussian_nll_loss(X, Y, 0.5)
    np.testing.assert_allclose(v1, fastloss.gaussian_nll_loss(np.asarray(X), np.asarray(Y), 0.5),
                               rtol=1e-6)
    assert float(fj.cross_entropy(X, LABELS, label_smoothing=0.2)) != float(
        fj.cross_entropy(X, LABELS))


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="reduction"):
        fj.mse_loss(X, Y, reduction="avg")
    with pytest.raises(TypeError, match="unexpected keyword"):
        fj.mse_loss(X, Y, size_average=True)
    with pytest.raises(Exception, match="class index 9"):
        jax.block_until_ready(fj.cross_entropy(X, LABELS.at[0].set(9)))


def test_without_jax_the_import_error_says_what_to_install(tmp_path):
    import os
    import subprocess
    import sys
    (tmp_path / "jax").mkdir()
    (tmp_path / "jax" / "__init__.py").write_text("raise ImportError('no jax here')\n")
    code = ("import fastloss\n"
            "try:\n    import fastloss.jax\nexcept ImportError as e:\n    print(e)\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), *sys.path]))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout
    assert "pip install jax" in out


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("case,reduction", with_reductions(first_weighted_cases(fj.BRIDGED),
                                                           ["mean", "none"]))
def test_sample_weight_inside_jit_and_grad(case, reduction):
    """fastloss's sample_weight= through the JAX bridge: fastloss's weighted value and
    gradients, under jit and grad (the weights get a zero cotangent)."""
    _check_jit_and_grad(case, reduction, weighted=True)
