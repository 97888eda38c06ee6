"""Known values of the margin and embedding losses where the torch comparison cannot
speak: deliberate deviations (soft margin's overflow), results PyTorch leaves
uninitialised (empty batches), and inputs torch refuses but fastloss accepts."""
import numpy as np
import pytest

import fastloss as F


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_soft_margin_does_not_overflow(dtype):
    # PyTorch's log1p(exp(z)) is inf here (and its gradient NaN); the loss is z itself.
    x = np.array([-1e4, -100.0, 1000.0], dtype)
    y = np.array([1.0, 1.0, -1.0], dtype)
    loss, g = F.value_and_grad(F.soft_margin_loss)(x, y, reduction="none")
    np.testing.assert_allclose(loss, [1e4, 100.0, 1000.0], rtol=1e-6)
    np.testing.assert_allclose(g, [-1.0, -1.0, 1.0], rtol=1e-6)
    assert loss.dtype == g.dtype == dtype


@pytest.mark.parametrize("call", [
    lambda r: F.multi_margin_loss(np.zeros((0, 4)), np.zeros(0, np.int64), reduction=r),
    lambda r: F.multilabel_margin_loss(np.zeros((0, 4)), np.zeros((0, 4), np.int64),
                                       reduction=r),
])
def test_empty_batch_mean_is_nan_and_sum_is_zero(call):
    assert np.isnan(call("mean"))
    assert float(call("sum")) == 0.0
    assert call("none").shape == (0,)


@pytest.mark.parametrize("tdtype", [np.int32, np.uint8, np.int16, np.uint64])
def test_any_integer_class_indices(tdtype):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 4))
    t = np.array([0, 3, 1, 2, 3])
    np.testing.assert_array_equal(F.multi_margin_loss(x, t.astype(tdtype), reduction="none"),
                                  F.multi_margin_loss(x, t, reduction="none"))
    ml = np.array([[0, 3, 3, 3], [1, 2, 0, 0], [3, 3, 3, 3], [2, 1, 1, 1], [0, 0, 0, 0]])
    np.testing.assert_array_equal(
        F.multilabel_margin_loss(x, ml.astype(tdtype), reduction="none"),
        F.multilabel_margin_loss(x, ml, reduction="none"))


def test_hinge_embedding_keeps_input_dtype():
    # the target is only compared, so a float64 target does not promote the result
    x = np.array([0.5, 2.0], np.float32)
    out = F.hinge_embedding_loss(x, np.array([1.0, -1.0]), reduction="none")
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [0.5, 0.0])


def test_multilabel_margin_reads_targets_up_to_the_first_minus_one():
    x = np.array([[0.1, 0.2, 0.4, 0.8]])
    # targets 3 and 0; classes 1 and 2 are the others; the 1 after -1 is not a target
    expected = (max(0, 1 - (0.8 - 0.2)) + max(0, 1 - (0.8 - 0.4))
                + max(0, 1 - (0.1 - 0.2)) + max(0, 1 - (0.1 - 0.4))) / 4
    got = F.multilabel_margin_loss(x, np.array([[3, 0, -1, 1]]), reduction="none")
    np.testing.assert_allclose(got, [expected], rtol=1e-12)


def test_triplet_broadcast_gradients_sum_over_rows():
    rng = np.random.default_rng(2)
    a, n = rng.standard_normal((6, 3)), rng.standard_normal((6, 3))
    p1 = rng.standard_normal((1, 3))
    loss, (ga, gp) = F.value_and_grad(F.triplet_margin_loss, argnums=(0, 1))(
        a, p1, n, reduction="sum")
    full_loss, (ga_full, gp_full) = F.value_and_grad(F.triplet_margin_loss, argnums=(0, 1))(
        a, np.repeat(p1, 6, axis=0), n, reduction="sum")
    assert gp.shape == (1, 3)
    np.testing.assert_allclose(loss, full_loss, rtol=1e-12)
    np.testing.assert_allclose(ga, ga_full, rtol=1e-12)
    np.testing.assert_allclose(gp, gp_full.sum(axis=0, keepdims=True), rtol=1e-12)


def test_torch_tensors_are_accepted():
    torch = pytest.importorskip("torch")
    x = torch.randn(4, 5, dtype=torch.float64)
    t = torch.tensor([0, 4, 2, 1])
    np.testing.assert_allclose(F.multi_margin_loss(x, t),
                               torch.nn.functional.multi_margin_loss(x, t).item(), rtol=1e-12)
