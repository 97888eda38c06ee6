"""fastloss.torch: the losses as autograd-aware torch operators (registry-driven)."""
import inspect
import subprocess
import sys
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ft = pytest.importorskip("fastloss.torch")

import fastloss  # noqa: E402
from fastloss._registry import LOSSES  # noqa: E402
from conftest import all_cases  # noqa: E402
from helpers import (diff_args, first_weighted_cases, grad_output_for,  # noqa: E402
                     with_reductions)

F = torch.nn.functional
PATHS = ("eager", "ops")


@pytest.fixture(params=PATHS)
def path(request):
    previous = ft.use_ops(request.param == "ops")
    yield request.param
    ft.use_ops(previous)


def _tensors(name, args, kwargs, wrt):
    """Tensors for the array arguments, the differentiable ones requiring grad."""
    spec = LOSSES[name]

    def conv(pname, a):
        if isinstance(a, np.ndarray):
            return torch.from_numpy(a.copy()).requires_grad_(pname in wrt)
        return a
    return ([conv(p, a) for p, a in zip(spec.parameters, args)],
            {k: conv(k, v) for k, v in kwargs.items()})


def bridged_cases(fd_only=False):
    return [c for c in all_cases() if c.loss in ft.BRIDGED and (c.fd or not fd_only)]


def test_every_loss_is_bridged_or_excluded():
    """Tripwire: a new loss in the registry must be bridged, or excluded with a reason."""
    missing = [n for n in LOSSES if n not in ft.BRIDGED and n not in ft.EXCLUDED]
    assert not missing, (f"not bridged to torch: {missing} (why: "
                         f"{ {n: ft.UNSUPPORTED.get(n) for n in missing} }); make their "
                         "arguments expressible or add them to fastloss.torch.EXCLUDED")
    for name in ft.BRIDGED:
        assert callable(getattr(ft, name))
        assert hasattr(torch.ops.fastloss, name) and hasattr(torch.ops.fastloss, name + "_vg")


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("case,reduction", with_reductions(bridged_cases(), ["mean", "none"]))
def test_matches_fastloss_on_arrays(case, reduction, path):
    """Values and gradients are fastloss's own (the same kernels), in float32 and float64."""
    for dtype in (np.float32, np.float64):
        args, kwargs = case.build(dtype)
        kwargs = {**kwargs, "reduction": reduction}
        fn = LOSSES[case.loss].function
        wrt = diff_args(case.loss, args, kwargs) if case.grad else ()
        expected = np.asarray(fn(*args, **kwargs, backend="numpy"))
        targs, tkw = _tensors(case.loss, args, kwargs, wrt)
        out = getattr(ft, case.loss)(*targs, **tkw, backend="numpy")
        assert isinstance(out, torch.Tensor) and out.dtype == torch.from_numpy(expected).dtype
        np.testing.assert_array_equal(out.detach().numpy(), expected)
        if not wrt:
            continue
        go = grad_output_for(expected.shape, reduction, expected.dtype)
        _, grads = fastloss.value_and_grad(fn, argnums=wrt)(
            *args, **kwargs, grad_output=go, backend="numpy")
        out.backward(torch.as_tensor(go, dtype=out.dtype))
        named = dict(zip(LOSSES[case.loss].parameters, targs), **tkw)
        for a, g in zip(wrt, grads):
            got = named[a].grad
            assert got is not None and got.dtype == named[a].dtype, a
            np.testing.assert_allclose(got.numpy(), g, rtol=1e-6 if dtype == np.float32
                                       else 1e-12, atol=1e-7, err_msg=a)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("case,reduction", with_reductions(
    [c for c in bridged_cases(fd_only=True) if c.grad], ["mean", "sum", "none"]))
