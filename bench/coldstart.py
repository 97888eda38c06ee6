"""First-call latency in a fresh process: `NUMBA_CACHE_DIR=<empty dir> python
bench/coldstart.py numba` twice (cold, then warm cache); `... c` for the C backend."""
import sys
import time

t0 = time.perf_counter()
import numpy as np  # noqa: E402

import fastloss  # noqa: E402

t1 = time.perf_counter()
backend = sys.argv[1] if len(sys.argv) > 1 else "auto"
x = np.random.randn(8, 10).astype(np.float32)
t = np.random.randint(0, 10, 8)
fastloss.cross_entropy(x, t, backend=backend)
t2 = time.perf_counter()
y = np.random.randn(1 << 16).astype(np.float32)
fastloss.binary_cross_entropy_with_logits(y, (y > 0).astype(np.float32), backend=backend)
t3 = time.perf_counter()
print(f"{backend}: import {1e3 * (t1 - t0):.0f} ms, first cross_entropy {1e3 * (t2 - t1):.0f} ms, "
      f"first bce_with_logits {1e3 * (t3 - t2):.0f} ms")
