"""The public surface: classes equal functions, signatures follow torch, inputs of every
kind are accepted and never written, value_and_grad's out= contract."""
import inspect

import numpy as np
import pytest

import fastloss
from fastloss._registry import LOSSES
from conftest import all_cases
from helpers import assert_close, diff_args, run_fastloss

LEGACY = {"size_average", "reduce"}
# torch's constructor arguments that make parameters of the module's own (fastloss has
# none: the class takes them at call time instead; see its docstring)
CLASS_OWN_PARAMETERS = {"LinearCrossEntropyLoss": ("in_features", "num_classes",
                                                   "out_features", "bias", "device", "dtype")}
CASES = list(all_cases())
# the losses with a torch twin (the registry's oracle): their signatures follow torch's
TWINS = sorted(name for name, spec in LOSSES.items() if spec.oracle is not None)


def test_every_loss_has_cases_a_class_and_is_exported():
    from cases import CASES as by_loss
    assert set(by_loss) == set(LOSSES), "every registry row needs test cases, and only those"
    for name, spec in LOSSES.items():
        assert getattr(fastloss, name) is spec.function
        assert getattr(fastloss.functional, name) is spec.function
        assert issubclass(getattr(fastloss, spec.class_name), fastloss.losses._Loss)
        assert spec.function.__doc__ and "Examples" in spec.function.__doc__


def _torch_names(spec, params):
    """fastloss's parameter names as torch calls them (the oracle's argument map)."""
    return [spec.oracle.argument(k) for k in params]


@pytest.mark.parametrize("name", TWINS)
def test_signature_follows_torch(name):
    pytest.importorskip("torch")
    spec = LOSSES[name]
    ours = inspect.signature(spec.function).parameters
    torch_fn = spec.oracle.resolve()
    theirs = {k: v for k, v in inspect.signature(torch_fn).parameters.items()
              if k not in LEGACY}
    own = [k for k in ours if k not in ("backend", "sample_weight")
           and k not in spec.extensions]   # dispatch's, fastloss's per-sample weights
    assert _torch_names(spec, own) == list(theirs)
    for k in (*spec.extensions, "sample_weight"):   # fastloss's own: keyword-only
        assert ours[k].kind == inspect.Parameter.KEYWORD_ONLY, k
    for k in own:
        assert ours[k].default == theirs[spec.oracle.argument(k)].default, \
            f"{name}({k}=...) default"
    # positional arguments keep torch's positions up to its first legacy slot
    torch_order = list(inspect.signature(torch_fn).parameters)
    positional = [k for k, p in ours.items() if p.kind == p.POSITIONAL_OR_KEYWORD]
    assert _torch_names(spec, positional) == torch_order[:len(positional)]


@pytest.mark.parametrize("name", TWINS)
def test_class_signature_follows_torch(name):
    pytest.importorskip("torch")
    spec = LOSSES[name]
    ours = inspect.signature(getattr(fastloss, spec.class_name).__init__).parameters
    theirs = [k for k in inspect.signature(spec.oracle.resolve_class().__init__).parameters
              if k not in LEGACY and k not in CLASS_OWN_PARAMETERS.get(spec.class_name, ())]
    own = [k for k in ours if k != "backend" and k not in spec.extensions]
    assert _torch_names(spec, own) == theirs


