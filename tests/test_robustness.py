"""The edges a library others depend on must get right (issue 9): out= buffers that alias
what the kernel reads, byte order and low-precision dtypes, masked arrays, hyper-parameters
torch refuses, and errors that name the argument. Registry-driven where the rule is
general: every loss, and every backend present where the kernel matters."""
import io
import math
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import fastloss
from fastloss import _dispatch
from fastloss._registry import LOSSES

from cases import CASES

warnings.filterwarnings("ignore", message="Using a .* size")
warnings.filterwarnings("ignore", message="reduction: 'mean' divides")

BACKENDS = [b for b in _dispatch.backend_names() if _dispatch._BACKENDS[b].available]
# One representative case per loss (the first in its table) and every case, for the rules
# that hold for any call.
FIRST = {name: cases[0] for name, cases in sorted(CASES.items())}
ALL = [c for _, cases in sorted(CASES.items()) for c in cases]


def case_id(case):
    return f"{case.loss}-{case.id}"


def bound(name, args, kwargs):
    """{parameter name: value} of a call."""
    return dict(zip(LOSSES[name].parameters, args), **kwargs)


def float_wrt(name, args, kwargs):
    """The differentiable arguments passed as float arrays."""
    b = bound(name, args, kwargs)
    return tuple(a for a in LOSSES[name].differentiable
                 if isinstance(b.get(a), np.ndarray) and b[a].dtype.kind == "f")


def replace(name, args, kwargs, fn):
    """The call with every ndarray argument a (positional or keyword) replaced by fn(a)."""
    conv = (lambda a: fn(a) if isinstance(a, np.ndarray) else a)
    return tuple(conv(a) for a in args), {k: conv(v) for k, v in kwargs.items()}


def vg(name, args, kwargs, reduction, argnums, backend=None, **kw):
    fn = fastloss.value_and_grad(LOSSES[name].function, argnums=argnums)
    return fn(*args, reduction=reduction, backend=backend, **kwargs, **kw)


def as_tuple(g, argnums):
    return g if isinstance(argnums, tuple) else (g,)


# ---- 1. out= aliasing what the kernel reads ---------------------------------------------

