"""Calls a type checker must reject: each line marked ``# error: <code>`` must give that
mypy error, and no other line any (tests/test_typing.py). Never run."""
from __future__ import annotations

import numpy as np

import fastloss

x = np.zeros(3)
y = np.ones(3)

as_int: int = fastloss.mse_loss(x, y)  # error: assignment
as_str: str = fastloss.CrossEntropyLoss()(x[None], np.array([0]))  # error: assignment
fastloss.mse_loss(x, y, backend=1)  # error: arg-type
fastloss.mse_loss(x, y, reductio="sum")  # error: call-arg
fastloss.l1_loss(x)  # error: call-arg
fastloss.huber_loss(x, y, delta="big")  # error: arg-type
fastloss.MSELoss(reduction=3)  # error: arg-type
fastloss.set_num_threads("2")  # error: arg-type
_, grads = fastloss.value_and_grad(fastloss.margin_ranking_loss, argnums=(0, 1))(x, y, y)
grads.shape  # error: attr-defined
with fastloss.use_backend(2):  # error: arg-type
    pass
