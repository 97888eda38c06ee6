"""Class-index and class-probability losses (NLL, cross-entropy) as fused Numba kernels.

Layout (see fastloss._reference.classification): x is (N, C, D) C-contiguous, passed
flat; item i = (n, p) with n = i // D, p = i % D reads the "row" x[n, :, p], which starts
at n*C*D + p with stride D. The row primitives take that row as a slice: contiguous for
D = 1 (unit-stride loops, 8 lanes wide), a strided view for K-dim inputs (never copied).
Slicing also lets every loop index from 0 with a range variable, so Numba adds no
negative-index fix-up, which would otherwise keep LLVM from vectorizing.

Cross-entropy reads each row once: the row max (explicit vector IR, see _vec), then
the sum of exp(x - max) while the row is still in L1;
rows wider than ``WIDE_BLOCK`` are done block by block with an online rescale, so even
32k-class rows are one pass over memory. The sum of exps runs in the input's float type
(8 float32 lanes); every per-item loss and all sums across items are float64. The
value-and-gradient kernels store the exps in the caller's gradient row as they sum them
and then scale them into softmax-minus-target: no second exp, no N x C temporary.

Small class counts (C <= ``SMALL_C``, D = 1) use a tile of ``TILE`` rows transposed into
a (C, TILE) buffer so that the max, exp, sum and log run across rows, 8 rows per vector,
instead of paying per-row overhead.
"""
import math

import numpy as np
from numba import njit, prange

from .._empty import EMPTY as _EMPTY
from ._common import FM, coef_at, readonly as _readonly, sum_partials
from ._math import fcast, fexpm, flog, fmaximum, prefetch
from ._threading import call
from ._vec import nanmax_row

__all__ = ["class_targets", "nll_fwd", "nll_vg", "ce_class_fwd", "ce_class_vg", "ce_prob_fwd",
           "ce_prob_vg"]


WIDE_BLOCK = 2048    # wide rows go in blocks of 8 KB (float32): one in L1 with the next
SMALL_C = 48         # up to this many classes (and D = 1): the transposed-tile path.
                     # Measured (2-core Zen 4, one thread, float32, CPU time per call;
                     # tiles vs rows): 1M x 32 forward 32 vs 88 ms, value+grad 46 vs 80;
                     # 262144 x 24: 5.9 vs 22 and 9.5 vs 20 ms; x 48: 12.7 vs 23.3 and
                     # 19.3 vs 21.5 ms; x 64: 17 vs 24 ms forward but 27 vs 24 value+grad
TILE = 64            # rows per transposed tile
BLOCK_ELEMS = 65536  # about this many elements per reduction block (rows of a block: a
                     # function of C only, so results do not depend on the thread count;
                     # wide rows get small blocks so that two threads stay balanced)
SMALL_ROWS = 1024    # items per reduction block on the small-C path (a multiple of TILE)
TARGET_BLOCK = 65536  # targets per block in class_targets
NLL_AHEAD = 64       # nll forward: prefetch the picked element this many rows ahead
NLL_BLOCK = 16384    # nll forward: items per block