def _grad_output_fits_in_out(case):
    """Whether grad_output ("none") can be a view of the first gradient's out buffer: it
    has at most as many items, and the same dtype."""
    if "none" not in case.reductions or not case.grad:
        return False
    args, kwargs = case.build(np.float32)
    wrt = float_wrt(case.loss, args, kwargs)
    if not wrt:
        return False
    x = bound(case.loss, args, kwargs)[wrt[0]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prep = LOSSES[case.loss].prepare(*args, reduction="none", **kwargs)
    return 0 < prep.n_items <= x.size and prep.dtype == x.dtype


OVERLAP_CASES = [c for c in ALL if _grad_output_fits_in_out(c)]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", OVERLAP_CASES, ids=case_id)
def test_out_overlapping_grad_output_gives_the_right_gradient(case, backend):
    """out= sharing memory with grad_output (here: grad_output is a view of the first items
    of out) must give the gradient of the grad_output passed, on every backend."""
    args, kwargs = case.build(np.float32)
    wrt = float_wrt(case.loss, args, kwargs)
    x = bound(case.loss, args, kwargs)[wrt[0]]
    value = np.asarray(LOSSES[case.loss].function(*args, reduction="none", **kwargs))
    n = value.size
    go = np.linspace(-1.5, 2.0, n).astype(x.dtype).reshape(value.shape)
    _, expected = vg(case.loss, args, kwargs, "none", wrt[0], backend, grad_output=go.copy())

    out = np.empty_like(x)
    view = out.reshape(-1)[:n].reshape(value.shape)
    view[...] = go
    v, g = vg(case.loss, args, kwargs, "none", wrt[0], backend, grad_output=view, out=out)
    assert g is out
    np.testing.assert_array_equal(out, expected, err_msg=f"{case.loss} on {backend}")


def test_every_loss_has_an_overlap_case():
    assert {c.loss for c in OVERLAP_CASES} == set(LOSSES)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", ALL, ids=case_id)
def test_out_may_be_any_argument(case, backend):
    """out= may be an argument the kernel reads (target, weight, var, the input itself):
    the gradient is that of the values passed, and then written into out."""
    if not case.grad:
        pytest.skip("no gradient")
    args, kwargs = case.build(np.float64)
    wrt = float_wrt(case.loss, args, kwargs)
    if not wrt:
        pytest.skip("no float differentiable argument")
    x = bound(case.loss, args, kwargs)[wrt[0]]
    red = case.reductions[0]
    _, expected = vg(case.loss, args, kwargs, red, wrt[0], backend)
    names = [p for p, a in bound(case.loss, args, kwargs).items()
             if isinstance(a, np.ndarray) and a.shape == x.shape and a.dtype == x.dtype]
    for alias in names:
        b = {p: (a.copy() if isinstance(a, np.ndarray) else a)
             for p, a in bound(case.loss, args, kwargs).items()}
        out = b[alias]
        _, g = fastloss.value_and_grad(LOSSES[case.loss].function, argnums=wrt[0])(
            **b, reduction=red, backend=backend, out=out)
        assert g is out
        np.testing.assert_array_equal(out, expected, err_msg=f"out aliasing {alias}")


# ---- 2. a tuple argnums with overlapping out buffers --------------------------------------

def _pairs(dtype=np.float32):
    rng = np.random.default_rng(2)
    a1, a2 = rng.standard_normal((2, 6)).astype(dtype)
    y = np.where(rng.standard_normal(6) > 0, 1.0, -1.0).astype(dtype)
    m = rng.standard_normal((3, 4, 6)).astype(dtype)
    return {
        "margin_ranking_loss": ((a1, a2, y), {"margin": 2.0}, (0, 1)),
        "cosine_embedding_loss": ((m[0], m[1], y[:4]), {}, (0, 1)),
        "triplet_margin_loss": ((m[0], m[1], m[2]), {}, (0, 1, 2)),
        "gaussian_nll_loss": ((m[0], m[1], np.abs(m[2]) + 0.1), {}, ("input", "var")),
    }


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", sorted(_pairs()))
def test_overlapping_out_buffers_raise(name, backend):
    args, kwargs, argnums = _pairs()[name]
    shape = args[0].shape
    b = np.empty(shape, np.float32)
    with pytest.raises(ValueError, match="out: the buffers for the gradients of .* overlap"):
        vg(name, args, kwargs, "mean", argnums, backend, out=(b,) * len(argnums))
    # partly overlapping views of one buffer
    flat = np.empty(b.size + 1, np.float32)
    views = (flat[:-1].reshape(shape), flat[1:].reshape(shape)) + tuple(
        np.empty(shape, np.float32) for _ in argnums[2:])
    with pytest.raises(ValueError, match="overlap"):
        vg(name, args, kwargs, "mean", argnums, backend, out=views)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", sorted(_pairs()))
def test_interleaved_disjoint_out_buffers_are_fine(name, backend):
    """Views of one buffer that do not overlap (every other element) are separate outs."""
    args, kwargs, argnums = _pairs()[name]
    shape = args[0].shape
    _, expected = vg(name, args, kwargs, "mean", argnums, backend)
    k = len(argnums)
    buf = np.zeros((*shape[:-1], shape[-1] * k), np.float32)
    outs = tuple(buf[..., i::k] for i in range(k))
    _, got = vg(name, args, kwargs, "mean", argnums, backend, out=outs)
    for g, o, e in zip(got, outs, expected):
        assert g is o
        np.testing.assert_array_equal(o, e)


def test_argnums_twice_and_out_not_a_tuple():
    args, kwargs, _ = _pairs()["margin_ranking_loss"]
    for argnums in [(0, 0), ("input1", 0), (1, "input2")]:
        with pytest.raises(ValueError, match="argnums: .*twice"):
            fastloss.value_and_grad(fastloss.margin_ranking_loss, argnums=argnums)
    with pytest.raises(TypeError, match="out: expected a tuple of 2 arrays"):
        vg("margin_ranking_loss", args, kwargs, "mean", (0, 1),
           out=np.empty((2, 6), np.float32))
    with pytest.raises(TypeError, match="out: expected a tuple of 2 arrays.*got 1"):
        vg("margin_ranking_loss", args, kwargs, "mean", (0, 1),
           out=(np.empty(6, np.float32),))


# ---- 3. byte order and longdouble ----------------------------------------------------------

def _swapped(a):
    return a.astype(a.dtype.newbyteorder())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", ALL, ids=case_id)
def test_byte_swapped_arguments_compute_in_their_own_precision(case, dtype):
    """Every array argument byte-swapped (floats, integer targets, weights): the same
    values, dtypes and gradients as in native order."""
    args, kwargs = case.build(dtype)
    sargs, skw = replace(case.loss, args, kwargs, _swapped)
    assert any(not a.dtype.isnative for a in sargs if isinstance(a, np.ndarray))
    red = case.reductions[0]
    fn = LOSSES[case.loss].function
    try:
        expected = fn(*args, reduction=red, **kwargs)
    except (ValueError, IndexError) as exc:
        with pytest.raises(type(exc)):
            fn(*sargs, reduction=red, **skw)
        return
    got = fn(*sargs, reduction=red, **skw)
    assert got.dtype == expected.dtype and got.dtype.isnative
    np.testing.assert_array_equal(got, expected)
    wrt = float_wrt(case.loss, args, kwargs)
    if case.grad and wrt:
        _, ge = vg(case.loss, args, kwargs, red, wrt)
        _, gg = vg(case.loss, sargs, skw, red, wrt)
        for a, e in zip(gg, ge):
            assert a.dtype == e.dtype
            np.testing.assert_array_equal(a, e)


@pytest.mark.parametrize("backend", BACKENDS)
def test_byte_swapped_out_and_grad_output(backend):
    x = np.linspace(-2, 2, 6)
    go = _swapped(np.linspace(0.5, 1.0, 6))
    _, expected = fastloss.value_and_grad(fastloss.mse_loss)(
        x, 0 * x, reduction="none", grad_output=go.astype(np.float64), backend=backend)
    out = np.empty(6, ">f8" if sys.byteorder == "little" else "<f8")
    _, g = fastloss.value_and_grad(fastloss.mse_loss)(
        _swapped(x), 0 * x, reduction="none", grad_output=go, out=out, backend=backend)
    assert g is out
    np.testing.assert_array_equal(out, expected)


def test_byte_swapped_uint64_target_is_range_checked():
    t = _swapped(np.array([0, 2 ** 64 - 1], np.uint64))
    with pytest.raises(IndexError, match="target"):
        fastloss.cross_entropy(np.zeros((2, 3)), t)


@pytest.mark.parametrize("name", sorted(FIRST))
def test_longdouble_is_computed_as_float64(name):
    case = FIRST[name]
    args, kwargs = case.build(np.float64)
    largs, lkw = replace(name, args, kwargs,
                         lambda a: a.astype(np.longdouble) if a.dtype.kind == "f" else a)
    fn = LOSSES[name].function
    red = case.reductions[0]
    got, expected = fn(*largs, reduction=red, **lkw), fn(*args, reduction=red, **kwargs)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, expected)
    wrt = float_wrt(name, args, kwargs)
    if wrt:
        _, gg = vg(name, largs, lkw, red, wrt)
        _, ge = vg(name, args, kwargs, red, wrt)
        for a, e in zip(gg, ge):
            assert a.dtype == np.float64
            np.testing.assert_array_equal(a, e)


