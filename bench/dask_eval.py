"""Evaluation at scale (issue 11 items 3 and 4): Dask on dask.distributed, and a
memory-mapped .npy, against single-process in-memory fastloss.

    python bench/dask_eval.py --mode dask --gb 2        # item 3's target
    python bench/dask_eval.py --mode memmap --gb 8      # item 4's target
    python bench/dask_eval.py --gb 0.2                  # both, quickly (a check it runs)

Dask (--mode dask): float32 logits of --gb GB (N x --classes) and int64 targets are
written once to .npy files in --dir. Three timings, each the median of --repeat runs:

- ``single``: this process, fastloss with --threads threads, on the arrays loaded in
  memory: one ``cross_entropy`` call (forward, "mean").
- ``dask_persisted``: a LocalCluster of --workers worker processes x 1 thread, the
  chunks (~--chunk-mb MB of logits each) already in the workers' memory
  (``client.persist``): the loss's graph alone. The target: at most 1.3x ``single``.
- ``dask_noop``: the same cluster and persisted chunks, a graph of the same shape (a
  task per chunk, a sum, a last task) whose tasks do nothing: what dask.distributed's
  scheduling alone costs here, the floor under ``dask_persisted``.
- ``dask_streamed``: the same cluster restarted, each chunk read from the .npy file by
  its task (page cache) and scored: the whole pipeline. Each worker's peak resident
  memory (VmRSS sampled every 5 ms in each worker during the run) is reported in MB
  and in chunks above the worker's size before the run.

Memmap (--mode memmap): the logits file memory-mapped (``np.load(mmap_mode="r")``), read
once to warm the page cache, then streamed through ``fastloss.RunningLoss`` in chunks of
--chunk-mb MB, in a child process whose anonymous memory (RssAnon of /proc/self/status)
is sampled every 5 ms; against the in-memory speed measured on the first
--inmem-gb GB of the same data loaded into memory (GB/s of logits). The targets: peak
RssAnon under 256 MB, speed >= 80% of in-memory.

Writes --json and --markdown (default bench/results/dask_eval_<mode>.json/.md). The
machine must be otherwise idle for the figures to mean anything.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def _write_data(d, gb, classes, seed=0):
    """(logits path, targets path, N): float32 (N, classes) of about `gb` GB, written in
    blocks (never all in memory); reused when already there with the same shape."""
    n = max(1, int(gb * 1e9) // (4 * classes))
    xp, tp = os.path.join(d, f"logits_{n}x{classes}.npy"), os.path.join(d, f"target_{n}.npy")
    if os.path.exists(xp) and os.path.exists(tp):
        return xp, tp, n
    rng = np.random.default_rng(seed)
    x = np.lib.format.open_memmap(xp + ".tmp", mode="w+", dtype=np.float32,
                                  shape=(n, classes))
    step = max(1, (64 << 20) // (4 * classes))
    for i in range(0, n, step):
        x[i:i + step] = rng.standard_normal((min(step, n - i), classes), np.float32)
    x.flush()
    del x
    os.replace(xp + ".tmp", xp)
    np.save(tp, rng.integers(0, classes, n))
    return xp, tp, n


def _median_time(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def _load_rows(path, start, stop):
    """A chunk read from the .npy file (page cache) into the worker's memory."""
    m = np.load(path, mmap_mode="r")
    return np.array(m[start:stop])


def _noop_record(x, t):
    return np.zeros((1, 2))


def _noop_total(*records):
    return float(np.sum(records))


def _rss_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _sampler_state():
    # one dict per worker process: this script's functions reach the workers by value
    # (cloudpickle), each call with its own copy of the script's globals, so the state
    # lives on a module the worker imported once
    import threading
    if not hasattr(threading, "_fastloss_bench_sampler"):
        threading._fastloss_bench_sampler = {}
    return threading._fastloss_bench_sampler


def _start_sampler():
    """In a worker: sample its resident memory every 5 ms until _stop_sampler."""
    import threading
    stop = threading.Event()
    peak = [_rss_kb()]

    def run():
        while not stop.is_set():
            peak[0] = max(peak[0], _rss_kb())
            time.sleep(0.005)

    th = threading.Thread(target=run, daemon=True)
    th.start()
    _sampler_state().update(stop=stop, peak=peak, thread=th, idle=peak[0])
    return peak[0] / 1024.0


def _stop_sampler():
    state = _sampler_state()
    state["stop"].set()
    state["thread"].join()
    return state["idle"] / 1024.0, max(state["peak"][0], _rss_kb()) / 1024.0


