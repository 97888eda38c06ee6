"""Cases of the row losses (the ``rows`` kernel family): multi-class and multi-label
margins, cosine embedding, triplet margin (with and without a distance function)."""
import numpy as np

from . import case_rows, mixed, nonfinite

NAN, INF = np.nan, np.inf


def signs(rng, shape, values=(-1.0, 1.0)):
    return rng.choice(np.asarray(values), size=shape)


def fixed(*arrays, int_last=False, **kw):
    """Fixed arrays, cast to the dtype (the last one to int64 when int_last)."""
    def make(dtype, rng):
        out = [np.asarray(a, dtype) for a in arrays]
        if int_last:
            out[-1] = np.asarray(arrays[-1], np.int64)
        return tuple(out), dict(kw)
    return make


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


MARGINS = (
    case_rows("multi_margin_loss", MULTI) +
    case_rows("multilabel_margin_loss", MULTILABEL) +
    case_rows("multilabel_soft_margin_loss", MLSM)
)


# ---- embeddings ---------------------------------------------------------------------

def cosine(shape1, shape2=None, t_shape=None, values=(-1.0, 1.0), int_target=False,
           scale=1.0, **kw):
    """Two batches of vectors and one label per row, drawn from `values`."""
    def make(dtype, rng):
        x1 = (rng.standard_normal(shape1) * scale).astype(dtype)
        x2 = (rng.standard_normal(shape1 if shape2 is None else shape2) * scale).astype(dtype)
        ts = shape1[:-1] if t_shape is None else t_shape
        t = np.asarray(rng.choice(np.asarray(values), size=ts),
                       np.int64 if int_target else dtype)
        return (x1, x2, t), dict(kw)
    return make


COSINE = {
    "2d": cosine((6, 5)),
    # torch sums input2's squares in float32 before promoting: float32-level agreement
    "mixed_dtypes": (mixed(cosine((6, 5)), which=(1,)), {"rtol64": 2e-5}),
    "1d": cosine((7,)),
    "margin": cosine((6, 4), margin=0.3),
    "margin_negative": cosine((6, 4), margin=-0.5),
    "broadcast_input2": cosine((5, 3), (1, 3)),
    "broadcast_target": cosine((4, 3), t_shape=(1,)),
    "int_target": cosine((6, 3), int_target=True),
    "target_not_pm1": cosine((8, 3), values=(-1.0, 0.0, 1.0, 2.0)),
    "one_dim": cosine((5, 1)),
    "no_dims": (cosine((3, 0)), {"fd": False}),
    "big_values": (cosine((5, 4), scale=1e4), {"fd": False}),
    "empty": (cosine((0, 4)), {"fd": False}),
    # cos == margin exactly (clamp kink, gradient passes), zero vectors (only EPSILON keeps
    # the denominator positive), NaN and infinite entries
    "edge": (fixed([[1.0, 0.0], [0.0, 0.0], [1.0, 1.0], [INF, 0.0], [1e-7, 1e-7], [0.0, 0.0]],
                   [[0.0, 1.0], [1.0, 2.0], [NAN, 1.0], [1.0, 1.0], [1e-7, -1e-7], [0.0, 0.0]],
                   [-1.0, -1.0, -1.0, 1.0, 1.0, 1.0]), {"fd": False}),
}


def triplet(shape_a, shape_p=None, shape_n=None, scale=1.0, **kw):
    def make(dtype, rng):
        a = rng.standard_normal(shape_a)
        p = rng.standard_normal(shape_a if shape_p is None else shape_p)
        n = rng.standard_normal(shape_a if shape_n is None else shape_n)
        return tuple(np.asarray(v * scale, dtype) for v in (a, p, n)), dict(kw)
    return make


# negative close to the anchor: every row has a positive loss, and swap matters
def near(shape, **kw):
    def make(dtype, rng):
        a = rng.standard_normal(shape)
        p = a + rng.standard_normal(shape)
        n = a + 0.3 * rng.standard_normal(shape)
        return tuple(np.asarray(v, dtype) for v in (a, p, n)), dict(kw)
    return make