@njit(cache=True, error_model="numpy")
def _rows_per_block(c):
    return max(1, min(256, BLOCK_ELEMS // max(c, 1)))


# ------------------------------------------------------------------ row primitives
@njit(cache=True, error_model="numpy", fastmath=FM)
def _ce_row_max(xr):
    """The row max ignoring NaN (-inf if there is none): explicit vector code for a
    contiguous row (see _vec). A NaN of the row reaches the result through exp(x - max)."""
    return nanmax_row(xr)


@njit(cache=True, error_model="numpy")
def _ce_row_nan(xr):
    """NaN if the row holds a NaN, else 0 (for blocks whose exps are all skipped)."""
    z = fcast(xr[0], 0.0)
    for j in range(xr.shape[0]):
        if xr[j] != xr[j]:
            z = xr[j]
    return z


@njit(cache=True, error_model="numpy", fastmath=FM)
def _ce_row_sumexp(xr, m):
    s = fcast(m, 0.0)
    for j in range(xr.shape[0]):
        s += fexpm(xr[j] - m)
    return s


@njit(cache=True, error_model="numpy", fastmath=FM)
def _ce_row_sumexp_store(xr, m, er):
    s = fcast(m, 0.0)
    for j in range(xr.shape[0]):
        e = fexpm(xr[j] - m)
        er[j] = e
        s += e
    return s


@njit(cache=True, error_model="numpy", fastmath=FM)
def _ce_row_grad_scale(gr, amul, bsub, w, use_w):
    """gr_j = amul * gr_j - bsub * w_j (w empty or not use_w: bsub), gr holding
    exp(x_j - m)."""
    if w.shape[0] == 0 or not use_w:
        for j in range(gr.shape[0]):
            gr[j] = amul * gr[j] - bsub
    else:
        for j in range(gr.shape[0]):
            gr[j] = amul * gr[j] - bsub * w[j]


@njit(cache=True, error_model="numpy", fastmath=FM)
def _ce_row_lse(xr, c, xn):
    """(m, s) with s = sum_j exp(x_j - m), m the row max: log-sum-exp = m + log(s).

    Rows wider than WIDE_BLOCK go block by block (block max, then its sum of exps while
    the block is in L1, rescaling the running sum when the max grows): one pass over
    memory. An all -inf row gives s = NaN, as exp(-inf - -inf) does for a short row.

    xn (the next row) is not prefetched: rows are read in address order, which the
    hardware prefetcher follows; a burst of software prefetches between the max and the
    sum made the forward pass 10-20% slower (2-core Zen 4, 1000 and 32000 classes)."""
    if c <= WIDE_BLOCK:
        m = _ce_row_max(xr)
        return m, _ce_row_sumexp(xr, m)
    m = fcast(xr[0], -np.inf)
    s = fcast(m, 0.0)
    for k0 in range(0, c, WIDE_BLOCK):
        k1 = min(k0 + WIDE_BLOCK, c)
        bm = _ce_row_max(xr[k0:k1])
        if bm > m:
            s = s * fexpm(m - bm)         # 0 * 0 while m is -inf; a NaN stays NaN
            m = bm
        if m == -np.inf:
            s += _ce_row_nan(xr[k0:k1])   # only -inf and NaN so far: keep a NaN
        else:
            s += _ce_row_sumexp(xr[k0:k1], m)
    if m == -np.inf:
        s = fcast(m, np.nan)
    return m, s


@njit(cache=True, error_model="numpy")
def _prefetch_row(xn):
    for j in range(0, xn.shape[0], 16):
        prefetch(xn, j)


@njit(cache=True, error_model="numpy", fastmath=FM)
def _ce_row_wdist(xr, c, w, m):
    """sum_j w_j (m - x_j) in float64 (w empty: all ones): the label-smoothing term."""
    acc = 0.0
    if w.shape[0] == 0:
        for j in range(c):
            acc += m - np.float64(xr[j])
    else:
        for j in range(c):
            acc += np.float64(w[j]) * (m - np.float64(xr[j]))
    return acc


@njit(cache=True, error_model="numpy", fastmath=FM)
def _ce_row_wnlogp(xr, c, w, m, ls):
    """sum_j w_j ((m - x_j) + ls) = -sum_j w_j log p_j term by term, as torch forms it: the
    label-smoothing term when a weight is NaN or infinite (the sum of weights is then not
    finite), where ls * sum(w) + sum_j w_j (m - x_j) would give inf * 0 or inf - inf for
    terms torch keeps. Not a hot path: such a weight makes every counted item inf or NaN."""
    acc = 0.0
    for j in range(c):
        acc += np.float64(w[j]) * ((m - np.float64(xr[j])) + ls)
    return acc


@njit(cache=True, error_model="numpy", fastmath=FM)
def _ce_row_grad(xr, c, m, lsd, amul, bsub, w, use_w, gr):
    """gx_j = amul * softmax_j - bsub * w_j (w empty: bsub), softmax_j = exp(x_j - m - ls)."""
    if w.shape[0] == 0 or not use_w:
        for j in range(c):
            gr[j] = amul * fexpm((xr[j] - m) - lsd) - bsub
    else:
        for j in range(c):
            gr[j] = amul * fexpm((xr[j] - m) - lsd) - bsub * w[j]


@njit(cache=True, error_model="numpy")
def _zero_row(gr):
    for j in range(gr.shape[0]):
        gr[j] = 0


# ------------------------------------------------------------------ cross-entropy, class targets
@njit(cache=True, error_model="numpy", fastmath=FM)
def _ce_class_item(xr, xn, c, ti, w, eps, wsum, ci, gr, want_grad):
    store = want_grad and c <= WIDE_BLOCK
    if store:
        # the exps go to the gradient row as they are summed; the gradient pass then only
        # scales them (no second exp)
        m = _ce_row_max(xr)
        _prefetch_row(xn)
        s = _ce_row_sumexp_store(xr, m, gr)
    else:
        m, s = _ce_row_lse(xr, c, xn)
    md = np.float64(m)
    sd = np.float64(s)
    ls = math.log(sd)
    wt = 1.0 if w.shape[0] == 0 else np.float64(w[ti])
    loss = (1.0 - eps) * wt * ((md - np.float64(xr[ti])) + ls)
    if eps > 0.0:
        if math.isfinite(wsum):
            loss += eps / c * (_ce_row_wdist(xr, c, w, md) + wsum * ls)
        else:
            loss += eps / c * _ce_row_wnlogp(xr, c, w, md, ls)
    if want_grad:
        amul = ci * ((1.0 - eps) * wt + eps / c * wsum)
        bsub = fcast(m, ci * eps / c)
        # no w_j term without smoothing: it is 0 * w_j, NaN down the column of a NaN or
        # infinite weight
        use_w = eps > 0.0
        if store:
            _ce_row_grad_scale(gr, fcast(m, amul / sd), bsub, w, use_w)
        else:
            _ce_row_grad(xr, c, m, fcast(m, ls), fcast(m, amul), bsub, w, use_w, gr)
        gr[ti] -= fcast(m, ci * (1.0 - eps) * wt)
    return loss


@njit(cache=True, error_model="numpy", fastmath=FM)
def _ce_class_block(b, rb, x, t, w, n_items, c, d, ignore_index, eps, wsum, gscale, gvec,
                    loss_out, gx, want_grad, counts, bads):
    lo, hi = b * rb, min((b + 1) * rb, n_items)
    _count_block(b, t, w, lo, hi, c, ignore_index, counts, bads)
    total = 0.0
    for i in range(lo, hi):
        n = i // d
        a = n * c * d + (i - n * d)
        ti = t[i]
        end = a + (c - 1) * d + 1
        if ti == ignore_index or ti < 0 or ti >= c:
            li = 0.0 if ti == ignore_index else np.nan   # a bad target: reported, never read
            if want_grad:
                _zero_row(gx[a:end:d])
        elif d == 1:   # a contiguous row: unit-stride loops, 8 lanes wide
            li = _ce_class_item(x[a:end], x[end:end + c], c, ti, w, eps, wsum,
                                coef_at(gscale, gvec, i), gx[a:end], want_grad)
        else:
            li = _ce_class_item(x[a:end:d], x[:0], c, ti, w, eps, wsum,
                                coef_at(gscale, gvec, i), gx[a:end:d], want_grad)
        if loss_out.shape[0] != 0:
            loss_out[i] = li
        total += li
    return total


@njit(cache=True, error_model="numpy", parallel=True)
def _ce_class_par(x, t, w, n_items, c, d, ignore_index, eps, wsum, gscale, gvec, loss_out,
                  gx, want_grad, count):
    rb = _rows_per_block(c)
    partial, counts, bads = _block_sums((n_items + rb - 1) // rb, count)
    for b in prange(0, partial.shape[0]):
        partial[b] = _ce_class_block(b, rb, x, t, w, n_items, c, d, ignore_index, eps, wsum,
                                     gscale, gvec, loss_out, gx, want_grad, counts, bads)
    return _block_totals(partial, counts, bads)


@njit(cache=True, error_model="numpy")
def _ce_class_ser(x, t, w, n_items, c, d, ignore_index, eps, wsum, gscale, gvec, loss_out,
                  gx, want_grad, count):
    rb = _rows_per_block(c)
    partial, counts, bads = _block_sums((n_items + rb - 1) // rb, count)
    for b in range(partial.shape[0]):
        partial[b] = _ce_class_block(b, rb, x, t, w, n_items, c, d, ignore_index, eps, wsum,
                                     gscale, gvec, loss_out, gx, want_grad, counts, bads)
    return _block_totals(partial, counts, bads)


# ------------------------------------------------------------------ small C: transposed tiles
@njit(cache=True, error_model="numpy", fastmath=FM)
def _ce_small_tile(x, t, w, r0, nb, c, ignore_index, eps, wsum, gscale, gvec, loss_out, gx,
                   want_grad, buf, ebuf, mrow, srow, lrow, arow, brow):
    # unsigned flat indices: Numba adds no negative-index fix-up to these scalar copies
    for r in range(nb):
        base = np.uintp((r0 + r) * c)
        for j in range(c):
            buf[j, r] = x[base + np.uintp(j)]
    for r in range(nb):
        mrow[r] = buf[0, r]
    for j in range(1, c):
        for r in range(nb):
            mrow[r] = fmaximum(mrow[r], buf[j, r])
    for r in range(nb):
        srow[r] = 0
    for j in range(c):
        for r in range(nb):
            e = fexpm(buf[j, r] - mrow[r])
            ebuf[j, r] = e          # kept for the gradient: no second exp
            srow[r] += e
    for r in range(nb):
        lrow[r] = flog(srow[r])
    total = 0.0
    for r in range(nb):
        i = r0 + r
        ti = t[i]
        counted = ti != ignore_index and ti >= 0 and ti < c
        li = 0.0 if counted or ti == ignore_index else np.nan   # NaN: a bad target, not read
        arow[r] = 0
        brow[r] = 0
        if counted:
            md = np.float64(mrow[r])
            ls = np.float64(lrow[r])
            wt = 1.0 if w.shape[0] == 0 else np.float64(w[ti])
            li = (1.0 - eps) * wt * ((md - np.float64(buf[ti, r])) + ls)
            if eps > 0.0:
                acc = 0.0
                if math.isfinite(wsum):
                    for j in range(c):
                        wj = 1.0 if w.shape[0] == 0 else np.float64(w[j])
                        acc += wj * (md - np.float64(buf[j, r]))
                    li += eps / c * (acc + wsum * ls)
                else:   # a NaN or infinite weight: term by term (see _ce_row_wnlogp)
                    for j in range(c):
                        acc += np.float64(w[j]) * ((md - np.float64(buf[j, r])) + ls)
                    li += eps / c * acc
            if want_grad:
                ci = coef_at(gscale, gvec, i)
                arow[r] = ci * ((1.0 - eps) * wt + eps / c * wsum)
                brow[r] = ci * eps / c
        if loss_out.shape[0] != 0:
            loss_out[i] = li
        total += li
    if want_grad:
        for r in range(nb):
            arow[r] = arow[r] / srow[r]      # softmax_j = exp(x_j - m) / s
        if eps == 0.0:
            # no w_j term: it is 0 * w_j, NaN down the column of a NaN or infinite weight
            for j in range(c):
                for r in range(nb):
                    buf[j, r] = arow[r] * ebuf[j, r]
        else:
            for j in range(c):
                wj = fcast(mrow[0], 1.0) if w.shape[0] == 0 else w[j]
                for r in range(nb):
                    buf[j, r] = arow[r] * ebuf[j, r] - brow[r] * wj
        for r in range(nb):
            i = r0 + r
            ti = t[i]
            if ti == ignore_index or ti < 0 or ti >= c:
                for j in range(c):
                    gx[i * c + j] = 0
            else:
                base = np.uintp(i * c)
                for j in range(c):
                    gx[base + np.uintp(j)] = buf[j, r]
                ci = coef_at(gscale, gvec, i)
                wt = 1.0 if w.shape[0] == 0 else np.float64(w[ti])
                gx[i * c + ti] -= fcast(mrow[0], ci * (1.0 - eps) * wt)
    return total


@njit(cache=True, error_model="numpy")
def _ce_small_block(b, x, t, w, n_items, c, ignore_index, eps, wsum, gscale, gvec, loss_out,
                    gx, want_grad, counts, bads):
    # one allocation for the tile's scratch (seven cost more than the work of a tiny call)
    scratch = np.empty((2 * c + 5, TILE), x.dtype)
    buf, ebuf = scratch[:c], scratch[c:2 * c]
    mrow, srow, lrow = scratch[2 * c], scratch[2 * c + 1], scratch[2 * c + 2]
    arow, brow = scratch[2 * c + 3], scratch[2 * c + 4]
    total = 0.0
    end = min((b + 1) * SMALL_ROWS, n_items)
    _count_block(b, t, w, b * SMALL_ROWS, end, c, ignore_index, counts, bads)
    for r0 in range(b * SMALL_ROWS, end, TILE):
        total += _ce_small_tile(x, t, w, r0, min(TILE, end - r0), c, ignore_index, eps, wsum,
                                gscale, gvec, loss_out, gx, want_grad, buf, ebuf, mrow, srow,
                                lrow, arow, brow)
    return total


@njit(cache=True, error_model="numpy", parallel=True)
def _ce_small_par(x, t, w, n_items, c, ignore_index, eps, wsum, gscale, gvec, loss_out, gx,
                  want_grad, count):
    partial, counts, bads = _block_sums((n_items + SMALL_ROWS - 1) // SMALL_ROWS, count)
    for b in prange(0, partial.shape[0]):
        partial[b] = _ce_small_block(b, x, t, w, n_items, c, ignore_index, eps, wsum, gscale,
                                     gvec, loss_out, gx, want_grad, counts, bads)
    return _block_totals(partial, counts, bads)


@njit(cache=True, error_model="numpy")
def _ce_small_ser(x, t, w, n_items, c, ignore_index, eps, wsum, gscale, gvec, loss_out, gx,
                  want_grad, count):
    partial, counts, bads = _block_sums((n_items + SMALL_ROWS - 1) // SMALL_ROWS, count)
    for b in range(partial.shape[0]):
        partial[b] = _ce_small_block(b, x, t, w, n_items, c, ignore_index, eps, wsum, gscale,
                                     gvec, loss_out, gx, want_grad, counts, bads)
    return _block_totals(partial, counts, bads)


def _ce_class_run(x, t, w, ignore_index, eps, gscale, gvec, loss_out, gx, want_grad, stats):
    n, c, d = x.shape
    n_items = n * d
    if c == 0 or n_items == 0:
        return _no_rows(t, w, c, ignore_index, loss_out, stats)
    wsum = float(np.sum(w, dtype=np.float64)) if (w.shape[0] and eps > 0.0) else float(c)
    xf = x.ravel()   # contiguous: views
    gf = gx.ravel()
    count = stats is not None
    if d == 1 and c <= SMALL_C:
        result = call(_ce_small_par, _ce_small_ser, x.size, xf, t, w, n_items, c,
                      ignore_index, float(eps), wsum, float(gscale), gvec, loss_out, gf,
                      want_grad, count)
    else:
        result = call(_ce_class_par, _ce_class_ser, x.size, xf, t, w, n_items, c, d,
                      ignore_index, float(eps), wsum, float(gscale), gvec, loss_out, gf,
                      want_grad, count)
    return _report(result, stats)


# ------------------------------------------------------------------ NLL
@njit(cache=True, error_model="numpy")
def _nll_block(b, rb, x, t, w, n_items, c, d, ignore_index, gscale, gvec, loss_out, gx,
               want_grad, counts, bads):
    lo, hi = b * rb, min((b + 1) * rb, n_items)
    _count_block(b, t, w, lo, hi, c, ignore_index, counts, bads)
    total = 0.0
    if want_grad and d == 1:   # the block's rows are one contiguous range of gx
        _zero_row(gx[lo * c:hi * c])
    for i in range(lo, hi):
        n = i // d if d != 1 else i   # (a 64-bit division costs more than the rest here)
        a = n * c * d + (i - n * d)
        ti = t[i]
        if want_grad and d != 1:
            _zero_row(gx[a:a + (c - 1) * d + 1:d])
        elif d == 1 and i + NLL_AHEAD < hi:
            # one element per row, rows apart: fetch the one NLL_AHEAD rows on now, so that
            # many misses are in flight instead of one
            ta = t[i + NLL_AHEAD]
            if ta >= 0 and ta < c:
                prefetch(x, (i + NLL_AHEAD) * c + ta)
        li = 0.0
        if ti != ignore_index and (ti < 0 or ti >= c):
            li = np.nan   # a bad target: reported, never read
        elif ti != ignore_index:
            wt = 1.0 if w.shape[0] == 0 else np.float64(w[ti])
            li = -wt * np.float64(x[a + ti * d])
            if want_grad:
                gx[a + ti * d] = -coef_at(gscale, gvec, i) * wt
        if loss_out.shape[0] != 0:
            loss_out[i] = li
        total += li
    return total


@njit(cache=True, error_model="numpy", parallel=True)
def _nll_par(x, t, w, n_items, c, d, ignore_index, gscale, gvec, loss_out, gx, want_grad,
             count, rb):
    partial, counts, bads = _block_sums((n_items + rb - 1) // rb, count)
    for b in prange(0, partial.shape[0]):
        partial[b] = _nll_block(b, rb, x, t, w, n_items, c, d, ignore_index, gscale, gvec,
                                loss_out, gx, want_grad, counts, bads)
    return _block_totals(partial, counts, bads)


@njit(cache=True, error_model="numpy")
def _nll_ser(x, t, w, n_items, c, d, ignore_index, gscale, gvec, loss_out, gx, want_grad,
             count, rb):
    partial, counts, bads = _block_sums((n_items + rb - 1) // rb, count)
    for b in range(partial.shape[0]):
        partial[b] = _nll_block(b, rb, x, t, w, n_items, c, d, ignore_index, gscale, gvec,
                                loss_out, gx, want_grad, counts, bads)
    return _block_totals(partial, counts, bads)


def _nll_run(x, t, w, ignore_index, gscale, gvec, loss_out, gx, want_grad, stats):
    n, c, d = x.shape
    n_items = n * d
    if c == 0 or n_items == 0:
        return _no_rows(t, w, c, ignore_index, loss_out, stats)
    # The forward reads one element per item: its blocks and its threshold for threads
    # count items, not the N x C elements the gradient writes.
    work, rb = (x.size, _rows_per_block(c)) if want_grad else (n_items, NLL_BLOCK)
    result = call(_nll_par, _nll_ser, work, x.ravel(), t, w, n_items, c, d,
                  ignore_index, float(gscale), gvec, loss_out, gx.ravel(), want_grad,
                  stats is not None, rb)
    return _report(result, stats)


# ------------------------------------------------------------------ cross-entropy, probabilities
@njit(cache=True, error_model="numpy", fastmath=FM)
def _ce_prob_item(xr, pr, c, w, eps, ci, gr, want_grad):
    m, s = _ce_row_lse(xr, c, xr[:0])
    md = np.float64(m)
    ls = math.log(np.float64(s))
    spw = 0.0     # sum_j w_j p'_j
    sdist = 0.0   # sum_j w_j p'_j (m - x_j)
    for j in range(c):
        pj = (1.0 - eps) * np.float64(pr[j]) + eps / c
        wpj = pj if w.shape[0] == 0 else pj * np.float64(w[j])
        spw += wpj
        sdist += wpj * (md - np.float64(xr[j]))
    if not math.isfinite(spw):
        # a NaN or infinite weight: the loss term by term (see _ce_row_wnlogp)
        sdist = 0.0
        for j in range(c):
            pj = (1.0 - eps) * np.float64(pr[j]) + eps / c
            wpj = pj if w.shape[0] == 0 else pj * np.float64(w[j])
            sdist += wpj * ((md - np.float64(xr[j])) + ls)
        ls_term = 0.0
    else:
        ls_term = spw * ls
    if want_grad:
        lsd = fcast(m, ls)
        amul = fcast(m, ci * spw)
        pm = fcast(m, ci * (1.0 - eps))
        pa = fcast(m, ci * eps / c)
        if w.shape[0] == 0:
            for j in range(c):
                gr[j] = amul * fexpm((xr[j] - m) - lsd) - (pm * pr[j] + pa)
        else:
            for j in range(c):
                gr[j] = amul * fexpm((xr[j] - m) - lsd) - (pm * pr[j] + pa) * w[j]
    return sdist + ls_term


@njit(cache=True, error_model="numpy", fastmath=FM)
def _ce_prob_block(b, rb, x, p, w, n_items, c, d, eps, gscale, gvec, loss_out, gx,
                   want_grad):
    total = 0.0
    for i in range(b * rb, min((b + 1) * rb, n_items)):
        n = i // d
        a = n * c * d + (i - n * d)
        end = a + (c - 1) * d + 1
        ci = coef_at(gscale, gvec, i)
        if d == 1:
            li = _ce_prob_item(x[a:end], p[a:end], c, w, eps, ci, gx[a:end], want_grad)
        else:
            li = _ce_prob_item(x[a:end:d], p[a:end:d], c, w, eps, ci, gx[a:end:d], want_grad)
        if loss_out.shape[0] != 0:
            loss_out[i] = li
        total += li
    return total


@njit(cache=True, error_model="numpy", parallel=True)
def _ce_prob_par(x, p, w, n_items, c, d, eps, gscale, gvec, loss_out, gx, want_grad):
    rb = _rows_per_block(c)
    partial = np.empty((n_items + rb - 1) // rb)
    for b in prange(0, partial.shape[0]):
        partial[b] = _ce_prob_block(b, rb, x, p, w, n_items, c, d, eps, gscale, gvec, loss_out,
                                    gx, want_grad)
    return sum_partials(partial)


@njit(cache=True, error_model="numpy")
def _ce_prob_ser(x, p, w, n_items, c, d, eps, gscale, gvec, loss_out, gx, want_grad):
    rb = _rows_per_block(c)
    partial = np.empty((n_items + rb - 1) // rb)
    for b in range(partial.shape[0]):
        partial[b] = _ce_prob_block(b, rb, x, p, w, n_items, c, d, eps, gscale, gvec, loss_out,
                                    gx, want_grad)
    return sum_partials(partial)


def _ce_prob_run(x, p, w, eps, gscale, gvec, loss_out, gx, want_grad):
    n, c, d = x.shape
    n_items = n * d
    if c == 0 or n_items == 0:
        loss_out[...] = 0
        return 0.0
    return call(_ce_prob_par, _ce_prob_ser, x.size, x.reshape(-1), p.reshape(-1), w, n_items,
                c, d, float(eps), float(gscale), gvec, loss_out, gx.reshape(-1), want_grad)


# ------------------------------------------------------------------ target check
@njit(cache=True, error_model="numpy")
def _count_targets(t, w, lo, hi, n_classes, ignore_index, use_ignore):
    """Over targets [lo, hi): (summed weight of the counted ones, position of the first
    one out of range or -1; counting stops there)."""
    acc = 0.0
    for i in range(lo, hi):
        ti = t[i]
        if use_ignore and ti == ignore_index:
            continue
        if ti < 0 or ti >= n_classes:
            return acc, i
        acc += 1.0 if w.shape[0] == 0 else np.float64(w[ti])
    return acc, -1


@njit(cache=True, error_model="numpy")
def _count_block(b, t, w, lo, hi, c, ignore_index, counts, bads):
    """A forward block's share of the target count (the kernel reports its targets: see
    fastloss._engine); counts has length 0 when not asked (the _vg kernels)."""
    if counts.shape[0] != 0:
        counts[b], bads[b] = _count_targets(t, w, lo, hi, c, ignore_index, True)


@njit(cache=True, error_model="numpy")
def _block_sums(n_blocks, count):
    """Per-block partial sums of the loss and, when counting targets, of their weight and
    each block's first bad position."""
    m = n_blocks if count else 0
    return np.empty(n_blocks), np.empty(m), np.empty(m, np.int64)


@njit(cache=True, error_model="numpy")
def _count_totals(counts, bads):
    """(weight sum, first bad position or -1) from per-block target counts, in block
    order (the first block with a bad target has the first bad position)."""
    for b in range(bads.shape[0]):
        if bads[b] >= 0:
            return 0.0, bads[b]
    return sum_partials(counts), -1


@njit(cache=True, error_model="numpy")
def _block_totals(partial, counts, bads):
    """(loss sum, weight sum, first bad position or -1), every sum in block order."""
    wsum, bad = _count_totals(counts, bads)
    return sum_partials(partial), wsum, bad


def _report(result, stats):
    total, wsum, bad = result
    if stats is not None:
        stats[0] = wsum   # (two item stores: a slice store from a tuple costs 3x more)
        stats[1] = bad
    return total


def _no_rows(t, w, c, ignore_index, loss_out, stats):
    """No items, or no classes (then every counted target is out of range: NaN items)."""
    if stats is not None:
        stats[:] = class_targets(t, w, c, ignore_index, True)
    loss_out[...] = 0
    if c == 0 and loss_out.shape[0]:
        loss_out[t != ignore_index] = np.nan
    return 0.0 if stats is None or stats[1] < 0 else math.nan


@njit(cache=True, error_model="numpy")
def _targets_block(b, t, w, n_classes, ignore_index, use_ignore, wsums, bads):
    lo = b * TARGET_BLOCK
    wsums[b], bads[b] = _count_targets(t, w, lo, min(lo + TARGET_BLOCK, t.shape[0]), n_classes,
                                       ignore_index, use_ignore)


@njit(cache=True, error_model="numpy", parallel=True)
def _targets_par(t, w, n_classes, ignore_index, use_ignore):
    nb = (t.shape[0] + TARGET_BLOCK - 1) // TARGET_BLOCK
    wsums = np.empty(nb)
    bads = np.empty(nb, np.int64)
    for b in prange(0, nb):
        _targets_block(b, t, w, n_classes, ignore_index, use_ignore, wsums, bads)
    return _count_totals(wsums, bads)


@njit(cache=True, error_model="numpy")
def _targets_ser(t, w, n_classes, ignore_index, use_ignore):
    nb = (t.shape[0] + TARGET_BLOCK - 1) // TARGET_BLOCK
    wsums = np.empty(nb)
    bads = np.empty(nb, np.int64)
    for b in range(nb):
        _targets_block(b, t, w, n_classes, ignore_index, use_ignore, wsums, bads)
    return _count_totals(wsums, bads)


# ------------------------------------------------------------------ the contract


def class_targets(t, w, n_classes, ignore_index, use_ignore):
    """(summed weight of counted targets, flat position of the first bad target or -1)."""
    t, w = _readonly(t.reshape(-1)), _readonly(w)
    # the check is cheap per target: threads only pay off for several blocks
    wsum, bad = call(_targets_par, _targets_ser, t.shape[0] // 8, t, w, int(n_classes),
                     int(ignore_index), bool(use_ignore))
    return float(wsum), int(bad)


def nll_fwd(x, t, w, ignore_index, loss_out, target_stats):
    x, t, w = _readonly(x), _readonly(t), _readonly(w)
    e = _EMPTY[x.dtype]
    return _nll_run(x, t, w, ignore_index, 1.0, e, loss_out, e, False, target_stats)


def nll_vg(x, t, w, ignore_index, gscale, gvec, loss_out, gx):
    x, t, w = _readonly(x), _readonly(t), _readonly(w)
    return _nll_run(x, t, w, ignore_index, gscale, gvec, loss_out, gx, True, None)


def ce_class_fwd(x, t, w, ignore_index, label_smoothing, loss_out, target_stats):
    x, t, w = _readonly(x), _readonly(t), _readonly(w)
    e = _EMPTY[x.dtype]
    return _ce_class_run(x, t, w, ignore_index, label_smoothing, 1.0, e, loss_out, e, False,
                         target_stats)


def ce_class_vg(x, t, w, ignore_index, label_smoothing, gscale, gvec, loss_out, gx):
    x, t, w = _readonly(x), _readonly(t), _readonly(w)
    return _ce_class_run(x, t, w, ignore_index, label_smoothing, gscale, gvec, loss_out, gx,
                         True, None)


def ce_prob_fwd(x, p, w, label_smoothing, loss_out):
    x, p, w = _readonly(x), _readonly(p), _readonly(w)
    e = _EMPTY[x.dtype]
    return _ce_prob_run(x, p, w, label_smoothing, 1.0, e, loss_out, e, False)


def ce_prob_vg(x, p, w, label_smoothing, gscale, gvec, loss_out, gx):
    x, p, w = _readonly(x), _readonly(p), _readonly(w)
    return _ce_prob_run(x, p, w, label_smoothing, gscale, gvec, loss_out, gx, True)
