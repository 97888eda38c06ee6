"""What "a backend equals the reference" means, declared once for
tests/test_backends.py::test_backend_matches_reference: the backend variants checked, the
kernels each backend must provide, and the tolerance of each comparison, with its reason.
"""
import contextlib
from dataclasses import dataclass

import numpy as np

from fastloss import _dispatch, _kernels

# ---- the kernels each backend must provide ------------------------------------------------

def required_kernels(backend):
    """The full kernel names (``ce_class_fwd``, ``class_targets`` ...) that `backend` must
    provide: a missing one fails the test of every case that uses it instead of falling
    through unnoticed. Read from the one declaration, ``fastloss._kernels`` (each kernel's
    ``backends``); a backend it does not know (a plug-in) must provide none."""
    if backend not in _kernels.BACKENDS:
        return set()
    return set(_kernels.required_kernels(backend))


# ---- the backend variants ------------------------------------------------------------------

@dataclass(frozen=True)
class Variant:
    id: str            # the test id: "numba", "c-baseline", "c-avx2", "c-avx512"
    backend: str       # the backend= it runs with
    isa: str = None    # the C module's instruction set (_cffi.ISAS), else None

    @contextlib.contextmanager
    def setup(self):
        """Run the block with this variant's instruction set, restored afterwards."""
        if self.isa is None:
            yield
            return
        from fastloss import _cffi
        before = _cffi.isa()
        _cffi.set_isa(self.isa)
        try:
            yield
        finally:
            _cffi.set_isa(before)


def backend_variants():
    """Every compiled backend that loaded, the C one once per instruction set this CPU
    runs (its kernels are built twice, and either may be chosen at run time)."""
    out = []
    for name in _dispatch.backend_names():
        b = _dispatch._BACKENDS[name]
        if name == "numpy" or not b.available:
            continue
        if name == "c":
            from fastloss import _cffi
            out += [Variant(f"c-{isa}", "c", isa) for isa in _cffi.isas()]
        else:
            out.append(Variant(name, name))
    return out


# ---- tolerances ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Tolerance:
    rtol: float        # relative, and absolute at the scale of the expected values
    why: str


# (backend, dtype) -> the tolerance against the NumPy reference (which computes in float64)
TOLERANCES = {
    ("numba", np.dtype(np.float32)): Tolerance(
        2e-6, "float32 lanes inside a row with ~1 ulp polynomial exp/log (6e-8 each), "
              "rounded once more to float32 on the way out, and a different summation "
              "order: a few ulp, 2e-6 leaves room for rows of a few thousand terms"),
    ("numba", np.dtype(np.float64)): Tolerance(
        1e-12, "float64 throughout with polynomial exp/log of ~1 ulp and blocked sums: a "
               "few thousand ulp (2e-16 each) at most"),
    ("c", np.dtype(np.float32)): Tolerance(
        2e-6, "as numba's float32: the same float32 lanes, polynomials and blocked "
              "float64 accumulation, in either instruction set"),
    ("c", np.dtype(np.float64)): Tolerance(
        1e-12, "as numba's float64, in either instruction set (the baseline and AVX2+FMA "
               "builds round their fused multiply-adds differently, well inside it)"),
}
# any other backend (a plug-in): the built-in backends' bar
DEFAULT = {np.dtype(np.float32): Tolerance(2e-6, "as the built-in backends"),
           np.dtype(np.float64): Tolerance(1e-12, "as the built-in backends")}


def tolerance(backend, dtype):
    """The rtol a backend's values and gradients must meet against the reference."""
    dtype = np.dtype(dtype)
    return TOLERANCES.get((backend, dtype), DEFAULT[dtype]).rtol
