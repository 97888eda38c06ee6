"""The "c" backend: kernels compiled from ``csrc/`` through cffi, under the reference's
names and signatures (see ``fastloss._engine`` for the contract).

The compiled module ``fastloss._fastloss_c`` is built when fastloss is installed (or, in
a checkout, by ``python csrc/build_cffi.py``); it is never compiled on import. When it is
missing, importing this module raises an ImportError that says why, which the dispatcher
records and ``fastloss.show_backends()`` prints; every kernel then runs on the next
backend.

Each wrapper passes array memory with ``ffi.from_buffer`` (no copy; read-only arrays are
fine) and the sizes and parameters as numbers. cffi releases the GIL for the duration of
every C call, so other Python threads run while a kernel does. The kernels use their own
pthread pool; its size follows ``fastloss._threads`` (``set_num_threads``).
"""
import os

import numpy as np

from . import _threads
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
_threads._on_change.append(_apply_threads)


def isa():
    """The instruction set the kernels run with: "avx2" (AVX2+FMA) or "baseline"."""
    return "avx2" if lib.fl_isa() else "baseline"


def set_isa(name):
    """Ask for "avx2" or "baseline" kernels (for tests and comparisons); return the one
    now in use ("avx2" is only granted on a CPU that has AVX2 and FMA)."""
    if name not in ("avx2", "baseline"):
        raise ValueError(f"name: expected 'avx2' or 'baseline', got {name!r}")
    lib.fl_set_isa(1 if name == "avx2" else 0)
    return isa()


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


_NLL_FWD, _NLL_VG = _fns("nll_fwd"), _fns("nll_vg")
_CE_FWD, _CE_VG = _fns("ce_class_fwd"), _fns("ce_class_vg")
_CEP_FWD, _CEP_VG = _fns("ce_prob_fwd"), _fns("ce_prob_vg")


def nll_fwd(x, t, w, ignore_index, loss_out, target_stats):
    ctype = _kind(x)
    n, c, d = x.shape
    return _NLL_FWD[x.dtype](_buf(ctype, x), _buf(_I64, t), _opt(ctype, w), w.size, n, c, d,
                             ignore_index, _opt(ctype, loss_out), loss_out.size,
                             _buf(_F64_C, target_stats))


def nll_vg(x, t, w, ignore_index, gscale, gvec, loss_out, gx):
    ctype = _kind(x)
    n, c, d = x.shape
    return _NLL_VG[x.dtype](_buf(ctype, x), _buf(_I64, t), _opt(ctype, w), w.size, n, c, d,
                            ignore_index, gscale, _opt(ctype, gvec), gvec.size,
                            _opt(ctype, loss_out), loss_out.size, _buf(ctype, gx))


def _lane_classes(c, d):
    """The lanes layout (d > 1 or few classes) holds class indices in 32-bit lanes."""
    if c >= 2**31 and d > 1:
        raise Unsupported("more than 2^31 - 1 classes in an (N, C, D) layout")


def ce_class_fwd(x, t, w, ignore_index, label_smoothing, loss_out, target_stats):
    ctype = _kind(x)
    n, c, d = x.shape
    if d > 1:
        _lane_classes(c, d)
    return _CE_FWD[x.dtype](_buf(ctype, x), _buf(_I64, t), _opt(ctype, w), w.size, n, c, d,
                            ignore_index, label_smoothing, _opt(ctype, loss_out),
                            loss_out.size, _buf(_F64_C, target_stats))


def ce_class_vg(x, t, w, ignore_index, label_smoothing, gscale, gvec, loss_out, gx):
    ctype = _kind(x)
    n, c, d = x.shape
    if d > 1:
        _lane_classes(c, d)
    return _CE_VG[x.dtype](_buf(ctype, x), _buf(_I64, t), _opt(ctype, w), w.size, n, c, d,
                           ignore_index, label_smoothing, gscale, _opt(ctype, gvec), gvec.size,
                           _opt(ctype, loss_out), loss_out.size, _buf(ctype, gx))


