"""Bad calls of the margin and embedding losses raise a clear exception naming the
argument."""
import numpy as np
import pytest

import fastloss

rng = np.random.default_rng(0)
X = rng.standard_normal((4, 3))
Y = np.array([1.0, -1.0, 1.0, -1.0])
S = np.sign(rng.standard_normal((4, 3)))
T = np.array([0, 2, 1, 0])
ML = np.array([[0, 1, -1], [2, -1, 0], [-1, 0, 0], [0, 1, 2]])
F = fastloss


@pytest.mark.parametrize("call,exc,words", [
    # hinge_embedding_loss
    (lambda: F.hinge_embedding_loss(X, S, reduction="avg"), ValueError, "reduction"),
    (lambda: F.hinge_embedding_loss(np.arange(3), np.ones(3)), TypeError, "input"),
    (lambda: F.hinge_embedding_loss(X, np.array(["a", "b", "c"])), TypeError, "target"),
    (lambda: F.hinge_embedding_loss(X, np.ones(4)), ValueError, "target"),
    (lambda: F.hinge_embedding_loss(X, S, margin="1"), TypeError, "margin"),
    (lambda: F.hinge_embedding_loss(X, S, 1.0, None, None, "sum"), TypeError, "positional"),
    # soft_margin_loss: the target may broadcast to input's shape, not enlarge it
    (lambda: F.soft_margin_loss(X, S, reduction="batchmean"), ValueError, "reduction"),
    (lambda: F.soft_margin_loss(np.zeros((3, 1)), np.ones(4)), ValueError, "target"),
    (lambda: F.soft_margin_loss(X, np.ones(5)), ValueError, "target"),
    (lambda: F.soft_margin_loss(X.astype(complex), S), TypeError, "input"),
    (lambda: F.soft_margin_loss(X, S, None), TypeError, "positional"),
    # margin_ranking_loss
    (lambda: F.margin_ranking_loss(X, X, S, reduction="all"), ValueError, "reduction"),
    (lambda: F.margin_ranking_loss(X[:, 0], X[:, 1], S), ValueError, "target"),
    (lambda: F.margin_ranking_loss(np.ones(3), np.ones(4), np.ones(3)), ValueError, "input2"),
    (lambda: F.margin_ranking_loss(np.ones(3), np.ones(3), np.ones(4)), ValueError, "target"),
    (lambda: F.margin_ranking_loss(np.arange(3), np.ones(3), np.ones(3)), TypeError, "input1"),
    (lambda: F.margin_ranking_loss(np.ones(3), np.arange(3), np.ones(3)), TypeError, "input2"),
    (lambda: F.margin_ranking_loss(X, X, S, margin=None), TypeError, "margin"),
    # multi_margin_loss
    (lambda: F.multi_margin_loss(X, T, p=3), ValueError, "p"),
    (lambda: F.multi_margin_loss(X, T, p=0), ValueError, "p"),
    (lambda: F.multi_margin_loss(X, T, p="1"), ValueError, "p"),
    (lambda: F.multi_margin_loss(X, T, reduction="avg"), ValueError, "reduction"),
    (lambda: F.multi_margin_loss(X, np.array([0, 3, 1, 0])), IndexError, "target"),
    (lambda: F.multi_margin_loss(X, np.array([0, -1, 1, 0])), IndexError, "target"),
    (lambda: F.multi_margin_loss(X[0], np.array(5)), IndexError, "target"),
    (lambda: F.multi_margin_loss(X, T.astype(np.float64)), TypeError, "target"),
    (lambda: F.multi_margin_loss(X, T[:3]), ValueError, "target"),
    (lambda: F.multi_margin_loss(X, T[:, None]), ValueError, "target"),
    (lambda: F.multi_margin_loss(np.zeros((2, 3, 4)), np.zeros(2, int)), ValueError, "input"),
    (lambda: F.multi_margin_loss(np.zeros((2, 0)), np.zeros(2, int)), ValueError, "input"),
    (lambda: F.multi_margin_loss(np.arange(12).reshape(4, 3), T), TypeError, "input"),
    (lambda: F.multi_margin_loss(X, T, weight=np.ones(4)), ValueError, "weight"),
    (lambda: F.multi_margin_loss(X, T, weight=np.ones((1, 3))), ValueError, "weight"),
    (lambda: F.multi_margin_loss(X, T, weight=np.array(["a", "b", "c"])), TypeError, "weight"),
    (lambda: F.multi_margin_loss(X, T, margin="1"), TypeError, "margin"),
    (lambda: F.multi_margin_loss(X, T, 1, 1.0, None, None), TypeError, "positional"),
    # multilabel_margin_loss: entries in [-1, C), after the first -1 too
    (lambda: F.multilabel_margin_loss(X, ML, reduction="avg"), ValueError, "reduction"),
    (lambda: F.multilabel_margin_loss(X, np.where(ML == -1, -2, ML)), IndexError, "target"),
    (lambda: F.multilabel_margin_loss(X, np.where(ML == 2, 3, ML)), IndexError, "target"),
    (lambda: F.multilabel_margin_loss(X[0], np.array([0, -1, 3])), IndexError, "target"),
    (lambda: F.multilabel_margin_loss(X, ML[:, :2]), ValueError, "target"),
    (lambda: F.multilabel_margin_loss(X, ML[0]), ValueError, "target"),
    (lambda: F.multilabel_margin_loss(X[0], ML), ValueError, "target"),
    (lambda: F.multilabel_margin_loss(X, ML.astype(np.float32)), TypeError, "target"),
    (lambda: F.multilabel_margin_loss(np.zeros((2, 3, 4)), np.zeros((2, 3), int)), ValueError,
     "input"),
    (lambda: F.multilabel_margin_loss(np.zeros((2, 0)), np.zeros((2, 0), int)), ValueError,
     "input"),
    # multilabel_soft_margin_loss
    (lambda: F.multilabel_soft_margin_loss(X, S, reduction="avg"), ValueError, "reduction"),
    (lambda: F.multilabel_soft_margin_loss(np.float64(1.0), np.float64(1.0)), ValueError,
     "input"),
    (lambda: F.multilabel_soft_margin_loss(X[0], S), ValueError, "target"),
    (lambda: F.multilabel_soft_margin_loss(X, S[:, :2]), ValueError, "target"),
    (lambda: F.multilabel_soft_margin_loss(X, S, weight=np.ones(4)), ValueError, "weight"),
    (lambda: F.multilabel_soft_margin_loss(X, S, weight=np.ones((2, 4, 3))), ValueError,
     "weight"),
    (lambda: F.multilabel_soft_margin_loss(X, np.array([["a"] * 3] * 4)), TypeError, "target"),
    (lambda: F.multilabel_soft_margin_loss(np.ones((2, 3), int), np.ones((2, 3))), TypeError,
     "input"),
    # cosine_embedding_loss
    (lambda: F.cosine_embedding_loss(X, X, Y, reduction="avg"), ValueError, "reduction"),
    (lambda: F.cosine_embedding_loss(X, X, Y[:, None]), ValueError, "target"),
    (lambda: F.cosine_embedding_loss(X, X, np.float64(1.0)), ValueError, "input1"),
    (lambda: F.cosine_embedding_loss(X[0], X[0], Y), ValueError, "input1"),
    (lambda: F.cosine_embedding_loss(X, X[0], Y), ValueError, "input2"),
    (lambda: F.cosine_embedding_loss(X, np.ones((4, 5)), Y), ValueError, "input2"),
    (lambda: F.cosine_embedding_loss(X, X, Y[:3]), ValueError, "target"),
    (lambda: F.cosine_embedding_loss(X, X, np.array(["a"] * 4)), TypeError, "target"),
    (lambda: F.cosine_embedding_loss(np.ones((4, 3), int), X, Y), TypeError, "input1"),
    (lambda: F.cosine_embedding_loss(X, X, Y, margin="0"), TypeError, "margin"),
    (lambda: F.cosine_embedding_loss(X, X, Y, 0.0, None), TypeError, "positional"),
    # triplet_margin_loss
    (lambda: F.triplet_margin_loss(X, X, X, reduction="avg"), ValueError, "reduction"),
    (lambda: F.triplet_margin_loss(X, X, X, margin=0.0), ValueError, "margin"),
    (lambda: F.triplet_margin_loss(X, X, X, margin=-1.0), ValueError, "margin"),
    (lambda: F.triplet_margin_loss(X, X, X, p=0), ValueError, "p"),
    (lambda: F.triplet_margin_loss(X, X, X, p=-2.0), ValueError, "p"),
    (lambda: F.triplet_margin_loss(X, X, X, p=np.nan), ValueError, "p"),
    (lambda: F.triplet_margin_loss(X, X, X, p="2"), TypeError, "p"),
    (lambda: F.triplet_margin_loss(X, X, X, eps=None), TypeError, "eps"),
    (lambda: F.triplet_margin_loss(X, X, X, swap=1), TypeError, "swap"),
    (lambda: F.triplet_margin_loss(X, X[0], X), ValueError, "positive"),
    (lambda: F.triplet_margin_loss(X, X, X[0]), ValueError, "negative"),
    (lambda: F.triplet_margin_loss(X, X, np.ones((4, 5))), ValueError, "negative"),
    (lambda: F.triplet_margin_loss(X, np.ones((3, 3)), X), ValueError, "positive"),
    (lambda: F.triplet_margin_loss(np.ones((4, 3), int), X, X), TypeError, "anchor"),
    (lambda: F.triplet_margin_loss(X, X, X, 1.0, 2, 1e-6, False, None), TypeError, "positional"),
    # value_and_grad: only the float inputs are differentiable
    (lambda: F.value_and_grad(F.margin_ranking_loss, argnums="target"), ValueError, "argnums"),
    (lambda: F.value_and_grad(F.cosine_embedding_loss, argnums=2), ValueError, "argnums"),
    (lambda: F.value_and_grad(F.multi_margin_loss, argnums="weight"), ValueError, "argnums"),
    (lambda: F.value_and_grad(F.triplet_margin_loss, argnums=("anchor", "margin")), ValueError,
     "argnums"),
])
def test_bad_call_raises(call, exc, words):
    with pytest.raises(exc) as info:
        call()
    assert words in str(info.value), str(info.value)


def test_class_index_errors_name_position_and_range():
    with pytest.raises(IndexError, match=r"target: class index 3 at flat position 1 .*\[0, 3\)"):
        F.multi_margin_loss(X, np.array([0, 3, 1, 0]))
    # the whole target is checked, entries after the first -1 included
    with pytest.raises(IndexError, match=r"target: class index 7 at flat position 5"):
        F.multilabel_margin_loss(X, np.array([[0, -1, 1], [2, -1, 7], [0, 0, 0], [1, 1, 1]]))


def test_value_and_grad_raises_the_same_errors():
    vg = F.value_and_grad(F.multi_margin_loss)
    with pytest.raises(IndexError, match="target"):
        vg(X, np.array([0, 9, 1, 0]))
    vg = F.value_and_grad(F.multilabel_margin_loss)
    with pytest.raises(IndexError, match="target"):
        vg(X, np.where(ML == -1, -5, ML))
