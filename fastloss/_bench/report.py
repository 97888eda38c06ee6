"""What a benchmark run produces: the terminal table, JSON, Markdown, the plot, and the
README section. Ratios are honest: below 1x is shown as it is; a value that disagrees
with the NumPy reference is flagged in the table, never dropped; a forced backend without
a kernel for a case is shown (it falls through to the next backend) but not flagged."""
import datetime
import importlib.metadata
import os
import platform
import re
import subprocess

SCHEMA = "fastloss-bench/1"
README_START = "<!-- bench:start -->"
README_END = "<!-- bench:end -->"
FLAG = "!!"      # marks a mismatch or an error in text tables
# The statuses that are real problems: `--strict` fails on them. A forced backend that has
# no kernel for a case ("fallback": the call would run on the next backend) is how
# dispatch is meant to work, so it is shown, quietly, and not flagged.
FLAGGED = ("mismatch", "error")
# The read floor is not trusted when the median of its repeats is this many times their
# minimum (they disagree widely: a loaded machine) or when an implementation beats it by
# this factor (it cannot bound that case: the loss reads less than every input, or the
# inputs sit in cache).
FLOOR_SPREAD = 1.5
FLOOR_BEATEN = 1.1


# --- run metadata ------------------------------------------------------------------

def machine():
    """CPU model and SIMD flags, core counts, memory, OS."""
    info = {"cpu": platform.processor() or platform.machine(), "arch": platform.machine(),
            "flags": {}, "cores": os.cpu_count()}
    try:
        info["usable_cores"] = len(os.sched_getaffinity(0))
    except AttributeError:
        info["usable_cores"] = os.cpu_count()
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
        m = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
        if m:
            info["cpu"] = m.group(1).strip()
        fam = re.search(r"^cpu family\s*:\s*(\d+)$", text, re.M)
        mod = re.search(r"^model\s*:\s*(\d+)$", text, re.M)
        if fam and mod:   # a bare "AMD EPYC" says nothing of the generation (Zen 3 or 4...)
            info["cpu"] += f" (family {fam.group(1)}, model {mod.group(1)})"
        m = re.search(r"^flags\s*:\s*(.+)$", text, re.M)
        flags = set(m.group(1).split()) if m else set()
        info["flags"] = {f: f in flags for f in ("sse4_2", "avx", "avx2", "fma", "avx512f",
                                                  "avx512bw", "avx512vl")}
    except OSError:
        pass
    try:
        with open("/proc/meminfo") as f:
            kb = int(re.search(r"MemTotal:\s*(\d+)", f.read()).group(1))
        info["memory_gb"] = round(kb / 1024 ** 2, 1)
    except (OSError, AttributeError):
        pass
    info["os"] = platform.platform()
    return info


def versions():
    """Versions of Python and of every package that can take part (None = absent)."""
    out = {"python": platform.python_version()}
    for name, dist in (("numpy", "numpy"), ("numba", "numba"), ("llvmlite", "llvmlite"),
                       ("cffi", "cffi"), ("torch", "torch"), ("jax", "jax"),
                       ("jaxlib", "jaxlib"), ("sklearn", "scikit-learn"),
                       ("scipy", "scipy"), ("matplotlib", "matplotlib")):
        try:
            out[name] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    import fastloss
    out["fastloss"] = fastloss.__version__
    out["fastloss_git"] = _git_commit(os.path.dirname(os.path.abspath(fastloss.__file__)))
    return out


def _git_commit(path):
    try:
        r = subprocess.run(["git", "-C", path, "rev-parse", "--short", "HEAD"],
                           capture_output=True, text=True, timeout=5)
        if r.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", path, "status", "--porcelain", "--", "."],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return r.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def backends():
    from .. import _dispatch
    out = {}
    for name in _dispatch.backend_names():
        b = _dispatch._BACKENDS[name]
        out[name] = "available" if b.available else f"missing: {b.error}"
    return out


def document(results, command, argv, settings):
    """The JSON document of a run."""
    return {"schema": SCHEMA,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "command": command, "argv": list(argv),
            "machine": machine(), "versions": versions(), "backends": backends(),
            "settings": settings, "results": results}


# --- grouping and ratios ---------------------------------------------------------

CASE_KEY = ("loss", "size", "dtype", "threads", "mode")


