import numpy as np

from . import mixed, nonfinite, rows


def pair(shape_x, shape_t=None, scale=1.0):
    def make(dtype, rng):
        x = np.asarray(rng.standard_normal(shape_x) * scale, dtype)
        t = np.asarray(rng.standard_normal(shape_x if shape_t is None else shape_t) * scale, dtype)
        return (x, t), {}
    return make


def with_kw(make, **kw):
    def m(dtype, rng):
        args, kwargs = make(dtype, rng)
        return args, {**kwargs, **{k: (v(dtype, rng) if callable(v) else v)
                                   for k, v in kw.items()}}
    return m


def weight_like(shape):
    return lambda dtype, rng: rng.uniform(0.1, 2.0, shape).astype(dtype)


def edge_values(dtype, rng):
    x = np.array([0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, 1e4, -1e4, 0.5], dtype)
    t = np.array([0.0, 1.0, 1.0, 0.0, np.inf, 0.0, -1e4, 1e4, 0.5], dtype)
    return (x, t), {}


COMMON = {
    "small": pair((7,)),
    "2d": pair((4, 5)),
    "4d": pair((2, 3, 2, 2)),
    "scalar": pair(()),
    "empty": (pair((0, 3)), {"fd": False}),
    "broadcast": (pair((3, 1), (1, 4)), {}),
    "big_values": (pair((16,), scale=1e3), {"fd": False}),
    "edge": (edge_values, {"fd": False}),
}

# NaN and infinite element weights: they reach their own items only
WEIGHT_NONFINITE = nonfinite(with_kw(pair((3, 4)), weight=weight_like((3, 4))),
                             {1: np.nan, 5: np.inf, 10: -np.inf})

CASES = (
    rows("l1_loss", {**COMMON, "weighted": with_kw(pair((3, 4)), weight=weight_like((3, 4))),
                     "weight_nonfinite": WEIGHT_NONFINITE}) +
    rows("mse_loss", {**COMMON, "weighted": with_kw(pair((3, 4)), weight=weight_like((3, 4))),
                      "weight_nonfinite": WEIGHT_NONFINITE,
                      "mixed_dtypes": mixed(pair((3, 4)), which=(1,))}) +
    rows("smooth_l1_loss", {**COMMON,
                            "beta_half": with_kw(pair((5, 4)), beta=0.5),
                            "beta_zero": with_kw(pair((5, 4)), beta=0.0),
                            "beta_big": with_kw(pair((5, 4)), beta=3.0)}) +
    rows("huber_loss", {**COMMON,
                        "delta_half": with_kw(pair((5, 4)), delta=0.5),
                        "delta_big": with_kw(pair((5, 4)), delta=3.0),
                        "weighted": with_kw(pair((3, 4)), weight=weight_like((3, 4)),
                                            delta=0.7),
                        "weight_nonfinite": WEIGHT_NONFINITE})
)
