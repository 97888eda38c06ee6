"""sample_weight= (fastloss's extension): on every loss and case, against an oracle built
from the unweighted per-item losses, against scikit-learn where it computes the same
thing, and gradients against finite differences."""
import numpy as np
import pytest

import fastloss
from fastloss._registry import LOSSES
from conftest import all_cases
from helpers import diff_args

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _bound(name, args, kwargs):
    return dict(zip(LOSSES[name].parameters, args), **kwargs)


def expected_units(name, bound, reduction, n_items):
    """What each item adds to the unweighted "mean" denominator, written out per loss
    from the losses' documented rules (the oracle: independent of fastloss._weighted)."""
    x, t = bound.get("input"), bound.get("target")
    class_loss = name in ("nll_loss", "cross_entropy", "linear_cross_entropy")
    if class_loss and np.asarray(t).dtype.kind in "iu":
        t = np.asarray(t).reshape(-1)
        if name == "linear_cross_entropy":
            c = np.shape(bound["linear_weight"])[0]
        else:
            c = x.shape[0] if x.ndim == 1 else x.shape[1]
        w = np.ones(c) if bound.get("weight") is None else np.asarray(bound["weight"], float)
        ignore = bound.get("ignore_index", -100)
        ignore = -100 if ignore is None else ignore
        counted = t != ignore
        return np.where(counted, w[np.where(counted, t, 0)], 0.0)
    if name in ("l1_loss", "mse_loss") and bound.get("weight") is not None:
        return np.asarray(bound["weight"], float).reshape(-1)
    if name == "kl_div" and reduction == "batchmean":
        return np.full(n_items, x.shape[0] / n_items if n_items else 0.0)
    return np.ones(n_items)


def expected_item_scale(name, bound, reduction):
    """What "mean" scales each unreduced item by before its weighted mean: ctc_loss divides
    each sequence's loss by its target length (clamped to >= 1), as torch does."""
    if name == "ctc_loss" and reduction == "mean":
        return 1.0 / np.maximum(np.asarray(bound["target_lengths"], float).reshape(-1), 1)
    return 1.0


def weight_params():
    out = []
    for c in all_cases():
        for red in c.reductions:
            out.append(pytest.param(c, red, id=f"{c.loss}-{c.id}-{red}"))
    return out


@pytest.mark.parametrize("case,reduction", weight_params())
def test_sample_weight_matches_oracle(case, reduction):
    args, kwargs = case.build(np.float64)
    fn = LOSSES[case.loss].function
    items = np.asarray(fn(*args, **kwargs, reduction="none", backend="numpy"), np.float64)
    rng = np.random.default_rng(1)
    s = rng.uniform(0.1, 3.0, items.shape)
    got = np.asarray(fn(*args, **kwargs, reduction=reduction, sample_weight=s,
                        backend="numpy"))
    flat = items.reshape(-1)
    if reduction == "none":
        expected = s * items
    elif reduction == "sum" or (case.loss == "kl_div" and reduction == "batchmean"
                                and np.ndim(args[0]) == 0):
        expected = np.dot(s.reshape(-1), flat)
    else:
        bound = _bound(case.loss, args, kwargs)
        units = expected_units(case.loss, bound, reduction, flat.size)
        scaled = flat * expected_item_scale(case.loss, bound, reduction)
        with np.errstate(invalid="ignore", divide="ignore"):
            expected = np.dot(s.reshape(-1), scaled) / np.dot(s.reshape(-1), units)
    assert got.shape == np.shape(expected)
    assert got.dtype == items.dtype
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-300, equal_nan=True)


@pytest.mark.parametrize("case,reduction", weight_params())
def test_unit_sample_weight_is_the_unweighted_call(case, reduction):
    args, kwargs = case.build(np.float64)
    fn = LOSSES[case.loss].function
    plain = np.asarray(fn(*args, **kwargs, reduction=reduction, backend="numpy"))
    ones = np.ones(np.shape(fn(*args, **kwargs, reduction="none", backend="numpy")))
    got = np.asarray(fn(*args, **kwargs, reduction=reduction, sample_weight=ones,
                        backend="numpy"))
    np.testing.assert_allclose(got, plain, rtol=1e-12, atol=1e-300, equal_nan=True)