def case_key(r):
    return tuple(r[k] for k in CASE_KEY)


def group_cases(results):
    """{case key: [rows]} in first-seen order of cases (losses in registry order)."""
    groups = {}
    for r in results:
        groups.setdefault(case_key(r), []).append(r)
    return groups


def timed(r):
    return r.get("median_ms") is not None and r.get("status") in ("ok", "mismatch")


def baseline_ms(rows, baseline):
    for r in rows:
        if r["impl"] == baseline and timed(r) and r["status"] == "ok":
            return r["median_ms"]
    return None


def label_of(results, key):
    """The display label of implementation `key` ("numpy" -> "fastloss[numpy]")."""
    return next((r["label"] for r in results if r["impl"] == key), key)


def flagged(results):
    """The rows that are real problems (a mismatch or an error)."""
    return [r for r in results if r.get("status") in FLAGGED]


def floor_ms(rows):
    for r in rows:
        if r["impl"] == "floor" and timed(r):
            return r["median_ms"]
    return None


def floor_problem(rows):
    """Why the case's read floor cannot be trusted, or None when it can: its repeats
    disagree widely, or an implementation ran faster than it (a floor it beats bounds
    nothing)."""
    row = next((r for r in rows if r["impl"] == "floor" and timed(r)), None)
    if row is None:
        return None
    times = [t for t in row.get("times_ms") or () if t and t > 0]
    if len(times) >= 2 and row["median_ms"] > FLOOR_SPREAD * min(times):
        return f"its repeats disagree ({min(times):.3g} to {max(times):.3g} ms)"
    beaten = [r for r in rows if r["impl"] != "floor" and timed(r) and r["median_ms"] > 0
              and row["median_ms"] > FLOOR_BEATEN * r["median_ms"]]
    if beaten:
        fastest = min(beaten, key=lambda r: r["median_ms"])
        return f"slower than {fastest['label']}"
    return None


def trusted_floor_ms(rows):
    """The read floor when it is plausible, else None."""
    return None if floor_problem(rows) else floor_ms(rows)


def floor_percent(rows, ms):
    """The "% floor" text of a time: "-" without a floor, "unreliable" when the floor is
    implausible (never "10490%")."""
    floor = floor_ms(rows)
    if floor is None or not ms:
        return "-"
    if floor_problem(rows):
        return "unreliable"
    return f"{100 * floor / ms:.0f}%"


def ratio_text(base, ms):
    if base is None or not ms:
        return "-"
    x = base / ms
    if x < 0.1:
        return f"{x:.2g}x"
    return f"{x:.2f}x" if x < 10 else f"{x:.1f}x"


def status_text(r):
    s = r.get("status")
    if s == "ok":
        chk = r.get("check")
        text = "" if chk is None else ("ok" if chk.get("on") == "full" else f"ok ({chk['on']})")
        if r.get("impl") == "auto" and r.get("ran_on"):
            text += f"; ran on {', '.join(r['ran_on'])}"
        return text
    if s == "mismatch":
        chk = r["check"]
        if chk["rel_err"] is None:
            return f"{FLAG} MISMATCH: {chk['worst']} has NaN/inf (or a shape) unlike the reference"
        return f"{FLAG} MISMATCH: {chk['worst']} off by {chk['rel_err']:.1e} (tol {chk['tol']:.0e})"
    if s == "fallback":
        return fallthrough_text(r)
    if s == "error":
        return f"{FLAG} ERROR: {r.get('note', '')}"
    if s == "skipped":
        return f"skipped: {r.get('note', '')}"
    return f"{s}: {r.get('note', '')}"


def fallthrough_text(r):
    """A forced backend without a kernel for the case, quietly: "c -> numba (no c kernel
    for poisson_nll_fwd; not timed)"."""
    to = r.get("falls_to") or "no other backend"
    kernel = r.get("kernel")
    why = f"no {r['impl']} kernel" + (f" for {kernel}" if kernel else "")
    return f"{r['impl']} -> {to} ({why}; not timed)"


def first_call_text(r):
    """The first call's time, labelled "compile" when that call compiled."""
    first = r.get("first_call_ms")
    if first is None:
        return "-"
    return _fmt_ms(first) + (" compile" if r.get("first_call") == "compile" else "")


