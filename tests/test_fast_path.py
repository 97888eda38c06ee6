"""The lean path of the common small class-loss call (fastloss._fast) against the general
path: the same results bit for bit, on every backend, and the same exceptions with the same
messages; anything uncommon falls through. (test_errors_core.py and test_vs_torch.py also
run through both paths: the `fast_path` fixture of conftest.py.)"""
import numpy as np
import pytest

import fastloss
from fastloss import _dispatch, _fast
from fastloss.functional import classification

BACKENDS = ["auto"] + [b for b in _dispatch.backend_names() if _dispatch._BACKENDS[b].available]
LOSSES = [fastloss.cross_entropy, fastloss.nll_loss]
RNG = np.random.default_rng(13)


def both_paths(fn, monkeypatch):
    """(what fn() gives or raises with the fast path on, with it off)."""
    out = []
    for on in (True, False):
        monkeypatch.setattr(_fast, "enabled", on)
        try:
            out.append(("value", fn()))
        except Exception as exc:   # noqa: BLE001 -- comparing what each path raises
            out.append(("raised", type(exc), str(exc)))
    return out


def assert_same(a, b):
    assert a[0] == b[0], (a, b)
    if a[0] == "raised":
        assert a == b
        return
    va, vb = a[1], b[1]
    if isinstance(va, tuple):          # value_and_grad: (value, grad)
        for x, y in zip(va, vb):
            assert_same(("value", x), ("value", y))
        return
    assert type(va) is type(vb) and va.dtype == vb.dtype and va.shape == vb.shape
    assert np.array_equal(va, vb, equal_nan=True)
    assert va.tobytes() == vb.tobytes()   # bit for bit (signed zeros, NaN payloads)


def logits(n, c, dtype, spice=False):
    x = (RNG.standard_normal((n, c)) * 3).astype(dtype)
    if spice and n >= 4 and c >= 2:
        x[0, 0] = np.nan
        x[1, :] = -np.inf
        x[2, 1] = np.inf
        x[3, 0] = -np.inf
    return x


def targets(n, c, ignore=False):
    t = RNG.integers(0, max(c, 1), n).astype(np.int64)
    if ignore and n:
        t[::3] = -100
    return t


def test_common_call_skips_validation(monkeypatch):
    """The common call never reaches the general preparation (and value_and_grad's
    Prepared is the fast one); switched off, it does."""
    x, t = logits(8, 10, np.float32), targets(8, 10)
    expected = fastloss.cross_entropy(x, t)

    def refuse(*a, **k):
        raise AssertionError("general path taken")
    monkeypatch.setattr(classification, "_class_prepare", refuse)
    assert fastloss.cross_entropy(x, t) == expected
    fastloss.nll_loss(x, t, reduction="sum")
    fastloss.value_and_grad(fastloss.cross_entropy)(x, t)
    monkeypatch.setattr(_fast, "enabled", False)
    with pytest.raises(AssertionError, match="general path"):
        fastloss.cross_entropy(x, t)


def test_fast_prepare_is_the_general_prepare():
    x, t = logits(5, 4, np.float64), targets(5, 4)
    for name, kw in [("cross_entropy", {"ignore_index": 2, "reduction": "sum"}),
                     ("nll_loss", {"reduction": "none"})]:
        fast = _fast.PREPARE[name]((x, t), kw)
        general = fastloss.LOSSES[name].prepare(x, t, **kw)
        assert fast is not None
        for f, g, field in zip(fast, general, fast._fields):
            if field in ("arrays",):
                assert all(a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b)
                           for a, b in zip(f, g)), field
            elif field == "targets":
                assert f._replace(target=None, weight=None) == g._replace(target=None,
                                                                          weight=None)
                assert np.array_equal(f.target, g.target) and f.weight.dtype == g.weight.dtype
            else:
                assert f == g, field


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(8, 10), (1, 1), (0, 3), (5, 0), (37, 2), (64, 33),
                                   (100, 1000)])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("loss", LOSSES, ids=lambda f: f.__name__)
def test_same_results_both_paths(loss, reduction, shape, dtype, backend, monkeypatch):
    n, c = shape
    x = logits(n, c, dtype, spice=True)
    t = targets(n, c, ignore=True) if c else np.full(n, -100, np.int64)
    kw = {"reduction": reduction, "backend": None if backend == "auto" else backend}
    assert_same(*both_paths(lambda: loss(x, t, **kw), monkeypatch))
    assert_same(*both_paths(lambda: fastloss.value_and_grad(loss)(x, t, **kw), monkeypatch))
    x.setflags(write=False)
    t.setflags(write=False)
    assert_same(*both_paths(lambda: loss(x, t, None, ignore_index=0, **kw), monkeypatch))


X = logits(6, 4, np.float32)
T = targets(6, 4)


