"""Bad calls raise a clear exception naming the argument: regression and class losses,
plus the shared API (reduction, backend, value_and_grad)."""
import numpy as np
import pytest

import fastloss

X = np.random.default_rng(0).standard_normal((4, 3))
T = np.array([0, 2, 1, 0])

# every case through the common call's lean path and through the general one
pytestmark = pytest.mark.usefixtures("fast_path")


@pytest.mark.parametrize("call,exc,words", [
    # reduction, everywhere through the shared rule
    (lambda: fastloss.mse_loss(X, X, reduction="avg"), ValueError, "reduction"),
    (lambda: fastloss.cross_entropy(X, T, reduction="batchmean"), ValueError, "reduction"),
    (lambda: fastloss.l1_loss(X, X, reduction=None), ValueError, "reduction"),
    # dtypes
    (lambda: fastloss.mse_loss(np.arange(3), np.zeros(3)), TypeError, "input"),
    (lambda: fastloss.mse_loss(np.array(["a", "b"]), np.zeros(2)), TypeError, "input"),
    (lambda: fastloss.mse_loss(np.zeros(2), np.array(["a", "b"])), TypeError, "target"),
    (lambda: fastloss.cross_entropy(X, T.astype(np.float64)), ValueError, "target"),
    (lambda: fastloss.nll_loss(X, T.astype(np.float32)), TypeError, "target"),
    (lambda: fastloss.cross_entropy(X, np.array([True, False, True, True])), TypeError, "target"),
    (lambda: fastloss.cross_entropy(X.astype(complex), T), TypeError, "input"),
    # shapes
    (lambda: fastloss.mse_loss(np.zeros((3, 2)), np.zeros((4, 2))), ValueError, "target"),
    (lambda: fastloss.mse_loss(X, X, weight=np.ones(3)), ValueError, "weight"),
    (lambda: fastloss.cross_entropy(np.float64(1.0), np.array(0)), ValueError, "input"),
    (lambda: fastloss.cross_entropy(X, T[:3]), ValueError, "target"),
    (lambda: fastloss.cross_entropy(X, T[:, None]), ValueError, "target"),
    (lambda: fastloss.cross_entropy(np.zeros((2, 3, 4)), np.zeros((2, 5), int)), ValueError, "target"),
    (lambda: fastloss.cross_entropy(X, np.full((4, 2), 0.5)), ValueError, "target"),
    (lambda: fastloss.cross_entropy(X, T, weight=np.ones(4)), ValueError, "weight"),
    (lambda: fastloss.nll_loss(X, T, weight=np.ones((1, 3))), ValueError, "weight"),
    # class indices
    (lambda: fastloss.cross_entropy(X, np.array([0, 3, 1, 0])), IndexError, "target"),
    (lambda: fastloss.cross_entropy(X, np.array([0, -1, 1, 0])), IndexError, "target"),
    (lambda: fastloss.nll_loss(X, np.array([0, 1, 1, 7])), IndexError, "target"),
    (lambda: fastloss.cross_entropy(X, np.array([0, 1, 1, -100]), ignore_index=1), IndexError,
     "target"),
    (lambda: fastloss.cross_entropy(X, np.array([0, 1, 1, 2**63 - 1], np.uint64)), IndexError,
     "target"),
    # options
    (lambda: fastloss.cross_entropy(X, T, label_smoothing=1.5), ValueError, "label_smoothing"),
    (lambda: fastloss.cross_entropy(X, T, label_smoothing=-0.1), ValueError, "label_smoothing"),
    (lambda: fastloss.cross_entropy(X, np.full((4, 3), 1 / 3), ignore_index=0), ValueError,
     "ignore_index"),
    (lambda: fastloss.cross_entropy(X, T, ignore_index=1.5), TypeError, "ignore_index"),
    (lambda: fastloss.smooth_l1_loss(X, X, beta=-1.0), ValueError, "beta"),
    (lambda: fastloss.huber_loss(X, X, delta=0.0), ValueError, "delta"),
    (lambda: fastloss.huber_loss(X, X, delta="1"), TypeError, "delta"),
    # legacy arguments are not accepted positionally
    (lambda: fastloss.mse_loss(X, X, None, None, "sum"), TypeError, "positional"),
    # backend selection
    (lambda: fastloss.mse_loss(X, X, backend="gpu"), ValueError, "backend"),
    # value_and_grad contract
    (lambda: fastloss.value_and_grad(fastloss.cross_entropy, argnums=1), ValueError, "argnums"),
    (lambda: fastloss.value_and_grad(fastloss.mse_loss, argnums="target"), ValueError, "argnums"),
    (lambda: fastloss.value_and_grad(len), TypeError, "loss function"),
    (lambda: fastloss.value_and_grad(fastloss.cross_entropy)(X, T, out=np.zeros((4, 4))),
     ValueError, "out"),
    (lambda: fastloss.value_and_grad(fastloss.cross_entropy)(X, T, out=np.zeros((4, 3), np.float32)),
     ValueError, "out"),
    (lambda: fastloss.value_and_grad(fastloss.cross_entropy)(X, T, out=[[0.0] * 3] * 4),
     TypeError, "out"),
    (lambda: fastloss.value_and_grad(fastloss.cross_entropy)(X, T, grad_output=np.ones(4)),
     ValueError, "grad_output"),
    (lambda: fastloss.value_and_grad(fastloss.cross_entropy)(X, T, reduction="none",
                                                            grad_output=np.ones(3)),
     ValueError, "grad_output"),
])
def test_bad_call_raises_naming_the_argument(call, exc, words):
    with pytest.raises(exc) as info:
        call()
    assert words in str(info.value)


def test_read_only_out_is_refused():
    out = np.zeros((4, 3))
    out.setflags(write=False)
    with pytest.raises(ValueError, match="out"):
        fastloss.value_and_grad(fastloss.cross_entropy)(X, T, out=out)