# ---- 5. masked arrays ---------------------------------------------------------------------

MASKED_HINT = r"masked arrays .*ignore_index.*reduction=\"none\""


@pytest.mark.parametrize("name", sorted(FIRST))
def test_masked_arrays_raise_for_every_array_argument(name):
    # the case with the most array arguments
    case = max(CASES[name], key=lambda c: sum(isinstance(a, np.ndarray) for a in
                                              bound(name, *c.build(np.float64)).values()))
    args, kwargs = case.build(np.float64)
    params = [p for p, a in bound(name, args, kwargs).items() if isinstance(a, np.ndarray)]
    assert params
    for p in params:
        b = bound(name, args, kwargs)
        b[p] = np.ma.masked_array(b[p], mask=np.zeros(b[p].shape, bool))
        with pytest.raises(TypeError, match=f"^{p}: " + MASKED_HINT):
            LOSSES[name].function(**b)
        if p in LOSSES[name].differentiable:
            with pytest.raises(TypeError, match=f"^{p}: " + MASKED_HINT):
                fastloss.value_and_grad(LOSSES[name].function, argnums=p)(**b)


def test_masked_grad_output_out_and_hyper_parameters_raise():
    x = np.linspace(-1, 1, 6)
    vg_ = fastloss.value_and_grad(fastloss.mse_loss)
    with pytest.raises(TypeError, match="^grad_output: " + MASKED_HINT):
        vg_(x, 0 * x, reduction="none", grad_output=np.ma.masked_array(np.ones(6)))
    with pytest.raises(TypeError, match="^grad_output: " + MASKED_HINT):
        vg_(x, 0 * x, grad_output=np.ma.masked_array(1.0))
    with pytest.raises(TypeError, match="^out: " + MASKED_HINT):
        vg_(x, 0 * x, out=np.ma.masked_array(np.empty(6)))
    with pytest.raises(TypeError, match="margin"):
        fastloss.margin_ranking_loss(x, x, np.ones(6), margin=np.ma.masked_array(1.0))
    with pytest.raises(TypeError, match="^weight: " + MASKED_HINT):
        fastloss.CrossEntropyLoss(weight=np.ma.masked_array(np.ones(3)))(
            np.zeros((2, 3)), np.array([0, 1]))


