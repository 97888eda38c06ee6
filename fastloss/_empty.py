"""The empty arrays that mean "absent" in the kernel contract (no weight, no gvec, no
per-item output; see fastloss._engine), one of each per dtype, shared by every module.

Numba compiles a kernel once per array type, and a read-only array is a type of its own:
the element-wise kernels take every input read-only (fastloss._numba.elementwise), so
their "absent" inputs are the read-only ones here; everything else takes the writable
ones. An empty array has nothing to write, so sharing one is safe."""
import numpy as np

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _read_only(a):
    a.flags.writeable = False
    return a


EMPTY = {dt: np.empty(0, dt) for dt in _FLOATS}                  # 1-D
EMPTY_2D = {dt: np.empty((0, 0), dt) for dt in _FLOATS}          # rows kernels' absent (N, C)
EMPTY_READ_ONLY = {dt: _read_only(np.empty(0, dt)) for dt in _FLOATS}
