"""Cross-entropy with z_loss/softcap, and the chunked linear cross-entropy, with the
signatures of fastloss._reference.linear.

One item function computes an item's loss from its row of logits (a strided view for
K-dim layouts) and, when asked, writes its gradient into a row that may be the logits
row itself: two passes over the row (max; then the sum of exps with the picked and
smoothing sums), then the gradient pass, which reads each logit before overwriting it.
Without softcap the exps run in the input's float type (8 float32 lanes), sums across
items in float64; softcap uses libm's tanh (scalar).

The linear loss never materialises the (N, C) logits: rows go in chunks; per chunk one
BLAS product (NumPy's matmul, called from Python: never inside a Numba parallel region,
so BLAS threads and kernel threads never run at once) writes the chunk's logits into a
buffer allocated once, the parallel item kernel turns them into the loss and, in place,
into the gradient of the logits, and two more products give the gradient rows of the
input and add the chunk's share of the weight's gradient (BLAS gemm with beta = 1 when
SciPy is there, else through a second reused buffer).
"""
import math

import numpy as np
from numba import njit, prange

from ._common import FM, coef_at, readonly as _readonly, sum_partials
from ._math import fcast, fexpm, fmaximum
from ._threading import call

__all__ = ["ce_ext_class_fwd", "ce_ext_class_vg", "ce_ext_prob_fwd", "ce_ext_prob_vg",
           "linear_ce_class_fwd", "linear_ce_class_vg", "linear_ce_prob_fwd",
           "linear_ce_prob_vg"]

BLOCK = 64                   # items per reduction block (fixed: thread-count independent)
MEMORY_BUDGET = 128 << 20    # bytes of logits per chunk when chunk_size is not given
MIN_CHUNK = 64               # rows per chunk at least (a thinner GEMM wastes the BLAS)


@njit(cache=True, error_model="numpy", fastmath=FM)
def _capped(v, cap):
    return cap * math.tanh(v / cap) if cap > 0 else v


@njit(cache=True, error_model="numpy", fastmath=FM)
def _row_max(zr, cap):
    m = fcast(zr[0], -np.inf)
    if cap > 0:
        for j in range(zr.shape[0]):
            m = fmaximum(m, fcast(m, _capped(np.float64(zr[j]), cap)))
    else:
        for j in range(zr.shape[0]):
            m = fmaximum(m, zr[j])
    return np.float64(m)


@njit(cache=True, error_model="numpy", fastmath=FM)
def _row_sums(zr, pr, probs, w, eps, cap, ms):
    """(sum exp(z' - ms), sum w z' (or sum w p' z' for probabilities), sum w p')."""
    c = zr.shape[0]
    has_w = w.shape[0] > 0
    se = 0.0
    sz = 0.0
    sp = 0.0
    if cap > 0 or probs:
        for j in range(c):
            v = _capped(np.float64(zr[j]), cap)
            se += math.exp(v - ms) if cap > 0 else np.float64(fexpm(zr[j] - fcast(zr[j], ms)))
            wj = np.float64(w[j]) if has_w else 1.0
            if probs:
                q = (1.0 - eps) * np.float64(pr[j]) + eps / c
                sz += wj * q * v
                sp += wj * q
            else:
                sz += wj * v
        return se, sz, sp
    mt = fcast(zr[0], ms)
    acc = fcast(zr[0], 0.0)
    for j in range(c):
        acc += fexpm(zr[j] - mt)
    se = np.float64(acc)
    if eps > 0:
        if has_w:
            for j in range(c):
                sz += np.float64(w[j]) * np.float64(zr[j])
        else:
            for j in range(c):
                sz += np.float64(zr[j])
    return se, sz, sp


@njit(cache=True, error_model="numpy", fastmath=FM)
def _grad_pass(zr, pr, probs, w, eps, cap, lse, a, cf, gr):
    """gr[j] = cf * (exp(z'_j - lse) * a - b_j) * dz'/dz, b_j = eps/C w_j (class) or
    w_j p'_j (probabilities); the target's own term is added by the caller."""
    c = zr.shape[0]
    has_w = w.shape[0] > 0
    if cap > 0 or probs:
        for j in range(c):
            v = _capped(np.float64(zr[j]), cap)
            wj = np.float64(w[j]) if has_w else 1.0
            bj = wj * ((1.0 - eps) * np.float64(pr[j]) + eps / c) if probs else wj * eps / c
            g = math.exp(v - lse) * a - bj
            if cap > 0:
                g *= 1.0 - (v / cap) * (v / cap)
            gr[j] = cf * g
        return
    lt = fcast(zr[0], lse)
    at = fcast(zr[0], cf * a)
    bt = fcast(zr[0], cf * eps / c)
    if has_w and eps > 0:
        for j in range(c):
            gr[j] = fexpm(zr[j] - lt) * at - bt * w[j]
    else:
        for j in range(c):
            gr[j] = fexpm(zr[j] - lt) * at - bt


