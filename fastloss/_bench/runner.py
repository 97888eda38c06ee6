"""Runs a benchmark plan: one worker process per (threads, dtype, implementation), one
after another (never two at once: they would share the cores), with a progress bar."""
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field

from . import data, impls


@dataclass
class Plan:
    cases: list             # [{"loss", "size", "shape"}]; "error" for a loss without data
    dtypes: list
    threads: list
    modes: list
    impl_keys: list         # fastloss backends, peers, plug-ins, "floor", in display order
    repeat: int = 7
    warmup: int = 2
    budget_s: float = 20.0  # per (case, mode): fewer repeats (>= 3) for very slow calls
    check_limit: int = 1 << 22
    timeout_s: float = 900.0  # a worker silent this long is killed
    plugins: list = field(default_factory=list)
    debug: bool = False


class Progress:
    """A plain progress bar on stderr: redrawn in place on a terminal, one line per
    worker otherwise (logs stay readable)."""

    def __init__(self, total, stream=None, enabled=True):
        self.total = max(total, 1)
        self.done = 0
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start = time.perf_counter()
        self.label = ""

    def worker(self, label, n):
        self.label = label
        if self.enabled and not self.tty:
            print(f"[{self.done:4d}/{self.total}] {label} ({n} runs)", file=self.stream,
                  flush=True)
        self._draw()

    def advance(self, n=1, what=""):
        self.done += n
        if what:
            self.label = what
        self._draw()

    def _draw(self):
        if not self.tty:
            return
        width = 24
        filled = int(width * self.done / self.total)
        elapsed = time.perf_counter() - self.start
        line = (f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} "
                f"{elapsed:5.0f}s  {self.label}")
        self.stream.write(line[:119].ljust(119))
        self.stream.flush()

    def close(self):
        if self.enabled:
            elapsed = time.perf_counter() - self.start
            end = "\r" + " " * 119 + "\r" if self.tty else ""
            self.stream.write(f"{end}benchmark: {self.done} runs in {elapsed:.1f}s\n")
            self.stream.flush()


def worker_cases(plan, impl):
    """The cases `impl` takes part in, each with the modes it has."""
    out = []
    for case in plan.cases:
        if "error" in case:
            continue
        modes = [m for m in plan.modes if impl.applies(case["loss"], m)]
        if modes:
            out.append({**case, "modes": modes})
    return out


def count_runs(plan):
    n = 0
    for key in plan.impl_keys:
        impl = impls.get(key)
        n += sum(len(c["modes"]) for c in worker_cases(plan, impl))
    return n * len(plan.dtypes) * len(plan.threads)


def _row(case, mode, impl, dtype, threads, **extra):
    return {"loss": case["loss"], "size": case["size"], "shape": case["shape"],
            "dtype": dtype, "threads": threads, "mode": mode, "impl": impl.key,
            "label": impl.label, "group": impl.group, **extra}


