"""fastloss.RunningLoss: the accumulated result equals one call over the concatenation
on every loss's cases; merging, state round-trips, perplexity, and bad updates."""
import json
import math
import pickle

import numpy as np
import pytest

import fastloss
from fastloss import _weighted
from fastloss._registry import LOSSES
from conftest import all_cases

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

PER_ELEMENT_KWARGS = ("weight", "pos_weight")


def _batch_size(name, args):
    """The number of items of a call: the first argument's size along its batch axis."""
    axis = LOSSES[name].batch_axis(LOSSES[name].parameters[0])
    x = np.asarray(args[0])
    return x.shape[axis] if x.ndim > axis else None


def split_case(case, dtype):
    """(fixed kwargs, [(batch args, batch kwargs)], full args, full kwargs, batched?) for a
    case: every array argument whose batch axis (the registry's) holds the items is cut
    into uneven pieces (one of them empty); the others go to every batch unchanged.
    ctc_loss's concatenated 1-D targets are cut by their target lengths."""
    spec = LOSSES[case.loss]
    args, kwargs = case.build(dtype)
    x = np.asarray(args[0])
    if x.ndim == 0:
        return None
    n = _batch_size(case.loss, args)
    bounds = [0, n // 3, n // 3, max(n // 3, (2 * n) // 3), n]   # the second piece empty
    bound = dict(zip(spec.parameters, args))
    if case.loss == "ctc_loss" and np.ndim(bound["targets"]) == 1:
        ends = np.concatenate(([0], np.cumsum(bound["target_lengths"])))

    def cut(k, a, lo, hi):
        if k == "targets" and case.loss == "ctc_loss" and a.ndim == 1:
            return a[ends[lo]:ends[hi]]
        axis = spec.axis_of(k, a, x.ndim)
        if axis is None or not isinstance(a, np.ndarray) or a.shape[axis] != n:
            return a
        return a[(slice(None),) * axis + (slice(lo, hi),)]

    per_element = {k: v for k, v in kwargs.items() if k in PER_ELEMENT_KWARGS
                   and isinstance(v, np.ndarray) and v.ndim == x.ndim and v.shape[0] == n
                   and n > 1}
    fixed = {k: v for k, v in kwargs.items() if k not in per_element}
    pieces = list(zip(bounds, bounds[1:]))
    if case.loss == "ctc_loss":          # refuses an empty batch, as torch does (see below)
        pieces = [(lo, hi) for lo, hi in pieces if hi > lo]
    batches = [(tuple(cut(k, a, lo, hi) for k, a in zip(spec.parameters, args)),
                {k: cut(k, v, lo, hi) for k, v in per_element.items()})
               for lo, hi in pieces]
    return fixed, batches, args, kwargs


def running_params():
    out = []
    for c in all_cases():
        for red in c.reductions:
            if red != "none":
                for dt in (np.float32, np.float64):
                    out.append(pytest.param(c, red, np.dtype(dt),
                                            id=f"{c.loss}-{c.id}-{red}-{np.dtype(dt).name}"))
    return out


def batched(case, dtype):
    args, kwargs = case.build(dtype)
    shape = np.shape(LOSSES[case.loss].function(*args, **kwargs, reduction="none",
                                                 backend="numpy"))
    return bool(shape) and np.ndim(args[0]) > 0 and shape[0] == _batch_size(case.loss, args)


def test_most_cases_are_batched():
    cases = list(all_cases())
    assert sum(batched(c, np.float64) for c in cases) > 0.85 * len(cases)


@pytest.mark.parametrize("case,reduction,dtype", running_params())
def test_running_equals_one_call_over_the_concatenation(case, reduction, dtype):
    fn = LOSSES[case.loss].function
    if not batched(case, dtype):
        # one unbatched item (0-d input, a (C,) class input) or an input broadcast up
        # along the first axis: not a batch, refused clearly and without a change
        args, kwargs = case.build(dtype)
        acc = fastloss.RunningLoss(fn, reduction=reduction, **kwargs)
        with pytest.raises(ValueError, match="leading batch axis"):
            acc.update(*args)
        assert acc.updates == 0
        return
    fixed, batches, args, kwargs = split_case(case, dtype)
    acc = fastloss.RunningLoss(fn, reduction=reduction, backend="numpy", **fixed)
    for bargs, bkw in batches:
        acc.update(*bargs, **bkw)
    expected = fn(*args, **kwargs, reduction=reduction, backend="numpy")
    got = acc.compute()
    assert got.dtype == expected.dtype and got.shape == ()
    # the float64 accumulators, exactly (1e-12) ...
    prep = LOSSES[case.loss].prepare(*args, **kwargs, reduction=reduction)
    total, denom, _ = _weighted.parts(prep, "numpy")
    np.testing.assert_allclose(acc.total, total, rtol=1e-12, atol=1e-300, equal_nan=True)
    np.testing.assert_allclose(acc.denominator, denom, rtol=1e-12, atol=1e-300)
    # ... and the result in its dtype (within one rounding of float32)
    rtol = 1e-12 if dtype == np.float64 else 2.4e-7
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=1e-300, equal_nan=True)