def _graph_build_times(classes, chunk_counts=(20, 200, 2000)):
    """Seconds (client thread CPU time, nothing computed) to build the graphs of a
    cross_entropy and of its value_and_grad over arrays of 20, 200 and 2000 chunks."""
    import dask.array as da

    import fastloss
    vg = fastloss.value_and_grad(fastloss.cross_entropy)
    out = {}
    for n in chunk_counts:
        x = da.zeros((n * 64, classes), chunks=(64, classes), dtype=np.float32)
        t = da.zeros(n * 64, chunks=64, dtype=np.int64)
        for label, fn in (("forward", fastloss.cross_entropy), ("value_and_grad", vg)):
            t0 = time.thread_time()
            fn(x, t)
            out[f"{label}_{n}"] = time.thread_time() - t0
    return out


def run_dask(a):
    import dask
    import dask.array as da
    import distributed

    import fastloss
    xp, tp, n = _write_data(a.dir, a.gb, a.classes)
    rows = max(1, int(a.chunk_mb * 1e6) // (4 * a.classes))
    chunks = tuple(min(rows, n - i) for i in range(0, n, rows))
    out = {"n": n, "classes": a.classes, "gb": n * a.classes * 4 / 1e9,
           "chunk_rows": rows, "chunk_mb": rows * a.classes * 4 / 1e6,
           "n_chunks": len(chunks), "workers": a.workers, "threads_single": a.threads}

    # single process, in memory, --threads threads
    fastloss.set_num_threads(a.threads)
    x, t = np.load(xp), np.load(tp)
    fastloss.cross_entropy(x[:1000], t[:1000])              # compile / load the kernels
    expected = float(fastloss.cross_entropy(x, t))
    out["single_s"], out["single_all_s"] = _median_time(
        lambda: fastloss.cross_entropy(x, t), a.repeat)
    del x

    cluster = distributed.LocalCluster(n_workers=a.workers, threads_per_worker=1,
                                       processes=True, dashboard_address=None,
                                       silence_logs=40)
    client = distributed.Client(cluster)
    try:
        def lazy_input():
            parts, start = [], 0
            for c in chunks:
                parts.append(da.from_delayed(dask.delayed(_load_rows)(xp, start, start + c),
                                             (c, a.classes), np.float32))
                start += c
            return da.concatenate(parts, axis=0)

        tt = da.from_array(t, chunks=(chunks,))
        # warm the workers (imports, kernels from the cache)
        small = da.from_array(np.zeros((64, a.classes), np.float32), chunks=32)
        fastloss.cross_entropy(small, np.zeros(64, np.int64)).compute()

        # persisted: the chunks in the workers' memory; the loss's graph alone
        xd = client.persist(lazy_input())
        td = client.persist(tt)
        distributed.wait([xd, td])
        got = float(fastloss.cross_entropy(xd, td).compute())
        out["dask_persisted_s"], out["dask_persisted_all_s"] = _median_time(
            lambda: fastloss.cross_entropy(xd, td).compute(), a.repeat)
        out["max_rel_diff"] = abs(got - expected) / abs(expected)
        # the scheduling floor: the same chunks, a graph of the same shape (a task per
        # chunk pair, a tree sum, a last task) whose tasks compute nothing
        pairs = list(zip(xd.to_delayed().ravel(), td.to_delayed().ravel()))
        out["dask_noop_s"], _ = _median_time(
            lambda: dask.delayed(_noop_total)(*[dask.delayed(_noop_record)(x, y)
                                                for x, y in pairs]).compute(), a.repeat)
        del xd, td

        # streamed: every chunk read by its task; peak memory of each worker
        client.restart()
        fastloss.cross_entropy(small, np.zeros(64, np.int64)).compute()
        client.run(_start_sampler)
        t0 = time.perf_counter()
        got = float(fastloss.cross_entropy(lazy_input(), tt).compute())
        out["dask_streamed_s"] = time.perf_counter() - t0
        mem = client.run(_stop_sampler)
        idle = {w: v[0] for w, v in mem.items()}
        peak = {w: v[1] for w, v in mem.items()}
        out["worker_idle_rss_mb"] = sorted(idle.values())
        out["worker_peak_rss_mb"] = sorted(peak.values())
        out["worker_peak_chunks_above_idle"] = sorted(
            (peak[w] - idle[w]) / out["chunk_mb"] for w in peak)
        out["max_rel_diff"] = max(out["max_rel_diff"], abs(got - expected) / abs(expected))
    finally:
        client.close()
        cluster.close()
    out["graph_build_s"] = _graph_build_times(classes=a.classes)
    out["ratio_persisted"] = out["dask_persisted_s"] / out["single_s"]
    out["ratio_noop"] = out["dask_noop_s"] / out["single_s"]
    out["ratio_streamed"] = out["dask_streamed_s"] / out["single_s"]
    out["target_met"] = bool(out["ratio_persisted"] <= 1.3)
    return out


_MEMMAP_CHILD = r"""
import json, sys, threading, time
import numpy as np
import fastloss

xp, tp, chunk_rows, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
fastloss.set_num_threads(threads)

def anon_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    return 0

peak = [0]
stop = threading.Event()
def sample():
    while not stop.is_set():
        peak[0] = max(peak[0], anon_kb())
        time.sleep(0.005)

x = np.load(xp, mmap_mode="r")
t = np.load(tp, mmap_mode="r")
fastloss.cross_entropy(x[:1000], t[:1000])     # kernels compiled or loaded first
for i in range(0, x.shape[0], chunk_rows):     # warm the page cache
    np.asarray(x[i:i + chunk_rows]).sum()
start_kb = anon_kb()
th = threading.Thread(target=sample, daemon=True)
th.start()
t0 = time.perf_counter()
acc = fastloss.RunningLoss(fastloss.cross_entropy)
for i in range(0, x.shape[0], chunk_rows):
    acc.update(x[i:i + chunk_rows], t[i:i + chunk_rows])
seconds = time.perf_counter() - t0
stop.set(); th.join()
print(json.dumps({"seconds": seconds, "peak_rss_anon_mb": peak[0] / 1024,
                  "start_rss_anon_mb": start_kb / 1024, "mean": float(acc.compute())}))
"""

_INMEM_CHILD = r"""
import json, statistics, sys, time
import numpy as np
import fastloss

xp, tp, rows, threads, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
fastloss.set_num_threads(threads)
x = np.array(np.load(xp, mmap_mode="r")[:rows])
t = np.array(np.load(tp, mmap_mode="r")[:rows])
fastloss.cross_entropy(x[:1000], t[:1000])
times = []
for _ in range(repeat):
    t0 = time.perf_counter(); fastloss.cross_entropy(x, t); times.append(time.perf_counter() - t0)
print(json.dumps({"seconds": statistics.median(times), "rows": rows}))
"""


def run_memmap(a):
    xp, tp, n = _write_data(a.dir, a.gb, a.classes)
    rows = max(1, int(a.chunk_mb * 1e6) // (4 * a.classes))
    inmem_rows = min(n, max(1, int(a.inmem_gb * 1e9) // (4 * a.classes)))
    env = dict(os.environ)

    def child(code, *args):
        r = subprocess.run([sys.executable, "-c", code, *map(str, args)], env=env,
                           capture_output=True, text=True, check=True)
        return json.loads(r.stdout.strip().splitlines()[-1])

    mm = [child(_MEMMAP_CHILD, xp, tp, rows, a.threads) for _ in range(a.repeat)]
    im = child(_INMEM_CHILD, xp, tp, inmem_rows, a.threads, a.repeat)
    bytes_ = n * a.classes * 4
    mm_s = statistics.median(r["seconds"] for r in mm)
    out = {"n": n, "classes": a.classes, "gb": bytes_ / 1e9, "chunk_rows": rows,
           "chunk_mb": rows * a.classes * 4 / 1e6, "threads": a.threads,
           "memmap_s": mm_s, "memmap_all_s": [r["seconds"] for r in mm],
           "memmap_gb_per_s": bytes_ / 1e9 / mm_s,
           "peak_rss_anon_mb": max(r["peak_rss_anon_mb"] for r in mm),
           "start_rss_anon_mb": max(r["start_rss_anon_mb"] for r in mm),
           "inmem_gb": inmem_rows * a.classes * 4 / 1e9, "inmem_s": im["seconds"],
           "inmem_gb_per_s": inmem_rows * a.classes * 4 / 1e9 / im["seconds"]}
    out["speed_ratio"] = out["memmap_gb_per_s"] / out["inmem_gb_per_s"]
    out["target_met"] = bool(out["peak_rss_anon_mb"] < 256 and out["speed_ratio"] >= 0.8)
    return out


def _machine():
    import fastloss
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f
                       if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "numpy": np.__version__,
            "fastloss": fastloss.__version__,
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "command": " ".join(["python", "bench/dask_eval.py", *sys.argv[1:]])}


def _markdown(mode, r, m):
    lines = [f"# Evaluation at scale: {mode}", ""]
    if mode == "dask":
        lines += [
            f"cross_entropy forward (\"mean\"), float32 logits {r['n']}x{r['classes']} "
            f"({r['gb']:.2f} GB) in {r['n_chunks']} chunks of {r['chunk_rows']} rows "
            f"({r['chunk_mb']:.0f} MB); median of the runs.", "",
            "| run | time | ratio to single |", "| --- | ---: | ---: |",
            f"| single process, in memory, {r['threads_single']} threads | "
            f"{r['single_s'] * 1e3:.1f} ms | 1.00x |",
            f"| LocalCluster {r['workers']} workers x 1 thread, chunks persisted | "
            f"{r['dask_persisted_s'] * 1e3:.1f} ms | {r['ratio_persisted']:.2f}x |",
            f"| the same cluster and chunks, a graph of the same shape computing nothing "
            f"(the scheduling floor) | {r['dask_noop_s'] * 1e3:.1f} ms | "
            f"{r['ratio_noop']:.2f}x |",
            f"| LocalCluster, chunks read from the file by the tasks | "
            f"{r['dask_streamed_s'] * 1e3:.1f} ms | {r['ratio_streamed']:.2f}x |", "",
            "Per-worker peak resident memory (streamed run, VmRSS): "
            + ", ".join(f"{v:.0f} MB" for v in r["worker_peak_rss_mb"])
            + " (before: " + ", ".join(f"{v:.0f} MB" for v in r["worker_idle_rss_mb"])
            + "; above idle: " + ", ".join(f"{v:.1f}" for v in
                                           r["worker_peak_chunks_above_idle"])
            + " chunks). Relative difference from the in-memory result: "
            f"{r['max_rel_diff']:.1e}. Target (persisted <= 1.3x): "
            + ("met" if r["target_met"] else "**not met**") + ".", "",
            "Building the graph (client thread CPU time, nothing computed): "
            + "; ".join(f"{n} chunks: forward {r['graph_build_s'][f'forward_{n}'] * 1e3:.1f}"
                        f" ms, value_and_grad "
                        f"{r['graph_build_s'][f'value_and_grad_{n}'] * 1e3:.1f} ms"
                        for n in (20, 200, 2000)) + "."]
    else:
        lines += [
            f"cross_entropy over a memory-mapped .npy of float32 logits {r['n']}x"
            f"{r['classes']} ({r['gb']:.2f} GB, page cache warm) through RunningLoss in "
            f"chunks of {r['chunk_rows']} rows ({r['chunk_mb']:.0f} MB), "
            f"{r['threads']} threads.", "",
            "| run | time | GB/s |", "| --- | ---: | ---: |",
            f"| memmap, streamed | {r['memmap_s']:.3f} s | {r['memmap_gb_per_s']:.2f} |",
            f"| in memory ({r['inmem_gb']:.2f} GB) | {r['inmem_s']:.3f} s | "
            f"{r['inmem_gb_per_s']:.2f} |", "",
            f"Speed: {r['speed_ratio'] * 100:.0f}% of in-memory. Peak anonymous memory "
            f"(RssAnon): {r['peak_rss_anon_mb']:.0f} MB (at the start: "
            f"{r['start_rss_anon_mb']:.0f} MB). Targets (< 256 MB, >= 80%): "
            + ("met" if r["target_met"] else "**not met**") + "."]
    lines += ["", f"- Machine: {m['cpu']} ({m['cores']} cores), {m['platform']}",
              f"- Python {m['python']}, numpy {m['numpy']}, fastloss {m['fastloss']}",
              f"- Date: {m['date']}", f"- Command: `{m['command']}`", ""]
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mode", choices=("dask", "memmap", "both"), default="both")
    p.add_argument("--gb", type=float, default=None,
                   help="logits size in GB (default 2 for dask, 8 for memmap)")
    p.add_argument("--classes", type=int, default=1000)
    p.add_argument("--chunk-mb", type=float, default=100.0)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--inmem-gb", type=float, default=1.0,
                   help="memmap mode: size of the in-memory reference run")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--dir", default=None, help="where the data files go (default: a "
                                               "temporary directory, removed after)")
    p.add_argument("--json", default=None)
    p.add_argument("--markdown", default=None)
    a = p.parse_args(argv)
    tmp = None
    if a.dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="fastloss-dask-eval-")
        a.dir = tmp.name
    os.makedirs(a.dir, exist_ok=True)
    machine = _machine()
    modes = ("dask", "memmap") if a.mode == "both" else (a.mode,)
    results = {}
    try:
        for mode in modes:
            gb = a.gb if a.gb is not None else (2.0 if mode == "dask" else 8.0)
            args = argparse.Namespace(**{**vars(a), "gb": gb})
            r = run_dask(args) if mode == "dask" else run_memmap(args)
            results[mode] = r
            md = _markdown(mode, r, machine)
            print(md)
            base = os.path.join(HERE, "results", f"dask_eval_{mode}")
            jpath = a.json if a.json and len(modes) == 1 else base + ".json"
            mpath = a.markdown if a.markdown and len(modes) == 1 else base + ".md"
            os.makedirs(os.path.dirname(os.path.abspath(jpath)), exist_ok=True)
            with open(jpath, "w") as f:
                json.dump({"machine": machine, "mode": mode, "results": r}, f, indent=2)
                f.write("\n")
            with open(mpath, "w") as f:
                f.write(md)
    finally:
        if tmp is not None:
            tmp.cleanup()
    return results


if __name__ == "__main__":
    main()