# ---- 12. low-precision floats --------------------------------------------------------------

def _small_float_dtypes():
    out = [np.dtype(np.float16)]
    try:
        import ml_dtypes
    except ImportError:
        return out
    for n in sorted(dir(ml_dtypes)):
        t = getattr(ml_dtypes, n)
        if isinstance(t, type) and n.startswith(("float", "bfloat")):
            out.append(np.dtype(t))
    return out


SMALL = _small_float_dtypes()


def _upcast_expected(name, args, kwargs, to_small, red):
    """The loss computed on the float32 upcast of the small-float arguments, or the
    exception that raises."""
    up = replace(name, args, kwargs,
                 lambda a: to_small(a).astype(np.float32) if a.dtype.kind == "f" else a)
    fn = LOSSES[name].function
    try:
        return up, fn(*up[0], reduction=red, **up[1])
    except (ValueError, IndexError) as exc:
        return up, exc


def test_every_ml_dtypes_float_is_listed():
    pytest.importorskip("ml_dtypes")
    names = {d.name for d in SMALL}
    assert {"float16", "bfloat16", "float8_e4m3fn", "float8_e5m2"} <= names


@pytest.mark.parametrize("small", SMALL, ids=lambda d: d.name)
@pytest.mark.parametrize("name", sorted(FIRST))
def test_small_floats_compute_and_return_float32(name, small):
    """One rule for every float narrower than float32 (NumPy float16, ml_dtypes and so
    JAX's bfloat16 and float8_*): computed in float32; the value and every gradient come
    back float32, and out= must be float32."""
    case = FIRST[name]
    args, kwargs = case.build(np.float32)
    to_small = (lambda a: a.astype(small))
    sargs, skw = replace(name, args, kwargs,
                         lambda a: to_small(a) if a.dtype.kind == "f" else a)
    red = case.reductions[0]
    (uargs, ukw), expected = _upcast_expected(name, args, kwargs, to_small, red)
    fn = LOSSES[name].function
    if isinstance(expected, Exception):
        with pytest.raises(type(expected)):
            fn(*sargs, reduction=red, **skw)
        return
    got = fn(*sargs, reduction=red, **skw)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, expected)
    wrt = float_wrt(name, args, kwargs)
    if not wrt:
        return
    _, ge = vg(name, uargs, ukw, red, wrt)
    outs = tuple(np.empty(bound(name, args, kwargs)[a].shape, np.float32) for a in wrt)
    v, gg = vg(name, sargs, skw, red, wrt, out=outs)
    np.testing.assert_array_equal(v, expected)
    for g, o, e in zip(gg, outs, ge):
        assert g is o and g.dtype == np.float32
        np.testing.assert_array_equal(g, e)
    bad = tuple(np.empty(o.shape, small) for o in outs)
    with pytest.raises(ValueError, match="out: .*dtype float32"):
        vg(name, sargs, skw, red, wrt, out=bad)


def test_small_float_mixed_with_float64_keeps_each_gradient_in_its_own_precision():
    x1 = np.linspace(-1, 1, 5).astype(np.float16)
    x2 = np.linspace(1, -1, 5)
    y = np.ones(5)
    v, (g1, g2) = fastloss.value_and_grad(fastloss.margin_ranking_loss, argnums=(0, 1))(
        x1, x2, y, margin=0.5)
    assert v.dtype == np.float64 and g1.dtype == np.float32 and g2.dtype == np.float64


TORCH_SMALL = ["float16", "bfloat16", "float8_e4m3fn", "float8_e5m2"]


