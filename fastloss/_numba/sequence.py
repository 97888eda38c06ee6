"""CTC as fused Numba kernels: the log-space forward(-backward) recursion, the samples of
the batch in parallel, with the signatures of fastloss._reference.sequence.

Work is split over ``nw`` workers (one per thread), worker w taking samples w, w + nw, ...
with its own slice of one workspace allocated per call, so a worker's alpha table stays
in its core's cache from one sample to the next. Every sample's loss is computed the
same way whatever the worker, and the losses are summed serially in sample order: the
result does not depend on the thread count.

Per sample, with L = 2 S + 1 states (the target with blanks interleaved) and input
length T_n, only the band of states that are both reachable from the start by time t and
can still reach the end by T_n - 1 is computed:
``lo(t) = max(0, L - 2 (T_n - t))``, ``hi(t) = min(L, 2 t + 2)``. Rows are padded with two
-inf cells on each side, so s - 2 and s + 2 never need a bounds test and the update over
the band is one branch-free loop (vectorizable exp/log from ``_math``).

- forward only: two rows of alpha, O(S) state per sample;
- value and gradient: the (T_n, L) alpha table, then beta backwards in two rows, each
  time step's gradient row written as soon as its beta row is known (torch keeps a full
  beta table and a (T, N, C) buffer of collected alpha*beta instead).
"""
import numpy as np
from numba import njit, prange

from .. import _threads
from ._common import FM, coef_at, readonly as _readonly
from ._math import fexp, fexpm, flog
from ._threading import call

__all__ = ["ctc_fwd", "ctc_vg"]

