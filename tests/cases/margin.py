import numpy as np

from . import nonfinite, rows

NAN, INF = np.nan, np.inf


def signs(rng, shape, values=(-1.0, 1.0)):
    return rng.choice(np.asarray(values), size=shape)


def elementwise(shape, t_shape=None, scale=1.0, values=(-1.0, 1.0), int_target=False, **kw):
    """input ~ N(0, scale^2) of `shape`; target drawn from `values` of `t_shape`."""
    def make(dtype, rng):
        x = np.asarray(rng.standard_normal(shape) * scale, dtype)
        t = signs(rng, shape if t_shape is None else t_shape, values)
        t = np.asarray(t, np.int64 if int_target else dtype)
        return (x, t), dict(kw)
    return make


def fixed(*arrays, int_last=False, **kw):
    """Fixed arrays, cast to the dtype (the last one to int64 when int_last)."""
    def make(dtype, rng):
        out = [np.asarray(a, dtype) for a in arrays]
        if int_last:
            out[-1] = np.asarray(arrays[-1], np.int64)
        return tuple(out), dict(kw)
    return make


# ---- hinge_embedding_loss -------------------------------------------------------------

HINGE = {
    "small": elementwise((7,)),
    "2d": elementwise((4, 5)),
    "scalar": elementwise(()),
    "margin_half": elementwise((5, 4), margin=0.5),
    "margin_negative": elementwise((5, 4), margin=-0.5),
    "target_not_pm1": elementwise((6, 5), values=(-1.0, 0.0, 1.0, 2.0, 0.5)),
    "broadcast": elementwise((3, 1), t_shape=(1, 4)),
    "int_target": elementwise((4, 3), int_target=True),
    "big_values": (elementwise((16,), scale=1e3), {"fd": False}),
    "empty": (elementwise((0, 3)), {"fd": False}),
    # x == margin exactly (the clamp's kink) under each kind of target
    "kink": (fixed([1.0, 1.0, 1.0, 0.5, 2.0], [-1.0, 0.0, 1.0, -1.0, 2.0]), {"fd": False}),
    "edge": (fixed([0.0, INF, -INF, NAN, NAN, 1e4, -1e4, INF, -INF],
                   [-1.0, -1.0, -1.0, -1.0, 1.0, -1.0, -1.0, 1.0, 0.0]), {"fd": False}),
}

# ---- soft_margin_loss -------------------------------------------------------------------

SOFT = {
    "small": elementwise((7,)),
    "2d": elementwise((4, 5)),
    "4d": elementwise((2, 3, 2, 2)),
    "scalar": elementwise(()),
    "soft_targets": elementwise((5, 4), values=(-1.0, -0.5, 0.0, 0.3, 1.0)),
    "target_broadcast": elementwise((3, 4), t_shape=(3, 1)),
    "int_target": elementwise((4, 3), int_target=True),
    # |y x| up to ~60: inside float32's exp range, where PyTorch's literal formula is exact
    "big_values": (elementwise((16,), scale=20.0), {"fd": False}),
    "empty": (elementwise((0, 3)), {"fd": False}),
    "edge": (fixed([0.0, 1e4, -1e4, INF, -INF, NAN, 80.0, -80.0, 1.0],
                   [1.0, 1.0, -1.0, 1.0, -1.0, 1.0, 1.0, -1.0, 0.0]), {"fd": False}),
}

# ---- margin_ranking_loss ------------------------------------------------------------------


def ranking(shape1, shape2=None, t_shape=None, int_target=False, **kw):
    def make(dtype, rng):
        x1 = np.asarray(rng.standard_normal(shape1), dtype)
        x2 = np.asarray(rng.standard_normal(shape1 if shape2 is None else shape2), dtype)
        t = signs(rng, shape1 if t_shape is None else t_shape)
        return (x1, x2, np.asarray(t, np.int64 if int_target else dtype)), dict(kw)
    return make


