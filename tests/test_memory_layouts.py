"""Arrays as NumPy hands them over, not only as NumPy allocates them: unaligned views
(np.frombuffer at an odd byte offset), strided views and byte-swapped arrays, on every
backend and every loss, must give what the plain array gives. The C kernels read and
write unaligned arrays in place (their element types have alignment 1, see
csrc/fl_simd.h); .ci/sanitize.sh runs this file under AddressSanitizer and UBSan."""
import warnings

import numpy as np
import pytest

import fastloss
from fastloss._registry import LOSSES
from conftest import all_cases
from equivalence import Variant, backend_variants
from helpers import assert_close, diff_args, grad_output_for

# every compiled backend, the C one on each instruction-set pass this CPU runs (their
# loads and stores differ: 16, 32 or 64 bytes), and the NumPy reference
BACKENDS = [Variant("numpy", "numpy")] + backend_variants()


def unaligned(a):
    """A copy of `a` whose data starts one byte past an aligned address."""
    a = np.asarray(a)
    buf = np.zeros(a.nbytes + a.itemsize + 1, np.uint8)
    start = (-buf.ctypes.data) % 64 + 1 if buf.size > 64 + a.nbytes else 1
    view = np.frombuffer(buf.data, a.dtype, count=a.size, offset=start).reshape(a.shape)
    view[...] = a
    if a.size and a.itemsize > 1:
        assert not view.flags.aligned
    return view


def strided(a):
    """A copy of `a` as a view with every other element of a twice-as-long buffer."""
    a = np.asarray(a)
    big = np.zeros((*a.shape[:-1], 2 * a.shape[-1]) if a.ndim else (2,), a.dtype)
    view = big[..., ::2] if a.ndim else big[1:].reshape(())
    view[...] = a
    return view


def byteswapped(a):
    """`a` in the other byte order (float64 left alone: byte-swapped float64, computed in
    its own precision, is a dtype rule covered with the dtype tests)."""
    a = np.asarray(a)
    if a.dtype.kind in "fi" and a.dtype != np.float64:
        return a.astype(a.dtype.newbyteorder())
    return a


VARIANTS = {"unaligned": unaligned, "strided": strided, "byteswapped": byteswapped}


def _cases():
    """Per loss: its first two non-empty cases and its first one with an array keyword
    (weight, pos_weight, var...): every kernel and every array it reads."""
    out, plain, keyed = [], {}, set()
    for case in all_cases():
        args, kwargs = case.build(np.float32)
        if all(np.asarray(a).size == 0 for a in args if isinstance(a, np.ndarray)):
            continue
        if any(isinstance(v, np.ndarray) for v in kwargs.values()):
            if case.loss in keyed:
                continue
            keyed.add(case.loss)
        elif plain.get(case.loss, 0) >= 2:
            continue
        else:
            plain[case.loss] = plain.get(case.loss, 0) + 1
        out.append(pytest.param(case, id=f"{case.loss}-{case.id}"))
    return out


def _run(case, args, kwargs, reduction, backend, go=None, out=None):
    fn = LOSSES[case.loss].function
    kwargs = {**kwargs, "reduction": reduction}
    wrt = diff_args(case.loss, args, kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = np.asarray(fn(*args, backend=backend, **kwargs))
        if go is None:
            go = grad_output_for(value.shape, reduction, value.dtype)
        v2, grads = fastloss.value_and_grad(fn, argnums=wrt)(*args, grad_output=go,
                                                             backend=backend, out=out,
                                                             **kwargs)
    return value, np.asarray(v2), list(grads), wrt, go


@pytest.mark.parametrize("variant,dtype", [("unaligned", np.float32), ("unaligned", np.float64),
                                           ("strided", np.float32), ("strided", np.float64),
                                           ("byteswapped", np.float32)],
                         ids=["unaligned-f32", "unaligned-f64", "strided-f32", "strided-f64",
                              "byteswapped-f32"])
@pytest.mark.parametrize("backend", BACKENDS, ids=lambda v: v.id)
@pytest.mark.parametrize("case", _cases())
def test_array_layouts_give_the_plain_result(case, backend, variant, dtype):
    with backend.setup():
        _check_layout(case, backend.backend, variant, dtype)


def _check_layout(case, backend, variant, dtype):
    make = VARIANTS[variant]
    args, kwargs = case.build(dtype)
    for reduction in [r for r in ("none", "mean") if r in case.reductions]:
        value, v2, grads, wrt, go = _run(case, args, kwargs, reduction, backend)
        vargs = tuple(make(a) if isinstance(a, np.ndarray) else a for a in args)
        vkw = {k: make(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
        vgo = make(go) if isinstance(go, np.ndarray) else go
        # the gradient written straight into unaligned out= buffers, too
        outs = (tuple(unaligned(np.zeros_like(g)) for g in grads)
                if variant == "unaligned" else None)
        lv, lv2, lgrads, _, _ = _run(case, vargs, vkw, reduction, backend, go=vgo, out=outs)
        rtol = 1e-12 if dtype == np.float64 else 1e-6
        assert_close(lv, value, rtol, f"value ({reduction})")
        assert_close(lv2, v2, rtol, f"value from value_and_grad ({reduction})")
        assert lv.dtype == value.dtype
        for name, g, lg in zip(wrt, grads, lgrads):
            assert_close(lg, g, rtol, f"grad of {name} ({reduction})")
        if outs is not None:
            for o, g in zip(outs, grads):
                assert_close(o, g, rtol, "out= buffer")
