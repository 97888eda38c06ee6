"""Test cases per loss, shared by every test (vs torch, vs the reference, gradients,
golden fixtures) and by the benchmarks' correctness check.

A case is a function of the dtype returning (args, kwargs) for the loss, made from a
seeded generator so it is the same on every run. The harness adds `reduction` (each of
`Case.reductions`) itself, so cases never set it.
"""
import zlib
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Case:
    loss: str                  # registry name
    id: str                    # unique within the loss
    make: object               # make(dtype, rng) -> (args, kwargs)
    reductions: tuple = ("none", "mean", "sum")
    grad: bool = True          # compare gradients too
    fd: bool = True            # include in the finite-difference check (smooth at the point)
    rtol32: float = 2e-5       # float32 tolerance against torch
    rtol64: float = 1e-9       # float64 tolerance against torch
    fd_kwargs: tuple = ()      # fastloss-only keywords for the finite-difference check
                               #   (ctc_loss: exact_grad=True, the true derivative)

    def build(self, dtype):
        rng = np.random.default_rng(zlib.crc32(f"{self.loss}/{self.id}".encode()))
        return self.make(np.dtype(dtype), rng)


def other_dtype(dtype):
    """float64 for float32 and float32 for float64: for cases that mix them."""
    return np.dtype(np.float64 if np.dtype(dtype) == np.float32 else np.float32)


def mixed(make, which):
    """`make` with the array arguments at positions `which` cast to the other float dtype:
    the result promotes to float64 and each gradient comes back in its input's dtype."""
    def m(dtype, rng):
        args, kwargs = make(dtype, rng)
        return tuple(a.astype(other_dtype(dtype)) if i in which else a
                     for i, a in enumerate(args)), kwargs
    return m


def nonfinite(make, put, key="weight", unused=False):
    """`make` with entries of its `key` argument (flat positions -> value, `put`) set to
    NaN or +-inf. With `unused`, class-index targets (the second argument) that name one
    of those positions are moved to the next class, so that no item uses a poisoned weight
    (a weight that no target uses must not reach any result).

    Such cases are never in the finite-difference check (a NaN or infinite loss)."""
    def m(dtype, rng):
        args, kwargs = make(dtype, rng)
        w = np.array(kwargs[key], copy=True)
        flat = w.reshape(-1)
        for pos, value in put.items():
            flat[pos] = value
        kwargs = {**kwargs, key: w}
        if unused:
            t = np.array(args[1], copy=True)
            for pos in put:
                t = np.where(t == pos, (pos + 1) % flat.size, t)
            assert not np.isin(t, list(put)).any()
            args = (args[0], t, *args[2:])
        return args, kwargs
    return m, {"fd": False}


def case_rows(loss, table, **common):
    """[Case] from {id: make} (or {id: (make, {Case options})})."""
    out = []
    for case_id, item in table.items():
        make, opts = (item if isinstance(item, tuple) else (item, {}))
        opts = {**common, **opts}
        if isinstance(opts.get("fd_kwargs"), dict):
            opts["fd_kwargs"] = tuple(sorted(opts["fd_kwargs"].items()))
        out.append(Case(loss, case_id, make, **opts))
    return out


def _collect():
    """Every module in this package is a family; each defines CASES, a list of Case."""
    import importlib
    import pkgutil
    cases = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        for c in module.CASES:
            cases.setdefault(c.loss, []).append(c)
    return cases


CASES = _collect()