@njit(cache=True, error_model="numpy")
def _item(zr, pr, probs, ti, w, wsum, ignore_index, eps, z_loss, cap, cf, gr, want_grad):
    """The loss of one item (row zr of logits); its gradient into gr when asked (gr may
    be zr). Class targets: ti (ignored: 0, and a zero gradient row)."""
    c = zr.shape[0]
    if not probs and (ti == ignore_index or c == 0):
        if want_grad:
            for j in range(c):
                gr[j] = 0.0
        return 0.0
    if not probs and (ti < 0 or ti >= c):
        if want_grad:
            for j in range(c):
                gr[j] = 0.0
        return np.nan
    if c == 0:
        return 0.0
    m = _row_max(zr, cap)
    ms = m if math.isfinite(m) else 0.0
    se, sz, sp = _row_sums(zr, pr, probs, w, eps, cap, ms)
    lse = math.log(se) + ms
    if probs:
        loss = sp * lse - sz + z_loss * lse * lse
        a = sp + 2.0 * z_loss * lse
    else:
        wy = np.float64(w[ti]) if w.shape[0] else 1.0
        zy = _capped(np.float64(zr[ti]), cap)
        loss = (1.0 - eps) * wy * (lse - zy) + z_loss * wy * lse * lse
        if eps > 0:
            loss += eps / c * (wsum * lse - sz)
        a = (1.0 - eps) * wy + eps / c * wsum + 2.0 * z_loss * wy * lse
    if want_grad:
        _grad_pass(zr, pr, probs, w, eps, cap, lse, a, cf, gr)
        if not probs:
            d = 1.0 - (zy / cap) * (zy / cap) if cap > 0 else 1.0
            gr[ti] -= cf * (1.0 - eps) * wy * d
    return loss


@njit(cache=True, error_model="numpy")
def _block(b, z, t, p, probs, w, wsum, i0, n_items, ignore_index, eps, z_loss, cap, gscale,
           gvec, items, g, want_grad):
    """Items [b*BLOCK, ...) of the (rows, C, D) logits z (item i: row i // D, position
    i % D); coefficients and items at global index i0 + i."""
    d = z.shape[2]
    lo = b * BLOCK
    hi = min(n_items, lo + BLOCK)
    total = 0.0
    for i in range(lo, hi):
        r = i // d
        k = i - r * d
        zr = z[r, :, k]
        pr = p[r, :, k] if probs else zr
        ti = 0 if probs else t[i0 + i]
        cf = coef_at(gscale, gvec, i0 + i) if want_grad else 0.0
        v = _item(zr, pr, probs, ti, w, wsum, ignore_index, eps, z_loss, cap, cf,
                  g[r, :, k], want_grad)
        items[i0 + i] = v
        total += v
    return total


@njit(cache=True, error_model="numpy")
def _block_rows(b, z, t, probs, w, wsum, i0, ignore_index, eps, z_loss, cap, gscale, gvec,
                items, want_grad):
    """_block for D = 1 class targets: contiguous rows (unit-stride, vectorized loops),
    the gradient written over the logits."""
    lo = b * BLOCK
    hi = min(z.shape[0], lo + BLOCK)
    total = 0.0
    for i in range(lo, hi):
        zr = z[i]
        cf = coef_at(gscale, gvec, i0 + i) if want_grad else 0.0
        v = _item(zr, zr, probs, t[i0 + i], w, wsum, ignore_index, eps, z_loss, cap, cf, zr,
                  want_grad)
        items[i0 + i] = v
        total += v
    return total


@njit(cache=True, error_model="numpy", parallel=True)
def _rows_par(z, t, probs, w, wsum, i0, ignore_index, eps, z_loss, cap, gscale, gvec, items,
              want_grad):
    nb = (z.shape[0] + BLOCK - 1) // BLOCK
    partial = np.zeros(nb)
    for b in prange(nb):
        partial[b] = _block_rows(b, z, t, probs, w, wsum, i0, ignore_index, eps, z_loss, cap,
                                 gscale, gvec, items, want_grad)
    return sum_partials(partial)