def _fmt_ms(ms):
    if ms is None:
        return "-"
    if ms < 1:
        return f"{ms:.3g}"
    return f"{ms:.2f}" if ms < 100 else f"{ms:.1f}"


def case_title(key, floor, problem=None):
    loss, size, dtype, threads, mode = key
    from .impls import MODE_LABELS
    t = f"{loss} {size} {dtype}, {MODE_LABELS.get(mode, mode)}, {threads} thread" \
        f"{'s' if threads != 1 else ''}"
    if floor is not None:
        t += f"  (read floor {_fmt_ms(floor)} ms" + \
            (f"; floor unreliable: {problem})" if problem else ")")
    return t


def skipped_line(results):
    """Every implementation that was not run (not installed, backend missing), on one
    line: "skipped: sklearn (sklearn not installed), jax (jax not installed)"."""
    reasons = {}
    for r in results:
        if r.get("status") == "skipped":
            reasons.setdefault(r["label"], r.get("note", ""))
    if not reasons:
        return None
    return "skipped: " + ", ".join(f"{label} ({why})" if why else label
                                   for label, why in reasons.items())


# --- terminal ----------------------------------------------------------------------

def terminal_table(results, baseline="torch"):
    """One block per case, implementations fastest first; then one line for whatever
    was skipped, the summary, and the count of flagged runs."""
    lines = []
    headers = ("implementation", "median ms", f"vs {label_of(results, baseline)}", "% floor",
               "1st call ms", "peak MB", "check")
    for key, rows in group_cases(results).items():
        base = baseline_ms(rows, baseline)
        floor = floor_ms(rows)
        body = []
        ordered = sorted(rows, key=lambda r: (not timed(r), r.get("median_ms") or 0))
        for r in ordered:
            if r["impl"] == "floor" or r.get("status") in ("n/a", "skipped"):
                continue
            ms = r.get("median_ms") if timed(r) else None
            peak = r.get("peak_mb")
            # an implausible floor is said once, in the case's title
            pct = "-" if floor_problem(rows) else floor_percent(rows, ms)
            body.append((r["label"], _fmt_ms(ms), ratio_text(base, ms) if ms else "-",
                         pct, first_call_text(r) if ms else "-",
                         f"{peak:.1f}" if peak is not None and ms else "-", status_text(r)))
        if not body:
            continue
        widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(headers)]
        lines.append(case_title(key, floor, floor_problem(rows)))
        fmt = "  " + "  ".join(f"{{:{'<' if i in (0, 6) else '>'}{w}}}"
                               for i, w in enumerate(widths))
        lines.append(fmt.format(*headers).rstrip())
        for b in body:
            lines.append(fmt.format(*b).rstrip())
        lines.append("")
    skipped = skipped_line(results)
    if skipped:
        lines += [skipped, ""]
    lines += summary(results)
    bad = flagged(results)
    if bad:
        lines.append(f"{FLAG} {len(bad)} run(s) flagged (mismatch or error): "
                     "see the check column.")
    return "\n".join(lines)


def summary(results):
    """The compact end of a run: per case, the fastest fastloss backend, its speed-up over
    each peer that ran (the peer's time / fastloss's: above 1x fastloss is faster) and
    its % of the read floor."""
    from .impls import MODE_LABELS
    groups = group_cases(results)
    peers = [c for c in _columns(results)
             if any(r["label"] == c and r["group"] == "peer" and timed(r) for r in results)]
    multi_dtype = len({k[2] for k in groups}) > 1
    multi_threads = len({k[3] for k in groups}) > 1
    table = []
    for key, rows in groups.items():
        loss, size, dtype, threads, mode = key
        ours = [r for r in rows if r["group"] == "fastloss" and r.get("status") == "ok"
                and r.get("median_ms")]
        case = " ".join([loss, size] + ([dtype] if multi_dtype else []) +
                        [MODE_LABELS.get(mode, mode)] +
                        ([f"{threads} thr"] if multi_threads else []))
        if not ours:
            if any(r["group"] == "fastloss" for r in rows):
                through = [f"{r['impl']} -> {r.get('falls_to') or 'none'}" for r in rows
                           if r.get("status") == "fallback"]
                table.append((case, "none timed" + (f" ({', '.join(through)})"
                                                    if through else ""),
                              *["-"] * len(peers), "-"))
            continue
        best = min(ours, key=lambda r: r["median_ms"])
        cells = []
        for p in peers:
            peer = next((r for r in rows if r["label"] == p and timed(r)), None)
            cell = ratio_text(peer["median_ms"], best["median_ms"]) if peer else "-"
            if peer is not None and peer["status"] == "mismatch":
                cell += " (mismatch)"
            cells.append(cell)
        table.append((case, best["label"], *cells, floor_percent(rows, best["median_ms"])))
    if not table:
        return []
    headers = ("case", "fastest fastloss", *[f"vs {p}" for p in peers], "% floor")
    widths = [max(len(h), *(len(t[i]) for t in table)) for i, h in enumerate(headers)]
    fmt = "  " + "  ".join(f"{{:{'<' if i < 2 else '>'}{w}}}" for i, w in enumerate(widths))
    out = ["summary: the fastest fastloss backend per case; vs X = X's time / fastloss's "
           "(above 1x fastloss is faster)", fmt.format(*headers).rstrip()]
    out += [fmt.format(*t).rstrip() for t in table]
    return out + [""]