def test_gradcheck_float64(case, reduction, path):
    args, kwargs = case.build(np.float64)
    # gradcheck needs float64 throughout: a mixed-dtype case is checked in float64 too
    up = lambda a: a.astype(np.float64) if isinstance(a, np.ndarray) and a.dtype.kind == "f" \
        else a   # noqa: E731
    args, kwargs = [up(a) for a in args], {k: up(v) for k, v in kwargs.items()}
    # fastloss-only keywords the finite-difference check needs (ctc_loss: exact_grad=True,
    # since by default it returns torch's gradient, which is not the exact one)
    kwargs = {**kwargs, "reduction": reduction, **dict(case.fd_kwargs)}
    wrt = diff_args(case.loss, args, kwargs)
    targs, tkw = _tensors(case.loss, args, kwargs, wrt)
    names = LOSSES[case.loss].parameters
    named = dict(zip(names, targs), **tkw)
    inputs = tuple(named[a] for a in wrt)
    fn = getattr(ft, case.loss)

    def f(*xs):
        call = dict(named, **dict(zip(wrt, xs)))
        return fn(**call)
    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", ["l1_loss", "mse_loss", "smooth_l1_loss", "huber_loss"])
def test_target_gradient_is_the_negated_input_gradient(name, path):
    x = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    y = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    for reduction in ("mean", "none"):
        torch.autograd.gradcheck(lambda a, b: getattr(ft, name)(a, b, reduction=reduction),
                                 (x, y))
        x2, y2 = x.detach().clone().requires_grad_(), y.detach().clone().requires_grad_()
        getattr(ft, name)(x, y, reduction=reduction).sum().backward()
        LOSSES[name].oracle.resolve()(x2, y2, reduction=reduction).sum().backward()
        torch.testing.assert_close(y.grad, y2.grad)
        x.grad = y.grad = None
    # a broadcast target: the negated gradient summed over the broadcast axis
    yb = torch.randn(4, dtype=torch.float64, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.autograd.gradcheck(lambda b: getattr(ft, name)(x.detach(), b), (yb,))
    # only the target requires grad: still provided
    x0 = x.detach()
    getattr(ft, name)(x0, y).backward()
    expected = torch.autograd.grad(LOSSES[name].oracle.resolve()(x0, y), y)[0]
    torch.testing.assert_close(y.grad, expected)


def test_a_target_that_requires_grad_raises_where_it_is_not_provided(path):
    x = torch.randn(4, 3, requires_grad=True)
    p = torch.softmax(torch.randn(4, 3), 1).requires_grad_()
    with pytest.raises(ValueError, match="target requires grad.*cross_entropy"):
        ft.cross_entropy(x, p)
    w = torch.ones(3, requires_grad=True)
    with pytest.raises(ValueError, match="weight requires grad"):
        ft.cross_entropy(x, torch.tensor([0, 1, 2, 0]), w)
    with pytest.raises(ValueError, match="target requires grad"):
        ft.kl_div(x, p)
    # an input enlarged by the target's broadcast: the target gradient is not derivable
    with pytest.raises(ValueError, match="target broadcasts to input's shape"):
        ft.mse_loss(torch.zeros(3, requires_grad=True), torch.zeros(4, 3, requires_grad=True))
    # without grad mode nothing is differentiated, so nothing raises
    with torch.no_grad():
        ft.cross_entropy(x, p)


def test_double_backward_raises(path):
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    t = torch.tensor([0, 1, 2, 0])
    for reduction in ("mean", "none"):
        loss = ft.cross_entropy(x, t, reduction=reduction).sum()
        (g,) = torch.autograd.grad(loss, x, create_graph=True)
        with pytest.raises(RuntimeError, match="double backward is not supported"):
            g.sum().backward()
    # create_graph=True alone (e.g. another term needs it) still gives the first gradient
    (g,) = torch.autograd.grad(ft.mse_loss(x, torch.zeros_like(x)), x, create_graph=True)
    torch.testing.assert_close(g, 2 * x.detach() / x.numel())


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_computed_in_float32_returned_like_torch(dtype, path):
    x32 = torch.randn(6, 5)
    t = torch.randint(0, 5, (6,))
    x = x32.to(dtype).requires_grad_()
    out = ft.cross_entropy(x, t)
    ref = F.cross_entropy(x.detach().float(), t)
    assert out.dtype == dtype == F.cross_entropy(x.detach(), t).dtype
    assert out.float().item() == ref.to(dtype).float().item()
    out.backward()
    assert x.grad.dtype == dtype
    xf = x.detach().float().requires_grad_()
    F.cross_entropy(xf, t).backward()
    torch.testing.assert_close(x.grad, xf.grad.to(dtype))
    # a half input with a float32 target promotes to float32, as in torch
    y = torch.randn(6, 5)
    assert ft.mse_loss(x, y).dtype == F.mse_loss(x.detach(), y).dtype == torch.float32


def test_non_contiguous_and_channels_last(path):
    x = torch.randn(4, 5, 3, 3).to(memory_format=torch.channels_last).requires_grad_()
    t = torch.randint(0, 5, (4, 3, 3))
    x2 = x.detach().clone().requires_grad_()
    torch.testing.assert_close(ft.cross_entropy(x, t), F.cross_entropy(x2, t))
    ft.cross_entropy(x, t).backward()
    F.cross_entropy(x2, t).backward()
    torch.testing.assert_close(x.grad, x2.grad)
    a = torch.randn(7, 6, requires_grad=True)
    b = torch.randn(6, 7)
    torch.testing.assert_close(ft.mse_loss(a.t(), b[:, ::1]), F.mse_loss(a.t(), b))
    ft.mse_loss(a.t(), b).backward()
    torch.testing.assert_close(a.grad, 2 * (a.detach().t() - b).t() / 42)


def test_zero_copy_input():
    x = torch.randn(8, 5)
    assert np.shares_memory(ft._to_numpy(x), x.numpy())
    assert np.shares_memory(ft._to_numpy(x.t()), x.numpy())


def test_cuda_and_meta_tensors_raise_clearly():
    meta = torch.empty(4, 3, device="meta")
    with pytest.raises(ValueError, match="on meta.*CPU only"):
        ft.cross_entropy(meta, torch.zeros(4, dtype=torch.long, device="meta"))
    # under a fake-tensor context (what torch.compile traces with) shapes propagate
    from torch._subclasses.fake_tensor import FakeTensorMode
    with FakeTensorMode():
        x = torch.empty(4, 3)
        out = ft.cross_entropy(x, torch.zeros(4, dtype=torch.long), reduction="none")
        assert out.shape == (4,) and out.dtype == torch.float32


def test_functional_and_module_signatures_are_fastlosss():
    import inspect
    for name in ft.BRIDGED:
        spec = LOSSES[name]
        assert inspect.signature(getattr(ft, name)) == inspect.signature(spec.function)
        cls = getattr(ft, spec.class_name)
        assert issubclass(cls, torch.nn.Module)
        assert (list(inspect.signature(cls.__init__).parameters)
                == list(inspect.signature(getattr(fastloss, spec.class_name).__init__).parameters))


def test_module_weights_are_buffers_and_hyper_parameters_apply():
    w = torch.rand(5) + 0.5
    crit = ft.CrossEntropyLoss(weight=w, label_smoothing=0.1, reduction="sum")
    assert "weight" in dict(crit.named_buffers())
    assert "label_smoothing=0.1" in repr(crit)
    x, t = torch.randn(6, 5), torch.randint(0, 5, (6,))
    torch.testing.assert_close(crit(x, t), torch.nn.CrossEntropyLoss(
        weight=w, label_smoothing=0.1, reduction="sum")(x, t))
    assert crit.state_dict()["weight"].equal(w)
    with pytest.raises(TypeError):
        ft.CrossEntropyLoss(w, -100)   # after torch's legacy slot: keyword-only


def test_a_number_var_is_expanded_like_torch(path):
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    y = torch.randn(4, 3, dtype=torch.float64)
    torch.testing.assert_close(ft.gaussian_nll_loss(x, y, 0.5), F.gaussian_nll_loss(x, y, 0.5))


def test_errors_are_fastlosss_and_name_the_argument(path):
    x = torch.randn(4, 3, requires_grad=True)
    with pytest.raises(IndexError, match="target: class index 7"):
        ft.cross_entropy(x, torch.tensor([0, 1, 7, 0]))
    with pytest.raises(ValueError, match="reduction"):
        ft.mse_loss(x, x.detach(), reduction="avg")
    with pytest.raises(TypeError, match="unexpected keyword"):
        ft.mse_loss(x, x.detach(), size_average=True)


def _train(criterion, steps=5, seed=0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(10, 32), torch.nn.ReLU(), torch.nn.Linear(32, 7))
    opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    g = torch.Generator().manual_seed(1)
    for _ in range(steps):
        x = torch.randn(64, 10, generator=g)
        t = torch.randint(0, 7, (64,), generator=g)
        opt.zero_grad()
        criterion(model(x), t).backward()
        opt.step()
    return [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize("make", [
    lambda m: m.CrossEntropyLoss(label_smoothing=0.1),
    lambda m: m.MultiMarginLoss(margin=0.5),
])
def test_training_gives_torchs_parameters(make, path):
    theirs = _train(make(torch.nn))
    ours = _train(make(ft))
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_regression_training_with_a_target_gradient(path):
    # both sides of an MSE are model outputs: the target gradient is needed too
    def train(mse):
        torch.manual_seed(0)
        a, b = torch.nn.Linear(4, 3), torch.nn.Linear(4, 3)
        opt = torch.optim.SGD([*a.parameters(), *b.parameters()], lr=0.1)
        x = torch.randn(16, 4, generator=torch.Generator().manual_seed(2))
        for _ in range(4):
            opt.zero_grad()
            mse(a(x), b(x)).backward()
            opt.step()
        return [p.detach() for p in [*a.parameters(), *b.parameters()]]
    for p, q in zip(train(ft.mse_loss), train(F.mse_loss)):
        torch.testing.assert_close(p, q)


def test_compile_fullgraph_matches_eager():
    torch._dynamo.reset()
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(10, 16), torch.nn.Tanh(), torch.nn.Linear(16, 5))
    crit = ft.CrossEntropyLoss(label_smoothing=0.05)

    def step(x, t):
        return crit(model(x), t)

    x, t = torch.randn(32, 10), torch.randint(0, 5, (32,))
    compiled = torch.compile(step, fullgraph=True, backend="aot_eager")
    got = compiled(x, t)
    got.backward()
    g_compiled = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    want = step(x, t)
    want.backward()
    torch.testing.assert_close(got, want)
    for a, b in zip(g_compiled, [p.grad for p in model.parameters()]):
        torch.testing.assert_close(a, b)
    # the "none" path (value op + backward op) compiles too
    per = torch.compile(lambda x, t: ft.cross_entropy(model(x), t, reduction="none"),
                        fullgraph=True, backend="aot_eager")(x, t)
    torch.testing.assert_close(per, ft.cross_entropy(model(x), t, reduction="none"))


def test_compile_inductor_fullgraph():
    torch._dynamo.reset()
    x = torch.randn(16, 6, requires_grad=True)
    t = torch.randint(0, 6, (16,))
    f = torch.compile(lambda x, t: ft.cross_entropy(x * 2, t), fullgraph=True)
    out = f(x, t)
    out.backward()
    x2 = x.detach().clone().requires_grad_()
    F.cross_entropy(x2 * 2, t).backward()
    torch.testing.assert_close(out, F.cross_entropy(x.detach() * 2, t))
    torch.testing.assert_close(x.grad, x2.grad)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("name", sorted(ft.BRIDGED))
def test_opcheck(name):
    case = next(c for c in all_cases() if c.loss == name and c.fd and c.grad)
    args, kwargs = case.build(np.float64)
    bridge_params = ft._bridge_of(name).params    # the loss's, then sample_weight
    sig = ft.BRIDGED[name].__signature__
    values = dict(zip(bridge_params, args), **kwargs)
    tensor_args = {}
    for p in bridge_params:
        v = values.get(p, sig.parameters[p].default)
        tensor_args[p] = torch.from_numpy(v.copy()) if isinstance(v, np.ndarray) else v
    wrt = diff_args(name, args, kwargs)
    ops = torch.ops.fastloss
    weighted = "sample_weight" in bridge_params
    if weighted:    # the reduced calls with fastloss's per-sample weights too
        shape = np.shape(LOSSES[name].function(*args, **{**kwargs, "reduction": "none"}))
        weights = torch.from_numpy(np.random.default_rng(0).uniform(0.5, 2.0, shape))
    for reduction, sw in (("mean", None), ("none", None)) + (
            (("sum", weights),) if weighted else ()):
        tensor_args["sample_weight"] = sw
        call = [tensor_args[p] if p != "reduction" else reduction for p in bridge_params]
        call = [c.requires_grad_(p in wrt) if isinstance(c, torch.Tensor) else c
                for p, c in zip(bridge_params, call)]
        flags = [p in wrt for p in ft._bridge_of(name).diff]
        pack = ft._bridge_of(name).pack
        torch.library.opcheck(getattr(ops, name), (*pack(call), None))
        torch.library.opcheck(getattr(ops, name + "_vg"), (flags, *pack(call), None))
        plain = pack([c.detach() if isinstance(c, torch.Tensor) else c for c in call])
        value = getattr(ops, name)(*plain, None)
        torch.library.opcheck(getattr(ops, name + "_backward"),
                              (torch.ones_like(value), flags, *plain, None))


def test_import_fastloss_imports_neither_torch_nor_jax():
    code = ("import sys, fastloss; fastloss.cross_entropy; "
            "assert 'torch' not in sys.modules and 'jax' not in sys.modules, "
            "[m for m in sys.modules if m.startswith(('torch', 'jax'))]")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_without_torch_the_import_error_says_what_to_install(tmp_path):
    # a `torch` that fails to import, first on the path
    (tmp_path / "torch").mkdir()
    (tmp_path / "torch" / "__init__.py").write_text("raise ImportError('no torch here')\n")
    code = ("import fastloss\n"
            "try:\n    import fastloss.torch\nexcept ImportError as e:\n    print(e)\n")
    import os
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), *sys.path]))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout
    assert "pip install torch==2.13.0" in out


