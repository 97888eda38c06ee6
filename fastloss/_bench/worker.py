"""The timing worker: one fresh process per implementation (and thread count and dtype).

Two OpenMP runtimes in one process (torch's bundled libgomp next to the system one)
distort timings, and a fresh process is what first-call latency means, so the parent
runs ``python -m fastloss._bench.worker`` once per implementation. The job arrives as
JSON on stdin; each finished (case, mode) is printed as one ``RESULT {json}`` line on
stdout, so the parent can show progress and keep what finished if the worker dies.

Per (case, mode) the worker: builds the data (seeded, so the same in every worker),
times the first call (compilation and lazy loading included; ``first_call`` says
"compile" when it compiled), warms up, times
``repeat`` samples of ``number`` calls each and keeps the median, measures the peak
memory the calls add, then checks the value (and gradient) against fastloss's NumPy
reference on the same data — on the whole case when it is small, else on its leading
rows (say ``check_on``).
"""
import gc
import json
import math
import os
import resource
import sys
import time
import traceback
import warnings

import numpy as np

from . import data, impls

MIN_SAMPLE_S = 0.002        # a timed sample repeats a fast call until it lasts this long
MAX_NUMBER = 10000
TOLERANCE = {"float32": 2e-5, "float64": 1e-9}


# --- memory --------------------------------------------------------------------------

def _status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


class PeakMemory:
    """Peak resident memory the timed calls add above what the process held before them.

    On Linux the high-water mark is reset through /proc/self/clear_refs, so the peak
    is the calls' own (temporaries and outputs), not the data generation's. Memory the
    allocator already held from earlier calls is not counted. Elsewhere, ru_maxrss
    growth stands in (0 when the inputs' creation peaked higher)."""

    def __init__(self):
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            self.method = "VmHWM after reset"
        except OSError:
            self.method = "ru_maxrss growth"

    def start(self):
        # no gc.collect() here: arrays are freed by reference counting, and a full
        # collection with numba or torch loaded costs ~0.1 s per case
        if self.method == "VmHWM after reset":
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            self.base = _status_kb("VmRSS")
        else:
            self.base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    def peak_mb(self):
        if self.method == "VmHWM after reset":
            peak = _status_kb("VmHWM")
        else:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return max(0, peak - self.base) / 1024.0


# --- correctness -------------------------------------------------------------------

def reference(loss, mode, args, kwargs):
    """fastloss's NumPy reference backend: (value, gradient or None)."""
    import fastloss
    from .._registry import LOSSES
    fn = LOSSES[loss].function
    if mode == "forward":
        return float(np.asarray(fn(*args, backend="numpy", **kwargs), np.float64)), None
    value, grad = fastloss.value_and_grad(fn)(*args, backend="numpy", **kwargs)
    return float(np.asarray(value, np.float64)), np.asarray(grad)


def rel_error(actual, expected):
    """max |actual - expected| / max(|expected|), NaN and inf counted as equal only when
    both sides have them in the same places."""
    a = np.asarray(actual, np.float64)
    e = np.asarray(expected, np.float64)
    if a.shape != e.shape:
        return math.inf
    same_nonfinite = (np.isnan(a) == np.isnan(e)) & (np.isinf(a) == np.isinf(e))
    if not np.all(same_nonfinite):
        return math.inf
    fin = np.isfinite(e)
    if np.any(np.isinf(e) & (a != e)):
        return math.inf
    if not fin.any():
        return 0.0
    scale = max(float(np.max(np.abs(e[fin]))), 1e-30)
    return float(np.max(np.abs(a[fin] - e[fin]))) / scale


