"""A typed user's script of fastloss's documented API. ``mypy --strict`` must accept it
as it is (tests/test_typing.py), and it runs: every assertion holds.

It uses what the README shows: a loss with ``reduction="none"`` and ``backend=``,
``value_and_grad`` with one and with several arguments and a reused ``out=``, a loss
class and its ``value_and_grad``, ``use_backend``, ``show_backends`` and the thread
count."""
from __future__ import annotations

import io

import numpy as np
from numpy.typing import NDArray

import fastloss


def main() -> None:
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((8, 5)).astype(np.float32)
    target = np.arange(8) % 5

    loss: NDArray[np.generic] = fastloss.cross_entropy(logits, target, label_smoothing=0.1)
    assert loss.shape == () and loss.dtype == np.float32
    per_sample = fastloss.cross_entropy(logits, target, reduction="none", backend="numpy")
    assert per_sample.shape == (8,)
    assert fastloss.mse_loss([1.0, 2.0], [0.0, 0.0], backend=None).ndim == 0

    # one gradient: an ndarray (not a union with a tuple), written into a reused buffer
    grad = np.empty_like(logits)
    value, g = fastloss.value_and_grad(fastloss.cross_entropy)(logits, target, out=grad)
    assert g is grad and g.shape == logits.shape and float(value) > 0

    # several gradients: a tuple of ndarrays
    x1, x2 = rng.standard_normal(6), rng.standard_normal(6)
    y = np.where(rng.standard_normal(6) > 0, 1.0, -1.0)
    vg = fastloss.value_and_grad(fastloss.margin_ranking_loss, argnums=(0, "input2"))
    total, (g1, g2) = vg(x1, x2, y, margin=0.5, reduction="sum", grad_output=2.0)
    assert g1.shape == g2.shape == (6,) and total.ndim == 0

    criterion = fastloss.CrossEntropyLoss(weight=np.ones(5, np.float32), ignore_index=-100,
                                          reduction="mean", backend="numpy")
    c_loss = criterion(logits, target)
    c_value, c_grad = criterion.value_and_grad(logits, target)
    assert c_grad.shape == logits.shape
    np.testing.assert_allclose(c_value, c_loss, rtol=1e-6)
    values, (ga, gp, gn) = fastloss.TripletMarginLoss(margin=1.0).value_and_grad(
        logits, logits[::-1], logits + 1, argnums=(0, 1, 2))
    assert ga.shape == gp.shape == gn.shape == logits.shape and values.ndim == 0

    with fastloss.use_backend("numpy"):
        huber = fastloss.HuberLoss(delta=2.0)(np.array([0.5, 3.0]), np.zeros(2))
    assert float(huber) == 2.0625

    status = fastloss.show_backends(file=io.StringIO())
    available: bool = status["numpy"][0]
    assert available
    before: int = fastloss.get_num_threads()
    fastloss.set_num_threads(1)
    fastloss.set_num_threads(before)


if __name__ == "__main__":
    main()
    print("ok")