@njit(cache=True, error_model="numpy")
def _rows_ser(z, t, probs, w, wsum, i0, ignore_index, eps, z_loss, cap, gscale, gvec, items,
              want_grad):
    nb = (z.shape[0] + BLOCK - 1) // BLOCK
    partial = np.zeros(nb)
    for b in range(nb):
        partial[b] = _block_rows(b, z, t, probs, w, wsum, i0, ignore_index, eps, z_loss, cap,
                                 gscale, gvec, items, want_grad)
    return sum_partials(partial)


@njit(cache=True, error_model="numpy", parallel=True)
def _items_par(z, t, p, probs, w, wsum, i0, ignore_index, eps, z_loss, cap, gscale, gvec,
               items, g, want_grad):
    n_items = z.shape[0] * z.shape[2]
    nb = (n_items + BLOCK - 1) // BLOCK
    partial = np.zeros(nb)
    for b in prange(nb):
        partial[b] = _block(b, z, t, p, probs, w, wsum, i0, n_items, ignore_index, eps,
                            z_loss, cap, gscale, gvec, items, g, want_grad)
    return sum_partials(partial)


@njit(cache=True, error_model="numpy")
def _items_ser(z, t, p, probs, w, wsum, i0, ignore_index, eps, z_loss, cap, gscale, gvec,
               items, g, want_grad):
    n_items = z.shape[0] * z.shape[2]
    nb = (n_items + BLOCK - 1) // BLOCK
    partial = np.zeros(nb)
    for b in range(nb):
        partial[b] = _block(b, z, t, p, probs, w, wsum, i0, n_items, ignore_index, eps,
                            z_loss, cap, gscale, gvec, items, g, want_grad)
    return sum_partials(partial)


_NO_T = np.zeros(1, np.int64)


def _run(z, t, p, probs, w, i0, ignore_index, eps, z_loss, cap, gscale, gvec, items, g,
         want_grad):
    wsum = float(np.sum(w, dtype=np.float64)) if w.size else float(z.shape[1])
    if p is None:
        if z.shape[2] == 1 and g is z:    # the linear loss's chunk: gradient in place
            return call(_rows_par, _rows_ser, z.size, z.reshape(z.shape[0], z.shape[1]), t,
                        False, w, wsum, i0, ignore_index, eps, z_loss, cap, float(gscale),
                        gvec, items, want_grad)
        p = z[:0]
    return call(_items_par, _items_ser, z.size, z, t if t is not None else _NO_T, p, probs,
                w, wsum, i0, ignore_index, eps, z_loss, cap, float(gscale), gvec, items, g,
                want_grad)


def _store(items, loss_out):
    if loss_out.size:
        loss_out[...] = items


# ---- cross_entropy(z_loss=..., softcap=...) --------------------------------------------

def ce_ext_class_fwd(x, t, w, ignore_index, eps, z_loss, cap, loss_out):
    # t, w read-only always (a memmap: no recompile); x stays as given: the rows path
    # below takes it as its (unwritten) gradient buffer too
    t, w = _readonly(t), _readonly(w)
    items = np.empty(x.shape[0] * x.shape[2])
    total = _run(x, t, None, False, w, 0, ignore_index, eps, z_loss, cap, 0.0, gvec_none(x),
                 items, x, False)
    _store(items, loss_out)
    return total


def ce_ext_class_vg(x, t, w, ignore_index, eps, z_loss, cap, gscale, gvec, loss_out, gx):
    x, t, w = _readonly(x), _readonly(t), _readonly(w)   # a memmap: no recompile
    items = np.empty(x.shape[0] * x.shape[2])
    total = _run(x, t, None, False, w, 0, ignore_index, eps, z_loss, cap, gscale, gvec,
                 items, gx, True)
    _store(items, loss_out)
    return total


def ce_ext_prob_fwd(x, p, w, eps, z_loss, cap, loss_out):
    p, w = _readonly(p), _readonly(w)
    items = np.empty(x.shape[0] * x.shape[2])
    total = _run(x, None, p, True, w, 0, 0, eps, z_loss, cap, 0.0, gvec_none(x), items, x,
                 False)
    _store(items, loss_out)
    return total


def ce_ext_prob_vg(x, p, w, eps, z_loss, cap, gscale, gvec, loss_out, gx):
    x, p, w = _readonly(x), _readonly(p), _readonly(w)
    items = np.empty(x.shape[0] * x.shape[2])
    total = _run(x, None, p, True, w, 0, 0, eps, z_loss, cap, gscale, gvec, items, gx, True)
    _store(items, loss_out)
    return total


def gvec_none(x):
    return np.empty(0, x.dtype)


# ---- linear_cross_entropy ----------------------------------------------------------------

