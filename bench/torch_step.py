"""A CPU training step of a language-model head with torch's criterion and with
fastloss.torch's, side by side; and the per-call cost of the criterion alone at small
sizes (the bridge's overhead).

    python bench/torch_step.py --json bench/results/torch_step.json \
        --markdown bench/results/torch_step.md

Step: hidden states h (N x d, requires grad) -> logits = h @ W.T (+ b) (N x V) ->
cross-entropy -> backward (gradients of h, W, b), float32. "loss" is the criterion alone
on those logits, forward and backward with respect to them; its share is loss / step.
Each implementation runs in its own process (torch's OpenMP and fastloss's threads are
then the only ones in it), repeats interleaved, medians reported.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

IMPLS = {
    "torch": "torch.nn.CrossEntropyLoss",
    "fastloss": "fastloss.torch.CrossEntropyLoss (eager fast path)",
    "fastloss-ops": "fastloss.torch.CrossEntropyLoss through the fastloss:: ops",
}


def child(impl, n, d, v, repeat, warmup, threads, small):
    import torch
    if impl.startswith("fastloss"):
        import fastloss
        import fastloss.torch as ft
        fastloss.set_num_threads(threads)
        ft.use_ops(impl == "fastloss-ops")
        crit = ft.CrossEntropyLoss()
    else:
        crit = torch.nn.CrossEntropyLoss()
    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(0)
    out = {}

    def timed(fn, reps, warm):
        for _ in range(warm):
            fn()
        ts = []
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        return ts

    if n:
        h = torch.randn(n, d, generator=g).requires_grad_()
        w = (torch.randn(v, d, generator=g) * d ** -0.5).requires_grad_()
        b = torch.zeros(v).requires_grad_()
        t = torch.randint(0, v, (n,), generator=g)

        def step():
            h.grad = w.grad = b.grad = None
            loss = crit(torch.nn.functional.linear(h, w, b), t)
            loss.backward()
            return loss

        with torch.no_grad():
            logits = torch.nn.functional.linear(h, w, b)
        leaf = logits.clone().requires_grad_()

        def loss_only():
            leaf.grad = None
            crit(leaf, t).backward()

        out["loss_value"] = float(step())
        out["step"] = timed(step, repeat, warmup)
        out["loss"] = timed(loss_only, repeat, warmup)
    for (sn, sc) in small:
        x = torch.randn(sn, sc, generator=g).requires_grad_()
        t = torch.randint(0, sc, (sn,), generator=g)

        def call():
            x.grad = None
            crit(x, t).backward()
        reps = max(20, min(2000, int(2e7 // (sn * sc))))
        timed(call, 0, 20)   # warm-up; then the median call of 7 batches of `reps`
        ts = [statistics.median(timed(call, reps, 0)) for _ in range(7)]
        out[f"call_{sn}x{sc}"] = ts
    return out


def _fmt(s):
    return f"{s * 1e3:.2f} ms" if s >= 1e-3 else f"{s * 1e6:.1f} µs"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=4096, help="tokens (rows)")
    p.add_argument("--hidden", type=int, default=256, help="hidden size d")
    p.add_argument("--vocab", type=int, default=32000, help="vocabulary V")
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3,
                   help="processes per implementation, interleaved")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--small", default="64x1000,8192x100",
                   help="sizes for the per-call cost ('' for none)")
    p.add_argument("--impls", nargs="+", default=list(IMPLS), choices=list(IMPLS))
    p.add_argument("--json")
    p.add_argument("--markdown")
    p.add_argument("--child", help=argparse.SUPPRESS)
    a = p.parse_args()
    small = [tuple(int(x) for x in s.split("x")) for s in a.small.split(",") if s]
    if a.child:
        res = child(a.child, a.n, a.hidden, a.vocab, a.repeat, a.warmup, a.threads, small)
        print(json.dumps(res))
        return

    runs = {k: [] for k in a.impls}
    for _ in range(a.rounds):
        for impl in a.impls:
            cmd = [sys.executable, __file__, "--child", impl, "--n", str(a.n),
                   "--hidden", str(a.hidden), "--vocab", str(a.vocab),
                   "--repeat", str(a.repeat), "--warmup", str(a.warmup),
                   "--threads", str(a.threads), "--small", a.small]
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode:
                sys.exit(f"{impl} failed:\n{r.stderr}")
            runs[impl].append(json.loads(r.stdout.strip().splitlines()[-1]))

    def med(impl, key):
        return statistics.median(x for r in runs[impl] for x in r[key])

    keys = (["step", "loss"] if a.n else []) + [f"call_{n}x{c}" for n, c in small]
    table = {impl: {k: med(impl, k) for k in keys} for impl in a.impls}
    lines = []
    if a.n:
        lines += [f"LM-head training step: N={a.n}, d={a.hidden}, V={a.vocab}, float32, "
                  f"{a.threads} threads", "",
                  "| criterion | step | loss (fwd+bwd) | loss share | step speed-up |",
                  "| --- | ---: | ---: | ---: | ---: |"]
        base = table.get("torch", {}).get("step")
        for impl in a.impls:
            s, l_ = table[impl]["step"], table[impl]["loss"]
            up = f"{base / s:.2f}x" if base else ""
            lines.append(f"| {IMPLS[impl]} | {_fmt(s)} | {_fmt(l_)} | {100 * l_ / s:.0f}% | "
                         f"{up} |")
        lines.append("")
    if small:
        lines += ["Per call, criterion forward + backward (eager):", "",
                  "| criterion | " + " | ".join(f"{n}x{c}" for n, c in small) + " |",
                  "| --- |" + " ---: |" * len(small)]
        for impl in a.impls:
            lines.append(f"| {IMPLS[impl]} | " + " | ".join(
                _fmt(table[impl][f"call_{n}x{c}"]) for n, c in small) + " |")
        lines.append("")
    import torch
    lines.append(f"Median of {a.rounds} processes x {a.repeat} runs each after {a.warmup} "
                 f"warm-up(s); {platform.processor() or platform.machine()}, "
                 f"{os.cpu_count()} CPUs, torch {torch.__version__}, Python "
                 f"{platform.python_version()}. Command: `python bench/torch_step.py "
                 + " ".join(sys.argv[1:]) + "`")
    text = "\n".join(lines)
    print(text)
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write(text + "\n")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"args": vars(a), "medians": table, "runs": runs}, f, indent=1)


if __name__ == "__main__":
    main()