TRIPLET = {
    "2d": triplet((6, 5)),
    "1d": triplet((7,)),
    "3d": triplet((2, 3, 4)),
    "scalar": triplet(()),
    "near": near((6, 4)),
    "margin_two": triplet((6, 4), margin=2.0),
    "p1": near((6, 4), p=1.0),
    "p3": near((6, 4), p=3.0),
    "p1_5": near((6, 4), p=1.5),
    "p0_5": near((6, 4), p=0.5),
    "p_inf": near((6, 4), p=np.inf),
    "eps_zero": near((6, 4), eps=0.0),
    "eps_big": near((6, 4), eps=0.1),
    "swap": near((8, 4), swap=True),
    "swap_p1": near((8, 4), swap=True, p=1.0),
    "swap_p3_margin": near((8, 4), swap=True, p=3.0, margin=0.5),
    "broadcast_positive": triplet((5, 3), (1, 3)),
    "broadcast_negative_swap": triplet((5, 3), None, (1, 3), swap=True),
    "one_dim": triplet((5, 1)),
    "no_dims": (triplet((3, 0)), {"fd": False}),
    "big_values": (triplet((5, 4), scale=1e3), {"fd": False}),
    "empty": (triplet((0, 4)), {"fd": False}),
}

# Zero differences with eps=0 (subgradient 0), a swap tie (half each), the clamp's kink
# (margin + d(a, p) - d(a, n) == 0 in the last row, gradient passes).
KINKS = ([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [1.0, 2.0]],
         [[2.0, 0.0], [1.0, 0.0], [0.0, 0.0], [1.0, 2.0]],
         [[1.0, 0.0], [2.0, 0.0], [0.5, 0.0], [1.0, 4.0]])
# NaN, infinities and +-1e4
VALUES = ([[0.0, 0.0, NAN], [0.0, 0.0, INF], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]],
          [[0.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 1.0, 0.0], [1e4, -1e4, 0.0]],
          [[0.1, 0.0, 0.0], [0.1, 0.0, 0.0], [0.1, 0.0, INF], [0.0, 0.0, 1.0]])

# both under every kind of norm (p = 1, 2 and inf have their own rules), with and without
# the swap; the clamp's kink (last row) only where the norm is exact: with p = 0.5, 1.5 or
# 3 the power and the root round, and the kink falls on either side of 0 with precision
for _p in (1.0, 1.5, 2.0, 3.0, 0.5, np.inf):
    kinks = KINKS if _p in (1.0, 2.0, np.inf) else tuple(k[:3] for k in KINKS)
    for _swap in (False, True):
        TRIPLET[f"edge_kinks_p{_p}_swap{int(_swap)}"] = (
            fixed(*kinks, eps=0.0, margin=2.0, p=_p, swap=_swap), {"fd": False})
        TRIPLET[f"edge_values_p{_p}_swap{int(_swap)}"] = (
            fixed(*VALUES, p=_p, swap=_swap), {"fd": False})


EMBEDDING = (
    case_rows("cosine_embedding_loss", COSINE) +
    case_rows("triplet_margin_loss", TRIPLET)
)

# distance_function=None (torch's pairwise distance, fused); the callables, routed or not,
# are in tests/test_distance_function.py (a callable cannot be stored in a golden fixture)
TRIPLET_DISTANCE = {
    "2d": triplet((6, 5)),
    "1d": triplet((7,)),
    "3d": triplet((2, 3, 4)),
    "near": near((6, 4)),
    "margin_small": near((6, 4), margin=1e-6),
    "margin_ten": triplet((6, 4), margin=10.0),
    "swap": near((8, 4), swap=True),
    "swap_margin": near((8, 4), swap=True, margin=0.5),
    "broadcast_positive": triplet((5, 3), (1, 3)),
    "one_dim": triplet((5, 1)),
    "empty": (triplet((0, 4)), {"fd": False}),
    "edge_kinks": (fixed(*KINKS, margin=2.0), {"fd": False}),
    "edge_values_swap": (fixed(*VALUES, swap=True), {"fd": False}),
}

CASES = MARGINS + EMBEDDING + case_rows("triplet_margin_with_distance_loss", TRIPLET_DISTANCE)