def check(value, grad, ref_value, ref_grad, dtype):
    tol = TOLERANCE[np.dtype(dtype).name]
    err = rel_error(value, ref_value)
    what = "value"
    if ref_grad is not None:
        gerr = math.inf if grad is None else rel_error(grad, ref_grad)
        if gerr > err:
            err, what = gerr, "gradient"
    status = "ok" if err <= tol else "mismatch"
    # inf (NaN/inf in other places than the reference, or another shape) is stored as
    # None so that the JSON stays standard
    return {"status": status, "rel_err": err if math.isfinite(err) else None, "tol": tol,
            "worst": what}


# --- timing ------------------------------------------------------------------------

def time_calls(call, repeat, warmup, budget_s, per_call):
    """(median s per call, min s, per-sample times, calls per sample, repeats done, last
    result), after `warmup` untimed calls. `per_call` is a first estimate of a call's time
    (the first call's). Repeats shrink (to 3 at least) when `repeat` calls would exceed
    `budget_s`; the result says how many ran."""
    result = None
    for _ in range(warmup):
        t0 = time.perf_counter()
        result = call()
        per_call = time.perf_counter() - t0
    number = 1 if per_call >= MIN_SAMPLE_S else min(MAX_NUMBER,
                                                    math.ceil(MIN_SAMPLE_S / max(per_call, 1e-9)))
    if per_call * repeat > budget_s:
        repeat = max(3, int(budget_s / per_call))
    times = []
    gc_was = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeat):
            t0 = time.perf_counter()
            for _ in range(number):
                result = call()
            times.append((time.perf_counter() - t0) / number)
    finally:
        if gc_was:
            gc.enable()
    return float(np.median(times)), min(times), times, number, repeat, result


class FellThrough(Exception):
    """The forced backend has no kernel for this call (or its kernel raised
    `Unsupported`): the call would run on `to` instead, and is stopped before it does."""

    def __init__(self, kernel, to):
        super().__init__(kernel, to)
        self.kernel = kernel
        self.to = to


class DispatchSpy:
    """Records which backend ran each kernel during one call, to tell a forced backend
    that really ran from one that fell through to another.

    With `forced` (a backend's name), a kernel call that the forced backend cannot run is
    not passed on to the next backend: the spy raises FellThrough instead. Such a call is
    flagged and never timed, so running it would only cost time — for the C backend's
    gaps, compiling Numba kernels (seconds each on a cold cache) inside the C worker.
    `class_targets` (the range check of class indices) may run on any backend."""

    def __init__(self, forced=None):
        from .. import _dispatch
        self.module = _dispatch
        self.forced = forced
        self.ran = []

    def __enter__(self):
        self.original = original = self.module.call
        dispatch, forced = self.module, self.forced

        def spy(kernel_name, args, backend=None):
            if (forced is not None and kernel_name != "class_targets"
                    and dispatch.current_choice(backend) == forced):
                k = dispatch._BACKENDS[forced].kernel(kernel_name)
                if k is not None:
                    try:
                        result = k(*args)
                    except dispatch.Unsupported:
                        pass
                    else:
                        self.ran.append((kernel_name, forced))
                        return result, forced
                order = dispatch._order(kernel_name, forced)
                to = next((name for name in order[1:]
                           if dispatch._BACKENDS[name].kernel(kernel_name) is not None), None)
                raise FellThrough(kernel_name, to)
            result, name = original(kernel_name, args, backend)
            self.ran.append((kernel_name, name))
            return result, name
        self.module.call = spy
        return self

    def __exit__(self, *exc):
        self.module.call = self.original