def ce_prob_fwd(x, p, w, label_smoothing, loss_out):
    ctype = _kind(x)
    n, c, d = x.shape
    return _CEP_FWD[x.dtype](_buf(ctype, x), _buf(ctype, p), _opt(ctype, w), w.size, n, c, d,
                             label_smoothing, _opt(ctype, loss_out), loss_out.size)


def ce_prob_vg(x, p, w, label_smoothing, gscale, gvec, loss_out, gx):
    ctype = _kind(x)
    n, c, d = x.shape
    return _CEP_VG[x.dtype](_buf(ctype, x), _buf(ctype, p), _opt(ctype, w), w.size, n, c, d,
                            label_smoothing, gscale, _opt(ctype, gvec), gvec.size,
                            _opt(ctype, loss_out), loss_out.size, _buf(ctype, gx))


# ---- element-wise losses: (x, t, w[, param]) ------------------------------------------

def _pointwise(name, has_param):
    """The _fwd and _vg wrappers of an element-wise kernel taking x, t, w and, when
    has_param, one number after w (reference signature)."""
    fwd, vg = _fns(name + "_fwd"), _fns(name + "_vg")

    if has_param:
        def kernel_fwd(x, t, w, param, loss_out):
            ctype = _kind(x)
            return fwd[x.dtype](_buf(ctype, x), _buf(ctype, t), _opt(ctype, w), w.size, x.size,
                                param, _opt(ctype, loss_out), loss_out.size)

        def kernel_vg(x, t, w, param, gscale, gvec, loss_out, gx):
            ctype = _kind(x)
            return vg[x.dtype](_buf(ctype, x), _buf(ctype, t), _opt(ctype, w), w.size, x.size,
                               param, gscale, _opt(ctype, gvec), gvec.size,
                               _opt(ctype, loss_out), loss_out.size, _buf(ctype, gx))
    else:
        def kernel_fwd(x, t, w, loss_out):
            ctype = _kind(x)
            return fwd[x.dtype](_buf(ctype, x), _buf(ctype, t), _opt(ctype, w), w.size, x.size,
                                0.0, _opt(ctype, loss_out), loss_out.size)

        def kernel_vg(x, t, w, gscale, gvec, loss_out, gx):
            ctype = _kind(x)
            return vg[x.dtype](_buf(ctype, x), _buf(ctype, t), _opt(ctype, w), w.size, x.size,
                               0.0, gscale, _opt(ctype, gvec), gvec.size,
                               _opt(ctype, loss_out), loss_out.size, _buf(ctype, gx))

    kernel_fwd.__name__, kernel_vg.__name__ = name + "_fwd", name + "_vg"
    return kernel_fwd, kernel_vg


l1_fwd, l1_vg = _pointwise("l1", False)
mse_fwd, mse_vg = _pointwise("mse", False)
smooth_l1_fwd, smooth_l1_vg = _pointwise("smooth_l1", True)
huber_fwd, huber_vg = _pointwise("huber", True)
bce_fwd, bce_vg = _pointwise("bce", False)


# ---- binary cross-entropy on logits, element-wise margin losses -------------------------

_BCEL_FWD, _BCEL_VG = _fns("bce_logits_fwd"), _fns("bce_logits_vg")


def bce_logits_fwd(x, t, w, pw, loss_out):
    ctype = _kind(x)
    return _BCEL_FWD[x.dtype](_buf(ctype, x), _buf(ctype, t), _opt(ctype, w), w.size,
                              _opt(ctype, pw), pw.size, x.size, _opt(ctype, loss_out),
                              loss_out.size)


def bce_logits_vg(x, t, w, pw, gscale, gvec, loss_out, gx):
    ctype = _kind(x)
    return _BCEL_VG[x.dtype](_buf(ctype, x), _buf(ctype, t), _opt(ctype, w), w.size,
                             _opt(ctype, pw), pw.size, x.size, gscale, _opt(ctype, gvec),
                             gvec.size, _opt(ctype, loss_out), loss_out.size, _buf(ctype, gx))


_HINGE_FWD, _HINGE_VG = _fns("hinge_embedding_fwd"), _fns("hinge_embedding_vg")


def hinge_embedding_fwd(x, t, margin, loss_out):
    ctype = _kind(x)
    return _HINGE_FWD[x.dtype](_buf(ctype, x), _buf(ctype, t), x.size, margin,
                               _opt(ctype, loss_out), loss_out.size)


