"""``fastloss bench``: argument parsing, validation (one-line errors, exit code 2), and
the run itself."""
import argparse
import importlib.util
import json
import os
import shlex
import sys
import time

from . import data, impls, report, runner

PEER_KEYS = ("torch", "torch_chunked", "gemm", "jax", "sklearn", "naive")
DTYPE_ALIASES = {"float32": "float32", "f32": "float32", "fp32": "float32",
                 "float64": "float64", "f64": "float64", "fp64": "float64"}
MODE_ALIASES = {"forward": ["forward"], "fwd": ["forward"], "grad": ["grad"],
                "vg": ["grad"], "value_and_grad": ["grad"], "both": ["forward", "grad"]}


# Named grids (--grid), issue 13's: cross-entropy and nll_loss over class counts x batch
# sizes wherever the logits fit in 1 GiB of float32 (the gradient takes as much again, and
# torch's log_softmax intermediate too), and the small-call series, whose times are the
# whole call (validation, dispatch, kernel, 0-d result).
GRID_CLASSES = (2, 10, 32, 100, 256, 1000, 32000)
GRID_ROWS = (8192, 65536, data.M)
GRID_MAX_ELEMENTS = 1 << 28
GRIDS = {
    "ce": (("cross_entropy", "nll_loss"),
           tuple((n, c) for n in GRID_ROWS for c in GRID_CLASSES if n * c <= GRID_MAX_ELEMENTS)),
    "small": (("cross_entropy",), ((8, 10), (64, 10), (64, 1000), (512, 100), (8192, 100))),
}