class NumbaCompiles:
    """Counts the Numba kernels a call compiled and those it loaded from Numba's on-disk
    cache, over the dispatchers of the modules whose name starts with `prefix` (imported
    before or during the call): a first call that compiled is labelled compile time.

    A dispatcher gains one overload per new signature, compiled or loaded; its
    ``stats.cache_hits`` counts the loaded ones."""

    def __init__(self, prefix="fastloss._numba"):
        self.prefix = prefix
        self.before = self._state()
        self.compiled = self.loaded = 0

    def _state(self):
        state = {}
        try:
            from numba.core.dispatcher import Dispatcher
        except ImportError:     # no Numba: nothing can compile
            return state
        for name, module in list(sys.modules.items()):
            if module is None or not (name == self.prefix or name.startswith(self.prefix + ".")):
                continue
            for value in list(vars(module).values()):
                if isinstance(value, Dispatcher) and id(value) not in state:
                    state[id(value)] = (len(value.overloads),
                                        sum(value.stats.cache_hits.values()))
        return state

    def stop(self):
        """Count what happened since the start; returns self."""
        for key, (overloads, hits) in self._state().items():
            overloads0, hits0 = self.before.get(key, (0, 0))
            loaded = hits - hits0
            self.loaded += loaded
            self.compiled += max(0, overloads - overloads0 - loaded)
        return self


# --- one job -----------------------------------------------------------------------

def _base_result(job, case, mode, impl):
    return {"loss": case["loss"], "size": case["size"], "shape": case["shape"],
            "dtype": job["dtype"], "threads": job["threads"], "mode": mode,
            "impl": impl.key, "label": impl.label, "group": impl.group}


def run_case(job, case, mode, impl, args, kwargs, memory):
    """Time one implementation on one (case, mode); always returns a result dict."""
    res = _base_result(job, case, mode, impl)
    try:
        bound = impl.build(case["loss"], mode, args, kwargs)
    except impls.NotApplicable as exc:
        return {**res, "status": "n/a", "note": str(exc)}
    spy = None
    if impl.group == "fastloss":
        from .. import _dispatch
        spy = DispatchSpy(None if impl.key == _dispatch.AUTO else impl.key)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # the first call in this process for this loss: lazy imports and compilation
            compiles = NumbaCompiles() if impl.group == "fastloss" else None
            t0 = time.perf_counter()
            if spy is not None:
                try:
                    with spy:
                        bound.call()
                except FellThrough as ft:
                    to = f"falls through to {ft.to}" if ft.to else "no backend has it"
                    return {**res, "status": "fallback", "falls_to": ft.to,
                            "kernel": ft.kernel,
                            "note": f"no {impl.key} kernel for this call ({ft.kernel}): "
                                    f"{to} (not run)"}
            else:
                bound.call()
            first = time.perf_counter() - t0
            res["first_call_ms"] = first * 1e3
            # what the first call's time is: compilation (Numba kernels compiled now, or a
            # peer that always compiles on its first call, as jax.jit does), else loading
            if compiles is not None:
                compiles.stop()
                res.update(first_call_compiled=compiles.compiled,
                           first_call_cache_loaded=compiles.loaded)
            if compiles is not None and compiles.compiled:
                res["first_call"] = "compile"
            elif getattr(impl, "compiles_on_first_call", False):
                res["first_call"] = "compile"
            elif compiles is not None and compiles.loaded:
                res["first_call"] = "cache load"
            if spy is not None:
                ran = sorted({name for k, name in spy.ran if k != "class_targets"})
                res["ran_on"] = ran
                if impl.key != "auto" and ran and ran != [impl.key]:
                    return {**res, "status": "fallback",
                            "falls_to": ", ".join(b for b in ran if b != impl.key),
                            "note": f"no {impl.key} kernel for this call: ran on "
                                    f"{', '.join(ran)}"}
            memory.start()
            median, best, times, number, repeat, result = time_calls(
                bound.call, job["repeat"], job["warmup"], job["budget_s"], first)
            peak = memory.peak_mb()
            res.update(status="ok", median_ms=median * 1e3, min_ms=best * 1e3,
                       times_ms=[t * 1e3 for t in times], number=number, repeat=repeat,
                       peak_mb=peak)
            if impl.group != "floor":
                t0 = time.perf_counter()
                res["check"] = check_result(job, case, mode, impl, bound, result, args, kwargs)
                res["check_ms"] = (time.perf_counter() - t0) * 1e3
                if res["check"]["status"] != "ok":
                    res["status"] = res["check"]["status"]
    except Exception as exc:     # one broken implementation must not stop the benchmark
        msg = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        res.update(status="error", note=msg)
        if job.get("debug"):
            traceback.print_exc()
    return res