def test_warnings_from_fastloss_reach_the_caller():
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        ft.kl_div(torch.randn(3, 2), torch.rand(3, 2), reduction="mean")
    assert any("batchmean" in str(x.message) for x in w)


def test_fastloss_torch_does_not_shadow_torch():
    """fastloss/torch.py is fastloss.torch: fastloss's own absolute `import torch` lines
    and its torch-tensor detection still see the real torch."""
    import fastloss._validate as v
    assert sys.modules["torch"] is torch and torch.__name__ == "torch"
    assert fastloss.torch is ft and ft.__name__ == "fastloss.torch"
    t = torch.arange(6.0).reshape(2, 3)
    assert np.shares_memory(v.to_numpy(t, "input"), t.numpy())
    assert float(fastloss.mse_loss(t, t)) == 0.0   # a tensor into the NumPy API still works


def test_readme_swap_runs():
    import os
    import re
    readme = open(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                               "README.md")).read()
    section = readme[readme.index("## Inside PyTorch and JAX"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    model = torch.nn.Linear(4, 3)
    ns = {"model": model, "x": torch.randn(5, 4), "y": torch.tensor([0, 1, 2, 0, 1])}
    exec(code, ns)
    assert model.weight.grad is not None
    torch.testing.assert_close(ns["loss"], torch.nn.CrossEntropyLoss(label_smoothing=0.1)(
        model(ns["x"]), ns["y"]))


def _synthetic_spec(name, extra_annotation=None):
    """A registry row the real registry does not hold: mse_loss with one more keyword of
    a type a schema cannot express (as a new loss may have)."""
    import inspect
    from fastloss import _engine
    from fastloss._registry import LossSpec
    from fastloss.functional.elementwise import mse_loss

    def prepare(input, target, *, reduction="mean", scale=None):
        prep = LOSSES["mse_loss"].prepare(input, target, reduction=reduction)
        if scale is not None:   # a list, only to prove it arrives intact
            assert scale == [1, 2], scale
        return prep

    def public(*args, backend=None, **kwargs):
        return _engine.forward(prepare(*args, **kwargs), backend)
    sig = inspect.signature(prepare)
    public.__signature__ = sig.replace(parameters=[*sig.parameters.values(), inspect.Parameter(
        "backend", inspect.Parameter.KEYWORD_ONLY, default=None)])
    public.__name__ = name
    assert mse_loss
    return LossSpec(name, "Synthetic", public, prepare, ("input",), ())


def test_a_parameter_of_unknown_type_travels_as_a_literal():
    made = ft._bridge_loss(_synthetic_spec("bridge_test_literal"))
    bridge, ops, fn, _ = made
    assert bridge.literals == ["scale"]
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    y = torch.randn(4, 3, dtype=torch.float64)
    for use in (False, True):
        previous = ft.use_ops(use)
        try:
            torch.testing.assert_close(fn(x, y, scale=[1, 2]), F.mse_loss(x, y))
            assert torch.autograd.gradcheck(lambda a: fn(a, y, scale=[1, 2]), (x,))
            with pytest.raises(TypeError, match="scale must be a Python literal"):
                fn(x, y, scale=object()) if use else bridge.pack((x, y, "mean", object()))
        finally:
            ft.use_ops(previous)
    torch._dynamo.reset()
    out = torch.compile(lambda a: fn(a, y, scale=[1, 2]), fullgraph=True,
                        backend="aot_eager")(x)
    torch.testing.assert_close(out, F.mse_loss(x, y))


def test_a_required_argument_of_unknown_type_is_reported_not_bridged():
    spec = _synthetic_spec("bridge_test_unsupported")
    import inspect
    sig = inspect.signature(spec.prepare)
    p = list(sig.parameters.values())

    def prepare(input, target, fn_arg, *, reduction="mean", scale=None):
        raise AssertionError
    prepare.__annotations__["fn_arg"] = "Callable[[Tensor], Tensor]"
    from fastloss._registry import LossSpec
    bad = LossSpec("bridge_test_unsupported", "X", spec.function, prepare, ("input",), ())
    reason = ft._bridge_loss(bad)
    assert isinstance(reason, str) and "fn_arg" in reason
    assert p


def test_retain_graph_second_backward_and_grad_output_scaling(path):
    x = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    t = torch.randint(0, 4, (6,))
    loss = ft.cross_entropy(x, t, label_smoothing=0.1)
    loss.backward(retain_graph=True)
    first = x.grad.clone()
    loss.backward(torch.tensor(2.5, dtype=torch.float64))   # the saved gradient was handed over
    x2 = x.detach().clone().requires_grad_()
    F.cross_entropy(x2, t, label_smoothing=0.1).backward()
    torch.testing.assert_close(first, x2.grad)
    torch.testing.assert_close(x.grad, 3.5 * x2.grad)



@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("case,reduction", with_reductions(first_weighted_cases(ft.BRIDGED),
                                                           ["mean", "sum", "none"]))
def test_sample_weight_is_applied_as_fastloss_applies_it(case, reduction, path):
    """fastloss's sample_weight= through the bridge: the weighted value and gradients of
    fastloss.value_and_grad on the same arrays (the bridge once ignored it silently)."""
    args, kwargs = case.build(np.float64)
    kwargs = {**kwargs, "reduction": reduction}
    fn = LOSSES[case.loss].function
    shape = np.shape(fn(*args, **{**kwargs, "reduction": "none"}, backend="numpy"))
    s = np.random.default_rng(5).uniform(0.0, 2.0, shape)
    expected = np.asarray(fn(*args, **kwargs, sample_weight=s, backend="numpy"))
    plain = np.asarray(fn(*args, **kwargs, backend="numpy"))
    wrt = diff_args(case.loss, args, kwargs) if case.grad else ()
    targs, tkw = _tensors(case.loss, args, kwargs, wrt)
    out = getattr(ft, case.loss)(*targs, **tkw, sample_weight=torch.from_numpy(s),
                                 backend="numpy")
    assert out.dtype == torch.from_numpy(expected).dtype
    np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-12, atol=1e-300,
                               equal_nan=True)
    if not np.allclose(plain, expected, equal_nan=True):
        assert not np.allclose(out.detach().numpy(), plain, equal_nan=True)
    if not wrt:
        return
    go = grad_output_for(expected.shape, reduction, expected.dtype)
    _, grads = fastloss.value_and_grad(fn, argnums=wrt)(
        *args, **kwargs, grad_output=go, sample_weight=s, backend="numpy")
    out.backward(torch.as_tensor(go, dtype=out.dtype))
    named = dict(zip(LOSSES[case.loss].parameters, targs), **tkw)
    for a, g in zip(wrt, grads):
        np.testing.assert_allclose(named[a].grad.numpy(), g, rtol=1e-12, atol=1e-15,
                                   err_msg=a)


@pytest.mark.parametrize("name", ["cross_entropy", "mse_loss",
                                  "binary_cross_entropy_with_logits"])
def test_sample_weight_gradcheck_module_and_errors(name, path):
    rng = np.random.default_rng(0)
    if name == "cross_entropy":
        x, t, cls = rng.standard_normal((5, 4)), torch.tensor([0, 3, 1, 1, 2]), "CrossEntropyLoss"
    else:
        x, t = rng.standard_normal((5, 3)), torch.from_numpy(rng.uniform(0, 1, (5, 3)))
        cls = {"mse_loss": "MSELoss",
               "binary_cross_entropy_with_logits": "BCEWithLogitsLoss"}[name]
    n_items = 5 if name == "cross_entropy" else 15
    s = torch.from_numpy(rng.uniform(0.1, 2.0, (5,) if n_items == 5 else (5, 3)))
    fn = getattr(ft, name)
    xt = torch.from_numpy(x).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a: fn(a, t, sample_weight=s), (xt,), eps=1e-6,
                                    atol=1e-6, rtol=1e-5)
    module = getattr(ft, cls)()
    np.testing.assert_allclose(module(xt, t, sample_weight=s).detach().numpy(),
                               fn(xt, t, sample_weight=s).detach().numpy(), rtol=0)
    with pytest.raises(ValueError, match="sample_weight requires grad"):
        fn(xt, t, sample_weight=s.clone().requires_grad_(True))
    with pytest.raises(ValueError, match="sample_weight"):
        fn(xt, t, sample_weight=torch.ones(7))


def test_sample_weight_under_compile_matches_eager():
    x = torch.randn(16, 10, requires_grad=True)
    t = torch.randint(0, 10, (16,))
    s = torch.rand(16)

    def step(a):
        return ft.cross_entropy(a, t, sample_weight=s)
    eager = step(x)
    (g_eager,) = torch.autograd.grad(eager, x)
    compiled = torch.compile(step, fullgraph=True, backend="eager")(x)
    (g_comp,) = torch.autograd.grad(compiled, x)
    torch.testing.assert_close(compiled, eager)
    torch.testing.assert_close(g_comp, g_eager)