def _fd_cases():
    seen, out = set(), []
    for c in all_cases():
        if c.fd and c.grad and c.loss not in seen:
            seen.add(c.loss)
            for red in ("mean", "sum", "none"):
                if red in c.reductions:
                    out.append(pytest.param(c, red, id=f"{c.loss}-{c.id}-{red}"))
    return out


@pytest.mark.parametrize("case,reduction", _fd_cases())
def test_weighted_gradient_matches_finite_differences(case, reduction):
    """d/dx of the weighted loss (times grad_output) against central differences, for
    the first smooth case of every loss."""
    args, kwargs = case.build(np.float64)
    kwargs = {**kwargs, **dict(case.fd_kwargs)}   # ctc_loss: exact_grad, the true derivative
    fn = LOSSES[case.loss].function
    wrt = diff_args(case.loss, args, kwargs)
    shape = np.shape(fn(*args, **kwargs, reduction="none", backend="numpy"))
    rng = np.random.default_rng(2)
    s = rng.uniform(0.1, 3.0, shape)
    go = rng.uniform(-1, 1, shape) if reduction == "none" else 0.75
    value, grads = fastloss.value_and_grad(fn, argnums=wrt)(
        *args, **kwargs, reduction=reduction, grad_output=go, sample_weight=s,
        backend="numpy")
    np.testing.assert_allclose(value, fn(*args, **kwargs, reduction=reduction,
                                         sample_weight=s, backend="numpy"), rtol=1e-12)
    bound = _bound(case.loss, args, kwargs)

    def f(name, v):
        b = dict(bound, **{name: v})
        out = fn(**b, reduction=reduction, sample_weight=s, backend="numpy")
        return float(np.sum(np.asarray(out) * go))

    for name, grad in zip(wrt, grads):
        x0 = np.array(bound[name], np.float64)
        numeric = np.zeros_like(x0).reshape(-1)
        for i in range(x0.size):
            h = 1e-6 * max(1.0, abs(x0.reshape(-1)[i]))
            up, down = x0.copy().reshape(-1), x0.copy().reshape(-1)
            up[i] += h
            down[i] -= h
            numeric[i] = (f(name, up.reshape(x0.shape)) - f(name, down.reshape(x0.shape))) / (2 * h)
        np.testing.assert_allclose(grad, numeric.reshape(x0.shape), rtol=1e-5, atol=1e-6,
                                   err_msg=f"d loss / d {name}")


@pytest.mark.parametrize("backend", ["auto", "numba", "numpy"])
def test_compiled_backends_weight_like_the_reference(backend):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((40, 7)).astype(np.float32)
    t = rng.integers(0, 7, 40)
    t[::5] = -100
    w = rng.uniform(0.5, 2, 7).astype(np.float32)
    s = rng.uniform(0, 2, 40)
    kw = dict(weight=w, label_smoothing=0.1, sample_weight=s)
    ref_v, ref_g = fastloss.value_and_grad(fastloss.cross_entropy)(x, t, backend="numpy", **kw)
    v, g = fastloss.value_and_grad(fastloss.cross_entropy)(x, t, backend=backend, **kw)
    np.testing.assert_allclose(v, ref_v, rtol=2e-6)
    np.testing.assert_allclose(g, ref_g, rtol=2e-5, atol=1e-7)
    assert v.dtype == np.float32 and g.dtype == np.float32