def chunk_rows(n, c, d, itemsize, chunk):
    """Rows per chunk: `chunk` when given, else every row if their logits fit in
    MEMORY_BUDGET, else as many as fit (at least MIN_CHUNK)."""
    if chunk:
        return max(1, min(n, chunk))
    per_row = max(1, c * d * itemsize)
    if n * per_row <= MEMORY_BUDGET:
        return max(1, n)
    return max(1, min(n, max(MIN_CHUNK, MEMORY_BUDGET // per_row)))


_GEMM: dict | None = {}


def _gemm():
    """scipy's sgemm/dgemm (gemm with beta = 1 accumulates the weight's gradient without a
    temporary), or None without scipy (optional). Imported on first use: importing
    scipy.linalg took 0.65 s, a sixth of every loss's cold first call (-X importtime)."""
    global _GEMM
    if _GEMM == {}:
        try:
            from scipy.linalg import blas
            _GEMM = {np.dtype(np.float32): blas.sgemm, np.dtype(np.float64): blas.dgemm}
        except ImportError:   # pragma: no cover - scipy is optional
            _GEMM = None
    return _GEMM


def _accumulate_gw(gw, g, xc, first, tmp):
    """gw (+)= g.T @ xc, in place."""
    if first:
        np.matmul(g.T, xc, out=gw)
        return tmp
    gemm = _gemm()
    if gemm is not None:
        # in Fortran order gw.T (d, V) += xc.T (d, rows) @ g.T.T: no copy, no temporary
        gemm[gw.dtype](1.0, xc.T, g.T, beta=1.0, c=gw.T, trans_b=1, overwrite_c=1)
        return tmp
    if tmp is None:
        tmp = np.empty_like(gw)
    np.matmul(g.T, xc, out=tmp)
    gw += tmp
    return tmp


def _linear(x, wf, t, p, b, w, c, d, ignore_index, eps, z_loss, cap, chunk, gscale, gvec,
            loss_out, gx, gw, gb, want_grad):
    n = x.shape[0]
    probs = p is not None
    rows = chunk_rows(n, c, d, x.dtype.itemsize, chunk)
    buf = np.empty((rows, c * d), x.dtype)
    items = np.empty(n * d)
    total = 0.0
    tmp = None
    for r0 in range(0, n, rows):
        r1 = min(n, r0 + rows)
        z = buf[:r1 - r0]
        xc = x[r0:r1]
        np.matmul(xc, wf.T, out=z)
        if b.size:
            z += b
        z3 = z.reshape(r1 - r0, c, d)
        total += _run(z3, t, p[r0:r1] if probs else None, probs, w, r0 * d, ignore_index, eps,
                      z_loss, cap, gscale if want_grad else 0.0, gvec, items, z3, want_grad)
        if want_grad:
            np.matmul(z, wf, out=gx[r0:r1])
            if gw.size:
                tmp = _accumulate_gw(gw, z, xc, r0 == 0, tmp)
            if gb.size:
                if r0 == 0:
                    np.sum(z, axis=0, out=gb)
                else:
                    gb += np.sum(z, axis=0)
    if want_grad and n == 0:
        gw[...] = 0
        gb[...] = 0
    _store(items, loss_out)
    return total


def linear_ce_class_fwd(x, wf, t, b, w, c, d, ignore_index, eps, z_loss, cap, chunk,
                        loss_out):
    t, w = _readonly(t), _readonly(w)
    return _linear(x, wf, t, None, b, w, c, d, ignore_index, eps, z_loss, cap, chunk, 0.0,
                   gvec_none(x), loss_out, None, None, None, False)


def linear_ce_class_vg(x, wf, t, b, w, c, d, ignore_index, eps, z_loss, cap, chunk, gscale,
                       gvec, loss_out, gx, gwf, gb):
    t, w = _readonly(t), _readonly(w)
    return _linear(x, wf, t, None, b, w, c, d, ignore_index, eps, z_loss, cap, chunk, gscale,
                   gvec, loss_out, gx, gwf, gb, True)


def linear_ce_prob_fwd(x, wf, p, b, w, c, d, eps, z_loss, cap, chunk, loss_out):
    p, w = _readonly(p), _readonly(w)
    return _linear(x, wf, None, p, b, w, c, d, 0, eps, z_loss, cap, chunk, 0.0,
                   gvec_none(x), loss_out, None, None, None, False)


def linear_ce_prob_vg(x, wf, p, b, w, c, d, eps, z_loss, cap, chunk, gscale, gvec, loss_out,
                      gx, gwf, gb):
    p, w = _readonly(p), _readonly(w)
    return _linear(x, wf, None, p, b, w, c, d, 0, eps, z_loss, cap, chunk, gscale, gvec,
                   loss_out, gx, gwf, gb, True)
