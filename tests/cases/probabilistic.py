import numpy as np

from . import rows


def arr(values, dtype):
    return np.asarray(values, dtype)


# ---- poisson_nll_loss ----------------------------------------------------------------

def poisson(shape_x, shape_t=None, log_input=True, rate=3.0, **kw):
    """Log-rates (or rates) and Poisson counts, with both t <= 1 and t > 1 present."""
    def make(dtype, rng):
        st = shape_x if shape_t is None else shape_t
        if log_input:
            x = rng.normal(0.5, 1.0, shape_x)
        else:
            x = rng.uniform(0.05, 4.0, shape_x)
        t = rng.poisson(rate, st).astype(np.float64)
        extra = {} if log_input else {"log_input": False}
        return (arr(x, dtype), arr(t, dtype)), {**extra, **kw}
    return make


def poisson_int_target(dtype, rng):
    # Not full=True: torch takes log() of an int64 target in float32 (the default dtype), so
    # its Stirling term is only float32-accurate even for float64 input; ours is float64.
    x = rng.normal(0.0, 1.0, (3, 4))
    return (arr(x, dtype), rng.poisson(2.0, (3, 4)).astype(np.int64)), {}


def poisson_zero_rate(dtype, rng):
    # rate 0 with log_input=False: only eps keeps log finite
    x = np.array([0.0, 0.0, 1e-9, 0.5, 2.0, 0.0])
    t = np.array([0.0, 2.0, 1.0, 3.0, 0.0, 1.0])
    return (arr(x, dtype), arr(t, dtype)), {"log_input": False, "eps": 1e-3}


def poisson_edge(log_input, full):
    def make(dtype, rng):
        x = [0.0, 1.0, -1.0, 50.0, -50.0, np.inf, -np.inf, np.nan, 2.0, 2.0, 0.5, 3.0, 1e-3]
        t = [0.0, 1.0, 2.0, 3.0, 1.5, 1.0, 1.0, 1.0, np.inf, np.nan, -1.0, 0.0, 1e4]
        return (arr(x, dtype), arr(t, dtype)), {"log_input": log_input, "full": full}
    return make


POISSON = {
    "log_input": poisson((4, 5)),
    "log_input_full": poisson((4, 5), full=True),
    "rate": poisson((4, 5), log_input=False),
    "rate_full": poisson((3, 6), log_input=False, full=True),
    "rate_eps": poisson((3, 6), log_input=False, eps=0.25),
    "big_counts_full": poisson((10,), rate=200.0, full=True),
    "kdim": poisson((2, 3, 2, 2), full=True),
    "broadcast": poisson((3, 1), (1, 4)),
    "broadcast_target_bigger": poisson((4,), (2, 3, 4), log_input=False, full=True),
    "scalar": poisson(()),
    "scalar_rate_full": poisson((), log_input=False, full=True, rate=5.0),
    "empty": (poisson((0, 3)), {"fd": False}),
    "int_target": poisson_int_target,
    "zero_rate": (poisson_zero_rate, {"fd": False}),
}
for _li in (True, False):
    for _full in (False, True):
        POISSON[f"edge_log{int(_li)}_full{int(_full)}"] = (poisson_edge(_li, _full), {"fd": False})


# ---- gaussian_nll_loss ---------------------------------------------------------------

def gaussian(shape_x, shape_var, shape_t=None, low=0.1, scalar_var=None, **kw):
    """shape_var None: a Python float var (scalar_var)."""
    def make(dtype, rng):
        x = rng.normal(0.0, 1.0, shape_x)
        t = rng.normal(0.0, 1.0, shape_x if shape_t is None else shape_t)
        if shape_var is None:
            var = scalar_var
        else:
            var = arr(rng.uniform(low, 2.0, shape_var), dtype)
        return (arr(x, dtype), arr(t, dtype), var), kw
    return make


def gaussian_small_var(dtype, rng):
    # var below eps (and exactly 0): torch clamps under no_grad, so d/dvar is taken at eps
    x = rng.normal(0.0, 1.0, (2, 4))
    t = rng.normal(0.0, 1.0, (2, 4))
    var = np.array([[1e-8, 0.0, 0.5, 1e-6], [2.0, 1e-7, 3e-6, 0.0]])
    return (arr(x, dtype), arr(t, dtype), arr(var, dtype)), {}