def test_matches_scikit_learn_log_loss():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(4)
    x = rng.standard_normal((300, 5)) * 2
    y = rng.integers(0, 5, 300)
    s = rng.uniform(0, 4, 300)
    p = np.exp(x - x.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    expected = metrics.log_loss(y, p, sample_weight=s, labels=range(5))
    np.testing.assert_allclose(fastloss.cross_entropy(x, y, sample_weight=s), expected,
                               rtol=1e-12)
    np.testing.assert_allclose(fastloss.nll_loss(np.log(p), y, sample_weight=s), expected,
                               rtol=1e-12)
    # binary: log_loss on P(y=1)
    q = 1 / (1 + np.exp(-x[:, 0]))
    yb = (y > 2).astype(float)
    expected = metrics.log_loss(yb, q, sample_weight=s)
    np.testing.assert_allclose(fastloss.binary_cross_entropy(q, yb, sample_weight=s),
                               expected, rtol=1e-10)
    np.testing.assert_allclose(
        fastloss.binary_cross_entropy_with_logits(x[:, 0], yb, sample_weight=s), expected,
        rtol=1e-10)
    # regression metrics with sample_weight
    a, b = rng.standard_normal(300), rng.standard_normal(300)
    np.testing.assert_allclose(fastloss.mse_loss(a, b, sample_weight=s),
                               metrics.mean_squared_error(b, a, sample_weight=s), rtol=1e-12)
    np.testing.assert_allclose(fastloss.l1_loss(a, b, sample_weight=s),
                               metrics.mean_absolute_error(b, a, sample_weight=s), rtol=1e-12)


def test_class_weights_and_ignored_items_combine():
    """sum_i s_i w_{y_i} l_i / sum_i s_i w_{y_i}, ignored items zero in both (by hand)."""
    logp = np.log(np.array([[0.5, 0.5], [0.25, 0.75], [0.9, 0.1]]))
    t = np.array([0, 1, -100])
    w = np.array([2.0, 3.0])
    s = np.array([1.0, 4.0, 100.0])
    expected = (1 * 2 * np.log(2) + 4 * 3 * -np.log(0.75)) / (1 * 2 + 4 * 3)
    np.testing.assert_allclose(fastloss.nll_loss(logp, t, w, sample_weight=s), expected,
                               rtol=1e-14)


def test_broadcast_sample_weight_per_row():
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((6, 4)), rng.standard_normal((6, 4))
    s = rng.uniform(0, 2, (6, 1))
    np.testing.assert_allclose(fastloss.mse_loss(x, y, sample_weight=s),
                               np.sum(s * (x - y) ** 2) / (4 * s.sum()), rtol=1e-13)


def test_bad_sample_weight_raises_naming_it():
    x, t = np.zeros((4, 3)), np.zeros(4, np.int64)
    with pytest.raises(ValueError, match="sample_weight: expected a shape that broadcasts"):
        fastloss.cross_entropy(x, t, sample_weight=np.ones(5))
    with pytest.raises(ValueError, match="sample_weight"):
        fastloss.value_and_grad(fastloss.cross_entropy)(x, t, sample_weight=np.ones((4, 3)))
    with pytest.raises(TypeError, match="sample_weight"):
        fastloss.mse_loss(x, x, sample_weight=np.array(["a"] * 12).reshape(4, 3))
    with pytest.raises(IndexError, match="target"):
        fastloss.value_and_grad(fastloss.cross_entropy)(x, t + 7, sample_weight=np.ones(4))


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_every_loss_documents_sample_weight(name):
    doc = LOSSES[name].function.__doc__
    assert "sample_weight : array_like" in doc
    assert doc.index("sample_weight : array_like") < doc.index("Examples")


def test_loss_classes_take_sample_weight():
    rng = np.random.default_rng(6)
    x, t, s = rng.standard_normal((9, 3)), rng.integers(0, 3, 9), rng.uniform(0, 2, 9)
    loss = fastloss.CrossEntropyLoss(label_smoothing=0.2)
    expected = fastloss.cross_entropy(x, t, label_smoothing=0.2, sample_weight=s)
    np.testing.assert_allclose(loss(x, t, sample_weight=s), expected, rtol=1e-15)
    v, g = loss.value_and_grad(x, t, sample_weight=s)
    v2, g2 = fastloss.value_and_grad(fastloss.cross_entropy)(x, t, label_smoothing=0.2,
                                                            sample_weight=s)
    np.testing.assert_allclose(v, expected, rtol=1e-15)
    np.testing.assert_allclose(g, g2, rtol=1e-15)
    assert not np.allclose(v, loss(x, t))
