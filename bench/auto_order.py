"""Write fastloss/_auto_order.json, the per-kernel order `auto` tries backends in, from a
committed benchmark run: `python bench/auto_order.py bench/results/targets.json
bench/results/others.json` (one or more runs).

For each loss and mode (forward -> <kernel>_fwd, value+grad -> <kernel>_vg) the fastloss
backends are ranked by the geometric mean of their median times over every size, dtype
and thread count the run measured; a backend whose result was not "ok" (a mismatch, an
error, a fall-back) is ranked last for that kernel."""
import json
import math
import os
import sys
from collections import defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(os.path.dirname(HERE), "fastloss", "_auto_order.json")
SUFFIX = {"forward": "_fwd", "grad": "_vg"}


def rank(results):
    times = defaultdict(lambda: defaultdict(list))
    bad = defaultdict(set)
    for r in results:
        if r.get("group") != "fastloss":
            continue
        key = (r["loss"], r["mode"])
        if r.get("status") == "ok" and r.get("median_ms"):
            times[key][r["impl"]].append(r["median_ms"])
        else:
            bad[key].add(r["impl"])
    order = {}
    for key, per_impl in times.items():
        score = {impl: math.exp(sum(map(math.log, ts)) / len(ts)) for impl, ts in per_impl.items()
                 if impl not in bad[key]}
        order[key] = sorted(score, key=score.get) + sorted(bad[key] | (set(per_impl) - set(score)))
    return order


def main(paths):
    sys.path.insert(0, os.path.dirname(HERE))
    from fastloss._registry import LOSSES
    runs = [json.load(open(p)) for p in paths]
    kernels = {}
    results = [r for run in runs for r in run["results"]]
    for (loss, mode), backends in sorted(rank(results).items()):
        for kernel in LOSSES[loss].kernels:
            if kernel + SUFFIX[mode] not in kernels:   # a loss's first kernel is what it ran
                kernels[kernel + SUFFIX[mode]] = backends
    data = {"sources": [{"file": os.path.relpath(p, os.path.dirname(HERE)),
                         "date": run.get("date"), "command": run.get("command")}
                        for p, run in zip(paths, runs)],
            "kernels": kernels}
    with open(OUT, "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"wrote {OUT}: {len(kernels)} kernels")


if __name__ == "__main__":
    main(sys.argv[1:])