RANKING = {
    "small": ranking((8,)),
    "2d": ranking((4, 5)),
    "scalar": ranking(()),
    "margin_half": ranking((6, 3), margin=0.5),
    "margin_negative": ranking((6, 3), margin=-0.3),
    "broadcast": ranking((3, 1), (1, 4), (3, 4)),
    "broadcast_target": ranking((3, 4), (3, 4), (1, 4)),
    "int_target": ranking((7,), int_target=True),
    "target_not_pm1": (lambda dtype, rng: (
        (rng.standard_normal(6).astype(dtype), rng.standard_normal(6).astype(dtype),
         np.array([0.0, 0.5, -2.0, 1.0, -1.0, 3.0], dtype)), {})),
    "empty": (ranking((0,)), {"fd": False}),
    # -y (x1 - x2) + margin == 0 exactly: PyTorch's clamp passes the gradient there
    "kink": (fixed([2.0, 1.0, 0.0, 1.5], [1.0, 2.0, 0.0, 0.5], [1.0, -1.0, 1.0, 1.0],
                   margin=1.0), {"fd": False}),
    "edge": (fixed([0.0, INF, -INF, NAN, 1e4, -1e4, 1.0],
                   [0.0, 0.0, 0.0, 0.0, -1e4, 1e4, NAN],
                   [1.0, 1.0, 1.0, 1.0, -1.0, -1.0, 1.0]), {"fd": False}),
}

# ---- multi_margin_loss ------------------------------------------------------------------


def multi(n, c, one_d=False, target_1=False, t0d=False, weight=False, scale=1.0, **kw):
    """(N, C) scores and N class indices; one_d: a (C,) input with a () target (or (1,),
    target_1); t0d: a () target for a (1, C) input."""
    def make(dtype, rng):
        x = (rng.standard_normal((c,) if one_d else (n, c)) * scale).astype(dtype)
        t = rng.integers(0, c, size=() if (one_d and not target_1) or t0d else (n,))
        kwargs = dict(kw)
        if weight:
            kwargs["weight"] = rng.uniform(0.2, 2.0, c).astype(dtype)
        return (x, np.asarray(t, np.int64)), kwargs
    return make


MULTI_EDGE_X = [[1.0, 0.0, 0.5],      # z == 0 exactly for class 1: no gradient there
                [NAN, 0.0, 1.0],      # NaN target score: no term counts
                [0.0, NAN, 1.0],      # a NaN other score: that term does not count
                [INF, 0.0, 1.0],
                [-INF, 0.0, 1.0],
                [1e4, -1e4, 0.0],
                [-1e4, 1e4, 0.0]]

MULTI = {
    "2d": multi(6, 5),
    "1d": multi(1, 4, one_d=True),
    "1d_target_1": multi(1, 4, one_d=True, target_1=True),
    "n1_target_0d": multi(1, 4, t0d=True),
    "scalar_input": (lambda dtype, rng: ((np.asarray(0.7, dtype), np.asarray(0)), {})),
    "p2": multi(6, 5, p=2),
    "margin_half": multi(6, 5, margin=0.5),
    "margin_two_p2": multi(5, 4, p=2, margin=2.0),
    "weighted": multi(8, 4, weight=True),
    "weighted_p2": multi(8, 4, weight=True, p=2, margin=0.7),
    "one_class": multi(5, 1),
    "one_class_weighted": multi(3, 1, weight=True),
    "big_values": (multi(6, 5, scale=1e3), {"fd": False}),
    # torch's "mean" and "sum" of an empty batch are uninitialised memory: not compared
    "empty": (multi(0, 4), {"fd": False, "reductions": ("none",)}),
    "edge": (fixed(MULTI_EDGE_X, [0, 0, 0, 0, 0, 0, 0], int_last=True), {"fd": False}),
    # NaN and infinite class weights (w_y multiplies each counted term, as in torch: a row
    # with no counted term is 0 whatever w_y is)
    "weight_nan_unused": nonfinite(multi(8, 4, weight=True), {2: NAN}, unused=True),
    "weight_inf": nonfinite(multi(8, 4, weight=True), {1: INF}),
    "weight_ninf_nan_p2": nonfinite(multi(10, 5, weight=True, p=2, margin=0.7),
                                    {0: -INF, 3: NAN}),
    "one_class_weight_nan": nonfinite(multi(3, 1, weight=True), {0: NAN}),
    "big_margin_weight_inf": nonfinite(multi(6, 3, weight=True, scale=5.0, margin=0.1),
                                       {1: INF}),
    "edge_p2_weighted": (lambda dtype, rng: (
        (np.asarray(MULTI_EDGE_X, dtype), np.array([0, 0, 0, 0, 0, 1, 2])),
        {"p": 2, "weight": np.array([0.5, 2.0, 1.0], dtype)}), {"fd": False}),
}

# ---- multilabel_margin_loss --------------------------------------------------------------


def multilabel(n, c, one_d=False, scale=1.0):
    """Each row lists a random number of distinct classes, then -1, then arbitrary entries
    in [-1, C) that must be ignored."""
    def make(dtype, rng):
        rows = 1 if one_d else n
        x = (rng.standard_normal((rows, c)) * scale).astype(dtype)
        t = rng.integers(-1, c, size=(rows, c))
        for i in range(rows):
            k = int(rng.integers(0, c + 1))
            t[i, :k] = rng.permutation(c)[:k]
            if k < c:
                t[i, k] = -1
        return ((x[0], t[0]) if one_d else (x, t)), {}
    return make


