"""The "c" backend: kernels compiled from ``csrc/`` through cffi, under the reference's
names and signatures (see ``fastloss._engine`` for the contract).

The compiled module ``fastloss._fastloss_c`` is built when fastloss is installed (or, in
a checkout, by ``python csrc/build_cffi.py``); it is never compiled on import. When it is
missing, importing this module raises an ImportError that says why, which the dispatcher
records and ``fastloss.show_backends()`` prints; every kernel then runs on the next
backend.

Each wrapper passes array memory with ``ffi.from_buffer`` (no copy; read-only arrays are
fine) and the sizes and parameters as numbers. The wrappers are generated from the
kernels' declarations (``fastloss._kernels``) and the argument names of the C header
(carried by the compiled module, ``fl_abi()``); only ``class_targets`` is written out.
cffi releases the GIL for the duration of every C call, so other Python threads run while
a kernel does. The kernels use their own
pthread pool; its size follows ``fastloss._threads`` (``set_num_threads``).
"""
import os

import numpy as np

from . import _kernels, _threads
from ._dispatch import Unsupported


def _why_missing(exc):
    status = os.path.join(os.path.dirname(__file__), "_fastloss_c_build.txt")
    try:
        with open(status) as f:
            reason = "at install time: " + f.read().strip()
    except OSError:
        reason = "the compiled module fastloss._fastloss_c is not there"
    return (f"C kernels not built ({reason}; import said: {exc}). To build them, install a "
            "C compiler (gcc or clang) and reinstall from your fastloss source directory "
            "(the git checkout or unpacked sdist you installed from): `pip install .` "
            "(`pip install -e .` for an editable install), or `python csrc/build_cffi.py` "
            "there to build the module in place.")


if os.environ.get("FASTLOSS_NO_C") == "1":
    # The same switch that skips the build at install time turns the backend off at run
    # time (to compare backends, or to rule the C code out).
    raise ImportError("C backend disabled: FASTLOSS_NO_C=1 is set in the environment")

try:
    from ._fastloss_c import ffi, lib
except ImportError as exc:
    raise ImportError(_why_missing(exc)) from exc

_buf = ffi.from_buffer
_I64 = ffi.typeof("int64_t[]")
_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)
_CTYPE = {_F32: ffi.typeof("float[]"), _F64: ffi.typeof("double[]")}
_F64_C = _CTYPE[_F64]
_NULL = ffi.NULL


def _opt(ctype, a):
    """An optional array (weight, gvec, loss_out...): NULL when empty, which the C side
    reads as absent anyway; skipping from_buffer saves a few hundred ns per call."""
    return _buf(ctype, a) if a.size else _NULL


def _kind(a):
    """The C array type for a float array's dtype (other dtypes go to the next backend)."""
    ctype = _CTYPE.get(a.dtype)
    if ctype is None:
        raise Unsupported(f"dtype {a.dtype}")
    return ctype


def _fns(name):
    return {_F32: getattr(lib, f"fl_{name}_f32"), _F64: getattr(lib, f"fl_{name}_f64")}


# ---- threads and instruction set ----------------------------------------------------

def _apply_threads(n):
    lib.fl_set_num_threads(int(n))


_apply_threads(_threads.get_num_threads())
_threads.on_change(_apply_threads)


# the kernel passes, by fl_isa()'s number: each is compiled from the same templates
ISAS = ("baseline", "avx2", "avx512")


def isa():
    """The instruction set the kernels run with: "avx512" (AVX-512 F/VL/DQ/BW), "avx2"
    (AVX2+FMA) or "baseline"."""
    return ISAS[lib.fl_isa()]


def set_isa(name):
    """Ask for "avx512", "avx2" or "baseline" kernels (for tests and comparisons); return
    the one now in use (a pass is only granted on a CPU that runs it, else the widest
    below it that does)."""
    if name not in ISAS:
        raise ValueError(f"name: expected one of {', '.join(map(repr, ISAS))}, got {name!r}")
    lib.fl_set_isa(ISAS.index(name))
    return isa()


def isas():
    """Every pass this CPU runs, narrowest first (what the tests run each kernel on)."""
    before = isa()
    try:
        return [name for name in ISAS if set_isa(name) == name]
    finally:
        set_isa(before)


if os.environ.get("FASTLOSS_C_ISA"):
    set_isa(os.environ["FASTLOSS_C_ISA"])


# ---- class losses -------------------------------------------------------------------

_TARGETS = _fns("class_targets")


def class_targets(t, w, n_classes, ignore_index, use_ignore):
    ctype = _kind(w)
    bad = ffi.new("int64_t *")
    wsum = _TARGETS[w.dtype](_buf(_I64, t), t.size, _opt(ctype, w), w.size, n_classes,
                             ignore_index, 1 if use_ignore else 0, bad)
    return wsum, int(bad[0])


def _lane_classes(c, d):
    """The lanes layout (d > 1 or few classes) holds class indices in 32-bit lanes."""
    if d > 1 and c >= 2**31:
        raise Unsupported("more than 2^31 - 1 classes in an (N, C, D) layout")


# Checks a kernel makes before its call (raising Unsupported: the next backend runs it).
_CHECKS = {"ce_class": "_lane_classes(c, d)"}

# ---- every other kernel: generated -------------------------------------------------------
# Each wrapper is generated from the kernel's declaration (fastloss._kernels) and the
# argument names of its C function in the header the module was built from (fl_abi()):
# straight-line code like a hand-written one, with no per-call interpretation.
_ABI = _kernels.parse_cdef(ffi.string(lib.fl_abi()).decode())


def _wrapper_source(kernel, suffix):
    exprs, unpack = _kernels.c_arguments(kernel, suffix,
                                         _ABI[_kernels.c_name(kernel, suffix)])
    a0 = kernel.arrays[0]
    body = [f"ctype = _kind({a0})", unpack, _CHECKS.get(kernel.name, "") if unpack else "",
            f"return _FN_{kernel.name}{suffix}[{a0}.dtype]({', '.join(exprs)})"]
    return (f"def {kernel.name}{suffix}({', '.join(kernel.signature(suffix))}):\n"
            + "".join(f"    {line}\n" for line in body if line))


# every declared kernel the module exports (its header's to say, checked against the
# declarations by tests/test_kernels.py)
for _k in _kernels.c_kernels(_ABI):
    if _k.name != "class_targets":
        for _s in _k.suffixes:
            globals()[f"_FN_{_k.name}{_s}"] = _fns(_k.name + _s)
            exec(compile(_wrapper_source(_k, _s), f"<fastloss._cffi: {_k.name}{_s}>", "exec"),
                 globals())
del _k, _s