# --- markdown ----------------------------------------------------------------------

def _columns(results):
    """Implementation labels in a stable order: fastloss backends, peers, the rest."""
    seen = []
    for group in ("fastloss", "peer"):
        for r in results:
            if r["group"] == group and r["label"] not in seen and r["label"] != "-":
                seen.append(r["label"])
    return seen


def markdown_table(results, baseline="torch"):
    """numbagg-style: one row per case, one column per implementation, each cell the
    median time and the speed-up over the baseline; flags inline."""
    groups = group_cases(results)
    cols = _columns(results)
    multi_dtype = len({k[2] for k in groups}) > 1
    multi_threads = len({k[3] for k in groups}) > 1
    head = ["loss", "size"] + (["dtype"] if multi_dtype else []) + \
        (["threads"] if multi_threads else []) + ["mode", "read floor"] + cols
    out = ["| " + " | ".join(head) + " |", "|" + "|".join(
        [" --- "] * (len(head) - len(cols) - 1) + [" ---: "] * (len(cols) + 1)) + "|"]
    from .impls import MODE_LABELS
    for key, rows in groups.items():
        loss, size, dtype, threads, mode = key
        base = baseline_ms(rows, baseline)
        floor = floor_ms(rows)
        by_label = {r["label"]: r for r in rows}
        floor_cell = "-"
        if floor:
            floor_cell = f"{_fmt_ms(floor)} ms" + (" (unreliable)" if floor_problem(rows) else "")
        cells = [f"`{loss}`", size] + ([dtype] if multi_dtype else []) + \
            ([str(threads)] if multi_threads else []) + [MODE_LABELS.get(mode, mode), floor_cell]
        for c in cols:
            r = by_label.get(c)
            if r is None or r.get("status") == "n/a":
                cells.append("")
            elif r.get("status") == "skipped":
                cells.append("skipped")
            elif r.get("status") == "fallback":
                cells.append(f"→ {r.get('falls_to') or 'none'}")
            elif timed(r):
                cell = f"{_fmt_ms(r['median_ms'])} ms"
                if base is not None and r["impl"] != baseline:
                    cell += f" ({ratio_text(base, r['median_ms'])})"
                if r["status"] == "mismatch":
                    cell += " **⚠ mismatch**"
                cells.append(cell)
            else:
                cells.append(f"**⚠ {r.get('status')}**")
        no_data = [r for r in rows if r["impl"] == "-"]
        if no_data:
            cells[-1] = f"**⚠ {no_data[0]['note']}**"
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def markdown(doc, baseline="torch", plot_path=None):
    """The Markdown report: the table, then what was run where (as footnotes)."""
    m, v, s = doc["machine"], doc["versions"], doc["settings"]
    flags = ", ".join(f for f, on in m.get("flags", {}).items() if on) or "unknown"
    present = ", ".join(f"{k} {val}" for k, val in v.items()
                        if val and k not in ("python", "fastloss", "fastloss_git"))
    lines = [markdown_table(doc["results"], baseline), ""]
    base_label = label_of(doc["results"], baseline)
    if plot_path:
        lines += [f"![speed-up over {base_label}]({plot_path})", ""]
    lines += [
        f"Median of {s.get('repeat')} timed runs after {s.get('warmup')} warm-up call(s), "
        f"each implementation in its own process; `(N.NNx)` is the speed-up over {base_label} "
        "(below 1x means slower). \"read floor\" is the time to read the inputs once "
        f"(value+grad: and write one gradient), measured with {s.get('floor_method', '?')}. "
        "A \"read floor\" marked unreliable had repeats that disagreed widely or was "
        "slower than an implementation it should bound. "
        "Every value (and gradient) is checked against fastloss's NumPy reference on the "
        "same data; ⚠ marks a mismatch or an error. A cell \"→ numba\" is a backend without "
        "a kernel for that case, whose call falls through to the backend named (the "
        "fall-through is how dispatch works; that cell is not timed). "
        "Mode \"value+grad\" is `fastloss.value_and_grad` with a reused `out=` buffer, "
        "torch's forward + `backward()`.",
        "",
        f"- Machine: {m.get('cpu')} ({m.get('usable_cores')} usable of {m.get('cores')} "
        f"cores, {m.get('memory_gb', '?')} GB; {flags}), {m.get('os')}",
        f"- Versions: Python {v['python']}, fastloss {v['fastloss']}"
        + (f" ({v['fastloss_git']})" if v.get("fastloss_git") else "") + f"; {present}",
        "- Backends: " + ", ".join(f"{k} {val}" for k, val in doc["backends"].items()),
        f"- Date: {doc['date']}",
        f"- Command: `{doc['command']}`",
    ]
    return "\n".join(lines) + "\n"


