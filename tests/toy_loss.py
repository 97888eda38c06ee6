"""A test-only loss that torch does not have: log-cosh, registered the way a real one is.

``pytest --toy-loss`` (tests/conftest.py) registers it before the tests are collected, so
every registry-driven test runs over it too; ``python tests/make_golden.py --toy-loss
log_cosh_loss`` makes its golden fixture (from the float64 reference: it has no torch
twin). It proves that a loss without a torch twin passes the whole suite: its oracle is
the reference, finite differences and every backend against the reference.

It is what adding an element-wise loss with its gradient takes, each part where it would
live in the package (here injected into those namespaces instead, since it must not ship),
four places, all in the element-wise family's modules (one taxonomy in every layer):

1. its reference math (``fastloss/_reference/elementwise.py``): ``log_cosh_fwd/_vg``;
2. its Numba loop (``fastloss/_numba/elementwise.py``): in the package only the
   ``_log_cosh_pts`` loop, whose block and drivers are generated from the declaration (the
   toy writes two serial kernels instead, so as not to write Numba's on-disk cache);
3. its registry row and public function (``fastloss/functional/elementwise.py``, with
   ``oracle=None``; its name in that module's ``__all__``). The row declares the kernel
   (``log_cosh``: the element-wise standard signature ``x t``, nothing in
   ``fastloss/_kernels.py``) and the class is made from the function
   (``fastloss.losses.make_class``: nothing in ``losses.py``);
4. its case rows (``tests/cases/elementwise.py``).

That is 4 files and 5 edits in Python, 2 and 2 in C (counted by adding log-cosh in the
package for real, in a scratch commit); before, 8 files and 10 edits in Python
(reference, Numba, function, functional/__init__ twice, losses.py twice, _kernels.py,
cases, bench data) and 4 files and 6 edits in C.

The benchmark's data comes from the kernel's standard signature (no row in
``fastloss/_bench/data.py``) and the golden fixture is generated. No C kernel here: calls
on the C backend fall through (with one, it is two more places: its math in
``csrc/elementwise.inc`` and its row in the C kernel list).
"""
from __future__ import annotations

import importlib
import math

import numpy as np

# at module level: typing.get_type_hints resolves the annotations in this namespace
from fastloss._typing import ArrayLike, Prepared

NAME = "log_cosh_loss"
CLASS_NAME = "LogCoshLoss"
LOG2 = math.log(2.0)


# ---- 1. reference math (float64; see fastloss._reference._common) -------------------------

def _log_cosh(d):
    """log cosh d = |d| + log1p(exp(-2|d|)) - log 2, which never overflows."""
    a = np.abs(d)
    return a + np.log1p(np.exp(-2.0 * a)) - LOG2


def log_cosh_fwd(x, t, loss_out):
    from fastloss._reference._common import f64, store
    return store(_log_cosh(f64(x) - t), loss_out)


def log_cosh_vg(x, t, gscale, gvec, loss_out, gx):
    from fastloss._reference._common import coef, f64, store
    d = f64(x) - t
    gx[...] = coef(gscale, gvec) * np.tanh(d)
    return store(_log_cosh(d), loss_out)


# ---- 2. the Numba loop (serial: a toy needs no parallel driver) ---------------------------

def _numba_kernels():
    import numba

    @numba.njit(cache=False)
    def item(d):
        a = abs(d)
        return a + math.log1p(math.exp(-2.0 * a)) - LOG2

    @numba.njit(cache=False)
    def fwd(x, t, loss_out):
        total = 0.0
        for i in range(x.shape[0]):
            v = item(np.float64(x[i]) - np.float64(t[i]))
            if loss_out.shape[0]:
                loss_out[i] = v
            total += v
        return total

    @numba.njit(cache=False)
    def vg(x, t, gscale, gvec, loss_out, gx):
        total = 0.0
        for i in range(x.shape[0]):
            d = np.float64(x[i]) - np.float64(t[i])
            c = gscale * np.float64(gvec[i]) if gvec.shape[0] else gscale
            gx[i] = c * math.tanh(d)
            v = item(d)
            if loss_out.shape[0]:      # length 0: not asked for (a reduced call)
                loss_out[i] = v
            total += v
        return total
    return fwd, vg


_DOC = r"""Log-cosh loss, :math:`\ell_i = \log\cosh(x_i - y_i)` (a test-only loss).

    Parameters
    ----------
    input : array_like, any shape, float32 or float64
    target : array_like, broadcastable to ``input``
    reduction : {"mean", "sum", "none"}

    Returns
    -------
    ndarray
        0-d for "mean"/"sum", the broadcast shape for "none"; dtype of the inputs.

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> round(float(fastloss.log_cosh_loss(np.array([0.0, 1.0]), np.zeros(2))), 6)
    0.21689
    """


# ---- 3. the registry row and public function (the class is made from them) ----------------------------------------

def _define():
    from fastloss._registry import loss
    from fastloss.functional._common import pointwise

    def log_cosh_loss(input: ArrayLike, target: ArrayLike, *, reduction: str = "mean",
                      backend: str | None = None) -> Prepared:
        return pointwise("log_cosh", input, target, reduction)

    # its docstring indented as a module-level function's is (what @loss's
    # sample_weight documentation anchors on), not as this nested one's
    log_cosh_loss.__doc__ = _DOC
    # family: what a loss in fastloss/functional/elementwise.py gets from its module
    log_cosh_loss = loss(CLASS_NAME, kernels=("log_cosh",), oracle=None,
                         family="elementwise")(log_cosh_loss)
    return log_cosh_loss


# ---- 4. case rows (the regression family's shapes and edges) -------------------------------

def _cases():
    from cases import case_rows, mixed
    from cases.elementwise import COMMON, pair
    return case_rows(NAME, {**COMMON, "wide_range": pair((6, 5), scale=30.0),
                       "mixed_dtypes": mixed(pair((3, 4)), which=(1,))})


def register():
    """Register the toy loss everywhere a package loss lives (idempotent); its spec."""
    import fastloss
    from fastloss import _dispatch
    from fastloss._registry import LOSSES
    from cases import CASES
    if NAME in LOSSES:
        return LOSSES[NAME]
    # the backends first: at import they wrap (reference) or generate drivers for (numba)
    # every declared kernel (the registry row declares log_cosh), with its functions put
    # in the backends' namespaces
    reference = importlib.import_module("fastloss._reference")
    reference.log_cosh_fwd, reference.log_cosh_vg = log_cosh_fwd, log_cosh_vg
    if _dispatch._BACKENDS["numba"].available:
        numba_backend = importlib.import_module("fastloss._numba")
        numba_backend.log_cosh_fwd, numba_backend.log_cosh_vg = _numba_kernels()
    fn = _define()
    _dispatch.clear_caches()
    # what the package does at import: the family module's __all__ exports the function,
    # fastloss.losses makes the class of a registry row that has none written out
    (cls,) = fastloss.losses.add_missing_classes()
    fastloss.functional.log_cosh_loss = fn
    fastloss.functional.__all__.append(NAME)
    for public in (fn, cls):
        setattr(fastloss, public.__name__, public)
        fastloss.__all__.append(public.__name__)
    CASES[NAME] = _cases()
    return LOSSES[NAME]
