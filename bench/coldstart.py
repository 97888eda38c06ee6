"""First-call latency in a fresh process: `NUMBA_CACHE_DIR=<empty dir> python
bench/coldstart.py numba` twice (cold, then warm cache); `... c` for the C backend.

`python bench/coldstart.py numba --family` times the first call of one loss per kernel
family instead, each in its own fresh process with its own empty cache (so that no family
gets helpers another one compiled), `--repeat` times, and prints the medians: the
first-call compile of a family must not grow with the number of losses in it.
"""
import os
import statistics
import subprocess
import sys
import tempfile
import time

# One loss per family (fastloss._kernels.FAMILIES), called on a small input.
FAMILY_CALLS = {
    "elementwise": ("binary_cross_entropy_with_logits",
                    "y = np.random.randn(1 << 16).astype(np.float32); "
                    "args = (y, (y > 0).astype(np.float32))"),
    "classification": ("cross_entropy",
              "args = (np.random.randn(8, 10).astype(np.float32), np.random.randint(0, 10, 8))"),
    "rows": ("multi_margin_loss",
             "args = (np.random.randn(8, 10).astype(np.float32), np.random.randint(0, 10, 8))"),
    "sequence": ("ctc_loss",
                 "lp = np.log(np.full((6, 2, 4), 0.25, np.float32)); "
                 "args = (lp, np.array([[1, 2], [3, 1]]), np.array([6, 6]), np.array([2, 2]))"),
}


def _one(backend, loss, setup):
    t0 = time.perf_counter()
    import numpy as np  # noqa: F401

    import fastloss
    t1 = time.perf_counter()
    scope = {"np": np}
    exec(setup, scope)
    getattr(fastloss, loss)(*scope["args"], backend=backend)
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1


def _families(backend, repeat):
    print(f"{backend}: first call per family, each in a fresh process with an empty cache "
          f"(median of {repeat})")
    for family, (loss, _) in FAMILY_CALLS.items():
        times = []
        for _ in range(repeat):
            with tempfile.TemporaryDirectory() as cache:
                env = dict(os.environ, NUMBA_CACHE_DIR=cache, FASTLOSS_CACHE_DIR=cache)
                out = subprocess.run([sys.executable, __file__, backend, "--one", family],
                                     env=env, check=True, capture_output=True, text=True)
                times.append(float(out.stdout.split()[-1]))
        print(f"  {family:<14} {loss:<34} {1e3 * statistics.median(times):7.0f} ms  "
              f"({', '.join(f'{1e3 * t:.0f}' for t in times)})")


def main():
    argv = sys.argv[1:]
    backend = argv[0] if argv and not argv[0].startswith("-") else "auto"
    if "--one" in argv:
        loss, setup = FAMILY_CALLS[argv[argv.index("--one") + 1]]
        _, first = _one(backend, loss, setup)
        print(f"{first:.6f}")
        return
    if "--family" in argv:
        repeat = int(argv[argv.index("--repeat") + 1]) if "--repeat" in argv else 3
        _families(backend, repeat)
        return
    t0 = time.perf_counter()
    import numpy as np

    import fastloss
    t1 = time.perf_counter()
    x = np.random.randn(8, 10).astype(np.float32)
    t = np.random.randint(0, 10, 8)
    fastloss.cross_entropy(x, t, backend=backend)
    t2 = time.perf_counter()
    y = np.random.randn(1 << 16).astype(np.float32)
    fastloss.binary_cross_entropy_with_logits(y, (y > 0).astype(np.float32), backend=backend)
    t3 = time.perf_counter()
    print(f"{backend}: import {1e3 * (t1 - t0):.0f} ms, first cross_entropy "
          f"{1e3 * (t2 - t1):.0f} ms, first bce_with_logits {1e3 * (t3 - t2):.0f} ms")


if __name__ == "__main__":
    main()
