"""torch's own test inputs for the losses added last (ctc_loss,
triplet_margin_with_distance_loss, linear_cross_entropy): every sample of their OpInfo
entries (torch.testing._internal.common_methods_invocations.op_db) and ModuleInfo entries
(common_modules.module_db), values and gradients against torch, and every error input
must raise here too."""
import sys
import types
import unittest

import numpy as np
import pytest

import fastloss
from fastloss._registry import LOSSES

torch = pytest.importorskip("torch")

OPS = {"nn.functional.ctc_loss": "ctc_loss",
       "nn.functional.triplet_margin_with_distance_loss": "triplet_margin_with_distance_loss",
       "nn.functional.linear_cross_entropy": "linear_cross_entropy"}
MODULES = ("CTCLoss", "LinearCrossEntropyLoss")
DTYPES = (torch.float32, torch.float64)
RTOL = {torch.float32: 1e-4, torch.float64: 1e-8}
OURS_RAISE = (ValueError, TypeError, IndexError)


@pytest.fixture(scope="module")
def db():
    # torch's testing package imports `expecttest` (a test dependency of torch, not
    # installed with it) only for a TestCase base class; stand in for it when missing
    if "expecttest" not in sys.modules:
        try:
            import expecttest  # noqa: F401
        except ImportError:
            stub = types.ModuleType("expecttest")
            stub.TestCase = unittest.TestCase
            sys.modules["expecttest"] = stub
    from torch.testing._internal.common_methods_invocations import op_db
    from torch.testing._internal.common_modules import module_db
    return ({(o.name, o.variant_test_name): o for o in op_db if o.name in OPS},
            {m.module_cls.__name__: m for m in module_db if m.module_cls.__name__ in MODULES})


def np_of(x):
    if isinstance(x, torch.Tensor):
        return x.detach().numpy().copy()
    if isinstance(x, (list, tuple)):
        return type(x)(np_of(v) for v in x)
    return x


def _go(out):
    g = torch.linspace(-1.0, 2.0, max(out.numel(), 1), dtype=out.dtype)[:out.numel()]
    return g.reshape(out.shape)


def _compare(name, ours_fn, torch_out, torch_leaves, args, kwargs, rtol):
    """Our value and gradients (w.r.t. the named leaves) against torch's."""
    value = np.asarray(ours_fn(*args, **kwargs))
    expected = torch_out.detach().numpy()
    assert value.shape == expected.shape
    np.testing.assert_allclose(value, expected, rtol=rtol, atol=rtol, equal_nan=True)
    if not torch_leaves:
        return
    go = _go(torch_out)
    tgrads = torch.autograd.grad(torch_out, list(torch_leaves.values()), go,
                                 allow_unused=True)
    argnums = tuple(torch_leaves)
    v2, grads = fastloss.value_and_grad(ours_fn, argnums=argnums)(
        *args, grad_output=go.numpy() if go.ndim else float(go), **kwargs)
    np.testing.assert_allclose(v2, expected, rtol=rtol, atol=rtol, equal_nan=True)
    for a, ours, theirs in zip(argnums, grads, tgrads):
        theirs = np.zeros(ours.shape) if theirs is None else theirs.numpy()
        scale = max(1.0, float(np.nanmax(np.abs(theirs)))) if theirs.size else 1.0
        np.testing.assert_allclose(ours, theirs.reshape(ours.shape), rtol=rtol,
                                   atol=rtol * scale, equal_nan=True,
                                   err_msg=f"{name}: gradient of {a}")


def _leaves(name, sample):
    """{our argument name: the torch leaf} for the differentiable arguments torch
    differentiates in this sample."""
    spec = LOSSES[name]
    bound = dict(zip(spec.parameters, (sample.input, *sample.args)), **sample.kwargs)
    return {a: bound[a] for a in spec.differentiable
            if isinstance(bound.get(a), torch.Tensor) and bound[a].requires_grad}


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("op_name,variant", [("nn.functional.ctc_loss", ""),
                                             ("nn.functional.triplet_margin_with_distance_loss",
                                              ""),
                                             ("nn.functional.linear_cross_entropy", ""),
                                             ("nn.functional.linear_cross_entropy", "chunked"),
                                             ("nn.functional.linear_cross_entropy",
                                              "chunked_none")])
def test_op_db_samples(db, op_name, variant, dtype):
    op = db[0][op_name, variant]
    name = OPS[op_name]
    fn = LOSSES[name].function
    count = 0
    for sample in op.sample_inputs("cpu", dtype, requires_grad=True):
        leaves = _leaves(name, sample)
        out = op(sample.input, *sample.args, **sample.kwargs)
        _compare(name, fn, out, leaves, (np_of(sample.input), *np_of(sample.args)),
                 {k: np_of(v) for k, v in sample.kwargs.items()}, RTOL[dtype])
        count += 1
    assert count > 0