@pytest.mark.parametrize("case,reduction,dtype",
                         [p for p in running_params() if p.values[2] == np.float64
                          and batched(p.values[0], np.float64)])   # the rest are refused
def test_running_with_sample_weight_equals_one_weighted_call(case, reduction, dtype):
    fn = LOSSES[case.loss].function
    fixed, batches, args, kwargs = split_case(case, dtype)
    shape = np.shape(fn(*args, **kwargs, reduction="none", backend="numpy"))
    s = np.random.default_rng(0).uniform(0.1, 3.0, shape)
    acc = fastloss.RunningLoss(fn, reduction=reduction, backend="numpy", **fixed)
    lo = 0
    for bargs, bkw in batches:
        m = _batch_size(case.loss, bargs)
        acc.update(*bargs, sample_weight=s[lo:lo + m], **bkw)
        lo += m
    expected = fn(*args, **kwargs, reduction=reduction, sample_weight=s, backend="numpy")
    np.testing.assert_allclose(acc.compute(), expected, rtol=1e-12, atol=1e-300,
                               equal_nan=True)


def _ce_batches(n=60, c=5, parts=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c)) * 2
    t = rng.integers(0, c, n)
    t[::7] = -100
    return x, t, np.array_split(np.arange(n), parts)


def test_merge_and_state_round_trips():
    x, t, idx = _ce_batches()
    w = np.linspace(0.5, 2.0, 5)
    kw = dict(weight=w, label_smoothing=0.1)
    a = fastloss.RunningLoss(fastloss.cross_entropy, **kw)
    b = fastloss.RunningLoss(fastloss.cross_entropy, **kw)
    a.update(x[idx[0]], t[idx[0]])
    b.update(x[idx[1]], t[idx[1]])
    b.update(x[idx[2]], t[idx[2]])
    # through JSON and pickle, as partial results from other processes would come
    b2 = fastloss.RunningLoss.from_state(json.loads(json.dumps(b.state_dict())))
    a2 = pickle.loads(pickle.dumps(a))
    merged = a2.merge(b2)
    np.testing.assert_allclose(merged.compute(), fastloss.cross_entropy(x, t, **kw),
                               rtol=1e-12)
    assert merged.updates == 3 and merged.items == 60
    state = merged.state_dict()
    assert isinstance(state["total"], float) and isinstance(state["items"], int)
    merged.reset()
    assert merged.updates == 0 and math.isnan(float(merged.compute()))


def test_merge_refuses_other_losses_and_arguments():
    a = fastloss.RunningLoss(fastloss.cross_entropy, label_smoothing=0.1)
    with pytest.raises(ValueError, match="different losses or arguments"):
        a.merge(fastloss.RunningLoss(fastloss.cross_entropy))
    with pytest.raises(ValueError, match="different losses or arguments"):
        a.merge(fastloss.RunningLoss(fastloss.nll_loss))
    with pytest.raises(TypeError, match="RunningLoss"):
        a.merge(3)


def _snapshot(acc):
    return json.dumps(acc.state_dict())