def hinge_embedding_vg(x, t, margin, gscale, gvec, loss_out, gx):
    ctype = _kind(x)
    return _HINGE_VG[x.dtype](_buf(ctype, x), _buf(ctype, t), x.size, margin, gscale,
                              _opt(ctype, gvec), gvec.size, _opt(ctype, loss_out),
                              loss_out.size, _buf(ctype, gx))


_SOFT_FWD, _SOFT_VG = _fns("soft_margin_fwd"), _fns("soft_margin_vg")


def soft_margin_fwd(x, t, loss_out):
    ctype = _kind(x)
    return _SOFT_FWD[x.dtype](_buf(ctype, x), _buf(ctype, t), x.size, _opt(ctype, loss_out),
                              loss_out.size)


def soft_margin_vg(x, t, gscale, gvec, loss_out, gx):
    ctype = _kind(x)
    return _SOFT_VG[x.dtype](_buf(ctype, x), _buf(ctype, t), x.size, gscale, _opt(ctype, gvec),
                             gvec.size, _opt(ctype, loss_out), loss_out.size, _buf(ctype, gx))


_RANK_FWD, _RANK_VG = _fns("margin_ranking_fwd"), _fns("margin_ranking_vg")


def margin_ranking_fwd(x1, x2, t, margin, loss_out):
    ctype = _kind(x1)
    return _RANK_FWD[x1.dtype](_buf(ctype, x1), _buf(ctype, x2), _buf(ctype, t), x1.size,
                               margin, _opt(ctype, loss_out), loss_out.size)


def margin_ranking_vg(x1, x2, t, margin, gscale, gvec, loss_out, gx1, gx2):
    ctype = _kind(x1)
    return _RANK_VG[x1.dtype](_buf(ctype, x1), _buf(ctype, x2), _buf(ctype, t), x1.size,
                              margin, gscale, _opt(ctype, gvec), gvec.size,
                              _opt(ctype, loss_out), loss_out.size, _buf(ctype, gx1),
                              _buf(ctype, gx2))


# ---- row losses: x of shape (N, C) ---------------------------------------------------

_MM_FWD, _MM_VG = _fns("multi_margin_fwd"), _fns("multi_margin_vg")


def multi_margin_fwd(x, t, w, p, margin, loss_out):
    ctype = _kind(x)
    n, c = x.shape
    return _MM_FWD[x.dtype](_buf(ctype, x), _buf(_I64, t), _opt(ctype, w), w.size, n, c, p,
                            margin, _opt(ctype, loss_out), loss_out.size)


def multi_margin_vg(x, t, w, p, margin, gscale, gvec, loss_out, gx):
    ctype = _kind(x)
    n, c = x.shape
    return _MM_VG[x.dtype](_buf(ctype, x), _buf(_I64, t), _opt(ctype, w), w.size, n, c, p,
                           margin, gscale, _opt(ctype, gvec), gvec.size, _opt(ctype, loss_out),
                           loss_out.size, _buf(ctype, gx))


_MLSM_FWD, _MLSM_VG = _fns("multilabel_soft_margin_fwd"), _fns("multilabel_soft_margin_vg")


def multilabel_soft_margin_fwd(x, y, w, loss_out):
    ctype = _kind(x)
    n, c = x.shape
    w_rows = w.shape[0] if w.size else 0   # weight: none, (1, C) or (N, C)
    return _MLSM_FWD[x.dtype](_buf(ctype, x), _buf(ctype, y), _opt(ctype, w), w_rows, n, c,
                              _opt(ctype, loss_out), loss_out.size)


def multilabel_soft_margin_vg(x, y, w, gscale, gvec, loss_out, gx):
    ctype = _kind(x)
    n, c = x.shape
    w_rows = w.shape[0] if w.size else 0
    return _MLSM_VG[x.dtype](_buf(ctype, x), _buf(ctype, y), _opt(ctype, w), w_rows, n, c,
                             gscale, _opt(ctype, gvec), gvec.size, _opt(ctype, loss_out),
                             loss_out.size, _buf(ctype, gx))
