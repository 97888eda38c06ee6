"""The memory-bandwidth floor of a case: the time to read its inputs once.

A loss has to read every input at least once, so no implementation can beat this. It is
measured with the simplest kernel that reads the bytes at full speed: a parallel blocked
sum per array, vectorized (``fastmath`` here only lets LLVM reorder a sum nobody uses).
For value-and-grad the floor also writes one gradient-sized array (a parallel copy of the
input into a reused buffer). Without Numba, NumPy's (single-threaded) sum and copy stand in.
"""
import numpy as np

try:
    import numba
except ImportError:     # the floor then comes from NumPy, and says so
    numba = None

BLOCK = 1 << 16
METHOD = "numpy (1 thread)" if numba is None else "numba parallel sum/copy"

if numba is not None:
    from .._numba_cache import install as _install_cache_locator
    _install_cache_locator()     # cached out of the package, like the kernels

    @numba.njit(parallel=True, fastmath=True, cache=True, nogil=True)
    def _bench_floor_read(a):
        n = a.size
        nb = (n + BLOCK - 1) // BLOCK
        parts = np.zeros(nb, np.float64)
        for b in numba.prange(0, nb):
            lo = b * BLOCK
            hi = min(lo + BLOCK, n)
            # the block as a slice indexed from 0: indexing a[i] for i in range(lo, hi)
            # makes Numba add a negative-index fix-up that keeps the loop scalar
            blk = a[lo:hi]
            s = blk[0] - blk[0]
            for i in range(blk.shape[0]):
                s += blk[i]
            parts[b] = s
        return parts.sum()

    @numba.njit(parallel=True, cache=True, nogil=True)
    def _bench_floor_copy(src, dst):
        n = src.size
        nb = (n + BLOCK - 1) // BLOCK
        for b in numba.prange(0, nb):
            lo = b * BLOCK
            hi = min(lo + BLOCK, n)
            s, d = src[lo:hi], dst[lo:hi]
            for i in range(s.shape[0]):
                d[i] = s[i]


def setup(threads):
    if numba is not None:
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        return f"numba {numba.__version__}"
    return f"numpy {np.__version__}"


def _flat(a):
    return a.reshape(-1)


def read(arrays):
    total = 0.0
    for a in arrays:
        if a.size:
            total += float(_bench_floor_read(_flat(a)) if numba is not None
                           else np.add.reduce(_flat(a)))
    return total


def read_write(src, dst, others):
    if src.size:
        if numba is not None:
            _bench_floor_copy(_flat(src), _flat(dst))
        else:
            np.copyto(dst, src)
    return read(others)