def test_bad_updates_raise_and_leave_the_state_unchanged():
    x, t, _ = _ce_batches()
    acc = fastloss.RunningLoss(fastloss.cross_entropy)
    acc.update(x[:10], t[:10])
    before = _snapshot(acc)
    with pytest.raises(ValueError, match="6 classes where the earlier updates had 5"):
        acc.update(np.zeros((4, 6)), np.zeros(4, np.int64))
    with pytest.raises(TypeError, match="float32, the earlier updates in float64"):
        acc.update(x[:4].astype(np.float32), t[:4])
    with pytest.raises(IndexError, match="class index 9"):
        acc.update(x[:4], np.array([0, 1, 9, 2]))
    with pytest.raises(ValueError, match="sample_weight"):
        acc.update(x[:4], t[:4], sample_weight=np.ones(3))
    with pytest.raises(TypeError, match="fixed when the RunningLoss was made"):
        fastloss.RunningLoss(fastloss.l1_loss, weight=np.ones(3)).update(
            np.ones(3), np.ones(3), weight=np.ones(3))
    assert _snapshot(acc) == before
    with pytest.raises(ValueError, match="'none'"):
        fastloss.RunningLoss(fastloss.mse_loss, reduction="none")
    with pytest.raises(TypeError, match="no argument 'gamma'"):
        fastloss.RunningLoss(fastloss.mse_loss, gamma=2)
    with pytest.raises(ValueError, match="perplexity: defined for nll_loss"):
        fastloss.RunningLoss(fastloss.mse_loss).perplexity()


def test_perplexity_per_token_and_per_sequence():
    rng = np.random.default_rng(7)
    n, c, T = 6, 11, 9
    x = rng.standard_normal((n, c, T))
    t = rng.integers(0, c, (n, T))
    t[0, 3:] = -100                      # a short sequence
    t[1, :] = -100                       # a sequence with no counted token: not counted
    acc = fastloss.RunningLoss(fastloss.cross_entropy, reduction="sum")
    acc.update(x[:4], t[:4])
    acc.update(x[4:], t[4:])
    items = fastloss.cross_entropy(x, t, reduction="none")
    counted = t != -100
    np.testing.assert_allclose(acc.perplexity(), np.exp(items.sum() / counted.sum()),
                               rtol=1e-12)
    per_seq = [np.exp(items[i].sum() / counted[i].sum()) for i in range(n) if counted[i].any()]
    np.testing.assert_allclose(acc.perplexity("sequence"), np.mean(per_seq), rtol=1e-12)
    assert acc.sequences == n - 1
    np.testing.assert_allclose(acc.compute(), fastloss.cross_entropy(x, t, reduction="sum"),
                               rtol=1e-12)


@pytest.mark.parametrize("weighted", ["none", "class", "sample", "both"])
def test_sequence_perplexity_of_one_token_rows(weighted):
    """(N, C) inputs: each row is a sequence of one token (the short path of
    `_sequence_terms`): exp(l_i / u_i) averaged over the counted rows."""
    rng = np.random.default_rng(3)
    n, c = 40, 7
    x = rng.standard_normal((n, c))
    t = rng.integers(0, c, n)
    t[::5] = -100
    w = rng.uniform(0.5, 2.0, c) if weighted in ("class", "both") else None
    s = rng.uniform(0.0, 3.0, n) if weighted in ("sample", "both") else None
    if s is not None:
        s[1] = 0.0                       # a zero sample weight: a row not counted
    acc = fastloss.RunningLoss(fastloss.cross_entropy, weight=w)
    for lo in (0, 13, 29):
        hi = {0: 13, 13: 29, 29: n}[lo]
        acc.update(x[lo:hi], t[lo:hi], sample_weight=None if s is None else s[lo:hi])
    items = fastloss.cross_entropy(x, t, weight=w, reduction="none")   # w_{y_i} l_i
    units = np.where(t != -100, 1.0 if w is None else w[np.where(t != -100, t, 0)], 0.0)
    if s is not None:
        items, units = s * items, s * units
    counted = units != 0
    want = np.mean(np.exp(items[counted] / units[counted]))
    np.testing.assert_allclose(acc.perplexity("sequence"), want, rtol=1e-12)
    assert acc.sequences == counted.sum()


def test_perplexity_overflow_is_inf():
    acc = fastloss.RunningLoss(fastloss.nll_loss)
    acc.update(np.array([[-1000.0, 0.0]]), np.array([0]))
    assert acc.perplexity() == math.inf
    with pytest.raises(ValueError, match="per:"):
        acc.perplexity("word")


def test_update_allocates_no_per_item_buffer_without_weights(monkeypatch):
    """The unweighted update is one reduced kernel call (loss_out of length 0)."""
    seen = []
    real = fastloss._dispatch.call

    def spy(name, args, backend=None):
        seen.append((name, [np.shape(a) for a in args if isinstance(a, np.ndarray)]))
        return real(name, args, backend)

    monkeypatch.setattr(fastloss._dispatch, "call", spy)
    x, t, _ = _ce_batches(n=50)
    fastloss.RunningLoss(fastloss.cross_entropy, label_smoothing=0.1).update(x, t)
    assert [name for name, _ in seen] == ["ce_class_fwd"]
    assert (0,) in seen[0][1] and (50,) in seen[0][1]   # the empty loss_out; the target


