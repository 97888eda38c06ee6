"""CTC on log_probs of shape (T, N, C), padded int64 targets (N, S), int64 input and
target lengths (N,) and a per-sample scale (N,) (empty: 1), which "mean" uses to divide
each loss by its clamped target length (see fastloss.functional.sequence). Item n is
scale[n] * loss[n]; params (blank, zero_infinity, exact_grad).

Written as torch's CPU kernel computes it (LossCTC.cpp): log-space alpha and beta over the
2S+1 states of the target with blanks interleaved, both including log_probs at t, so that
exp(alpha + beta + nll - log_probs) is the posterior occupancy gamma."""
import numpy as np

from ._common import coef, f64, store

__all__ = ["ctc_fwd", "ctc_vg"]

NEG_INF = -np.inf


def _lse(*xs):
    """log(sum(exp(x))) elementwise over the arrays xs, -inf where all are -inf."""
    stack = np.stack(xs)
    m = np.max(stack, axis=0)
    m = np.where(m == NEG_INF, 0.0, m)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.log(np.sum(np.exp(stack - m), axis=0)) + m


def _extended(target, blank):
    ext = np.full(2 * len(target) + 1, blank, np.int64)
    ext[1::2] = target
    return ext


def _shift(a, k, fill=NEG_INF):
    """a shifted right by k (k > 0) or left by -k, filled with -inf."""
    out = np.full_like(a, fill)
    if k > 0:
        out[k:] = a[:-k]
    else:
        out[:k] = a[-k:]
    return out


def _alpha(lp, ext, il):
    """(il, L) log alpha and the negative log-likelihood of one sample."""
    L = len(ext)
    alpha = np.full((il, L), NEG_INF)
    if il == 0:
        return alpha, (0.0 if L == 1 else np.inf)
    skip = np.zeros(L, bool)
    skip[2:] = ext[2:] != ext[:-2]
    alpha[0, 0] = lp[0, ext[0]]
    if L > 1:
        alpha[0, 1] = lp[0, ext[1]]
    for t in range(1, il):
        a = alpha[t - 1]
        alpha[t] = _lse(a, _shift(a, 1), np.where(skip, _shift(a, 2), NEG_INF)) + lp[t, ext]
    ends = [alpha[il - 1, L - 1]] + ([alpha[il - 1, L - 2]] if L > 1 else [])
    return alpha, -float(_lse(*[np.array(e) for e in ends]))


def _beta(lp, ext, il):
    L = len(ext)
    beta = np.full((il, L), NEG_INF)
    skip = np.zeros(L, bool)
    skip[:-2] = ext[:-2] != ext[2:]
    beta[il - 1, L - 1] = lp[il - 1, ext[L - 1]]
    if L > 1:
        beta[il - 1, L - 2] = lp[il - 1, ext[L - 2]]
    for t in range(il - 2, -1, -1):
        b = beta[t + 1]
        beta[t] = _lse(b, _shift(b, -1), np.where(skip, _shift(b, -2), NEG_INF)) + lp[t, ext]
    return beta


def _losses(lp, tp, il, tl, blank, zero_infinity):
    n = lp.shape[1]
    nll = np.empty(n)
    for b in range(n):
        nll[b] = _alpha(f64(lp[:, b]), _extended(tp[b, :tl[b]], blank), int(il[b]))[1]
    if zero_infinity:
        nll = np.where(nll == np.inf, 0.0, nll)
    return nll


def _items(nll, scale):
    return nll * f64(scale) if scale.size else nll


def ctc_fwd(lp, tp, il, tl, scale, blank, zero_infinity, exact_grad, loss_out):
    return store(_items(_losses(lp, tp, il, tl, blank, zero_infinity), scale), loss_out)


def ctc_vg(lp, tp, il, tl, scale, blank, zero_infinity, exact_grad, gscale, gvec, loss_out,
           glp):
    T, n, C = lp.shape
    nll_all = np.empty(n)
    cf = coef(gscale, gvec) * np.ones(n)
    if scale.size:
        cf = cf * f64(scale)
    glp[...] = 0
    for b in range(n):
        x = f64(lp[:, b])
        ext = _extended(tp[b, :tl[b]], blank)
        ilb = int(il[b])
        alpha, nll = _alpha(x, ext, ilb)
        nll_all[b] = nll
        if ilb == 0 or (zero_infinity and nll == np.inf):
            continue
        beta = _beta(x, ext, ilb)
        # lcab[t, c] = log sum over the states s of class c of exp(alpha + beta)
        lcab = np.full((ilb, C), NEG_INF)
        ab = alpha + beta
        for c in np.unique(ext):
            lcab[:, c] = _lse(*ab[:, ext == c].T)
        with np.errstate(invalid="ignore", over="ignore"):
            gamma = np.exp(lcab + nll - x[:ilb])
            g = -gamma if exact_grad else np.exp(x[:ilb]) - gamma
        glp[:ilb, b] = g * cf[b]
    if zero_infinity:
        nll_all = np.where(nll_all == np.inf, 0.0, nll_all)
    return store(_items(nll_all, scale), loss_out)