def run_plan(plan, progress=None):
    """Every result row of the plan, in the order they ran."""
    if progress is None:
        progress = Progress(count_runs(plan), enabled=False)
    results = []
    for case in plan.cases:
        if "error" in case:     # a loss the benchmark has no data for: a visible error row
            for dtype in plan.dtypes:
                for threads in plan.threads:
                    for mode in plan.modes:
                        results.append({"loss": case["loss"], "size": case["size"],
                                        "shape": case["shape"], "dtype": dtype,
                                        "threads": threads, "mode": mode, "impl": "-",
                                        "label": "-", "group": "fastloss",
                                        "status": "error", "note": case["error"]})
    for threads in plan.threads:
        for dtype in plan.dtypes:
            for key in plan.impl_keys:
                impl = impls.get(key)
                cases = worker_cases(plan, impl)
                n = sum(len(c["modes"]) for c in cases)
                if not n:
                    continue
                reason = impl.installed()
                if reason is not None:
                    for case in cases:
                        for mode in case["modes"]:
                            results.append(_row(case, mode, impl, dtype, threads,
                                                status="skipped", note=reason))
                    progress.advance(n, f"{impl.label}: skipped ({reason})")
                    continue
                progress.worker(f"{impl.label}, {dtype}, {threads} thread"
                                f"{'s' if threads > 1 else ''}", n)
                job = {"impl": key, "threads": threads, "dtype": dtype, "cases": cases,
                       "repeat": plan.repeat, "warmup": plan.warmup,
                       "budget_s": plan.budget_s, "check_limit": plan.check_limit,
                       "plugins": [p if not p.endswith(".py") else os.path.abspath(p)
                                   for p in plan.plugins], "debug": plan.debug}
                t0, cpu0 = time.perf_counter(), _children_cpu_s()
                got = run_worker(job, plan.timeout_s, progress)
                # the whole worker process, start-up included: wall and CPU seconds (on a
                # busy machine the wall time is inflated, the CPU time much less)
                worker_s = round(time.perf_counter() - t0, 3)
                worker_cpu_s = round(_children_cpu_s() - cpu0, 3)
                for r in got:
                    r.update(worker_s=worker_s, worker_cpu_s=worker_cpu_s)
                seen = {(r["loss"], r["size"], r["mode"]) for r in got}
                results.extend(got)
                for case in cases:           # what a dead worker did not report
                    for mode in case["modes"]:
                        if (case["loss"], case["size"], mode) not in seen:
                            results.append(_row(case, mode, impl, dtype, threads,
                                                status="error", note=got_error(got)))
    progress.close()
    return results


def _children_cpu_s():
    """User + system CPU seconds of the waited-for child processes so far."""
    try:
        import resource
    except ImportError:      # not on Windows
        return 0.0
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def got_error(got):
    return getattr(got, "error", None) or "the worker reported nothing for this case"


class Results(list):
    error = None


# The directory holding this very fastloss package, installed or not. Workers run there
# and import from there: `python -m` puts the working directory first on sys.path, so a
# worker started in a source checkout would otherwise import the checkout's fastloss
# (without the compiled C module of an installed copy).
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _worker_env(threads):
    env = impls.worker_env(threads)
    env["PYTHONPATH"] = os.pathsep.join([_ROOT, *filter(None, [env.get("PYTHONPATH")])])
    return env


def run_worker(job, timeout_s, progress):
    """Run one worker; return its result rows (a Results list whose .error says why it
    stopped early, if it did)."""
    got = Results()
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen([sys.executable, "-m", "fastloss._bench.worker"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=None if job.get("debug") else err,
                                text=True, env=_worker_env(job["threads"]), cwd=_ROOT)
        lines = queue.Queue()

        def read():
            for line in proc.stdout:
                lines.put(line)
            lines.put(None)
        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        proc.stdin.write(json.dumps(job))
        proc.stdin.close()
        while True:
            try:
                line = lines.get(timeout=timeout_s)
            except queue.Empty:
                proc.kill()
                got.error = f"timed out: no result for {timeout_s:.0f}s"
                break
            if line is None:
                break
            if line.startswith("RESULT "):
                res = json.loads(line[len("RESULT "):])
                got.append(res)
                progress.advance(1, f"{res['label']}: {res['loss']} {res['size']} "
                                    f"{res['mode']}")
        code = proc.wait()
        reader.join(timeout=5)
        if code != 0 and got.error is None:
            err.seek(0)
            tail = [ln.strip() for ln in err.read().splitlines() if ln.strip()]
            got.error = f"worker exited with code {code}" + (f": {tail[-1]}" if tail else "")
    return got


def make_cases(losses, sizes, quick):
    """[{"loss", "size", "shape"}] for each loss and each size that fits it (default
    sizes per loss when `sizes` is None), plus the (loss, size) pairs left out because
    the size does not fit."""
    cases, unfit = [], []
    for loss in losses:
        gen = data.generator(loss)
        if gen is None:
            cases.append({"loss": loss, "size": "-", "shape": [],
                          "error": f"no data generator for {loss} in fastloss/_bench/data.py"})
            continue
        for shape in (sizes if sizes is not None else gen.default_sizes(quick)):
            try:
                gen.check_shape(shape)
            except data.SizeError:
                unfit.append((loss, data.format_size(shape)))
                continue
            cases.append({"loss": loss, "size": data.format_size(shape), "shape": list(shape)})
    return cases, unfit