class UsageError(Exception):
    """A bad argument: reported on one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def _split(values):
    """`--x a b`, `--x a,b` and `--x a --x b` all mean [a, b]."""
    out = []
    for v in values or ():
        for part in (v if isinstance(v, list) else [v]):
            out.extend(p for p in part.split(",") if p.strip())
    return [p.strip() for p in out]


def build_parser():
    p = _Parser(prog="fastloss bench",
                description="Time fastloss's backends against torch, JAX, scikit-learn and "
                            "naive NumPy on synthetic data, each in its own process, and "
                            "check every result against the NumPy reference.")
    p.add_argument("--loss", nargs="+", action="append", metavar="NAME",
                   help="losses to run (default: all in fastloss's registry)")
    p.add_argument("--grid", choices=sorted(GRIDS), default=None,
                   help="a named grid: 'ce' (cross_entropy and nll_loss, C in "
                        f"{', '.join(map(str, GRID_CLASSES))} x N in 8192, 65536, 1M where "
                        "N*C <= 2^28), 'small' (the small-call series of cross_entropy: "
                        "8x10 64x10 64x1000 512x100 8192x100); --loss and --size, when "
                        "given, replace its losses or sizes")
    p.add_argument("--size", nargs="+", action="append", metavar="SIZE",
                   help="NxC or N (K=1024, M=1024**2), e.g. 65536x1000 1Mx10 16M "
                        "(default: a grid per loss; see --list)")
    p.add_argument("--dtype", nargs="+", action="append", metavar="DTYPE",
                   help="float32 and/or float64 (default float32)")
    p.add_argument("--threads", nargs="+", action="append", metavar="N",
                   help="thread counts (default: every CPU this process may use)")
    p.add_argument("--backend", nargs="+", action="append", metavar="NAME",
                   help="fastloss backends to time: numba, c, numpy, auto "
                        "(default: every one fastloss knows, but numpy is left out with "
                        "--quick; missing ones are shown skipped)")
    p.add_argument("--peers", nargs="+", action="append", metavar="NAME",
                   help=f"peers: {', '.join(PEER_KEYS)}, or none (default: all; those "
                        "not installed are shown skipped)")
    p.add_argument("--mode", nargs="+", action="append", metavar="MODE",
                   help="forward, grad (value-and-gradient) or both (default both)")
    p.add_argument("--repeat", type=int, default=None,
                   help="timed runs per case; the median is reported (default 7, quick 3)")
    p.add_argument("--warmup", type=int, default=None,
                   help="untimed calls after the first (default 2, quick 1)")
    p.add_argument("--quick", action="store_true",
                   help="one small case per loss, float32, 3 repeats: under a minute")
    p.add_argument("--baseline", default=None,
                   help="implementation the speed-ups are relative to (default torch; when "
                        "torch is not run or not installed, naive NumPy, else fastloss's "
                        "numpy backend)")
    p.add_argument("--json", metavar="FILE", help="write every result and the machine, "
                   "versions and command as JSON")
    p.add_argument("--markdown", metavar="FILE", help="write the Markdown table")
    p.add_argument("--plot", metavar="FILE.png", help="speed-up bar chart (needs matplotlib: "
                   "pip install 'fastloss[plot]')")
    p.add_argument("--update-readme", nargs="?", const="README.md", metavar="README",
                   help="rewrite the table between <!-- bench:start --> and "
                        "<!-- bench:end --> in README (default ./README.md)")
    p.add_argument("--check-limit", type=int, default=None, metavar="N",
                   help="check against the reference on the whole case up to N elements "
                        "per input, else on leading rows of that many (default 4194304, "
                        "quick 65536)")
    p.add_argument("--budget", type=float, default=None, metavar="S",
                   help="seconds per case and mode before repeats are cut (to 3 at least) "
                        "(default 20, quick 3)")
    p.add_argument("--timeout", type=float, default=900.0, metavar="S",
                   help="kill a worker silent for this long (default 900)")
    p.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                   help="import MODULE (or a .py file) that registers extra "
                        "implementations with fastloss._bench.impls.register")
    p.add_argument("--strict", action="store_true",
                   help="exit with code 1 when any run is flagged (a mismatch or an "
                        "error; a backend falling through to the next is not a flag)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.add_argument("--list", action="store_true",
                   help="list losses, default sizes and implementations, then exit")
    p.add_argument("--debug", action="store_true", help="print workers' tracebacks")
    return p


def _choose(values, allowed, what):
    for v in values:
        if v not in allowed:
            raise UsageError(f"unknown {what} {v!r} (choose from {', '.join(allowed)})")
    return values


def _positive_int(text, what):
    try:
        n = int(text)
    except ValueError:
        raise UsageError(f"{what}: expected a positive integer, got {text!r}") from None
    if n < 1:
        raise UsageError(f"{what}: expected a positive integer, got {text!r}")
    return n


def make_plan(ns):
    """Validate the parsed arguments into a runner.Plan (UsageError on any bad one)."""
    from .._registry import LOSSES
    for p in ns.plugin:
        if not p.endswith(".py") and importlib.util.find_spec(p) is None:
            raise UsageError(f"plugin module {p!r} not found")
        if p.endswith(".py") and not os.path.isfile(p):
            raise UsageError(f"plugin file {p!r} not found")
    from .worker import load_plugins
    load_plugins(ns.plugin)

    grid_losses, grid_sizes = GRIDS[ns.grid] if ns.grid else (None, None)
    losses = _split(ns.loss) or list(grid_losses or LOSSES)
    _choose(losses, list(LOSSES), "loss")
    if ns.loss or grid_losses:
        missing = [loss for loss in losses if data.generator(loss) is None]
        if missing:
            raise UsageError(f"no data generator for {', '.join(missing)} "
                             "(add one to fastloss/_bench/data.py)")
    sizes = None
    if ns.size:
        try:
            sizes = [data.parse_size(s) for s in _split(ns.size)]
        except data.SizeError as exc:
            raise UsageError(str(exc)) from None
    elif grid_sizes:
        sizes = list(grid_sizes)
    cases, unfit = runner.make_cases(losses, sizes, ns.quick)
    if unfit and not any("error" not in c for c in cases):
        loss, size = unfit[0]
        raise UsageError(f"size {size} fits none of the chosen losses ({loss} needs NxC)")
    if unfit:
        print(f"note: left out {', '.join(f'{loss} {size}' for loss, size in unfit)}: "
              "those losses need NxC sizes", file=sys.stderr)

    dtypes = [DTYPE_ALIASES.get(d.lower(), d) for d in _split(ns.dtype)] or ["float32"]
    _choose(dtypes, ["float32", "float64"], "dtype")
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 1
    threads = [_positive_int(t, "threads") for t in _split(ns.threads)] or [usable]
    modes = []
    for m in _split(ns.mode) or ["both"]:
        if m not in MODE_ALIASES:
            raise UsageError(f"unknown mode {m!r} (choose from forward, grad, both)")
        modes += [x for x in MODE_ALIASES[m] if x not in modes]

    known = impls.fastloss_backends()
    # --quick leaves the NumPy reference out of the timings (every worker still checks its
    # result against it): its workers were a third of a cold --quick run.
    backends = _split(ns.backend) or [b for b in known if not (ns.quick and b == "numpy")]
    _choose(backends, known + ["auto"], "backend")
    peers = _split(ns.peers)
    if peers == ["none"]:
        peers = []
    elif not peers:
        peers = list(PEER_KEYS)
    _choose(peers, list(PEER_KEYS), "peer")
    keys = ["floor"] + backends + peers + [k for k in impls.EXTRA if k not in backends]
    if ns.baseline is None:
        torch_runs = "torch" in keys and impls.get("torch").installed() is None
        ns.baseline = "torch" if torch_runs else next(
            (k for k in ("naive", "numpy") if k in keys and impls.get(k).installed() is None),
            keys[1])
    if ns.baseline not in keys:
        raise UsageError(f"baseline {ns.baseline!r} is not among the implementations run "
                         f"({', '.join(k for k in keys if k != 'floor')})")

    repeat = ns.repeat if ns.repeat is not None else (3 if ns.quick else 7)
    warmup = ns.warmup if ns.warmup is not None else (1 if ns.quick else 2)
    if repeat < 1 or warmup < 0:
        raise UsageError("--repeat must be >= 1 and --warmup >= 0")
    budget = ns.budget if ns.budget is not None else (3.0 if ns.quick else 20.0)
    check_limit = ns.check_limit if ns.check_limit is not None else \
        (1 << 16 if ns.quick else 1 << 22)
    if check_limit < 1:
        raise UsageError("--check-limit must be >= 1")
    if ns.plot and importlib.util.find_spec("matplotlib") is None:
        raise UsageError("--plot needs matplotlib, which is not installed: "
                         "pip install 'fastloss[plot]' (or pip install matplotlib)")
    if ns.update_readme and not os.path.isfile(ns.update_readme):
        raise UsageError(f"--update-readme: {ns.update_readme} not found (run from the "
                         "repository's root or give the README's path)")
    return runner.Plan(cases=cases, dtypes=dtypes, threads=threads, modes=modes,
                       impl_keys=keys, repeat=repeat, warmup=warmup, budget_s=budget,
                       check_limit=check_limit, timeout_s=ns.timeout,
                       plugins=[os.path.abspath(p) if p.endswith(".py") else p
                                for p in ns.plugin], debug=ns.debug)


def list_everything(out=None):
    from .._registry import LOSSES
    out = out or sys.stdout
    print("losses (default sizes; --quick size):", file=out)
    for loss in LOSSES:
        gen = data.generator(loss)
        if gen is None:
            print(f"  {loss:<34} NO DATA GENERATOR", file=out)
            continue
        sizes = " ".join(data.format_size(s) for s in gen.default_sizes())
        quick = " ".join(data.format_size(s) for s in gen.default_sizes(True))
        print(f"  {loss:<34} {gen.kind:<12} {sizes}; {quick}", file=out)
    print("implementations:", file=out)
    for key in impls.fastloss_backends() + list(PEER_KEYS) + list(impls.EXTRA):
        impl = impls.get(key)
        reason = impl.installed()
        print(f"  {impl.label:<20} {'available' if reason is None else 'skipped: ' + reason}",
              file=out)


def main(argv=None):
    """Entry point of ``fastloss bench``; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        ns = build_parser().parse_args(argv)
        if ns.list:
            list_everything()
            return 0
        plan = make_plan(ns)
    except UsageError as exc:
        print(f"fastloss bench: error: {exc}", file=sys.stderr)
        return 2
    command = "fastloss bench" + "".join(" " + shlex.quote(a) for a in argv)
    started = time.perf_counter()
    progress = runner.Progress(runner.count_runs(plan), enabled=not ns.no_progress)
    results = runner.run_plan(plan, progress)
    from .floor import METHOD as floor_method
    settings = {"repeat": plan.repeat, "warmup": plan.warmup, "budget_s": plan.budget_s,
                "check_limit": plan.check_limit, "baseline": ns.baseline,
                "quick": ns.quick, "modes": plan.modes, "dtypes": plan.dtypes,
                "threads": plan.threads, "floor_method": floor_method,
                "wall_s": round(time.perf_counter() - started, 1)}
    doc = report.document(results, command, argv, settings)
    print(report.terminal_table(results, ns.baseline))
    if ns.plot:
        report.plot(results, ns.plot, ns.baseline)
    if ns.json:
        with open(ns.json, "w") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")
    # the plot is linked relative to the file that shows it
    if ns.markdown:
        with open(ns.markdown, "w") as f:
            f.write(report.markdown(doc, ns.baseline, _rel(ns.plot, ns.markdown)))
    if ns.update_readme:
        report.update_readme(ns.update_readme,
                             report.markdown(doc, ns.baseline, _rel(ns.plot, ns.update_readme)))
    written = [p for p in (ns.json, ns.markdown, ns.plot, ns.update_readme) if p]
    if written:
        print(f"wrote {', '.join(written)}", file=sys.stderr)
    return 1 if (ns.strict and report.flagged(results)) else 0


def _rel(path, next_to):
    """`path` as a link from the directory of the file `next_to`."""
    if not path:
        return None
    base = os.path.dirname(os.path.abspath(next_to))
    return os.path.relpath(os.path.abspath(path), base)
