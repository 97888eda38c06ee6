"""Row reductions written directly as LLVM vector IR (numba intrinsics).

LLVM's loop vectorizer does well on the sum of exps, but a NaN-propagating max
(``llvm.maximum``) costs six instructions a vector (it also orders -0 < +0), and
``llvm.maxnum`` reductions get an early-exit NaN check per iteration: on a 1000-class
row the max took 40% of the time of the whole log-sum-exp. Here the loop is spelled out
with explicit 8-lane (float32) / 4-lane (float64) vectors, four independent
accumulators, and ``v > acc ? v : acc``, which is one ``vmaxps``.

``nanmax_row(xr)`` is the max of the row ignoring NaN (-inf for a row of only NaN and
-inf, and for an empty row). It does not propagate NaN on purpose: callers feed the max
to ``exp(x - max)``, which turns any NaN of the row into a NaN sum anyway. Rows that are
not C-contiguous (K-dim inputs) take a plain loop with the same result.
"""
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, overload

_F32 = ir.FloatType()
_I64 = ir.IntType(64)
ACC = 4   # independent accumulators: a vmaxps has latency 2-3, throughput 2 a cycle


def _vmax_select(builder, v, acc):
    return builder.select(builder.fcmp_ordered(">", v, acc), v, acc)


@intrinsic
def _nanmax_contig(typingctx, xr):
    if not (isinstance(xr, types.Array) and xr.ndim == 1 and xr.layout == "C"
            and xr.dtype in (types.float32, types.float64)):
        return None

    def codegen(context, builder, sig, args):
        aryty = sig.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        n = builder.extract_value(ary.shape, 0)
        data = ary.data
        if aryty.dtype == types.float32:
            ft, w, size = _F32, 8, 4
        else:
            ft, w, size = ir.DoubleType(), 4, 8
        vt = ir.VectorType(ft, w)
        vpt = vt.as_pointer()
        ninf = ir.Constant(ft, float("-inf"))
        vninf = ir.Constant(vt, [ninf] * w)
        accs = [cgutils.alloca_once_value(builder, vninf) for _ in range(ACC)]
        step = w * ACC

        def vload(j):
            return builder.load(builder.bitcast(builder.gep(data, [j]), vpt), align=size)

        # full groups of ACC vectors
        ngroups = builder.udiv(n, ir.Constant(_I64, step))
        with cgutils.for_range(builder, ngroups) as loop:
            base = builder.mul(loop.index, ir.Constant(_I64, step))
            for k in range(ACC):
                v = vload(builder.add(base, ir.Constant(_I64, k * w)))
                builder.store(_vmax_select(builder, v, builder.load(accs[k])), accs[k])
        done = builder.mul(ngroups, ir.Constant(_I64, step))
        # remaining full vectors
        nvec = builder.udiv(builder.sub(n, done), ir.Constant(_I64, w))
        with cgutils.for_range(builder, nvec) as loop:
            v = vload(builder.add(done, builder.mul(loop.index, ir.Constant(_I64, w))))
            builder.store(_vmax_select(builder, v, builder.load(accs[0])), accs[0])
        done = builder.add(done, builder.mul(nvec, ir.Constant(_I64, w)))
        # combine the accumulators, then the lanes
        acc = builder.load(accs[0])
        for k in range(1, ACC):
            acc = _vmax_select(builder, builder.load(accs[k]), acc)
        i32 = ir.IntType(32)
        m = builder.extract_element(acc, ir.Constant(i32, 0))
        for lane in range(1, w):
            m = _vmax_select(builder, builder.extract_element(acc, ir.Constant(i32, lane)), m)
        res = cgutils.alloca_once_value(builder, m)
        # scalar tail (fewer than w elements)
        with cgutils.for_range(builder, builder.sub(n, done)) as loop:
            xv = builder.load(builder.gep(data, [builder.add(done, loop.index)]))
            builder.store(_vmax_select(builder, xv, builder.load(res)), res)
        return builder.load(res)
    return xr.dtype(xr), codegen


def nanmax_row(xr):
    """Max of a 1-d float array ignoring NaN (-inf if none); Numba-compiled code only."""
    raise NotImplementedError("nanmax_row is only callable from Numba-compiled code")


@overload(nanmax_row)
def _nanmax_row(xr):
    if not (isinstance(xr, types.Array) and xr.ndim == 1):
        return None
    if xr.layout == "C":
        return lambda xr: _nanmax_contig(xr)
    ninf = np.float32(-np.inf) if xr.dtype == types.float32 else -np.inf

    def loop(xr):
        m = ninf
        for j in range(xr.shape[0]):
            v = xr[j]
            m = v if v > m else m
        return m
    return loop
