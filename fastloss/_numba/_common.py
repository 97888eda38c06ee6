"""The numerics every Numba kernel family shares: fastmath flags, reduction blocking, the
gradient coefficient, and the generated serial/parallel drivers (which of the two runs,
and on how many threads, is ``_threading``'s).

Determinism: every kernel splits its items into blocks of a fixed size (a constant, not
a function of the thread count), sums each block serially in float64 into ``partial[b]``
and then adds the partials serially in block order. The result is therefore bitwise the
same for 1, 2 or any number of threads, and for the serial driver used on small inputs.

Every kernel is compiled with ``error_model="numpy"``: a float division by zero gives
inf or NaN as in NumPy and torch, instead of raising (a kernel must never raise).
"""
import numba
import numpy as np
from numba import njit

# 'reassoc' lets LLVM vectorize a sum (it reorders the additions inside one block, the
# same way on every run); 'contract' allows FMA. Never 'nnan'/'ninf': NaN and inf must
# propagate as in torch.
FM = {"contract", "reassoc"}

@njit(cache=True, error_model="numpy")
def coef_at(gscale, gvec, i):
    """c_i = gscale * gvec[i], or gscale when gvec is empty (see fastloss._engine)."""
    if gvec.shape[0] == 0:
        return gscale
    return gscale * np.float64(gvec[i])


@njit(cache=True, error_model="numpy")
def sum_partials(partial):
    total = 0.0
    for b in range(partial.shape[0]):
        total += partial[b]
    return total


# ------------------------------------------------------------------ generated drivers
# Every family sums fixed blocks the same way: a parallel driver over prange and a serial
# one over range, identical but for the loop. They are generated here, once, as source
# text executed in the family module's own namespace, because Numba caches a function on
# disk only when it is defined at module level with a name of its own: closures made by a
# factory share one cache key and recompile in every process. Executed with the module's
# file name, the generated functions are that module's own (their cache is stamped with
# its source file, as for the functions written out in it).
_DRIVERS = """
@njit(cache={cache}, error_model="numpy", parallel=True)
def {name}_par({args}):
    partial = np.empty(({count} + {per_block} - 1) // {per_block})
    # prange(0, n), not prange(n): Numba types the index of prange(n) as uint64 in the
    # parallel body but int64 when typing the function, and compiled the block twice
    for b in prange(0, partial.shape[0]):
        partial[b] = {block}(b, {args})
    return sum_partials(partial)


@njit(cache={cache}, error_model="numpy")
def {name}_ser({args}):
    partial = np.empty(({count} + {per_block} - 1) // {per_block})
    for b in range(partial.shape[0]):
        partial[b] = {block}(b, {args})
    return sum_partials(partial)
"""


def define(namespace, source):
    """Execute generated `source` in a module's `namespace` (its ``globals()``) under that
    module's file name, so that Numba caches what it defines as the module's own."""
    namespace.setdefault("njit", njit)
    namespace.setdefault("np", np)
    namespace.setdefault("prange", numba.prange)
    namespace.setdefault("sum_partials", sum_partials)
    exec(compile(source, namespace["__file__"], "exec"), namespace)


def block_drivers(namespace, name, block, args, count, per_block, cache=True):
    """Define ``<name>_par`` and ``<name>_ser`` in `namespace`: the parallel and serial
    drivers summing ``block(b, *args)`` over the blocks ``b`` of ``count`` units (an
    expression in `args`, e.g. ``"x.shape[0]"``), ``per_block`` (a number, or a constant
    of the module) units each. Returns the two. (``cache=False``: a test's kernel, kept
    out of Numba's on-disk cache.)"""
    define(namespace, _DRIVERS.format(name=name, block=block, args=", ".join(args),
                                      count=count, per_block=per_block, cache=cache))
    return namespace[name + "_par"], namespace[name + "_ser"]


def readonly(a):
    """`a`, or a read-only view of it. Numba types a read-only array apart from a writable
    one and compiles every kernel again for it (~5-25 s cold): a read-only memmap
    (np.load(..., mmap_mode="r")) must not pay that. Kernels take their inputs read-only
    always, so one compiled version serves writable arrays and memmaps alike."""
    if a.flags.writeable:
        a = a.view()
        a.flags.writeable = False
    return a
