import numpy as np

from . import nonfinite, rows


def arr(values, dtype):
    return np.asarray(values, dtype)


# ---- binary_cross_entropy ------------------------------------------------------------

def bce(shape, weight_shape=None, hard=False, low=0.02):
    def make(dtype, rng):
        x = rng.uniform(low, 1.0 - low, shape)
        t = rng.integers(0, 2, shape).astype(np.float64) if hard else rng.uniform(0, 1, shape)
        kw = {}
        if weight_shape is not None:
            kw["weight"] = arr(rng.uniform(0.1, 2.0, weight_shape), dtype)
        return (arr(x, dtype), arr(t, dtype)), kw
    return make


def bce_edge(dtype, rng):
    # exact 0 and 1 probabilities (logs clamped at -100, gradient bounded by 1e-12), and
    # probabilities whose log is just either side of the clamp
    x = [0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1e-20, 1e-43, 1e-44, 0.5, 1.0 - 1e-7, 0.25]
    t = [0.0, 1.0, 0.0, 1.0, 0.5, 0.5, 1.0, 1.0, 0.7, 0.0, 0.0, 0.25]
    return (arr(x, dtype), arr(t, dtype)), {"weight": arr(np.linspace(0.5, 2.0, 12), dtype)}


BCE = {
    "2d": bce((4, 5)),
    "hard_targets": bce((6, 3), hard=True),
    "kdim": bce((2, 3, 2, 2)),
    "weight_full": bce((4, 5), weight_shape=(4, 5)),
    "weight_row": bce((4, 5), weight_shape=(5,)),
    "weight_col": bce((4, 5), weight_shape=(4, 1)),
    "weight_0d": bce((4, 5), weight_shape=()),
    "weight_kdim": bce((2, 3, 4), weight_shape=(3, 1)),
    "scalar": bce(()),
    "scalar_weighted": bce((), weight_shape=()),
    "empty": (bce((0, 3)), {"fd": False}),
    "empty_weighted": (bce((0, 3), weight_shape=(3,)), {"fd": False}),
    "near_0_and_1": bce((20,), low=1e-6),
    "edge": (bce_edge, {"fd": False}),
    "weight_nonfinite": nonfinite(bce((4, 5), weight_shape=(5,)), {1: np.nan, 3: np.inf}),
    "weight_ninf_full": nonfinite(bce((3, 4), weight_shape=(3, 4), hard=True), {5: -np.inf}),
}


# ---- binary_cross_entropy_with_logits -------------------------------------------------

def logits(shape, weight_shape=None, pos_weight_shape=None, hard=False, scale=2.0,
           pos_low=0.2):
    def make(dtype, rng):
        x = rng.normal(0.0, scale, shape)
        t = rng.integers(0, 2, shape).astype(np.float64) if hard else rng.uniform(0, 1, shape)
        kw = {}
        if weight_shape is not None:
            kw["weight"] = arr(rng.uniform(0.1, 2.0, weight_shape), dtype)
        if pos_weight_shape is not None:
            kw["pos_weight"] = arr(rng.uniform(pos_low, 4.0, pos_weight_shape), dtype)
        return (arr(x, dtype), arr(t, dtype)), kw
    return make


def logits_huge(pos_weight):
    def make(dtype, rng):
        x = [1e4, -1e4, 1e4, -1e4, 1e4, -1e4, 800.0, -800.0, 90.0, -90.0, 30.0, -30.0]
        t = [0.0, 1.0, 1.0, 0.0, 0.3, 0.3, 0.5, 0.5, 0.0, 1.0, 1.0, 0.0]
        kw = {"pos_weight": arr(np.linspace(0.0, 3.0, 12), dtype)} if pos_weight else {}
        return (arr(x, dtype), arr(t, dtype)), kw
    return make


def logits_edge(pos_weight):
    def make(dtype, rng):
        x = [np.inf, np.inf, -np.inf, -np.inf, np.nan, 0.0, 0.0, 3.0, -3.0, 1.0]
        t = [0.0, 1.0, 0.0, 1.0, 0.5, 0.5, np.nan, np.inf, 0.0, -1.0]
        kw = {"weight": arr(np.linspace(0.5, 1.5, 10), dtype)}
        if pos_weight:
            kw["pos_weight"] = arr([2.0, 2.0, 2.0, 2.0, 0.5, 0.0, 1.0, 3.0, np.inf, 2.0], dtype)
        return (arr(x, dtype), arr(t, dtype)), kw
    return make


def logits_mixed_precision(dtype, rng):
    # float32 and float64 arguments: both compute and return float64 here (input is float64,
    # so torch's result, in target's dtype, is float64 whenever target is)
    x = rng.normal(0.0, 2.0, (3, 4))
    t = rng.uniform(0, 1, (3, 4))
    return (x.astype(np.float64), t.astype(np.float64)), {
        "pos_weight": arr(rng.uniform(0.5, 2.0, 4), dtype),
        "weight": arr(rng.uniform(0.5, 2.0, (3, 1)), dtype)}


LOGITS = {
    "2d": logits((4, 5)),
    "hard_targets": logits((6, 3), hard=True),
    "kdim": logits((2, 3, 2, 2)),
    "weight_full": logits((4, 5), weight_shape=(4, 5)),
    "weight_row": logits((4, 5), weight_shape=(5,)),
    "weight_0d": logits((4, 5), weight_shape=()),
    "pos_weight_class": logits((4, 5), pos_weight_shape=(5,)),
    "pos_weight_full": logits((4, 5), pos_weight_shape=(4, 5)),
    "pos_weight_chw": logits((2, 3, 2, 2), pos_weight_shape=(3, 1, 1), hard=True),
    "pos_weight_zero_one": logits((5, 4), pos_weight_shape=(4,), pos_low=0.0),
    "weight_and_pos_weight": logits((4, 5), weight_shape=(4, 1), pos_weight_shape=(5,)),
    "scalar": logits(()),
    "scalar_weighted": logits((), weight_shape=(), pos_weight_shape=()),
    "empty": (logits((0, 3), pos_weight_shape=(3,)), {"fd": False}),
    "big_logits": (logits((16,), scale=40.0, hard=True), {"fd": False}),
    "huge_logits": (logits_huge(False), {"fd": False}),
    "huge_logits_pos_weight": (logits_huge(True), {"fd": False}),
    "edge": (logits_edge(False), {"fd": False}),
    "edge_pos_weight": (logits_edge(True), {"fd": False}),
    "mixed_precision_weights": logits_mixed_precision,
    "weight_nonfinite": nonfinite(logits((4, 5), weight_shape=(4, 1)), {0: np.inf, 2: np.nan}),
    "pos_weight_nonfinite": nonfinite(logits((4, 5), pos_weight_shape=(5,)),
                                      {1: np.inf, 3: np.nan}, key="pos_weight"),
    "pos_weight_ninf_hard": nonfinite(logits((4, 5), pos_weight_shape=(5,), hard=True),
                                      {0: -np.inf, 2: np.inf}, key="pos_weight"),
}


CASES = (
    rows("binary_cross_entropy", BCE) +
    rows("binary_cross_entropy_with_logits", LOGITS)
)
