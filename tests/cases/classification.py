import numpy as np

from . import case_rows, nonfinite

NAN, INF = np.nan, np.inf


def ce_case(n, c, extra=(), weight=False, ignore=0, smoothing=0.0, scale=2.0, ignore_index=None,
            probs=False, one_d=False):
    def make(dtype, rng):
        shape = (c,) if one_d else (n, c, *extra)
        x = (rng.standard_normal(shape) * scale).astype(dtype)
        kw = {}
        if probs:
            p = rng.uniform(size=shape)
            t = (p / p.sum(axis=0 if one_d else 1, keepdims=True)).astype(dtype)
        else:
            tshape = () if one_d else (n, *extra)
            t = np.asarray(rng.integers(0, c, size=tshape), np.int64)
            if ignore:
                ii = -100 if ignore_index is None else ignore_index
                mask = rng.uniform(size=tshape) < ignore
                t = np.where(mask, ii, t)
        if ignore_index is not None:
            kw["ignore_index"] = ignore_index
        if weight:
            kw["weight"] = rng.uniform(0.2, 2.0, c).astype(dtype)
        if smoothing:
            kw["label_smoothing"] = smoothing
        return (x, t), kw
    return make


def edge_logits(dtype, rng):
    x = np.array([[0.0, 1.0, 2.0],
                  [1e4, -1e4, 0.0],
                  [-1e4, -1e4, -1e4],
                  [np.inf, 0.0, 1.0],
                  [-np.inf, 0.0, 1.0],
                  [np.nan, 0.0, 1.0],
                  [-np.inf, -np.inf, -np.inf]], dtype)
    t = np.array([0, 1, 2, 1, 0, 2, 1])
    return (x, t), {}


BASE = {
    "2d": ce_case(8, 5),
    "1d_input": ce_case(1, 6, one_d=True),
    "kdim": ce_case(3, 4, extra=(2, 3)),
    "kdim_1": ce_case(2, 3, extra=(5,)),
    "weighted": ce_case(10, 4, weight=True),
    "ignored": ce_case(12, 5, ignore=0.3),
    "ignored_weighted_kdim": ce_case(3, 4, extra=(3,), weight=True, ignore=0.3),
    "ignore_in_range": ce_case(10, 4, ignore=0.3, ignore_index=2),
    "all_ignored": (ce_case(4, 3, ignore=1.0), {"fd": False}),
    "empty": (ce_case(0, 3), {"fd": False}),
    "one_class": ce_case(5, 1),
    "huge_logits": (ce_case(6, 4, scale=1e4), {"fd": False}),
    # NaN and infinite class weights: one that no target uses must reach no result (nor
    # its class's gradient column); one that is used makes its items (and "mean") NaN/inf
    "weight_nan_unused": nonfinite(ce_case(10, 4, weight=True), {1: NAN}, unused=True),
    "weight_inf_unused": nonfinite(ce_case(10, 5, weight=True), {0: INF, 3: -INF}, unused=True),
    "weight_nan_unused_kdim": nonfinite(ce_case(3, 4, extra=(3,), weight=True, ignore=0.3),
                                        {2: NAN}, unused=True),
    "weight_nan_used": nonfinite(ce_case(10, 4, weight=True), {1: NAN}),
    "weight_inf_used_ignored": nonfinite(ce_case(12, 4, weight=True, ignore=0.3),
                                         {0: -INF, 2: INF}),
}

CE_ONLY = {
    "smooth": ce_case(8, 5, smoothing=0.1),
    "smooth_weighted_ignored": ce_case(10, 4, weight=True, ignore=0.3, smoothing=0.25),
    "smooth_kdim": ce_case(3, 4, extra=(2, 2), smoothing=0.3, weight=True),
    "smooth_one": ce_case(6, 3, smoothing=1.0),
    "smooth_all_ignored": (ce_case(4, 3, ignore=1.0, smoothing=0.2), {"fd": False}),
    "probs": ce_case(6, 5, probs=True),
    "probs_1d": ce_case(1, 4, probs=True, one_d=True),
    "probs_weighted_smooth": ce_case(6, 5, probs=True, weight=True, smoothing=0.2),
    "probs_kdim": ce_case(2, 3, extra=(2, 2), probs=True),
    "probs_empty": (ce_case(0, 3, probs=True), {"fd": False}),
    "edge": (edge_logits, {"fd": False}),
    # with smoothing every class's weight counts in every counted item
    "smooth_weight_nan": nonfinite(ce_case(8, 5, weight=True, smoothing=0.1), {2: NAN}),
    "smooth_weight_inf": nonfinite(ce_case(8, 5, weight=True, smoothing=0.2), {1: INF}),
    "smooth_weight_ninf_kdim": nonfinite(ce_case(2, 4, extra=(3,), weight=True,
                                                 smoothing=0.3), {3: -INF}),
    "probs_weight_inf": nonfinite(ce_case(6, 5, probs=True, weight=True), {1: INF}),
    "probs_weight_nan_smooth": nonfinite(ce_case(6, 5, probs=True, weight=True,
                                                 smoothing=0.2), {3: NAN}),
    "probs_weight_ninf_kdim": nonfinite(ce_case(2, 3, extra=(2, 2), probs=True, weight=True,
                                                smoothing=0.1), {0: -INF}),
}


CASES = (
    case_rows("nll_loss", {k: v for k, v in BASE.items() if k != "huge_logits"}) +
    case_rows("cross_entropy", {**BASE, **CE_ONLY})
)
