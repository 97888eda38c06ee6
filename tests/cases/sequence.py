import numpy as np

from . import case_rows

NEG_INF = -np.inf


def ctc(T, N, C, S, il=None, tl=None, blank=0, concat=False, int32=False, unbatched=False,
        repeats=False, neg_inf=False, edit=None, **kw):
    """log_softmax'ed log_probs (T, N, C), targets avoiding blank, lengths as int arrays
    (None: all full); edit(x, t) changes the float64 log_probs in place before the cast."""
    def make(dtype, rng):
        x = rng.standard_normal((T, N, C)) * 1.5
        x = x - np.log(np.sum(np.exp(x), axis=2, keepdims=True))
        if neg_inf:
            x[1, :, 1] = NEG_INF      # a class impossible at one step
        t = rng.integers(0, C - 1, (N, S))
        t = np.where(t >= blank, t + 1, t)
        if repeats:
            t[:, 1::2] = t[:, ::2][:, :t[:, 1::2].shape[1]]
        if edit is not None:
            edit(x, t)
        ils = np.full(N, T) if il is None else np.asarray(il)
        tls = np.full(N, S) if tl is None else np.asarray(tl)
        idx = np.int32 if int32 else np.int64
        if concat:
            t = np.concatenate([t[i, :tls[i]] for i in range(N)]) if N else t.reshape(-1)
        x = x.astype(dtype)
        args = (x, t.astype(idx), ils.astype(idx), tls.astype(idx))
        if unbatched:
            args = (x[:, 0], t[0].astype(idx), np.array(ils[0], idx), np.array(tls[0], idx))
        kwargs = dict(kw)
        if blank:
            kwargs["blank"] = blank
        return args, kwargs
    return make


def _minus_1e4(x, t):
    """Class 2 at -1e4 (finite, exp underflows) at steps 2-4 in every sample: linear space
    cannot hold it, the samples whose target has class 2 take the log-space path."""
    x[2:5, :, 2] = -1e4


def _peaked(x, t):
    """Nearly one-hot rows in sample 1 (log_probs down to ~-1e3, one near 0 per step)."""
    x[:, 1] *= 200.0
    x[:, 1] -= np.log(np.sum(np.exp(x[:, 1] - x[:, 1].max(axis=1, keepdims=True)), axis=1,
                             keepdims=True)) + x[:, 1].max(axis=1, keepdims=True)


def _near_impossible(x, t):
    """Sample 1 (target [a, a, b] in 4 steps: one alignment) must emit its second label at
    step 2, where that label has log-prob -750: an alignment of probability ~e^-750,
    below float64's range, among ordinary samples."""
    x[2, 1, t[1, 1]] = -750.0


CTC = {
    "basic": ctc(12, 3, 5, 4),
    "varlen": ctc(12, 4, 6, 4, il=[12, 9, 7, 12], tl=[4, 3, 1, 2]),
    "concat": ctc(10, 3, 5, 4, il=[10, 8, 9], tl=[4, 2, 3], concat=True),
    "int32": ctc(10, 3, 5, 3, il=[10, 7, 9], tl=[3, 2, 3], int32=True),
    "blank_last": ctc(9, 2, 5, 3, blank=4),
    "blank_middle": ctc(9, 2, 5, 3, blank=2, tl=[3, 1]),
    "empty_target": ctc(8, 3, 4, 3, tl=[0, 2, 0]),
    "repeats": ctc(10, 2, 4, 4, repeats=True),
    "tight": ctc(7, 2, 4, 3, repeats=True, il=[4, 5]),     # [a, a, b] in 4 steps: just enough
    "unbatched": ctc(9, 1, 5, 3, unbatched=True),
    "one_class_target": ctc(6, 2, 2, 2),
    "neg_inf": (ctc(8, 2, 4, 3, neg_inf=True), {"fd": False}),
    "wide": ctc(6, 2, 40, 2),
    "long": ctc(60, 2, 4, 12, il=[60, 41], tl=[12, 7]),
    "zero_infinity": ctc(8, 3, 4, 3, il=[8, 6, 8], tl=[3, 2, 1], zero_infinity=True),
    # impossible alignments: inf (NaN gradient rows, as torch), or 0 with zero_infinity
    "impossible": (ctc(6, 3, 4, 4, il=[6, 3, 2], tl=[3, 4, 2], repeats=True), {"fd": False}),
    "impossible_zero_inf": (ctc(6, 3, 4, 4, il=[6, 3, 2], tl=[3, 4, 2], repeats=True,
                                zero_infinity=True), {"fd": False}),
    "zero_input_length": (ctc(5, 3, 4, 2, il=[0, 0, 5], tl=[0, 1, 2]), {"fd": False}),
    # linear space underflows here: the Numba kernel recomputes these samples in log space
    "minus_1e4": (ctc(12, 4, 5, 4, edit=_minus_1e4), {"fd": False}),
    "peaked": (ctc(10, 3, 6, 3, edit=_peaked), {"fd": False, "rtol32": 1e-3}),
    # torch's float32 log-space sums at magnitude ~750 leave ~1e-4 relative
    "near_impossible": (ctc(8, 4, 5, 3, il=[8, 4, 8, 6], tl=[3, 3, 2, 3], repeats=True,
                            edit=_near_impossible), {"fd": False, "rtol32": 1e-3}),
}

CASES = case_rows("ctc_loss", CTC, rtol32=1e-4, fd_kwargs={"exact_grad": True})