NEG_INF = -np.inf
PAD = 2


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
def _setup(tp, b, tl, blank, ext, skip_a, skip_b):
    """The extended target of sample b and its skip masks: skip_a[s] = 0 where alpha may
    come from s - 2 (ext[s] != ext[s - 2]), skip_b[s] = 0 where beta may come from s + 2."""
    L = 2 * tl + 1
    for s in range(L):
        ext[s] = blank if s % 2 == 0 else tp[b, s // 2]
    for s in range(L):
        skip_a[s] = 0.0 if s >= 2 and ext[s] != ext[s - 2] else NEG_INF
        skip_b[s] = 0.0 if s + 2 < L and ext[s + 2] != ext[s] else NEG_INF
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


@njit(cache=True, error_model="numpy")
def _item(nll, zero_infinity, scale, b):
    if zero_infinity and nll == np.inf:
        nll = 0.0
    return nll * scale[b] if scale.shape[0] else nll


@njit(cache=True, error_model="numpy")
def _fwd_worker(w, nw, lp, tp, il, tl, scale, blank, zero_infinity, items, ext, sa, sb, g,
                rows):
    for b in range(w, lp.shape[1], nw):
        L = _setup(tp, b, tl[b], blank, ext[w], sa[w], sb[w])
        items[b] = _item(_alpha_rows(lp, b, il[b], L, ext[w], sa[w], g[w], rows[w]),
                         zero_infinity, scale, b)


@njit(cache=True, error_model="numpy")
def _vg_worker(w, nw, lp, tp, il, tl, scale, blank, zero_infinity, exact, gscale, gvec,
               items, glp, ext, sa, sb, g, tab, beta, gr, e):
    for b in range(w, lp.shape[1], nw):
        L = _setup(tp, b, tl[b], blank, ext[w], sa[w], sb[w])
        cf = coef_at(gscale, gvec, b) * (scale[b] if scale.shape[0] else 1.0)
        nll = _ctc_sample_vg(lp, glp, b, il[b], L, ext[w], sa[w], sb[w], g[w], tab[w],
                             beta[w], gr[w], e[w], zero_infinity, exact, cf)
        items[b] = _item(nll, zero_infinity, scale, b)


@njit(cache=True, error_model="numpy")
def _finish(items, loss_out):
    total = 0.0
    for b in range(items.shape[0]):
        total += items[b]
        if loss_out.shape[0]:
            loss_out[b] = items[b]
    return total


@njit(cache=True, error_model="numpy", parallel=True)
def _ctc_fwd_par(lp, tp, il, tl, scale, blank, zero_infinity, nw, L_max, loss_out):
    n = lp.shape[1]
    items = np.empty(n)
    ext = np.empty((nw, L_max), np.int64)
    sa = np.empty((nw, L_max))
    sb = np.empty((nw, L_max))
    g = np.empty((nw, L_max))
    rows = np.empty((nw, 2, L_max + 2 * PAD))
    for w in prange(nw):
        _fwd_worker(w, nw, lp, tp, il, tl, scale, blank, zero_infinity, items, ext, sa, sb,
                    g, rows)
    return _finish(items, loss_out)


@njit(cache=True, error_model="numpy")
def _ctc_fwd_ser(lp, tp, il, tl, scale, blank, zero_infinity, nw, L_max, loss_out):
    n = lp.shape[1]
    items = np.empty(n)
    ext = np.empty((1, L_max), np.int64)
    sa = np.empty((1, L_max))
    sb = np.empty((1, L_max))
    g = np.empty((1, L_max))
    rows = np.empty((1, 2, L_max + 2 * PAD))
    _fwd_worker(0, 1, lp, tp, il, tl, scale, blank, zero_infinity, items, ext, sa, sb, g,
                rows)
    return _finish(items, loss_out)


@njit(cache=True, error_model="numpy", parallel=True)
def _ctc_vg_par(lp, tp, il, tl, scale, blank, zero_infinity, exact, gscale, gvec, nw, L_max,
                loss_out, glp):
    n, T, C = lp.shape[1], lp.shape[0], lp.shape[2]
    items = np.empty(n)
    ext = np.empty((nw, L_max), np.int64)
    sa = np.empty((nw, L_max))
    sb = np.empty((nw, L_max))
    g = np.empty((nw, L_max))
    e = np.empty((nw, L_max))
    tab = np.empty((nw, T, L_max + 2 * PAD))
    beta = np.empty((nw, 2, L_max + 2 * PAD))
    gr = np.empty((nw, C))
    for w in prange(nw):
        _vg_worker(w, nw, lp, tp, il, tl, scale, blank, zero_infinity, exact, gscale, gvec,
                   items, glp, ext, sa, sb, g, tab, beta, gr, e)
    return _finish(items, loss_out)


@njit(cache=True, error_model="numpy")
def _ctc_vg_ser(lp, tp, il, tl, scale, blank, zero_infinity, exact, gscale, gvec, nw, L_max,
                loss_out, glp):
    n, T, C = lp.shape[1], lp.shape[0], lp.shape[2]
    items = np.empty(n)
    ext = np.empty((1, L_max), np.int64)
    sa = np.empty((1, L_max))
    sb = np.empty((1, L_max))
    g = np.empty((1, L_max))
    e = np.empty((1, L_max))
    tab = np.empty((1, T, L_max + 2 * PAD))
    beta = np.empty((1, 2, L_max + 2 * PAD))
    gr = np.empty((1, C))
    _vg_worker(0, 1, lp, tp, il, tl, scale, blank, zero_infinity, exact, gscale, gvec,
               items, glp, ext, sa, sb, g, tab, beta, gr, e)
    return _finish(items, loss_out)


def _plan(lp, tl):
    """(workers, longest extended target, work) for a call."""
    n = lp.shape[1]
    L_max = 2 * (int(tl.max()) if tl.size else 0) + 1
    nw = max(1, min(n, _threads.get_num_threads()))
    return nw, L_max, lp.shape[0] * n * (L_max + lp.shape[2])


def ctc_fwd(lp, tp, il, tl, scale, blank, zero_infinity, exact_grad, loss_out):
    lp, tp, il, tl, scale = (_readonly(a) for a in (lp, tp, il, tl, scale))
    nw, L_max, work = _plan(lp, tl)
    return call(_ctc_fwd_par, _ctc_fwd_ser, work if nw > 1 else 0, lp, tp, il, tl, scale,
                blank, bool(zero_infinity), nw, L_max, loss_out)


def ctc_vg(lp, tp, il, tl, scale, blank, zero_infinity, exact_grad, gscale, gvec, loss_out,
           glp):
    lp, tp, il, tl, scale = (_readonly(a) for a in (lp, tp, il, tl, scale))
    nw, L_max, work = _plan(lp, tl)
    return call(_ctc_vg_par, _ctc_vg_ser, work if nw > 1 else 0, lp, tp, il, tl, scale,
                blank, bool(zero_infinity), bool(exact_grad), float(gscale), gvec, nw, L_max,
                loss_out, glp)