def update_readme(path, section):
    """Replace the text between the bench markers (appended at the end if absent)."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    block = f"{README_START}\n{section.rstrip()}\n{README_END}"
    if README_START in text and README_END in text:
        start = text.index(README_START)
        end = text.index(README_END, start) + len(README_END)
        text = text[:start] + block + text[end:]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


# --- plot --------------------------------------------------------------------------

def plot(results, path, baseline="torch"):
    """Speed-up bars per case and implementation (log scale; 1 = the baseline), or
    median times when no case has the baseline. Needs matplotlib."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from .impls import MODE_LABELS

    groups = group_cases(results)
    cols = [c for c in _columns(results)
            if any(r["label"] == c and timed(r) for r in results)]
    use_ratio = any(baseline_ms(rows, baseline) for rows in groups.values())
    if use_ratio:
        cols = [c for c in cols if c != label_of(results, baseline)]
    keys = list(groups)
    fig, ax = plt.subplots(figsize=(min(40.0, max(6.0, 1.2 * len(keys) + 2)), 4.5))
    width = 0.8 / max(1, len(cols))
    for j, c in enumerate(cols):
        xs, ys, flagged = [], [], []
        for i, k in enumerate(keys):
            rows = groups[k]
            r = next((r for r in rows if r["label"] == c and timed(r)), None)
            if r is None:
                continue
            base = baseline_ms(rows, baseline)
            if use_ratio and base is None:
                continue
            xs.append(i + (j - (len(cols) - 1) / 2) * width)
            ys.append(base / r["median_ms"] if use_ratio else r["median_ms"])
            flagged.append(r["status"] != "ok")
        bars = ax.bar(xs, ys, width, label=c)
        for b, bad in zip(bars, flagged):
            if bad:
                b.set_hatch("//")
                b.set_edgecolor("red")
    if use_ratio:
        for i, k in enumerate(keys):
            base, fl = baseline_ms(groups[k], baseline), trusted_floor_ms(groups[k])
            if base and fl:
                ax.plot([i - 0.45, i + 0.45], [base / fl] * 2, "k--", lw=1,
                        label="read floor" if i == 0 else None)
        ax.axhline(1.0, color="grey", lw=1)
        ax.set_ylabel(f"speed-up over {label_of(results, baseline)} (log)")
    else:
        ax.set_ylabel("median ms (log)")
    ax.set_yscale("log")
    ax.set_xticks(range(len(keys)))
    ax.set_xticklabels([f"{k[0]}\n{k[1]} {MODE_LABELS.get(k[4], k[4])}" for k in keys],
                       rotation=60, ha="right", fontsize=7)
    ax.legend(fontsize=7)
    ax.set_title("fastloss bench (hatched: flagged)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