# (op_db has no error inputs for ctc_loss: its must-raise cases are in test_ctc.py)
@pytest.mark.parametrize("op_name", ["nn.functional.triplet_margin_with_distance_loss",
                                     "nn.functional.linear_cross_entropy"])
def test_op_db_error_inputs_raise(db, op_name):
    op = db[0][op_name, ""]
    fn = LOSSES[OPS[op_name]].function
    count = 0
    for err in op.error_inputs("cpu"):
        s = err.sample_input
        with pytest.raises(err.error_type):
            op(s.input, *s.args, **s.kwargs)
        with pytest.raises(OURS_RAISE):
            fn(np_of(s.input), *np_of(s.args), **{k: np_of(v) for k, v in s.kwargs.items()})
        count += 1
    assert count > 0


_LCE_OWN = ("in_features", "num_classes", "out_features", "bias", "device", "dtype")


def _lce_module(ckw):
    return fastloss.LinearCrossEntropyLoss(**{k: np_of(v) for k, v in ckw.items()
                                              if k not in _LCE_OWN})


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("module", MODULES)
def test_module_db_samples(db, module, dtype):
    info = db[1][module]
    inputs = info.module_inputs_func(info, device="cpu", dtype=dtype, requires_grad=True,
                                     training=True)
    rtol = RTOL[dtype]
    for mi in inputs:
        cargs, ckw = mi.constructor_input.args, mi.constructor_input.kwargs
        fargs = mi.forward_input.args
        if module == "CTCLoss":
            lp = fargs[0].detach().requires_grad_()
            out = torch.nn.CTCLoss(*cargs, **ckw)(lp, *fargs[1:])
            ours = fastloss.CTCLoss(*cargs, **ckw)
            args = np_of(tuple(fargs))
            np.testing.assert_allclose(ours(*args), out.detach().numpy(), rtol=rtol,
                                       atol=rtol)
            go = _go(out)
            (tg,) = torch.autograd.grad(out, [lp], go)
            v, g = ours.value_and_grad(*args, grad_output=go.numpy() if go.ndim else float(go))
            np.testing.assert_allclose(v, out.detach().numpy(), rtol=rtol, atol=rtol)
            np.testing.assert_allclose(g, tg.numpy(), rtol=rtol, atol=rtol)
            continue
        m = torch.nn.LinearCrossEntropyLoss(*cargs, **ckw)
        c, d = cargs[1], cargs[0]
        of = tuple(ckw.get("out_features", ()))
        x = fargs[0].detach().requires_grad_()
        w = m.linear.weight.reshape(c, *of, d)
        leaves = {"input": x, "linear_weight": m.linear.weight}
        kwargs = {}
        if m.linear.bias is not None:
            leaves["linear_bias"] = m.linear.bias
            kwargs["linear_bias"] = np_of(m.linear.bias.reshape(c, *of))
        out = m(x, fargs[1])
        ours = _lce_module(ckw)
        np.testing.assert_allclose(ours(np_of(x), np_of(w), np_of(fargs[1]), **kwargs),
                                   out.detach().numpy(), rtol=rtol, atol=rtol)
        go = _go(out)
        tg = torch.autograd.grad(out, list(leaves.values()), go)
        v, g = ours.value_and_grad(np_of(x), np_of(w), np_of(fargs[1]), **kwargs,
                                   argnums=tuple(leaves),
                                   grad_output=go.numpy() if go.ndim else float(go))
        for a, ours_g, theirs in zip(leaves, g, tg):
            np.testing.assert_allclose(ours_g.reshape(-1), theirs.numpy().reshape(-1),
                                       rtol=rtol, atol=rtol * max(1.0, float(theirs.abs()
                                                                             .max())),
                                       err_msg=f"gradient of {a}")


def test_module_db_error_inputs_raise(db):
    info = db[1]["LinearCrossEntropyLoss"]
    errors = info.module_error_inputs_func(info, device="cpu", dtype=torch.float32,
                                           requires_grad=False, training=True)
    assert errors
    for err in errors:
        mi = err.module_error_input
        cargs, ckw = mi.constructor_input.args, mi.constructor_input.kwargs
        x, t = mi.forward_input.args
        with pytest.raises(err.error_type):
            torch.nn.LinearCrossEntropyLoss(*cargs, **ckw)(x, t)
        w = np.random.default_rng(0).standard_normal((cargs[1], cargs[0])).astype(np.float32)
        # fastloss's class holds no parameters: what torch refuses at construction it
        # refuses at the call
        with pytest.raises(OURS_RAISE):
            _lce_module(ckw)(np_of(x), w, np_of(t))