@pytest.mark.parametrize("tdtype", TORCH_SMALL)
@pytest.mark.parametrize("name", sorted(FIRST))
def test_torch_small_float_tensors(name, tdtype):
    torch = pytest.importorskip("torch")
    tdt = getattr(torch, tdtype, None)
    if tdt is None:
        pytest.skip(f"torch has no {tdtype}")
    case = FIRST[name]
    args, kwargs = case.build(np.float32)

    def to_small(a):
        return torch.from_numpy(np.ascontiguousarray(a)).to(tdt).float().numpy()

    def to_tensor(a):
        t = torch.from_numpy(np.ascontiguousarray(a))
        return t.to(tdt) if a.dtype.kind == "f" else t

    targs = tuple(to_tensor(a) if isinstance(a, np.ndarray) else a for a in args)
    tkw = {k: (to_tensor(v) if isinstance(v, np.ndarray) else v) for k, v in kwargs.items()}
    red = case.reductions[0]
    (uargs, ukw), expected = _upcast_expected(name, args, kwargs, to_small, red)
    fn = LOSSES[name].function
    if isinstance(expected, Exception):
        with pytest.raises(type(expected)):
            fn(*targs, reduction=red, **tkw)
        return
    got = fn(*targs, reduction=red, **tkw)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, expected)
    wrt = float_wrt(name, args, kwargs)
    if wrt:
        _, ge = vg(name, uargs, ukw, red, wrt)
        outs = tuple(np.empty(bound(name, args, kwargs)[a].shape, np.float32) for a in wrt)
        _, gg = vg(name, targs, tkw, red, wrt)
        for g, e in zip(gg, ge):
            assert g.dtype == np.float32
            np.testing.assert_array_equal(g, e)
        _, gg = vg(name, targs, tkw, red, wrt, out=outs)
        for g, o, e in zip(gg, outs, ge):
            assert g is o
            np.testing.assert_array_equal(g, e)


def test_jax_bfloat16_arrays():
    jnp = pytest.importorskip("jax.numpy")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 10)).astype(np.float32)
    t = rng.integers(0, 10, 8)
    xb = jnp.asarray(x, dtype=jnp.bfloat16)
    up = np.asarray(xb).astype(np.float32)
    ve, ge = fastloss.value_and_grad(fastloss.cross_entropy)(up, t)
    out = np.empty((8, 10), np.float32)
    v, g = fastloss.value_and_grad(fastloss.cross_entropy)(xb, jnp.asarray(t), out=out)
    assert v.dtype == np.float32 and g is out
    np.testing.assert_array_equal(v, ve)
    np.testing.assert_array_equal(g, ge)
    m = fastloss.mse_loss(xb, jnp.asarray(x, dtype=jnp.bfloat16), reduction="none")
    assert m.dtype == np.float32


def test_complex_and_int4_are_not_floats():
    ml = pytest.importorskip("ml_dtypes")
    for dt in ("bcomplex32", "int4", "uint4"):
        if hasattr(ml, dt):
            with pytest.raises(TypeError, match="input"):
                fastloss.mse_loss(np.zeros(3, getattr(ml, dt)), np.zeros(3))


# ---- 13. hyper-parameters torch refuses, and integer weights -------------------------------

X = np.linspace(-1.0, 1.0, 12).reshape(4, 3)
Y = np.linspace(0.5, -0.5, 12).reshape(4, 3)
T = np.array([0, 1, 2, 0])
S = np.array([1.0, -1.0, 1.0, -1.0])
NAN, INF = math.nan, math.inf

# (loss, call with the hyper-parameter v, name, values torch raises for)
REFUSED = [
    ("smooth_l1_loss", lambda F, v: F.smooth_l1_loss(X, Y, beta=v), "beta", [NAN, -INF, -1.0]),
    ("huber_loss", lambda F, v: F.huber_loss(X, Y, delta=v), "delta", [NAN, -INF, 0.0]),
    ("cross_entropy", lambda F, v: F.cross_entropy(X, T, label_smoothing=v),
     "label_smoothing", [INF, 1.5]),
    ("triplet_margin_loss", lambda F, v: F.triplet_margin_loss(X, Y, 2 * X, margin=v),
     "margin", [-INF, 0.0]),
    ("gaussian_nll_loss", lambda F, v: F.gaussian_nll_loss(X, Y, v), "var", [-INF, -1.0]),
]