def check_result(job, case, mode, impl, bound, result, args, kwargs):
    """Compare with the NumPy reference on the full case when every input has at most
    `check_limit` elements, else on as many leading rows as fit in that limit. An
    implementation that compiles per shape (JAX) is checked on the whole case up to its
    own `whole_check_limit`: on leading rows it would compile every loss a second time."""
    limit = max(job["check_limit"], getattr(impl, "whole_check_limit", 0))
    big = max(a.size for a in args if isinstance(a, np.ndarray))
    if big <= limit:
        value, grad = bound.fetch(result)
        ref_value, ref_grad = reference(case["loss"], mode, args, kwargs)
        on = "full"
    else:
        rows = data.rows_for(args, limit)
        gen = data.generator(case["loss"])
        part = gen.part(args, rows) if gen is not None and gen.part else \
            data.leading_slice(args, rows)
        small = impl.build(case["loss"], mode, part, kwargs)
        value, grad = small.fetch(small.call())
        ref_value, ref_grad = reference(case["loss"], mode, part, kwargs)
        on = f"first {rows} rows"
    out = check(value, grad, ref_value, ref_grad, job["dtype"])
    out.update(on=on, value=_finite_or_text(value), ref_value=_finite_or_text(ref_value))
    return out


def _finite_or_text(x):
    """A float for JSON: NaN and inf become the strings "nan", "inf", "-inf"."""
    x = float(x)
    return x if math.isfinite(x) else str(x)


def pin_threads(threads):
    """Run on the first `threads` CPUs this process may use (all of them if fewer)."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
        if threads < len(cpus):
            os.sched_setaffinity(0, cpus[:threads])
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def run_job(job, emit):
    """Run every (case, mode) of `job` on its implementation, calling `emit(result)`
    for each. `job`: impl, threads, dtype, cases [{loss, size, shape, modes}], repeat,
    warmup, budget_s, check_limit."""
    impl = impls.get(job["impl"])
    t0 = time.perf_counter()
    version = impl.setup(job["threads"], job["dtype"])
    load_ms = (time.perf_counter() - t0) * 1e3
    memory = PeakMemory()
    for case in job["cases"]:
        gen = data.generator_for(case["loss"])
        t0 = time.perf_counter()
        args, kwargs = gen.build(tuple(case["shape"]), job["dtype"])
        data_ms = (time.perf_counter() - t0) * 1e3
        for mode in case["modes"]:
            t0 = time.perf_counter()
            res = run_case(job, case, mode, impl, args, kwargs, memory)
            # where a worker's time goes: the case's data (once per case), everything
            # run_case did (first call, timing, check)
            res.update(load_ms=load_ms, impl_version=version, memory_method=memory.method,
                       data_ms=data_ms, case_ms=(time.perf_counter() - t0) * 1e3)
            data_ms = 0.0
            emit(res)
        del args, kwargs


def load_plugins(plugins):
    """Import plug-in modules (a module name or a .py path) that register implementations
    with fastloss._bench.impls.register."""
    import importlib
    import importlib.util
    for p in plugins or ():
        if p.endswith(".py"):
            spec = importlib.util.spec_from_file_location(
                "fastloss_bench_plugin_" + os.path.basename(p)[:-3], p)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        else:
            importlib.import_module(p)


def main():
    job = json.loads(sys.stdin.read())
    pin_threads(job["threads"])
    load_plugins(job.get("plugins"))
    out = sys.stdout

    def emit(res):
        out.write("RESULT " + json.dumps(res) + "\n")
        out.flush()
    run_job(job, emit)


if __name__ == "__main__":
    main()