def test_ctc_running_mean_divides_by_target_lengths_and_refuses_an_empty_batch():
    """ctc_loss's "mean" is the batch mean of loss / target length: the accumulator's
    denominator is the sequence count, its total the sum of the length-scaled losses;
    batches are cut along N (log_probs' axis 1) and may have another T; an empty batch
    raises as the loss does and changes nothing."""
    rng = np.random.default_rng(7)
    T, N, C = 10, 6, 5
    lp = rng.standard_normal((T, N, C))
    lp -= np.log(np.exp(lp).sum(-1, keepdims=True))
    tl = np.array([3, 1, 4, 2, 0, 3])
    il = np.array([10, 7, 10, 6, 5, 9])
    tg = rng.integers(1, C, (N, 4))
    acc = fastloss.RunningLoss(fastloss.ctc_loss, backend="numpy")
    acc.update(lp[:, :4], tg[:4], il[:4], tl[:4])
    acc.update(lp[:9, 4:], tg[4:], il[4:], tl[4:])      # a shorter T: as if padded
    expected = fastloss.ctc_loss(lp, tg, il, tl, backend="numpy")
    per_seq = fastloss.ctc_loss(lp, tg, il, tl, reduction="none", backend="numpy")
    np.testing.assert_allclose(acc.total, np.sum(per_seq / np.maximum(tl, 1)), rtol=1e-12)
    assert acc.denominator == N
    np.testing.assert_allclose(acc.compute(), expected, rtol=1e-12)
    before = acc.state_dict()
    with pytest.raises(ValueError, match="log_probs: must not be empty"):
        acc.update(lp[:, :0], tg[:0], il[:0], tl[:0])
    with pytest.raises(ValueError, match="6 classes|shapes"):
        acc.update(np.zeros((T, 2, 6)), tg[:2], il[:2], tl[:2])
    assert acc.state_dict() == before


def test_linear_cross_entropy_running_with_perplexity_and_a_fixed_weight_shape():
    rng = np.random.default_rng(8)
    x, W = rng.standard_normal((30, 4)), rng.standard_normal((6, 4))
    t = rng.integers(0, 6, 30)
    t[::5] = -100
    acc = fastloss.RunningLoss(fastloss.linear_cross_entropy, label_smoothing=0.1)
    for lo, hi in ((0, 12), (12, 25), (25, 30)):
        acc.update(x[lo:hi], W, t[lo:hi])
    expected = fastloss.linear_cross_entropy(x, W, t, label_smoothing=0.1)
    np.testing.assert_allclose(acc.compute(), expected, rtol=1e-12)
    assert math.isclose(acc.perplexity(), math.exp(float(expected)), rel_tol=1e-12)
    before = acc.state_dict()
    with pytest.raises(ValueError, match="shared by every item"):
        acc.update(x[:3], W[:5], t[:3] % 5)                # another class count
    assert acc.state_dict() == before


def _l1_distance(a, b):
    return np.abs(a - b).sum(-1)


def test_triplet_with_distance_function_state_is_plain_and_round_trips():
    import functools
    rng = np.random.default_rng(9)
    a, p, n = (rng.standard_normal((12, 3)) for _ in range(3))
    for fn in (_l1_distance, functools.partial(fastloss.pairwise_distance, p=1.0),
               fastloss.PairwiseDistance(p=3.0, eps=0.0)):
        acc = fastloss.RunningLoss(fastloss.triplet_margin_with_distance_loss,
                                   distance_function=fn, margin=0.5)
        acc.update(a[:5], p[:5], n[:5])
        back = fastloss.RunningLoss.from_state(json.loads(json.dumps(acc.state_dict())))
        back.update(a[5:], p[5:], n[5:])
        expected = fastloss.triplet_margin_with_distance_loss(a, p, n, distance_function=fn,
                                                               margin=0.5)
        np.testing.assert_allclose(back.compute(), expected, rtol=1e-12)
        pickle.loads(pickle.dumps(acc)).merge(back)
    with pytest.raises(TypeError, match="not a lambda or a local function"):
        fastloss.RunningLoss(fastloss.triplet_margin_with_distance_loss,
                             distance_function=lambda x, y: np.abs(x - y).sum(-1))
