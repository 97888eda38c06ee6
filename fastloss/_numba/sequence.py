"""CTC as fused Numba kernels: the forward(-backward) recursion in linear space, with the
log-space one for the samples linear space cannot hold, the samples of the batch in
parallel, with the signatures of fastloss._reference.sequence.

Work is split over ``nw`` workers (one per thread), worker w taking samples w, w + nw, ...
with its own slice of one workspace allocated per call, so a worker's alpha table stays
in its core's cache from one sample to the next. Every sample's loss is computed the
same way whatever the worker, and the losses are summed serially in sample order: the
result does not depend on the thread count.

Per sample, with L = 2 S + 1 states (the target with blanks interleaved) and input
length T_n, only the band of states that are both reachable from the start by time t and
can still reach the end by T_n - 1 is computed:
``lo(t) = max(0, L - 2 (T_n - t))``, ``hi(t) = min(L, 2 t + 2)``. Rows are padded with two
-inf (log space) or 0 (linear space) cells on each side, so s - 2 and s + 2 never need a bounds test and the update over
the band is one branch-free loop (vectorizable exp/log from ``_math``).

- forward only: two rows of alpha, O(S) state per sample;
- value and gradient: the (T_n, L) alpha table, then beta backwards in two rows, each
  time step's gradient row written as soon as its beta row is known (torch keeps a full
  beta table and a (T, N, C) buffer of collected alpha*beta instead).

Two recursions compute this. The fast one is in linear space with per-step rescaling
(Graves et al. 2006, sec. 4.1): p = exp(log_probs) per state, alpha_t(s) = (alpha_{t-1}(s)
+ alpha_{t-1}(s-1) + skip(s) alpha_{t-1}(s-2)) p_t(s), every row divided by the sum of the
one before, the log-likelihood the sum of the logs of those sums: adds and multiplies
only, where log space costs three exps and a log per state and step (~15 ns per state per
core on Xeon 167). Linear space loses states whose mass falls below the float64 range
relative to the row, where log space does not; so every sample is checked as it goes
(see ``_lin_step``) and a sample where any value came near underflow (or a row sum is
0 or not finite: impossible alignments, NaN, inf) is recomputed with the log-space
recursion, which stays the exact path, by drivers of its own run after the linear-space
ones on those samples only: a call whose samples all hold in linear space never
compiles the log-space code. ``STATS`` counts the samples of each path.
Measured on Zen 4, 1 thread, float32, under load (best of 7, both paths in one process):
T=500, N=32, C=32, S=100 forward 16.1 -> 5.7 ms (5.0 -> 1.8 ns per state), value and
gradient 42 -> 28 ms; T=200, N=64, C=1000, S=50 forward 14.4 -> 8.8 ms, value and gradient
47 -> 33 ms, there bound by memory: gathering the labels of rows N C entries apart (hence
the prefetch) and reading and writing the (T, N, C) arrays for the gradient.
Since then (Zen 4, 1 thread, CPU time, under load): value and gradient 20.6 -> 14.1 ms
and 29.9 -> 18.3 ms, from the per-class gamma sums where C is narrow, the band's
probabilities kept from the forward pass and the float32 exp of the gradient rows.
Where the forward time goes at C = 1000 (ns per sample and step, 1 thread): 548 with
the rows in cache (N = 4), ~710 at N = 64; so the step itself (the gather, 101 float64
exps, the recursion) dominates, not memory. A time-major loop over a worker's samples
(the rows of one step read in order) was tried and measured no faster.
"""
import numpy as np
from numba import njit, prange

from .. import _threads
from ._common import FM, coef_at, define, readonly as _readonly
from ._math import fcast, fexp, fexpm, flog, prefetch
from ._threading import call

__all__ = ["ctc_fwd", "ctc_vg"]

NEG_INF = -np.inf
PAD = 2
# Linear space is trusted only while every nonzero value (probability, state, row sum)
# stays within [SAFE_MIN, SAFE_MAX] = [2**-960, 2**60]: then each product in the
# recursion has at most one factor out of that range and its result is tested, the
# rescaling factor 1/row-sum times a probability is a normal float64, and no state lost
# mass or precision. A sample where one leaves it takes the log-space path (log_probs
# below -665 or above 41.5 at a state of its band, or a state 2**-960 below its row).
SAFE_MIN = 2.0 ** -960
SAFE_MAX = 2.0 ** 60
# The posterior occupancies of a time step sum to 1; a linear-space sample whose sum is
# further from 1 (lost mass the underflow test did not see) takes the log-space path.
# Rounding alone leaves ~1e-13 (500 steps of log sums).
GAMMA_SUM_TOL = 1e-9
# How many time steps ahead the label cells of log_probs are prefetched where C is wide
# (T=200, N=64, C=1000 forward, 1 thread, under load: 21 ms with 1 step, 10.5 ms with 4,
# 15 ms with 8, 22 ms with 16; noisy: a later run with 4 took 8.8 to 24 ms).
AHEAD = 4
# Set to False (tests) to run every sample in log space.
LINEAR = True
# Samples computed by each path since import (for the tests; not locked across threads).
STATS = {"linear": 0, "log": 0}


