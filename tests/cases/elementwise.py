"""Cases of the element-wise losses (the ``elementwise`` kernel family): regression,
binary cross-entropy, Poisson/Gaussian NLL, KL divergence, hinge embedding, soft margin
and margin ranking."""
import numpy as np

from . import case_rows, mixed, nonfinite

NAN, INF = np.nan, np.inf


def arr(values, dtype):
    return np.asarray(values, dtype)


# ---- regression -------------------------------------------------------------------------

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

REGRESSION = (
    case_rows("l1_loss", {**COMMON, "weighted": with_kw(pair((3, 4)), weight=weight_like((3, 4))),
                     "weight_nonfinite": WEIGHT_NONFINITE}) +
    case_rows("mse_loss", {**COMMON, "weighted": with_kw(pair((3, 4)), weight=weight_like((3, 4))),
                      "weight_nonfinite": WEIGHT_NONFINITE,
                      "mixed_dtypes": mixed(pair((3, 4)), which=(1,))}) +
    case_rows("smooth_l1_loss", {**COMMON,
                            "beta_half": with_kw(pair((5, 4)), beta=0.5),
                            "beta_zero": with_kw(pair((5, 4)), beta=0.0),
                            "beta_big": with_kw(pair((5, 4)), beta=3.0)}) +
    case_rows("huber_loss", {**COMMON,
                        "delta_half": with_kw(pair((5, 4)), delta=0.5),
                        "delta_big": with_kw(pair((5, 4)), delta=3.0),
                        "weighted": with_kw(pair((3, 4)), weight=weight_like((3, 4)),
                                            delta=0.7),
                        "weight_nonfinite": WEIGHT_NONFINITE})
)


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


BINARY = (
    case_rows("binary_cross_entropy", BCE) +
    case_rows("binary_cross_entropy_with_logits", LOGITS)
)


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


PROBABILISTIC = (
    case_rows("poisson_nll_loss", POISSON) +
    case_rows("gaussian_nll_loss", GAUSSIAN) +
    case_rows("kl_div", KL, reductions=KL_REDUCTIONS)
)


# ---- element-wise margins ------------------------------------------------------------

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


CASES = (
    REGRESSION + BINARY + PROBABILISTIC +
    case_rows("hinge_embedding_loss", HINGE) +
    case_rows("soft_margin_loss", SOFT) +
    case_rows("margin_ranking_loss", RANKING)
)