def test_oracle_names_are_resolved_lazily():
    """The registry names its torch twins without importing torch (fastloss never needs
    it); resolving a name imports it then."""
    import subprocess
    import sys
    code = ("import sys, fastloss; "
            "o = fastloss.LOSSES['cross_entropy'].oracle; "
            "print(o.function, o.class_name, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["torch.nn.functional.cross_entropy", "torch.nn.CrossEntropyLoss", "False"]
    torch = pytest.importorskip("torch")
    assert LOSSES["cross_entropy"].oracle.resolve() is torch.nn.functional.cross_entropy
    assert LOSSES["cross_entropy"].oracle.resolve_class() is torch.nn.CrossEntropyLoss


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_class_equals_function(name):
    from cases import CASES as by_loss
    spec = LOSSES[name]
    cls = getattr(fastloss, spec.class_name)
    accepted = set(inspect.signature(cls.__init__).parameters)
    compared = 0
    for case in by_loss[name]:
        args, kwargs = case.build(np.float64)
        if not set(kwargs) <= accepted:
            continue   # e.g. l1_loss(weight=...): torch's L1Loss has no weight either
        for red in case.reductions:
            expected = spec.function(*args, **kwargs, reduction=red)
            criterion = cls(**kwargs, reduction=red)
            np.testing.assert_array_equal(criterion(*args), expected)
            compared += 1
            if case.grad:
                wrt = diff_args(name, args, kwargs)
                idx = tuple(spec.parameters.index(a) for a in wrt)
                v1, g1 = criterion.value_and_grad(*args, argnums=idx)
                v2, g2 = fastloss.value_and_grad(spec.function, argnums=idx)(
                    *args, **kwargs, reduction=red)
                np.testing.assert_array_equal(v1, v2)
                for a, b in zip(g1, g2):
                    np.testing.assert_array_equal(a, b)
    assert compared >= 3


def _freeze(x):
    if isinstance(x, np.ndarray):
        x = x.copy()
        x.setflags(write=False)
    return x


def _strided(x):
    """The same values in a non-contiguous, reversed-stride view."""
    if isinstance(x, np.ndarray) and x.ndim >= 1 and x.size:
        big = np.empty((2,) + x.shape, x.dtype)
        big[1] = x
        return big[1].T.copy().T if x.ndim > 1 else big[:, ::-1][1, ::-1]
    return x


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.loss}-{c.id}")
def test_read_only_and_strided_inputs_are_accepted_and_untouched(case):
    args, kwargs = case.build(np.float64)
    before = [np.array(a, copy=True) for a in args]
    red = case.reductions[-1]
    ref_value, ref_grads, _ = run_fastloss(case.loss, args, kwargs, red, grad=case.grad) \
        if case.grad else (run_fastloss(case.loss, args, kwargs, red, grad=False) + (None,))
    for transform in (_freeze, _strided):
        targs = [transform(a) for a in args]
        tkw = {k: transform(v) for k, v in kwargs.items()}
        out = run_fastloss(case.loss, targs, tkw, red, grad=case.grad)
        assert_close(out[0], ref_value, 1e-12, "value")
        for name, g in out[1].items():
            assert_close(g, ref_grads[name], 1e-12, f"grad of {name}")
    for a, b in zip(args, before):
        np.testing.assert_array_equal(a, b)


def test_torch_tensors_and_lists_are_accepted():
    torch = pytest.importorskip("torch")
    x = torch.randn(5, 4, requires_grad=True)
    t = torch.tensor([0, 1, 2, 3, 0])
    ours = fastloss.cross_entropy(x, t)
    assert ours.dtype == np.float32
    assert abs(float(ours) - float(torch.nn.functional.cross_entropy(x, t).detach())) < 1e-6
    assert float(fastloss.mse_loss([1.0, 2.0], [0.0, 0.0])) == 2.5


def test_dtypes_are_kept_and_half_computes_in_float32():
    x = np.array([[1.0, 2.0], [0.5, -1.0]])
    t = np.array([1, 0])
    assert fastloss.cross_entropy(x.astype(np.float32), t).dtype == np.float32
    assert fastloss.cross_entropy(x, t).dtype == np.float64
    half = fastloss.cross_entropy(x.astype(np.float16), t)
    assert half.dtype == np.float32
    assert abs(float(half) - float(fastloss.cross_entropy(x, t))) < 1e-3
    assert fastloss.mse_loss(x.astype(np.float32), x).dtype == np.float64  # torch promotes
    assert fastloss.cross_entropy(x, t, reduction="none").shape == (2,)
    assert fastloss.cross_entropy(x, t).shape == ()


def test_value_and_grad_writes_into_out_and_reuses_it():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 5)).astype(np.float32)
    t = rng.integers(0, 5, 6)
    vg = fastloss.value_and_grad(fastloss.cross_entropy)
    loss, grad = vg(x, t)
    out = np.full_like(x, np.nan)
    loss2, grad2 = vg(x, t, out=out)
    assert grad2 is out
    np.testing.assert_array_equal(out, grad)
    assert float(loss2) == float(loss)
    # a non-contiguous out is filled too
    big = np.zeros((6, 10), np.float32)
    _, g3 = vg(x, t, out=big[:, ::2])
    np.testing.assert_array_equal(big[:, ::2], grad)
    # out may even be the input itself (it is then written only after the kernel ran)
    xc = x.copy()
    _, g4 = vg(xc, t, out=xc)
    np.testing.assert_array_equal(xc, grad)


def test_value_and_grad_of_several_arguments_and_broadcasting():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 1))
    t = rng.standard_normal((1, 4))
    with pytest.warns(UserWarning, match="size"):
        loss, g = fastloss.value_and_grad(fastloss.mse_loss)(x, t, reduction="sum")
    assert g.shape == (3, 1)
    np.testing.assert_allclose(g, 2 * (x - t).sum(axis=1, keepdims=True))