@pytest.mark.parametrize("call", [
    # the common case with options the fast path must leave alone or check the same way
    lambda: fastloss.cross_entropy(X, T, label_smoothing=0),
    lambda: fastloss.cross_entropy(X, T, label_smoothing=-0.0, z_loss=0),
    lambda: fastloss.cross_entropy(X, T, label_smoothing=0.1),
    lambda: fastloss.cross_entropy(X, T, z_loss=1e-3),
    lambda: fastloss.cross_entropy(X, T, softcap=5.0),
    lambda: fastloss.cross_entropy(X, T, weight=np.ones(4, np.float32)),
    lambda: fastloss.cross_entropy(X, T, np.ones(4, np.float32)),
    lambda: fastloss.cross_entropy(X, T, sample_weight=np.ones(6)),
    lambda: fastloss.cross_entropy(X.T.copy().T, T),             # Fortran order
    lambda: fastloss.cross_entropy(X[::2], T[::2]),              # views
    lambda: fastloss.cross_entropy(X, T.astype(np.int32)),
    lambda: fastloss.cross_entropy(X, T.astype(">i8")),
    lambda: fastloss.cross_entropy(X.astype(">f4"), T),
    lambda: fastloss.cross_entropy(X.astype(np.float16), T),
    lambda: fastloss.cross_entropy(X[0], T[0]),
    lambda: fastloss.cross_entropy(X[0], T[:1]),
    lambda: fastloss.cross_entropy(X.reshape(3, 4, 2), T.reshape(3, 2)),
    lambda: fastloss.nll_loss(X, T, ignore_index=np.int64(1)),
    lambda: fastloss.nll_loss(np.ma.masked_array(X), T),
    lambda: fastloss.nll_loss(X.tolist(), T),
    # errors: the same exception and message on both paths
    lambda: fastloss.cross_entropy(X, np.array([0, 4, 1, 0, 0, 0])),
    lambda: fastloss.nll_loss(X, np.array([0, 1, -1, 0, 0, 0]), reduction="none"),
    lambda: fastloss.cross_entropy(X, np.array([0, 1, -100, 0, 0, 0]), ignore_index=1),
    lambda: fastloss.cross_entropy(X, T, reduction="avg"),
    lambda: fastloss.cross_entropy(X, T, reduction=None),
    lambda: fastloss.cross_entropy(X, T, label_smoothing=True),
    lambda: fastloss.cross_entropy(X, T, label_smoothing=1.5),
    lambda: fastloss.cross_entropy(X, T, ignore_index=1.5),
    lambda: fastloss.cross_entropy(X, T, ignore_index=True),
    lambda: fastloss.cross_entropy(X, T, ignore_index=2 ** 63),
    lambda: fastloss.cross_entropy(X, T[:5]),
    lambda: fastloss.cross_entropy(X, T[:, None]),
    lambda: fastloss.cross_entropy(X, T, weight=np.ones(3)),
    lambda: fastloss.cross_entropy(X, T, None, weight=None),
    lambda: fastloss.cross_entropy(X, T, None, 3),
    lambda: fastloss.cross_entropy(X, T, nope=1),
    lambda: fastloss.cross_entropy(input=X, target=T, weight=None, z_loss=0.0),
    lambda: fastloss.nll_loss(X, target=T, reduction="sum"),
    lambda: fastloss.nll_loss(X, T, input=X),
    lambda: fastloss.nll_loss(X, input=X),
    lambda: fastloss.nll_loss(target=T),
    lambda: fastloss.cross_entropy(X, T, None, None),
    lambda: fastloss.nll_loss(X, T, label_smoothing=0.0),
    lambda: fastloss.cross_entropy(X),
    lambda: fastloss.cross_entropy(X, T, backend="gpu"),
    lambda: fastloss.value_and_grad(fastloss.cross_entropy)(X, np.array([9, 0, 0, 0, 0, 0])),
    lambda: fastloss.value_and_grad(fastloss.nll_loss)(X, T, out=np.zeros((6, 4))),
    lambda: fastloss.value_and_grad(fastloss.nll_loss)(X, T, out=np.zeros((6, 4), np.float32)),
    lambda: fastloss.value_and_grad(fastloss.cross_entropy)(X, T, grad_output=np.ones(6)),
    lambda: fastloss.value_and_grad(fastloss.cross_entropy)(X, T, reduction="none",
                                                            grad_output=np.ones(6)),
    lambda: fastloss.value_and_grad(fastloss.cross_entropy)(X, T, grad_output=2.0),
])
def test_uncommon_calls_and_errors_are_the_same(call, monkeypatch):
    assert_same(*both_paths(call, monkeypatch))


def test_fast_path_declines_what_it_does_not_handle():
    x, t = logits(4, 3, np.float32), targets(4, 3)
    ce = _fast.FORWARD["cross_entropy"]
    assert ce((x, t), {}, None) is not None
    assert ce((), {"input": x, "target": t, "weight": None}, None) is not None
    assert ce((x,), {"target": t}, None) is not None
    for args, kw in [((x, t), {"weight": np.ones(3, np.float32)}),
                     ((x, t), {"label_smoothing": 0.2}),
                     ((x, t), {"softcap": 1.0}),
                     ((x, t), {"other": 1}),
                     ((x, t, None, 1), {}),
                     ((x[:, :2], t), {}),
                     ((x, t.astype(np.int32)), {}),
                     ((x, np.array([0, 5, 0, 0])), {}),     # a bad index: general raises
                     ((x.astype(np.float16), t), {})]:
        assert ce(args, kw, None) is None, kw