def _torch_args(f, v):
    torch = pytest.importorskip("torch")

    class Wrap:   # the same call on torch tensors, to the loss's torch twin
        def __getattr__(self, name):
            fn = LOSSES[name].oracle.resolve()
            return lambda *a, **k: fn(*[torch.as_tensor(x) if isinstance(x, np.ndarray)
                                        else x for x in a], **k)
    return f(Wrap(), v)


@pytest.mark.parametrize("name,call,param,values", REFUSED, ids=[r[0] for r in REFUSED])
def test_hyper_parameters_torch_refuses_raise(name, call, param, values):
    for v in values:
        with pytest.raises(ValueError, match=f"^{param}: "):
            call(fastloss, v)


@pytest.mark.parametrize("name,call,param,values", REFUSED, ids=[r[0] for r in REFUSED])
def test_torch_refuses_them_too(name, call, param, values):
    pytest.importorskip("torch")
    for v in values:
        with pytest.raises((RuntimeError, ValueError)):
            _torch_args(call, v)


def test_nan_beta_message_matches_the_rule():
    with pytest.raises(ValueError, match=r"beta: expected a value >= 0, got nan"):
        fastloss.smooth_l1_loss(X, Y, beta=float("nan"))
    with pytest.raises(ValueError, match=r"beta: expected a value >= 0, got nan"):
        fastloss.SmoothL1Loss(beta=float("nan"))(X, Y)


WEIGHTED = [n for n in sorted(LOSSES) if "weight" in LOSSES[n].parameters]


@pytest.mark.parametrize("name", WEIGHTED)
def test_integer_weight_is_accepted_by_every_loss(name):
    case = next((c for c in CASES[name]
                 if isinstance(bound(name, *c.build(np.float32)).get("weight"), np.ndarray)),
                None)
    assert case is not None, f"no case of {name} passes a weight"
    args, kwargs = case.build(np.float32)
    b = bound(name, args, kwargs)
    w = np.round(np.abs(b["weight"]) * 3) + 1
    fn = LOSSES[name].function
    expected = fn(**{**b, "weight": w.astype(np.float32)}, reduction="sum")
    got = fn(**{**b, "weight": w.astype(np.int64)}, reduction="sum")
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)


# ---- 14. clear errors ----------------------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("loss", ["nll_loss", "cross_entropy"])
def test_huge_ignore_index_is_a_value_error(loss, backend):
    fn = LOSSES[loss].function
    x = np.log(np.full((4, 3), 1 / 3))
    for v in [2 ** 70, -2 ** 70, 2 ** 63, -2 ** 63 - 1, np.uint64(2 ** 64 - 1)]:
        with pytest.raises(ValueError, match="^ignore_index: .*int64"):
            fn(x, T, ignore_index=v, backend=backend)
        with pytest.raises(ValueError, match="^ignore_index: .*int64"):
            fastloss.value_and_grad(fn)(x, T, ignore_index=v, backend=backend)
    # the int64 extremes are fine: no target equals them
    for v in [2 ** 63 - 1, -2 ** 63]:
        assert float(fn(x, T, ignore_index=v, backend=backend)) == pytest.approx(math.log(3))


def test_huge_ints_for_real_parameters_are_value_errors():
    with pytest.raises(ValueError, match="^margin: "):
        fastloss.margin_ranking_loss(S, S, S, margin=2 ** 2000)
    with pytest.raises(ValueError, match="^beta: "):
        fastloss.smooth_l1_loss(X, Y, beta=10 ** 400)


BAD_SCALAR_GRAD_OUTPUT = ["a", b"x", object(), 1j, np.complex128(1j), np.array(1j), True,
                          np.bool_(True), [1.0, 2.0], np.ones(2),
                          np.array(["a"])]


@pytest.mark.parametrize("g", BAD_SCALAR_GRAD_OUTPUT, ids=repr)
def test_bad_scalar_grad_output_names_the_argument(g):
    with pytest.raises((TypeError, ValueError), match="^grad_output: expected"):
        fastloss.value_and_grad(fastloss.mse_loss)(X, Y, grad_output=g)


@pytest.mark.parametrize("g", ["a", object(), np.full(X.shape, 1j), np.full(X.shape, "a"),
                               np.array([object()] * 12).reshape(X.shape)], ids=repr)
def test_bad_array_grad_output_names_the_argument(g):
    with pytest.raises(TypeError, match="^grad_output: expected"):
        fastloss.value_and_grad(fastloss.mse_loss)(X, Y, reduction="none", grad_output=g)


