"""triplet_margin_with_distance_loss with distance functions: torch's pairwise distance in
its forms is fused (never called), any other callable is called once per distance on the
whole arrays, its gradient comes from its `vjp` or not at all."""
import functools

import numpy as np
import pytest

import fastloss

F = fastloss.triplet_margin_with_distance_loss
RNG = np.random.default_rng(5)
A, P, N = (RNG.standard_normal((7, 4)) for _ in range(3))
N = A + 0.3 * N        # close negatives: positive losses, swap matters


class Counting:
    """An L1 distance that records its calls; `vjp` only when asked for."""

    def __init__(self, with_vjp=True):
        self.calls = []
        if with_vjp:
            self.vjp = self._vjp

    def __call__(self, x1, x2):
        self.calls.append((type(x1), x1.shape, x2.shape))
        return np.abs(x1 - x2).sum(-1)

    @staticmethod
    def _vjp(x1, x2, g):
        s = np.sign(x1 - x2) * g[..., None]
        return s, -s


class NotCalled:
    """PairwiseDistance-like: `norm` and `eps` route it to the fused kernel."""
    norm, eps = 3.0, 1e-3

    def __call__(self, x1, x2):
        raise AssertionError("the fused kernel must not call the distance function")


@pytest.mark.parametrize("swap", [False, True])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_pairwise_forms_run_the_fused_triplet_kernel(swap, reduction):
    ref = fastloss.triplet_margin_loss(A, P, N, p=3.0, eps=1e-3, swap=swap, reduction=reduction)
    got = F(A, P, N, distance_function=NotCalled(), swap=swap, reduction=reduction)
    np.testing.assert_array_equal(got, ref)
    part = functools.partial(fastloss.pairwise_distance, p=3.0, eps=1e-3)
    np.testing.assert_array_equal(F(A, P, N, distance_function=part, swap=swap,
                                    reduction=reduction), ref)
    np.testing.assert_array_equal(
        F(A, P, N, distance_function=fastloss.PairwiseDistance(3.0, 1e-3), swap=swap,
          reduction=reduction), ref)
    default = fastloss.triplet_margin_loss(A, P, N, swap=swap, reduction=reduction)
    for fn in (None, fastloss.pairwise_distance):
        np.testing.assert_array_equal(F(A, P, N, distance_function=fn, swap=swap,
                                        reduction=reduction), default)
    assert fastloss.functional.rows.fused_distance(NotCalled()) == (3.0, 1e-3)


def test_pairwise_distance_matches_its_definition():
    d = fastloss.pairwise_distance(A, P, p=1.0, eps=0.0)
    np.testing.assert_allclose(d, np.abs(A - P).sum(-1))
    assert fastloss.pairwise_distance(A, P, keepdim=True).shape == (7, 1)


@pytest.mark.parametrize("swap", [False, True])
def test_a_callable_is_called_once_per_distance_on_whole_arrays(swap):
    fn = Counting()
    loss = F(A, P, N, distance_function=fn, swap=swap, reduction="none")
    assert fn.calls == [(np.ndarray, (7, 4), (7, 4))] * (3 if swap else 2)
    d_ap, d_an, d_pn = (np.abs(u - v).sum(-1) for u, v in ((A, P), (A, N), (P, N)))
    dn = np.minimum(d_an, d_pn) if swap else d_an
    np.testing.assert_allclose(loss, np.maximum(1.0 + d_ap - dn, 0))


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("swap", [False, True])
def test_vjp_gives_the_gradient(backend, swap):
    fn = Counting()
    vg = fastloss.value_and_grad(F, argnums=(0, 1, 2))
    _, grads = vg(A, P, N, distance_function=fn, swap=swap, reduction="sum", backend=backend)
    for k, x0 in enumerate((A, P, N)):
        num = np.zeros_like(x0)
        for i in np.ndindex(x0.shape):
            args = [A.copy(), P.copy(), N.copy()]
            args[k][i] += 1e-6
            up = float(F(*args, distance_function=fn, swap=swap, reduction="sum"))
            args[k][i] -= 2e-6
            down = float(F(*args, distance_function=fn, swap=swap, reduction="sum"))
            num[i] = (up - down) / 2e-6
        np.testing.assert_allclose(grads[k], num, atol=1e-6)


def test_without_vjp_value_and_grad_raises_and_leaves_out_alone():
    out = np.full(A.shape, 7.0)
    with pytest.raises(TypeError, match="distance_function.*vjp"):
        fastloss.value_and_grad(F)(A, P, N, distance_function=Counting(with_vjp=False),
                                   out=out)
    assert (out == 7.0).all()
    F(A, P, N, distance_function=Counting(with_vjp=False))   # the forward needs none


@pytest.mark.parametrize("bad,error", [(lambda x, y: np.abs(x - y), ValueError),
                                       (lambda x, y: (x - y).sum(-1)[:3], ValueError),
                                       (lambda x, y: np.array(["a"] * len(x)), TypeError)])
def test_a_callable_returning_the_wrong_shape_or_type_raises(bad, error):
    with pytest.raises(error, match="distance_function"):
        F(A, P, N, distance_function=bad)


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(margin=0.0), ValueError, "margin"),
    (dict(margin=-1.0), ValueError, "margin"),
    (dict(reduction="batchmean"), ValueError, "reduction"),
    (dict(swap=None), TypeError, "swap"),
    (dict(distance_function=3), TypeError, "distance_function"),
])
def test_bad_arguments_raise(kwargs, error, match):
    with pytest.raises(error, match=match):
        F(A, P, N, **kwargs)


def test_inputs_of_different_dimensions_raise():
    with pytest.raises(ValueError, match="same number of dimensions"):
        F(A[0], P, N)


def test_torch_callables_and_modules_are_fused_and_equal_torch():
    torch = pytest.importorskip("torch")
    tF = torch.nn.functional
    for ours, theirs in ((torch.nn.PairwiseDistance(p=1.5, eps=1e-4),) * 2,
                         (functools.partial(torch.pairwise_distance, p=1.0),) * 2,
                         (tF.pairwise_distance, tF.pairwise_distance),
                         (Counting(), lambda x, y: (x - y).abs().sum(-1))):
        for swap in (False, True):
            ts = [torch.from_numpy(v.copy()).requires_grad_() for v in (A, P, N)]
            loss = tF.triplet_margin_with_distance_loss(*ts, distance_function=theirs,
                                                        swap=swap)
            loss.backward()
            v, g = fastloss.value_and_grad(F, argnums=(0, 1, 2))(
                A, P, N, distance_function=ours, swap=swap)
            np.testing.assert_allclose(v, loss.detach().numpy(), rtol=1e-12)
            for a, t in zip(g, ts):
                np.testing.assert_allclose(a, t.grad.numpy(), rtol=1e-10, atol=1e-12)