def gaussian_eps(dtype, rng):
    x = rng.normal(0.0, 1.0, (3, 4))
    t = rng.normal(0.0, 1.0, (3, 4))
    var = rng.uniform(0.0, 1.0, (3, 4))
    return (arr(x, dtype), arr(t, dtype), arr(var, dtype)), {"eps": 0.3, "full": True}


def gaussian_edge(dtype, rng):
    x = [0.0, np.inf, -np.inf, np.nan, 1e4, 1.0, 1.0, 2.0]
    t = [0.0, 0.0, 1.0, 0.0, -1e4, np.inf, 1.0, 2.0]
    var = [1.0, 1.0, 2.0, 1.0, 1e-3, 1.0, np.nan, np.inf]
    return (arr(x, dtype), arr(t, dtype), arr(var, dtype)), {}


GAUSSIAN = {
    "hetero": gaussian((4, 3), (4, 3)),
    "hetero_full": gaussian((4, 3), (4, 3), full=True),
    "homo_last_dim": gaussian((4, 3), (4,)),
    "homo_last_dim_square": gaussian((3, 3), (3,)),      # (3,) is used as (3, 1), not (1, 3)
    "homo_size_one": gaussian((4, 3), (4, 1)),
    "homo_mid_dim": gaussian((2, 3, 4), (2, 1, 4)),
    "homo_first_dim": gaussian((2, 3, 4), (1, 3, 4), full=True),
    "var_0d_for_1d": gaussian((5,), ()),
    "var_float": gaussian((4, 3), None, scalar_var=0.7),
    "var_float_full": gaussian((6,), None, scalar_var=2.5, full=True),
    "broadcast_target": gaussian((2, 3), (2,), shape_t=(5, 2, 3)),
    "broadcast_target_float_var": gaussian((2, 3), None, shape_t=(4, 1, 1), scalar_var=1.5),
    "scalar": gaussian((), ()),
    "empty": (gaussian((0, 3), (0,)), {"fd": False}),
    "small_var": (gaussian_small_var, {"fd": False}),
    "eps": (gaussian_eps, {"fd": False}),
    "edge": (gaussian_edge, {"fd": False}),
}


# ---- kl_div ----------------------------------------------------------------------------

def log_softmax(z, axis=-1):
    z = z - z.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def kl(shape, shape_t=None, log_target=False, zeros=0.0):
    def make(dtype, rng):
        x = log_softmax(rng.normal(0.0, 1.5, shape)) if len(shape) else rng.normal(-1.0, 0.5)
        st = shape if shape_t is None else shape_t
        lt = log_softmax(rng.normal(0.0, 1.5, st)) if len(st) else rng.normal(-1.0, 0.5)
        t = np.asarray(lt if log_target else np.exp(lt))
        if zeros:
            t = np.where(rng.uniform(size=t.shape) < zeros, -np.inf if log_target else 0.0, t)
        kw = {"log_target": True} if log_target else {}
        return (arr(x, dtype), arr(t, dtype)), kw
    return make


def kl_edge(log_target):
    def make(dtype, rng):
        x = [0.1, -1.0, 0.0, 2.0, np.nan, np.inf, -np.inf, 1.0, np.nan, np.inf, -np.inf, 3.0]
        t = [0.0, 0.0, -1.0, np.nan, 0.5, 0.5, 0.5, np.inf, 0.0, 0.0, 0.0, -np.inf]
        return (arr(x, dtype), arr(t, dtype)), {"log_target": log_target}
    return make


KL_REDUCTIONS = ("none", "mean", "sum", "batchmean")
KL = {
    "probs": kl((4, 5)),
    "log_target": kl((4, 5), log_target=True),
    "zeros_in_target": kl((6, 4), zeros=0.3),
    # a -inf log-target makes those items NaN (0 * inf, as in torch): no finite differences
    "neg_inf_log_target": (kl((6, 4), log_target=True, zeros=0.3), {"fd": False}),
    "kdim": kl((2, 3, 4)),
    "one_d": kl((5,)),
    "broadcast_target": kl((3, 4), shape_t=(4,)),
    "broadcast_target_bigger": kl((4,), shape_t=(3, 4), log_target=True),
    "scalar": kl(()),
    "scalar_log_target": kl((), log_target=True),
    "empty": (kl((0, 4)), {"fd": False}),
    "edge": (kl_edge(False), {"fd": False}),
    "edge_log_target": (kl_edge(True), {"fd": False}),
}


CASES = (
    rows("poisson_nll_loss", POISSON) +
    rows("gaussian_nll_loss", GAUSSIAN) +
    rows("kl_div", KL, reductions=KL_REDUCTIONS)
)
