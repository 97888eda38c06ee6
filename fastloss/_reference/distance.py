"""The triplet loss with a user's distance function (any callable other than torch's
pairwise distance, which runs in the triplet_margin kernels). Its params are
(margin, swap, distance_function): the one kernel whose params hold a Python object, as
the work is the callable's, called once per distance on the whole arrays."""
import numpy as np

from ._common import coef, f64, store

__all__ = ["triplet_distance_fwd", "triplet_distance_vg"]


def _distance(fn, x1, x2, shape, which):
    d = np.asarray(fn(x1, x2))
    if d.dtype.kind not in "fiu":
        raise TypeError(f"distance_function: expected it to return real numbers for {which}, "
                        f"got dtype {d.dtype}")
    if d.shape != tuple(shape):
        raise ValueError(f"distance_function: expected one distance per triplet, shape "
                         f"{tuple(shape)}, for {which}; it returned shape {d.shape}")
    return f64(d)


def _distances(a, p, n, swap, fn, shape):
    d_ap = _distance(fn, a, p, shape, "(anchor, positive)")
    d_an = _distance(fn, a, n, shape, "(anchor, negative)")
    d_pn = _distance(fn, p, n, shape, "(positive, negative)") if swap else None
    return d_ap, d_an, d_pn


def _shape(a, p, n):
    return np.broadcast_shapes(a.shape, p.shape, n.shape)[:-1]


def triplet_distance_fwd(a, p, n, margin, swap, fn, loss_out):
    d_ap, d_an, d_pn = _distances(a, p, n, swap, fn, _shape(a, p, n))
    d_neg = np.minimum(d_an, d_pn) if swap else d_an
    return store(np.maximum(margin + d_ap - d_neg, 0.0), loss_out)


def _vjp(fn, x1, x2, g, which):
    g1, g2 = fn.vjp(x1, x2, g.astype(x1.dtype))
    g1, g2 = f64(g1), f64(g2)
    for got, want, name in ((g1, x1, "x1"), (g2, x2, "x2")):
        if got.shape != want.shape:
            raise ValueError(f"distance_function.vjp: expected the gradient of {name} for "
                             f"{which} in shape {want.shape}, got {got.shape}")
    return g1, g2


def triplet_distance_vg(a, p, n, margin, swap, fn, gscale, gvec, loss_out, ga, gp, gn):
    if not callable(getattr(fn, "vjp", None)):
        raise TypeError("distance_function: its gradient is needed and it has none; give the "
                        "callable a `vjp(x1, x2, g) -> (g1, g2)` attribute returning the "
                        "gradients of sum(g * distance_function(x1, x2)) (fastloss never "
                        "differentiates a callable numerically)")
    shape = _shape(a, p, n)
    d_ap, d_an, d_pn = _distances(a, p, n, swap, fn, shape)
    d_neg = np.minimum(d_an, d_pn) if swap else d_an
    z = margin + d_ap - d_neg
    # clamp_min passes the gradient where z >= 0; torch.minimum splits it on a tie
    gz = np.where(z >= 0, coef(gscale, gvec) * np.ones(shape), 0.0)
    ga1, gp1 = _vjp(fn, a, p, gz, "(anchor, positive)")
    if swap:
        half = np.where(d_an == d_pn, -gz / 2, -gz)
        g_n = np.where(d_an > d_pn, 0.0, half)
        g_s = np.where(d_an < d_pn, 0.0, half)
        ga2, gn2 = _vjp(fn, a, n, g_n, "(anchor, negative)")
        gp3, gn3 = _vjp(fn, p, n, g_s, "(positive, negative)")
        ga[...] = ga1 + ga2
        gp[...] = gp1 + gp3
        gn[...] = gn2 + gn3
    else:
        ga2, gn2 = _vjp(fn, a, n, -gz, "(anchor, negative)")
        ga[...] = ga1 + ga2
        gp[...] = gp1
        gn[...] = gn2
    return store(np.maximum(z, 0.0), loss_out)
