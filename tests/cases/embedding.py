import numpy as np

from . import mixed, rows

NAN, INF = np.nan, np.inf


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


def fixed(*arrays, **kw):
    def make(dtype, rng):
        return tuple(np.asarray(a, dtype) for a in arrays), dict(kw)
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


CASES = (
    rows("cosine_embedding_loss", COSINE) +
    rows("triplet_margin_loss", TRIPLET)
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

CASES = CASES + rows("triplet_margin_with_distance_loss", TRIPLET_DISTANCE)