@njit(cache=True, error_model="numpy", fastmath=FM)
def _lse3_step(a1, a2, a3, skip, g, out):
    """out[k] = log(exp(a1[k]) + exp(a2[k]) + exp(a3[k] + skip[k])) + g[k] for every k,
    -inf where all three are -inf (torch's recursion; skip is 0 or -inf)."""
    for k in range(out.shape[0]):
        x1 = a1[k]
        x2 = a2[k]
        x3 = a3[k] + skip[k]
        m = x1 if x1 > x2 else x2
        m = m if m > x3 else x3
        m = m if m > NEG_INF else 0.0
        out[k] = m + flog(fexpm(x1 - m) + fexpm(x2 - m) + fexpm(x3 - m)) + g[k]


@njit(cache=True, error_model="numpy")
def _setup(tp, b, tl, blank, ext, skip_a, skip_b, mul_a, mul_b):
    """The extended target of sample b and its skip masks: skip_a[s] = 0 where alpha may
    come from s - 2 (ext[s] != ext[s - 2]), skip_b[s] = 0 where beta may come from s + 2,
    -inf elsewhere (log space); mul_a, mul_b the same as 1 and 0 (linear space)."""
    L = 2 * tl + 1
    for s in range(L):
        ext[s] = blank if s % 2 == 0 else tp[b, s // 2]
    for s in range(L):
        skip_a[s] = 0.0 if s >= 2 and ext[s] != ext[s - 2] else NEG_INF
        skip_b[s] = 0.0 if s + 2 < L and ext[s + 2] != ext[s] else NEG_INF
        mul_a[s] = 1.0 if skip_a[s] == 0.0 else 0.0
        mul_b[s] = 1.0 if skip_b[s] == 0.0 else 0.0
    return L


@njit(cache=True, error_model="numpy")
def _gather(lp, t, b, ext, lo, hi, g):
    for s in range(lo, hi):
        g[s] = lp[t, b, ext[s]]


@njit(cache=True, error_model="numpy")
def _final(row, L):
    """-log(exp(alpha[L-1]) + exp(alpha[L-2])) at the last time step."""
    l1 = row[PAD + L - 1]
    l2 = row[PAD + L - 2] if L > 1 else NEG_INF
    m = l1 if l1 > l2 else l2
    m = m if m > NEG_INF else 0.0
    return -(np.log(np.exp(l1 - m) + np.exp(l2 - m)) + m)


@njit(cache=True, error_model="numpy")
def _alpha_rows(lp, b, il, L, ext, skip_a, g, rows):
    """Forward recursion in two rows; the negative log-likelihood."""
    if il == 0:
        return 0.0 if L == 1 else np.inf
    if L > 2 * il + 1:         # too short for the target: no alignment
        return np.inf
    for r in range(2):
        for k in range(L + 2 * PAD):
            rows[r, k] = NEG_INF
    rows[0, PAD] = lp[0, b, ext[0]]
    if L > 1:
        rows[0, PAD + 1] = lp[0, b, ext[1]]
    cur = 0
    for t in range(1, il):
        lo = max(0, L - 2 * (il - t))
        hi = min(L, 2 * t + 2)
        prev, cur = cur, 1 - cur
        if lo < hi:
            _gather(lp, t, b, ext, lo, hi, g)
            p = rows[prev]
            _lse3_step(p[PAD + lo:PAD + hi], p[PAD + lo - 1:PAD + hi - 1],
                       p[PAD + lo - 2:PAD + hi - 2], skip_a[lo:hi], g[lo:hi],
                       rows[cur, PAD + lo:PAD + hi])
    return _final(rows[cur], L)


@njit(cache=True, error_model="numpy")
def _alpha_table(lp, b, il, L, ext, skip_a, g, tab):
    """Forward recursion keeping every row (the band, two -inf cells around it)."""
    if il == 0:
        return 0.0 if L == 1 else np.inf
    if L > 2 * il + 1:
        return np.inf
    for k in range(min(L, 2) + 2 * PAD):
        tab[0, k] = NEG_INF
    tab[0, PAD] = lp[0, b, ext[0]]
    if L > 1:
        tab[0, PAD + 1] = lp[0, b, ext[1]]
    for t in range(1, il):
        lo = max(0, L - 2 * (il - t))
        hi = min(L, 2 * t + 2)
        tab[t, 0] = NEG_INF
        tab[t, 1] = NEG_INF
        if lo < hi:
            _gather(lp, t, b, ext, lo, hi, g)
            p = tab[t - 1]
            _lse3_step(p[PAD + lo:PAD + hi], p[PAD + lo - 1:PAD + hi - 1],
                       p[PAD + lo - 2:PAD + hi - 2], skip_a[lo:hi], g[lo:hi],
                       tab[t, PAD + lo:PAD + hi])
        else:
            for k in range(PAD, PAD + min(L, 2 * t + 2)):
                tab[t, k] = NEG_INF
        tab[t, PAD + hi] = NEG_INF
        tab[t, PAD + hi + 1] = NEG_INF
    last = tab[il - 1]
    return _final(last, L)


@njit(cache=True, error_model="numpy", fastmath=FM)
def _grad_row_init(lpr, gr, exact):
    """exp(log_probs[t, b, :]) (0 for the exact gradient), accumulated in float64 in gr."""
    if exact:
        for c in range(gr.shape[0]):
            gr[c] = 0.0
    else:
        for c in range(gr.shape[0]):
            gr[c] = fexp(np.float64(lpr[c]))


@njit(cache=True, error_model="numpy", fastmath=FM)
def _gamma(a, bt, g, nll, e):
    for k in range(e.shape[0]):
        e[k] = fexp(a[k] + bt[k] + nll - g[k])


@njit(cache=True, error_model="numpy", fastmath=FM)
def _store_row(gr, cf, out):
    for c in range(out.shape[0]):
        out[c] = gr[c] * cf


@njit(cache=True, error_model="numpy")
def _grad_step(lp, glp, t, b, ext, lo, hi, a, bt, g, nll, cf, exact, gr, e):
    """Gradient row t of sample b: (exp(lp) - gamma) * cf, gamma[ext[s]] summing the
    posterior occupancies exp(alpha + beta + nll - lp) of the band's states."""
    _grad_row_init(lp[t, b], gr, exact)
    _gamma(a[PAD + lo:PAD + hi], bt[PAD + lo:PAD + hi], g[lo:hi], nll, e[lo:hi])
    for s in range(lo, hi):
        gr[ext[s]] -= e[s]
    _store_row(gr, cf, glp[t, b])


@njit(cache=True, error_model="numpy")
def _ctc_sample_vg(lp, glp, b, il, L, ext, skip_a, skip_b, g, tab, beta, gr, e,
                   zero_infinity, exact, cf):
    T = lp.shape[0]
    C = lp.shape[2]
    nll = _alpha_table(lp, b, il, L, ext, skip_a, g, tab)
    for t in range(il, T):
        for c in range(C):
            glp[t, b, c] = 0.0
    if il == 0:
        return nll
    if nll == np.inf and zero_infinity:
        for t in range(il):
            for c in range(C):
                glp[t, b, c] = 0.0
        return 0.0
    if not nll < np.inf:       # inf or NaN: torch's rows are exp(lp) - NaN
        for t in range(il):
            for c in range(C):
                glp[t, b, c] = np.nan
        return nll
    for r in range(2):
        for k in range(L + 2 * PAD):
            beta[r, k] = NEG_INF
    t = il - 1
    cur = 0
    beta[0, PAD + L - 1] = lp[t, b, ext[L - 1]]
    if L > 1:
        beta[0, PAD + L - 2] = lp[t, b, ext[L - 2]]
    lo = max(0, L - 2)
    hi = min(L, 2 * t + 2)
    if lo < hi:
        _gather(lp, t, b, ext, lo, hi, g)
    _grad_step(lp, glp, t, b, ext, lo, hi, tab[t], beta[cur], g, nll, cf, exact, gr, e)
    for t in range(il - 2, -1, -1):
        lo = max(0, L - 2 * (il - t))
        hi = min(L, 2 * t + 2)
        nxt, cur = cur, 1 - cur
        if lo < hi:
            _gather(lp, t, b, ext, lo, hi, g)
            q = beta[nxt]
            _lse3_step(q[PAD + lo:PAD + hi], q[PAD + lo + 1:PAD + hi + 1],
                       q[PAD + lo + 2:PAD + hi + 2], skip_b[lo:hi], g[lo:hi],
                       beta[cur, PAD + lo:PAD + hi])
        _grad_step(lp, glp, t, b, ext, lo, hi, tab[t], beta[cur], g, nll, cf, exact, gr, e)
    return nll


# ------------------------------------------------------------------ linear space
@njit(cache=True, error_model="numpy", fastmath=FM)
def _exp_band(g, p):
    """p = exp(g), NaN where it leaves [SAFE_MIN, SAFE_MAX] though g is not -inf (an
    underflow, or a log-prob far above 0): the NaN reaches the row sum, which sends the
    sample to log space."""
    for k in range(p.shape[0]):
        x = fexp(np.float64(g[k]))
        p[k] = x if ((x >= SAFE_MIN) & (x <= SAFE_MAX)) | (g[k] == NEG_INF) else np.nan


@njit(cache=True, error_model="numpy")
def _probs(lp, t, b, ext, lo, hi, g, ec, p, nxt):
    """p[lo:hi] = exp(log_probs[t, b, ext[s]]) as _exp_band makes them: from the exps of
    the C classes (in ec) where C is below the band's width (C = 32, L = 201: 32 exps a
    step instead of 201; the blank's read once, half the gathers), else from the band's
    own log-probs, prefetching the labels' cells of step `nxt` (< 0: none): a step's row
    of one sample is N C entries past the last (256 KB at N = 64, C = 1000, beyond the
    hardware prefetcher), and these gathers missed the cache at every step."""
    if lp.shape[2] < hi - lo:
        _exp_band(lp[t, b], ec)
        pb = ec[ext[0]]
        for s in range(lo + (lo & 1), hi, 2):
            p[s] = pb
        for s in range(lo | 1, hi, 2):
            p[s] = ec[ext[s]]
    else:
        _gather(lp, t, b, ext, lo, hi, g)
        _exp_band(g[lo:hi], p[lo:hi])
        _prefetch_labels(lp, nxt, b, ext, lo, hi)


@njit(cache=True, error_model="numpy")
def _prefetch_labels(lp, nxt, b, ext, lo, hi):
    """Prefetch the cells of log_probs[nxt, b] of the blank and the labels of the band
    (and the two below it); nxt out of range: none."""
    if 0 <= nxt < lp.shape[0]:
        row = lp[nxt, b]
        prefetch(row, ext[0])
        for s in range(max(lo - 2, 0) | 1, hi, 2):
            prefetch(row, ext[s])


@njit(cache=True, error_model="numpy", fastmath=FM)
def _lin_step(a0, a1, a2, mul, p, r, out):
    """out[k] = (a0[k] + a1[k] + mul[k] a2[k]) p[k] r for every k; (their sum, how many
    are below SAFE_MIN though neither factor is 0: an underflow). Branch-free (the skip
    is the 0/1 multiplier mul), so LLVM vectorises it: inspect_asm on Zen 4 (znver4,
    numba 0.68.1) shows it 8 wide in zmm registers (vfmadd132pd, vmulpd, vaddpd, and
    vcmpltpd into mask registers counted with vpmovm2q/vpsubq), where the log-space
    _lse3_step stays 4 wide in ymm."""
    total = 0.0
    bad = 0
    for k in range(out.shape[0]):
        s3 = a0[k] + a1[k] + mul[k] * a2[k]
        v = s3 * (p[k] * r)
        out[k] = v
        total += v
        bad += 1 if (v < SAFE_MIN) & (s3 > 0.0) & (p[k] > 0.0) else 0
    return total, bad


@njit(cache=True, error_model="numpy")
def _row_sum_ok(c):
    return c >= SAFE_MIN and c <= SAFE_MAX      # False for NaN


@njit(cache=True, error_model="numpy")
def _lin_alpha(lp, b, il, L, ext, mul_a, g, ec, rows, keep, log_scale, ptab):
    """Rescaled forward recursion in linear space: (nll, True), or (NaN, False) where the
    sample must be recomputed in log space. Row t of the result is alpha_t divided by
    the product of the row sums before t, whose log is log_scale[t] (kept only with
    `keep`: rows is then the (T, .) table, else two rows used in turn; so are the
    probabilities of the band, in ptab[t], else in ptab[0]: the backward pass reads them
    back instead of gathering and exponentiating them again, which took ~30% of it at
    T=500, N=32, C=32, S=100)."""
    for k in range(min(L, 2) + 2 * PAD):
        rows[0, k] = 0.0
    # the band at t = 0: state 0 cannot reach the end when L = 2 il + 1, and for il = 1
    # this row is the last one, whose sum must be the end states' alone
    lo = max(0, L - 2 * il)
    hi = min(L, 2)
    # t as a variable: a literal 0 made Numba compile _probs (and its callees) a second
    # time, for Literal[int](0) (1.5 s of the first call)
    t = np.int64(0)
    pt = ptab[t if keep else 0]
    _probs(lp, t, b, ext, lo, hi, g, ec, pt, AHEAD if AHEAD < il else -1)
    c = 0.0
    for s in range(lo, hi):
        rows[0, PAD + s] = pt[s]
        c += pt[s]
    if not _row_sum_ok(c):
        return np.nan, False
    if keep:
        log_scale[0] = 0.0
    lsum = flog(c)
    r = 1.0 / c
    for t in range(1, il):
        lo = max(0, L - 2 * (il - t))
        hi = min(L, 2 * t + 2)
        cur = t if keep else t & 1
        prv = t - 1 if keep else 1 - cur
        pt = ptab[t if keep else 0]
        _probs(lp, t, b, ext, lo, hi, g, ec, pt, t + AHEAD if t + AHEAD < il else -1)
        q = rows[prv]
        row = rows[cur]
        row[0] = 0.0
        row[1] = 0.0
        c, bad = _lin_step(q[PAD + lo:PAD + hi], q[PAD + lo - 1:PAD + hi - 1],
                           q[PAD + lo - 2:PAD + hi - 2], mul_a[lo:hi], pt[lo:hi], r,
                           row[PAD + lo:PAD + hi])
        row[PAD + hi] = 0.0
        row[PAD + hi + 1] = 0.0
        if bad or not _row_sum_ok(c):
            return np.nan, False
        if keep:
            log_scale[t] = lsum
        lsum += flog(c)
        r = 1.0 / c
    # the last row is the two end states (the band at t = il - 1): its sum ends the product
    return -lsum, True


@njit(cache=True, error_model="numpy", fastmath=FM)
def _lin_gamma(a, bt, p, k, e, v):
    """e = a bt k (the occupancies of a band) and v = p bt (beta with this step's
    probabilities), in one pass over the band (two passes before: ~5% of the value and
    gradient at T=500, N=32, C=32, S=100); (sum of e, sum of bt, how many p bt
    underflowed)."""
    total = 0.0
    bsum = 0.0
    bad = 0
    for i in range(e.shape[0]):
        b = bt[i]
        e[i] = a[i] * b * k
        total += e[i]
        x = p[i] * b
        v[i] = x
        bsum += b
        bad += 1 if (x < SAFE_MIN) & (p[i] > 0.0) & (b > 0.0) else 0
    return total, bsum, bad


@njit(cache=True, error_model="numpy", fastmath=FM)
def _scaled_exp_row(lpr, cf, out):
    """out = exp(lpr) cf in lpr's own precision: float32 lanes are twice as many as
    float64's (C = 1000, rows in cache, 1 thread: 12.2 -> 4.7 ms for 12800 rows, ~70% of
    the backward pass at T=200, N=64, S=50; within 1 ulp of float32). Only the classes
    outside the band keep this value, and torch's is a float32 exp too."""
    k = fcast(lpr[0], cf)
    for c in range(out.shape[0]):
        out[c] = fexp(lpr[c]) * k


@njit(cache=True, error_model="numpy", fastmath=FM)
def _blank_gamma(e, first, hi):
    total = 0.0
    for s in range(first, hi, 2):
        total += e[s]
    return total


@njit(cache=True, error_model="numpy", fastmath=FM)
def _combine_row(lpr, gr, exact, cf, out):
    """out = (exp(lpr) - gr) cf, or -gr cf for the exact gradient."""
    if exact:
        for c in range(out.shape[0]):
            out[c] = -gr[c] * cf
    else:
        for c in range(out.shape[0]):
            out[c] = (fexp(np.float64(lpr[c])) - gr[c]) * cf


@njit(cache=True, error_model="numpy")
def _grad_row_narrow(lpr, ext, lo, hi, p, e, exact, cf, gr, out):
    """_grad_row where C is below the band's width (C = 32, 201 states): gamma summed per
    class in gr (the labels' scatter-adds, the blank's states as one sum), then one
    vectorised pass over the C classes. Writing each label's cell three times (set,
    subtract, store) took ~60% of the backward pass at T=500, N=32, C=32, S=100."""
    for c in range(gr.shape[0]):
        gr[c] = 0.0
    # a class of the band at log-prob -inf (p = 0): torch's exp(alpha + beta + nll - lp)
    # is exp(-inf + inf), NaN, as the log-space path gives
    for s in range(lo | 1, hi, 2):
        gr[ext[s]] += e[s] if p[s] > 0.0 else np.nan
    first_blank = lo + (lo & 1)
    if first_blank < hi:
        gb = _blank_gamma(e, first_blank, hi)
        gr[ext[first_blank]] = gb if p[first_blank] > 0.0 else np.nan
    _combine_row(lpr, gr, exact, cf, out)


@njit(cache=True, error_model="numpy")
def _grad_row(lpr, ext, lo, hi, p, e, exact, cf, gr, out):
    """out = (exp(lpr) - gamma) cf (or -gamma cf, exact), gamma[c] = sum of e[s] over the
    band's states of class c: one pass writing exp(lpr) cf (or 0) to the whole row, then
    the band's classes again, accumulated in float64: the blank (every even state) as one
    sum, the labels in gr. Half the row traffic of filling a float64 row and copying it
    out, and no chain of read-modify-writes through the blank's cell (201 a step at
    S = 100: it took as long as the whole forward recursion)."""
    if out.shape[0] < hi - lo:
        _grad_row_narrow(lpr, ext, lo, hi, p, e, exact, cf, gr, out)
        return
    if exact:
        for c in range(out.shape[0]):
            out[c] = 0.0
    else:
        _scaled_exp_row(lpr, cf, out)
    first_label = lo | 1
    for s in range(first_label, hi, 2):
        gr[ext[s]] = 0.0 if exact else p[s]
    for s in range(first_label, hi, 2):
        gr[ext[s]] -= e[s]
    # a class of the band at log-prob -inf (p = 0): torch's exp(alpha + beta + nll - lp)
    # is exp(-inf + inf), NaN, as the log-space path gives
    for s in range(first_label, hi, 2):
        out[ext[s]] = gr[ext[s]] * cf if p[s] > 0.0 else np.nan
    first_blank = lo + (lo & 1)
    if first_blank < hi:
        pb = p[first_blank]
        g_blank = ((0.0 if exact else pb) - _blank_gamma(e, first_blank, hi)) * cf
        out[ext[first_blank]] = g_blank if pb > 0.0 else np.nan


@njit(cache=True, error_model="numpy", fastmath=FM)
def _lin_back_step(v0, v1, v2, mul, r, out):
    """out[k] = (v0[k] + v1[k] + mul[k] v2[k]) r; how many fell below SAFE_MIN from a
    nonzero sum."""
    bad = 0
    for k in range(out.shape[0]):
        s3 = v0[k] + v1[k] + mul[k] * v2[k]
        x = s3 * r
        out[k] = x
        bad += 1 if (x < SAFE_MIN) & (s3 > 0.0) else 0
    return bad


@njit(cache=True, error_model="numpy")
def _lin_sample_vg(lp, glp, b, il, L, ext, mul_a, mul_b, g, p, tab, log_scale, ptab, bt,
                   v, gr, e, exact, cf):
    """Value and gradient rows t < il of sample b in linear space: (nll, True), or
    (nll, False) where the gradient must be recomputed in log space (rows may be half
    written), nll NaN where the value must be too.

    Beta here excludes the step's own probability (bt_t(s) sums over the paths' products
    from t + 1 on), so the occupancy is alpha * bt with no division:
    gamma_t(s) = a_t(s) bt_t(s) exp(log_scale[t] + log B_t + nll), B_t the product of the
    beta row sums after t."""
    nll, ok = _lin_alpha(lp, b, il, L, ext, mul_a, g, gr, tab, True, log_scale, ptab)
    if not ok:
        return nll, False
    W = L + 2 * PAD
    for k in range(W):
        bt[k] = 0.0
        v[k] = 0.0
    t = il - 1
    lo = max(0, L - 2)
    hi = min(L, 2 * t + 2)
    for s in range(lo, hi):
        bt[PAD + s] = 1.0
    log_b = 0.0
    for t in range(il - 1, -1, -1):
        lo = max(0, L - 2 * (il - t))
        hi = min(L, 2 * t + 2)
        k = np.exp(log_scale[t] + log_b + nll)
        # p_t over the band, as the forward pass made and checked it: the gradient's
        # exp(log_probs) at the band's classes, then bt_{t-1}
        p = ptab[t]
        if lp.shape[2] >= hi - lo:
            _prefetch_labels(lp, t - AHEAD, b, ext, lo, hi)
        tot, d, bad = _lin_gamma(tab[t, PAD + lo:PAD + hi], bt[PAD + lo:PAD + hi], p[lo:hi],
                                 k, e[lo:hi], v[PAD + lo:PAD + hi])
        if not abs(tot - 1.0) <= GAMMA_SUM_TOL:
            return nll, False
        _grad_row(lp[t, b], ext, lo, hi, p, e, exact, cf, gr, glp[t, b])
        if t == 0:
            break
        if bad or not _row_sum_ok(d):
            return nll, False
        log_b += flog(d)
        lo2 = max(0, L - 2 * (il - t + 1))
        hi2 = min(L, 2 * t)
        if _lin_back_step(v[PAD + lo2:PAD + hi2], v[PAD + lo2 + 1:PAD + hi2 + 1],
                          v[PAD + lo2 + 2:PAD + hi2 + 2], mul_b[lo2:hi2], 1.0 / d,
                          bt[PAD + lo2:PAD + hi2]):
            return nll, False
    return nll, True


@njit(cache=True, error_model="numpy")
def _item(nll, zero_infinity, scale, b):
    if zero_infinity and nll == np.inf:
        nll = 0.0
    return nll * scale[b] if scale.shape[0] else nll


@njit(cache=True, error_model="numpy")
def _lin_fwd_worker(w, nw, idx, lp, tp, il, tl, scale, blank, zero_infinity, items, lin_nll,
                    in_log, ext, sa, sb, ma, mb, g, ec, p, rows):
    """Forward values of samples idx[w::nw] in linear space; in_log[b] = 1 where sample b
    must be computed in log space (by _log_fwd_worker)."""
    for i in range(w, idx.shape[0], nw):
        b = idx[i]
        L = _setup(tp, b, tl[b], blank, ext[w], sa[w], sb[w], ma[w], mb[w])
        nll, ok = np.nan, False
        if il[b] > 0 and L <= 2 * il[b] + 1:
            # two rows, no log_scale kept (p[w, 0] stands in for it, never written), the
            # probabilities of each step in p[w, 0]
            nll, ok = _lin_alpha(lp, b, il[b], L, ext[w], ma[w], g[w], ec[w], rows[w], False,
                                 p[w, 0], p[w])
        if ok:
            items[b] = _item(nll, zero_infinity, scale, b)
        else:
            in_log[b] = 1


@njit(cache=True, error_model="numpy")
def _log_fwd_worker(w, nw, idx, lp, tp, il, tl, scale, blank, zero_infinity, items, lin_nll,
                    in_log, ext, sa, sb, ma, mb, g, ec, p, rows):
    """Forward values of samples idx[w::nw] in log space."""
    for i in range(w, idx.shape[0], nw):
        b = idx[i]
        L = _setup(tp, b, tl[b], blank, ext[w], sa[w], sb[w], ma[w], mb[w])
        nll = _alpha_rows(lp, b, il[b], L, ext[w], sa[w], g[w], rows[w])
        items[b] = _item(nll, zero_infinity, scale, b)


@njit(cache=True, error_model="numpy")
def _lin_vg_worker(w, nw, idx, lp, tp, il, tl, scale, blank, zero_infinity, exact, gscale,
                   gvec, items, lin_nll, in_log, glp, ext, sa, sb, ma, mb, g, p, tab,
                   log_scale, ptab, beta, v, gr, e):
    """Values and gradients of samples idx[w::nw] in linear space; in_log[b] = 1 where
    sample b must be computed in log space, lin_nll[b] its linear-space value (NaN where
    the forward pass failed too)."""
    T, C = lp.shape[0], lp.shape[2]
    for i in range(w, idx.shape[0], nw):
        b = idx[i]
        L = _setup(tp, b, tl[b], blank, ext[w], sa[w], sb[w], ma[w], mb[w])
        cf = coef_at(gscale, gvec, b) * (scale[b] if scale.shape[0] else 1.0)
        nll, ok = np.nan, False
        if il[b] > 0 and L <= 2 * il[b] + 1:
            nll, ok = _lin_sample_vg(lp, glp, b, il[b], L, ext[w], ma[w], mb[w], g[w], p[w],
                                     tab[w], log_scale[w], ptab[w], beta[w, 0], v[w], gr[w],
                                     e[w], exact, cf)
        if ok:
            for t in range(il[b], T):
                for c in range(C):
                    glp[t, b, c] = 0.0
            items[b] = _item(nll, zero_infinity, scale, b)
        else:
            lin_nll[b] = nll
            in_log[b] = 1


@njit(cache=True, error_model="numpy")
def _log_vg_worker(w, nw, idx, lp, tp, il, tl, scale, blank, zero_infinity, exact, gscale,
                   gvec, items, lin_nll, in_log, glp, ext, sa, sb, ma, mb, g, p, tab,
                   log_scale, ptab, beta, v, gr, e):
    """Values and gradients of samples idx[w::nw] in log space."""
    for i in range(w, idx.shape[0], nw):
        b = idx[i]
        L = _setup(tp, b, tl[b], blank, ext[w], sa[w], sb[w], ma[w], mb[w])
        cf = coef_at(gscale, gvec, b) * (scale[b] if scale.shape[0] else 1.0)
        nll_log = _ctc_sample_vg(lp, glp, b, il[b], L, ext[w], sa[w], sb[w], g[w], tab[w],
                                 beta[w], gr[w], e[w], zero_infinity, exact, cf)
        # the value as the forward-only call computes it: linear space where its forward
        # pass held, and only the gradient came from log space
        nll = lin_nll[b]
        items[b] = _item(nll_log if np.isnan(nll) else nll, zero_infinity, scale, b)


@njit(cache=True, error_model="numpy")
def _finish(items, loss_out):
    total = 0.0
    for b in range(items.shape[0]):
        total += items[b]
        if loss_out.shape[0]:
            loss_out[b] = items[b]
    return total


# The drivers: one workspace allocated per call, sliced per worker, and the workers run
# by prange (parallel) or range (serial: the same workers one after the other, the same
# bits). Each path has its own pair, so that a call compiles only what it runs: the
# log-space recursion (~1.5 s of the forward's first call, ~5 s of the value and
# gradient's, empty cache, under load) only once a sample needs it.
_FWD_ARGS = ("idx, lp, tp, il, tl, scale, blank, zero_infinity, items, lin_nll, in_log, "
             "nw, L_max")
_FWD_WORKSPACE = """
    ext = np.empty((nw, L_max), np.int64)
    sa = np.empty((nw, L_max))
    sb = np.empty((nw, L_max))
    ma = np.empty((nw, L_max))
    mb = np.empty((nw, L_max))
    g = np.empty((nw, L_max))
    p = np.empty((nw, 1, L_max))
    ec = np.empty((nw, lp.shape[2]))
    rows = np.empty((nw, 2, L_max + 2 * PAD))"""
_FWD_CALL = ("w, nw, idx, lp, tp, il, tl, scale, blank, zero_infinity, items, lin_nll, "
             "in_log, ext, sa, sb, ma, mb, g, ec, p, rows")
_VG_ARGS = ("idx, lp, tp, il, tl, scale, blank, zero_infinity, exact, gscale, gvec, items, "
            "lin_nll, in_log, glp, nw, L_max")
_VG_WORKSPACE = """
    ext = np.empty((nw, L_max), np.int64)
    sa = np.empty((nw, L_max))
    sb = np.empty((nw, L_max))
    ma = np.empty((nw, L_max))
    mb = np.empty((nw, L_max))
    g = np.empty((nw, L_max))
    p = np.empty((nw, L_max))
    e = np.empty((nw, L_max))
    tab = np.empty((nw, lp.shape[0], L_max + 2 * PAD))
    log_scale = np.empty((nw, lp.shape[0]))
    ptab = np.empty((nw, lp.shape[0], L_max))
    beta = np.empty((nw, 2, L_max + 2 * PAD))
    v = np.empty((nw, L_max + 2 * PAD))
    gr = np.empty((nw, lp.shape[2]))"""
_VG_CALL = ("w, nw, idx, lp, tp, il, tl, scale, blank, zero_infinity, exact, gscale, gvec, "
            "items, lin_nll, in_log, glp, ext, sa, sb, ma, mb, g, p, tab, log_scale, ptab, "
            "beta, v, gr, e")
_DRIVER = """
@njit(cache=True, error_model="numpy"{opts})
def {name}({args}):{workspace}
    # {loop}(0, nw), not {loop}(nw): prange(nw)'s index is uint64 in the parallel body,
    # and the worker compiled a second time for it
    for w in {loop}(0, nw):
        {worker}({call})
"""
for _path in ("lin", "log"):
    for _kind, _args, _ws, _call in (("fwd", _FWD_ARGS, _FWD_WORKSPACE, _FWD_CALL),
                                     ("vg", _VG_ARGS, _VG_WORKSPACE, _VG_CALL)):
        for _suffix, _opts, _loop in (("par", ", parallel=True", "prange"),
                                      ("ser", "", "range")):
            define(globals(), _DRIVER.format(
                opts=_opts, name=f"_{_path}_{_kind}_{_suffix}", args=_args, workspace=_ws,
                loop=_loop, worker=f"_{_path}_{_kind}_worker", call=_call))


def _plan(lp, tl):
    """(workers, longest extended target, work per sample) for a call."""
    n = lp.shape[1]
    L_max = 2 * (int(tl.max()) if tl.size else 0) + 1
    nw = max(1, min(n, _threads.get_num_threads()))
    return nw, L_max, lp.shape[0] * (L_max + lp.shape[2])


def _run(kind, lp, tl, head, tail):
    """Run the `kind` ("fwd", "vg") drivers, with arguments `head` before the per-sample
    outputs and `tail` after them: every sample in linear space (unless LINEAR is off),
    then the samples it could not hold in log space; the per-sample losses."""
    nw, L_max, work = _plan(lp, tl)
    n = lp.shape[1]
    items = np.empty(n)
    lin_nll = np.full(n, np.nan)
    in_log = np.zeros(n, np.int8)
    idx = np.arange(n, dtype=np.int64)
    if LINEAR:
        g = globals()
        call(g[f"_lin_{kind}_par"], g[f"_lin_{kind}_ser"], work * n if nw > 1 else 0,
             idx, *head, items, lin_nll, in_log, *tail, nw, L_max)
        idx = np.flatnonzero(in_log).astype(np.int64)
    else:
        in_log[:] = 1
    if idx.size:
        g = globals()
        nwl = max(1, min(idx.size, nw))
        call(g[f"_log_{kind}_par"], g[f"_log_{kind}_ser"], work * idx.size if nwl > 1 else 0,
             idx, *head, items, lin_nll, in_log, *tail, nwl, L_max)
    _count(in_log)
    return items


def _count(in_log):
    k = int(in_log.sum())
    STATS["log"] += k
    STATS["linear"] += in_log.shape[0] - k


def ctc_fwd(lp, tp, il, tl, scale, blank, zero_infinity, exact_grad, loss_out):
    lp, tp, il, tl, scale = (_readonly(a) for a in (lp, tp, il, tl, scale))
    items = _run("fwd", lp, tl, (lp, tp, il, tl, scale, blank, bool(zero_infinity)), ())
    return _finish(items, loss_out)


def ctc_vg(lp, tp, il, tl, scale, blank, zero_infinity, exact_grad, gscale, gvec, loss_out,
           glp):
    lp, tp, il, tl, scale = (_readonly(a) for a in (lp, tp, il, tl, scale))
    items = _run("vg", lp, tl, (lp, tp, il, tl, scale, blank, bool(zero_infinity),
                                bool(exact_grad), float(gscale), gvec), (glp,))
    return _finish(items, loss_out)
