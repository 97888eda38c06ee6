"""First-call latency in a fresh process: `NUMBA_CACHE_DIR=<empty dir> python
bench/coldstart.py numba` twice (cold, then warm cache); `... c` for the C backend.

`python bench/coldstart.py numba --family` times the first call of one loss per kernel
family instead, each in its own fresh process with its own empty cache (so that no family
gets helpers another one compiled), `--repeat` times, and prints the medians: the
first-call compile of a family must not grow with the number of losses in it.

`python bench/coldstart.py numba --all` times the first call of EVERY loss of the registry,
forward and first `fastloss.value_and_grad(...)` call, each in a fresh process with an
empty cache (set FASTLOSS_NO_C=1 so that the Numba path is what runs under "auto"), on the
benchmark's own data (`fastloss._bench.data`) at a small shape (`--size small`: serial
drivers only, e.g. 8x10) or a shape above the serial/parallel threshold (`--size large`,
the default: the parallel driver is what compiles). Each row also says how many Numba
functions compiled in that call and the ones that took longest (exclusive of the
functions they called, from Numba's "numba:compile" events); `--loss a b` limits the run,
`--warm` runs each case a second time on the cache the first run left (the warm first
call), `--json FILE` keeps the records.
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


# Shapes for --all, per data kind of fastloss._bench.data: "small" stays below the
# serial/parallel threshold (fastloss._numba._threading.PARALLEL_MIN, 32768 elements),
# "large" is above it, so that the first call compiles the parallel driver.
ALL_SIZES = {
    "small": {"class": (8, 10), "elementwise": (1024,), "rows": (8, 16),
              "sequence": (6, 2, 4, 2), "linear": (8, 16, 32)},
    "large": {"class": (4096, 16), "elementwise": (1 << 16,), "rows": (2048, 32),
              "sequence": (50, 8, 20, 10), "linear": (128, 32, 256)},
}


def _compile_events():
    """Start recording Numba's compile events; returns a function giving
    [(name, exclusive seconds), ...] of what compiled since, longest first."""
    from numba.core import event

    rec = event.RecordingListener()
    event.register("numba:compile", rec)

    def report():
        stack, excl = [], {}
        for ts, ev in rec.buffer:
            d = ev.data["dispatcher"]
            name = getattr(d, "__qualname__", None) or d.py_func.__qualname__
            if ev.is_start:
                stack.append([name, ts, 0.0])
            else:
                nm, t0, inner = stack.pop()
                dt = ts - t0
                excl[nm] = excl.get(nm, 0.0) + dt - inner
                if stack:
                    stack[-1][2] += dt
        return sorted(excl.items(), key=lambda kv: -kv[1])
    return report


def _one_loss(backend, loss, mode, size):
    """First call of `loss` in this process: (import s, first call s, compiled functions)."""
    t0 = time.perf_counter()
    import numpy as np

    import fastloss
    from fastloss._bench import data
    t1 = time.perf_counter()
    gen = data.generator_for(loss)
    args, kwargs = gen.build(ALL_SIZES[size][gen.kind], np.float32)
    report = _compile_events()
    c2 = time.process_time()
    t2 = time.perf_counter()
    fn = getattr(fastloss, loss)
    if mode == "forward":
        fn(*args, backend=backend, **kwargs)
    else:
        wrt = gen.wrt if len(gen.wrt) > 1 else gen.wrt[0]
        fastloss.value_and_grad(fn, wrt)(*args, backend=backend, **kwargs)
    t3 = time.perf_counter()
    return t1 - t0, t3 - t2, time.process_time() - c2, report()


def _all(backend, argv):
    import json

    from fastloss._registry import LOSSES
    size = argv[argv.index("--size") + 1] if "--size" in argv else "large"
    losses = list(LOSSES)
    if "--loss" in argv:
        losses = [a for a in argv[argv.index("--loss") + 1:] if not a.startswith("--")]
    modes = ("forward", "grad")
    warm = "--warm" in argv
    print(f"{backend}: first call of every loss ({size} shapes), each in a fresh process "
          f"with an empty cache; FASTLOSS_NO_C={os.environ.get('FASTLOSS_NO_C', '')}")
    print(f"  {'loss':<34} {'mode':<8} {'import':>7} {'first':>8} {'cpu':>7} {'warm':>7} "
          f"{'#fn':>4}  slowest compiles (exclusive ms)")
    records, worst = [], 0.0
    for loss in losses:
        for mode in modes:
            with tempfile.TemporaryDirectory() as cache:
                env = dict(os.environ, NUMBA_CACHE_DIR=cache, FASTLOSS_CACHE_DIR=cache)
                cmd = [sys.executable, __file__, backend, "--one-loss", loss, mode, size]
                runs = 2 if warm else 1
                outs = []
                for _ in range(runs):
                    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
                    if out.returncode:
                        outs.append({"error": out.stderr.strip().splitlines()[-1:]})
                        break
                    outs.append(json.loads(out.stdout.strip().splitlines()[-1]))
            rec = {"loss": loss, "mode": mode, "size": size, **outs[0]}
            if len(outs) > 1 and "first_s" in outs[1]:
                rec["warm_s"] = outs[1]["first_s"]
            records.append(rec)
            if "error" in rec:
                print(f"  {loss:<34} {mode:<8} ERROR {rec['error']}")
                continue
            worst = max(worst, rec["first_s"])
            top = ", ".join(f"{n} {1e3 * t:.0f}" for n, t in rec["compiled"][:4])
            warm_ms = f"{1e3 * rec['warm_s']:7.0f}" if "warm_s" in rec else f"{'':>7}"
            print(f"  {loss:<34} {mode:<8} {1e3 * rec['import_s']:7.0f} "
                  f"{1e3 * rec['first_s']:8.0f} {1e3 * rec['first_cpu_s']:7.0f} {warm_ms} "
                  f"{len(rec['compiled']):4d}  {top}",
                  flush=True)
    print(f"  slowest first call: {1e3 * worst:.0f} ms (wall; 'cpu' is the process's CPU "
          "time over the same call, less inflated on a loaded machine)")
    if "--json" in argv:
        with open(argv[argv.index("--json") + 1], "w") as f:
            json.dump(records, f, indent=1)


def main():
    argv = sys.argv[1:]
    backend = argv[0] if argv and not argv[0].startswith("-") else "auto"
    if "--one-loss" in argv:
        import json
        i = argv.index("--one-loss")
        imp, first, cpu, compiled = _one_loss(backend, *argv[i + 1:i + 4])
        print(json.dumps({"import_s": imp, "first_s": first, "first_cpu_s": cpu,
                          "compiled": compiled}))
        return
    if "--all" in argv:
        _all(backend, argv)
        return
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