MULTILABEL = {
    "2d": multilabel(8, 5),
    "wide": multilabel(4, 12),
    "1d": multilabel(1, 6, one_d=True),
    "scalar_input": (lambda dtype, rng: ((np.asarray(0.3, dtype), np.asarray(0)), {})),
    "one_class": multilabel(6, 1),
    "duplicates": fixed([[0.1, 0.5, -0.2, 0.9], [0.3, 0.2, 0.1, 0.0]],
                        [[1, 1, 2, -1], [0, 3, 3, 0]], int_last=True),
    "all_and_none": fixed([[0.1, 0.5, -0.2], [0.3, 0.2, 0.1]], [[2, 0, 1], [-1, 2, 1]],
                          int_last=True),
    "big_values": (multilabel(6, 5, scale=1e3), {"fd": False}),
    "empty": (lambda dtype, rng: ((np.zeros((0, 3), dtype), np.zeros((0, 3), np.int64)), {}),
              {"fd": False, "reductions": ("none",)}),
    # 1 - (x_j - x_i) == 0 exactly (no gradient), NaN and infinite scores
    "edge": (fixed([[1.0, 0.0, 0.5, -1.0], [NAN, 0.0, 1.0, 2.0], [0.0, NAN, 1.0, 2.0],
                    [INF, 0.0, 1.0, -INF], [-INF, 0.0, 1.0, 2.0], [1e4, -1e4, 0.0, 3.0]],
                   [[0, -1, 0, 0], [0, 3, -1, 1], [0, -1, 2, 2], [0, 3, -1, -1],
                    [0, -1, 0, 0], [1, 0, -1, 3]], int_last=True), {"fd": False}),
}

# ---- multilabel_soft_margin_loss ----------------------------------------------------------


def mlsm(shape, soft=False, weight=None, t_shape=None, int_target=False, scale=2.0):
    def make(dtype, rng):
        x = (rng.standard_normal(shape) * scale).astype(dtype)
        ts = shape if t_shape is None else t_shape
        t = rng.uniform(size=ts) if soft else rng.integers(0, 2, size=ts)
        t = np.asarray(t, np.int64 if int_target else dtype)
        kw = {}
        if weight is not None:
            kw["weight"] = rng.uniform(0.2, 2.0, weight).astype(dtype)
        return (x, t), kw
    return make


MLSM = {
    "2d": mlsm((6, 5)),
    "soft": mlsm((6, 5), soft=True),
    "1d": mlsm((7,)),
    "3d": mlsm((2, 3, 4)),
    "class_weight": mlsm((6, 5), weight=(5,)),
    "row_weight": mlsm((6, 5), weight=(6, 1)),
    "full_weight_3d": mlsm((2, 3, 4), weight=(2, 3, 4), soft=True),
    "class_weight_nonfinite": nonfinite(mlsm((6, 5), weight=(5,)), {1: INF, 3: NAN}),
    "row_weight_ninf": nonfinite(mlsm((6, 5), weight=(6, 1)), {2: -INF}),
    "soft_weight_inf": nonfinite(mlsm((3, 4), soft=True, weight=(3, 4)), {1: INF, 6: -INF}),
    "target_broadcast": mlsm((4, 5), t_shape=(5,)),
    "int_target": mlsm((4, 5), int_target=True),
    "one_class": mlsm((5, 1)),
    "big_values": (mlsm((6, 5), scale=1e3), {"fd": False}),
    "empty": (mlsm((0, 4)), {"fd": False}),
    "no_classes": (mlsm((3, 0)), {"fd": False}),
    "edge": (fixed([[INF, -INF, NAN, 0.0, 1e4, -1e4], [INF, -INF, 1.0, -1.0, 1e4, -1e4]],
                   [[1.0, 0.0, 1.0, 0.5, 0.0, 1.0], [0.0, 1.0, 0.0, 1.0, 1.0, 0.0]]),
             {"fd": False}),
}


CASES = (
    rows("hinge_embedding_loss", HINGE) +
    rows("soft_margin_loss", SOFT) +
    rows("margin_ranking_loss", RANKING) +
    rows("multi_margin_loss", MULTI) +
    rows("multilabel_margin_loss", MULTILABEL) +
    rows("multilabel_soft_margin_loss", MLSM)
)
