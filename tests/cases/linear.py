import numpy as np

from . import case_rows


def lce(n, d, c, out_features=(), bias=False, probs=False, weight=False, ignore=0.0,
        ignore_index=None, smoothing=0.0, unbatched=False, scale=1.0):
    def make(dtype, rng):
        x = rng.standard_normal((d,) if unbatched else (n, d)).astype(dtype)
        w = (rng.standard_normal((c, *out_features, d)) * scale).astype(dtype)
        batch = x.shape[:-1]
        kw = {}
        if probs:
            p = rng.uniform(size=(*batch, c, *out_features))
            t = (p / p.sum(axis=len(batch), keepdims=True)).astype(dtype)
        else:
            t = np.asarray(rng.integers(0, c, size=(*batch, *out_features)), np.int64)
            if ignore:
                ii = -100 if ignore_index is None else ignore_index
                t = np.where(rng.uniform(size=t.shape) < ignore, ii, t)
        if ignore_index is not None:
            kw["ignore_index"] = ignore_index
        if bias:
            kw["linear_bias"] = rng.standard_normal((c, *out_features)).astype(dtype)
        if weight:
            kw["weight"] = rng.uniform(0.5, 2.0, c).astype(dtype)
        if smoothing:
            kw["label_smoothing"] = smoothing
        return (x, w, t), kw
    return make


LINEAR = {
    "2d": lce(8, 5, 4),
    "bias": lce(8, 5, 4, bias=True),
    "kdim_bias": lce(6, 5, 4, out_features=(3, 2), bias=True),
    "unbatched": lce(1, 6, 5, unbatched=True),
    "unbatched_probs": lce(1, 6, 5, unbatched=True, probs=True),
    "probs": lce(8, 5, 4, probs=True),
    "probs_kdim_weighted_smooth": lce(6, 5, 4, out_features=(3,), probs=True, weight=True,
                                      smoothing=0.2),
    "weighted_ignored_smooth": lce(10, 5, 6, weight=True, ignore=0.3, smoothing=0.1),
    "ignore_in_range": lce(10, 4, 5, ignore=0.3, ignore_index=1, bias=True),
    "ignore_out_of_range": lce(10, 4, 5, ignore=0.3, ignore_index=9),
    "all_ignored": (lce(4, 3, 3, ignore=1.0), {"fd": False}),
    "wide": lce(5, 3, 300, bias=True),
    "big_logits": (lce(6, 4, 5, scale=1e3), {"fd": False}),
}

CASES = case_rows("linear_cross_entropy", LINEAR)