def test_good_grad_outputs_of_every_kind():
    vg_ = fastloss.value_and_grad(fastloss.mse_loss)
    _, e = vg_(X, Y, grad_output=2.0)
    for g in [2, np.float32(2), np.int64(2), np.array(2.0), np.array(2, np.int32)]:
        np.testing.assert_array_equal(vg_(X, Y, grad_output=g)[1], e)
    _, e = vg_(X, Y, reduction="none", grad_output=np.ones(X.shape))
    for g in [np.ones(X.shape, np.int64), np.ones(X.shape, bool), np.ones(X.shape).tolist()]:
        np.testing.assert_array_equal(vg_(X, Y, reduction="none", grad_output=g)[1], e)
    torch = pytest.importorskip("torch")
    np.testing.assert_array_equal(vg_(X, Y, grad_output=torch.tensor(1.0))[1],
                                  vg_(X, Y)[1])


@pytest.mark.parametrize("argnums,exc", [
    (1.0, TypeError), (True, TypeError), (None, TypeError), ((0, 1.5), TypeError),
    ("nope", ValueError), ("target", ValueError), (7, ValueError), (-7, ValueError),
    ((), ValueError), ((0, 0), ValueError)], ids=repr)
def test_bad_argnums_names_the_argument_and_the_choices(argnums, exc):
    with pytest.raises(exc, match="^argnums: .*mse_loss is differentiable in input"):
        fastloss.value_and_grad(fastloss.mse_loss, argnums=argnums)


def test_unknown_backend_is_a_value_error():
    for bad in ["cuda", "C", "cffi"]:
        with pytest.raises(ValueError, match="^backend: expected 'auto' or one of"):
            fastloss.mse_loss(X, Y, backend=bad)


def test_missing_backend_is_a_documented_value_error(monkeypatch):
    assert issubclass(fastloss.BackendNotAvailable, ValueError)
    broken = fastloss.Backend("broken", module="fastloss._no_such_module")
    fastloss.register_backend(broken, first=False)
    try:
        monkeypatch.setattr(_dispatch, "_ENV_CHOICE", None)
        with pytest.raises(fastloss.BackendNotAvailable,
                           match="^backend: 'broken' was asked for but is not available: "
                                 "ModuleNotFoundError"):
            fastloss.mse_loss(X, Y, backend="broken")
        with pytest.raises(ValueError, match="not available"):
            with fastloss.use_backend("broken"):
                fastloss.value_and_grad(fastloss.mse_loss)(X, Y)
    finally:
        _dispatch.unregister_backend("broken")


def test_missing_c_backend_says_how_to_build_from_source():
    """As after an install without a compiler: backend='c' raises BackendNotAvailable,
    whose hint is to build from the user's own source tree, not to reinstall from the
    package index."""
    code = textwrap.dedent("""
        import sys
        sys.modules["fastloss._fastloss_c"] = None   # `import` of it fails: not built
        import numpy as np, fastloss
        try:
            fastloss.mse_loss(np.ones(2), np.zeros(2), backend="c")
        except fastloss.BackendNotAvailable as exc:
            assert isinstance(exc, ValueError)
            print(exc)
        else:
            raise AssertionError("backend='c' should raise when C is missing")
    """)
    env = {k: v for k, v in os.environ.items() if k not in ("FASTLOSS_NO_C", "FASTLOSS_BACKEND")}
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.dirname(os.path.dirname(fastloss.__file__)), env.get("PYTHONPATH", "")])
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    msg = res.stdout
    assert msg.startswith("backend: 'c' was asked for but is not available: ImportError: "
                          "C kernels not built"), msg
    assert "`pip install .`" in msg and "source directory" in msg and "C compiler" in msg
    assert "--no-binary" not in msg and "--force-reinstall" not in msg


@pytest.mark.parametrize("p", [1, 2])
def test_multi_margin_infinite_margin_is_inf_on_every_backend(p):
    """margin=inf: every item's loss is inf (torch's), not NaN; the numba kernel added the
    target's own term and took it back out, inf - inf."""
    x = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    t = np.array([0, 1, 2, 3])
    for backend in [b for b, (ok, _) in fastloss.show_backends(io.StringIO()).items() if ok]:
        out = fastloss.multi_margin_loss(x, t, p=p, margin=np.inf, reduction="none",
                                         backend=backend)
        assert np.all(out == np.inf), (backend, out)
