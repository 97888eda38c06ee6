"""``fastloss eval LOSS --input X.npy --target Y.npy [...]``: score a large evaluation set
from ``.npy`` files, memory-mapped and streamed in chunks of rows through `RunningLoss`,
so that the process's memory stays at a few chunks whatever the files' size.

The loss's own arguments are flags made from its signature: the first argument is
``--input``, every other array argument a file (``--target``, ``--var``, ``--weight``
...), every number, string or flag its value (``--ignore-index 0``,
``--label-smoothing 0.1``, ``--log-target true``). A file whose first axis is the batch
(as long as the input's, with as many dimensions) is streamed along with the input;
any other file (a class weight) is loaded whole and passed to every chunk.
"""
from __future__ import annotations

import argparse
import inspect
import json
import os
import shlex
import sys
import tempfile
import time

import numpy as np

DEFAULT_CHUNK_BYTES = 64 << 20


class EvalError(Exception):
    """Bad input: reported on one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise EvalError(message)


def _flag(name):
    return "--" + name.replace("_", "-")


def _bool(text):
    t = text.strip().lower()
    if t in ("1", "true", "yes", "on"):
        return True
    if t in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def build_parser(spec):
    p = _Parser(prog=f"fastloss eval {spec.name}",
                description=f"Stream .npy files through fastloss.{spec.name} in chunks "
                            "of rows; print sum, count, mean (and perplexity).")
    params = inspect.signature(spec.prepare).parameters
    array_args = []
    for i, name in enumerate(spec.parameters):
        default = params[name].default
        flag = "--input" if i == 0 else _flag(name)
        if i == 0 or default is inspect.Parameter.empty or default is None:
            p.add_argument(flag, dest=name, metavar="FILE.npy",
                           required=default is inspect.Parameter.empty,
                           help=f"{name}: a .npy file" + ("" if default is not None
                                                          else " (optional)"))
            array_args.append(name)
        elif isinstance(default, bool):
            p.add_argument(flag, dest=name, type=_bool, default=default, metavar="BOOL")
        elif isinstance(default, (int, float, str)):
            p.add_argument(flag, dest=name, type=type(default), default=default,
                           metavar=type(default).__name__.upper())
    p.add_argument("--sample-weight", metavar="FILE.npy", help="per-sample weights (.npy)")
    p.add_argument("--per-item", metavar="OUT.npy",
                   help="write the unreduced (per-item) losses here, completely or not at all")
    p.add_argument("--json", metavar="FILE", help="write the results and inputs as JSON")
    p.add_argument("--chunk-rows", type=int, metavar="N",
                   help="rows per chunk (default: about 64 MB of input)")
    p.add_argument("--backend", default=None, help="auto, c, numba or numpy")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    return p, array_args


def _is_zarr(path):
    return path.rstrip("/").endswith(".zarr") or (
        os.path.isdir(path) and any(os.path.exists(os.path.join(path, m))
                                    for m in (".zarray", "zarr.json")))


def _open(path, what):
    """A memory-mapped .npy file, or a Zarr array (a ``.zarr`` directory, with the
    optional extra ``fastloss[zarr]``): both read a slice at a time."""
    if _is_zarr(path):
        if not os.path.exists(path):
            raise EvalError(f"{path}: no such Zarr array ({what})")
        try:
            import zarr
        except ImportError:
            raise EvalError(f"{path}: reading Zarr arrays needs zarr "
                            "(pip install 'fastloss[zarr]')") from None
        try:
            a = zarr.open(path, mode="r")
        except Exception as exc:
            raise EvalError(f"{path}: not a readable Zarr array ({what}): {exc}") from None
        if not hasattr(a, "shape") or not hasattr(a, "dtype"):
            raise EvalError(f"{path}: a Zarr group, not an array ({what}); give the path "
                            "of one array in it")
        return _Zarr(a)
    if not os.path.isfile(path):
        raise EvalError(f"{path}: no such file ({what})")
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as exc:
        raise EvalError(f"{path}: not a readable .npy file ({what}): {exc}") from None


class _Zarr:
    """A Zarr array seen like a read-only memmap: shape, ndim, a NumPy dtype, and NumPy
    arrays out of slicing (zarr reads only the chunks a slice touches)."""

    def __init__(self, a):
        self._a = a
        self.shape = tuple(a.shape)
        self.ndim = len(self.shape)
        self.dtype = np.dtype(getattr(a.dtype, "to_native_dtype", lambda: a.dtype)())

    def __getitem__(self, index):
        return np.asarray(self._a[index])

    def __array__(self, dtype=None, copy=None):
        out = np.asarray(self._a[...])
        return out if dtype is None else out.astype(dtype)


def _check_index_rows(path, t, n_classes, ignore_index, start):
    """The first row (global) of a class-index chunk with an index out of range."""
    t = np.asarray(t)
    bad = (t < 0) | (t >= n_classes)
    if ignore_index is not None:
        bad &= t != ignore_index
    flat = np.flatnonzero(bad.reshape(-1))
    if flat.size:
        per_row = max(1, int(np.prod(t.shape[1:])))
        k = int(flat[0])
        value = int(t.reshape(-1)[k])
        return (f"{path}: class index {value} at row {start + k // per_row} is out of range "
                f"[0, {n_classes})")
    return None


class _Progress:
    def __init__(self, total_rows, bytes_per_row, quiet):
        self.total, self.bpr, self.quiet = total_rows, bytes_per_row, quiet
        self.t0 = self.last = time.perf_counter()
        self.tty = sys.stderr.isatty()

    def line(self, rows):
        dt = max(time.perf_counter() - self.t0, 1e-9)
        pct = 100.0 * rows / self.total if self.total else 100.0
        return (f"{rows}/{self.total} rows ({pct:5.1f}%)  {rows / dt:,.0f} rows/s  "
                f"{rows * self.bpr / dt / 1e9:.2f} GB/s")

    def update(self, rows, final=False):
        if self.quiet:
            return
        now = time.perf_counter()
        if final or now - self.last >= 0.5:
            self.last = now
            end = "\n" if final or not self.tty else ""
            print(("\r" if self.tty else "") + self.line(rows), end=end, file=sys.stderr,
                  flush=True)


def run(loss_name, argv):
    import fastloss
    from ._registry import LOSSES
    if loss_name not in LOSSES:
        raise EvalError(f"unknown loss {loss_name!r} (choose from {', '.join(sorted(LOSSES))})")
    spec = LOSSES[loss_name]
    parser, array_args = build_parser(spec)
    args = parser.parse_args(argv)
    opts = vars(args)
    if args.chunk_rows is not None and args.chunk_rows < 1:
        raise EvalError(f"--chunk-rows: expected an integer >= 1, got {args.chunk_rows}")

    files = {name: opts[name] for name in array_args if opts.get(name) is not None}
    if args.sample_weight:
        files["sample_weight"] = args.sample_weight
    flags = {name: ("--input" if name == spec.parameters[0] else _flag(name))
             for name in files}
    arrays = {name: _open(path, flags[name]) for name, path in files.items()}
    first = spec.parameters[0]
    x = arrays[first]
    if x.ndim == 0:
        raise EvalError(f"{files[first]}: expected an array with a batch axis, got a 0-d array")
    if x.dtype.kind != "f":
        raise EvalError(f"{files[first]}: expected a floating-point array (float32 or "
                        f"float64), got dtype {x.dtype}")
    axes = {first: spec.batch_axis(first)}       # ctc_loss: (T, N, C), the batch axis 1
    if axes[first] is None or x.ndim <= axes[first]:
        raise EvalError(f"{files[first]}: expected an array with a batch axis (axis "
                        f"{axes[first]}), got shape {x.shape}")
    n = x.shape[axes[first]]
    if spec.name == "ctc_loss" and "targets" in arrays and arrays["targets"].ndim == 1:
        raise EvalError(f"{files['targets']}: eval streams ctc_loss's targets by rows: "
                        "give them padded, shape (N, S), not concatenated")
    streamed, whole = {}, {}
    sig = inspect.signature(spec.prepare).parameters
    for name, a in arrays.items():
        if name == first:
            continue
        axis = 0 if name == "sample_weight" else spec.axis_of(name, a, x.ndim)
        if axis is not None and a.shape[axis] == n:
            streamed[name] = a           # cut into the same rows as the input
            axes[name] = axis
        elif name == "sample_weight" or (axis is not None and name in sig and
                                         sig[name].default is inspect.Parameter.empty):
            raise EvalError(f"{files[name]}: has {a.shape[0] if a.ndim else 0} rows, "
                            f"{files[first]} has {n}: the lengths must match")
        else:
            whole[name] = np.asarray(a)  # e.g. a class weight: every chunk gets it whole

    def rows(name, a, start, stop):
        axis = axes[name]
        return a[(slice(None),) * axis + (slice(start, stop),)]
    loss_kwargs = {k: opts[k] for k in spec.parameters if k not in array_args}
    loss_kwargs.update({k: v for k, v in whole.items()})
    reduction = loss_kwargs.get("reduction", "mean")
    if reduction == "none":
        raise EvalError("--reduction: eval accumulates 'mean' or 'sum' (use --per-item "
                        "for the unreduced losses)")
    # the streamed arguments in order up to the first one that is not streamed (a
    # linear_weight, given whole): positionally; the rest by name
    positional = []
    for p in spec.parameters:
        if p not in streamed and p != first:
            break
        positional.append(p)
    acc = fastloss.RunningLoss(spec.function, backend=args.backend, **loss_kwargs)

    bytes_per_row = sum(a.dtype.itemsize * int(np.prod(a.shape)) // max(1, n)
                        for a in [x, *streamed.values()])
    chunk = args.chunk_rows or max(1, DEFAULT_CHUNK_BYTES // max(1, bytes_per_row))
    class_index = (spec.name in ("nll_loss", "cross_entropy", "multi_margin_loss")
                   and "target" in streamed and streamed["target"].dtype.kind in "iu")
    n_classes = x.shape[1] if x.ndim >= 2 else None
    ignore = loss_kwargs.get("ignore_index") if spec.name != "multi_margin_loss" else None

    out_path, out, tmp = args.per_item, None, None
    progress = _Progress(n, bytes_per_row, args.quiet)
    t0 = time.perf_counter()
    try:
        for start in range(0, max(n, 1), chunk):
            stop = min(n, start + chunk)
            batch = {name: rows(name, a, start, stop) for name, a in streamed.items()}
            batch[first] = rows(first, x, start, stop)
            call_args = [batch.pop(p) for p in positional]
            sw = batch.pop("sample_weight", None)
            if class_index and n_classes is not None:
                target = (call_args[positional.index("target")] if "target" in positional
                          else batch["target"])
                msg = _check_index_rows(files["target"], target,
                                        n_classes, ignore, start)
                if msg:
                    raise EvalError(msg)
            try:
                acc.update(*call_args, sample_weight=sw, **batch)
                if out_path:
                    items = spec.function(*call_args, **{**loss_kwargs, **batch,
                                                         "reduction": "none"},
                                          sample_weight=sw, backend=args.backend)
                    if out is None:
                        tmp = tempfile.NamedTemporaryFile(
                            dir=os.path.dirname(os.path.abspath(out_path)) or ".",
                            prefix=os.path.basename(out_path) + ".", suffix=".tmp",
                            delete=False)
                        tmp.close()
                        out = np.lib.format.open_memmap(tmp.name, mode="w+",
                                                        dtype=items.dtype,
                                                        shape=(n, *items.shape[1:]))
                    out[start:stop] = items
            except (TypeError, ValueError, IndexError) as exc:
                text = str(exc)
                name = text.split(":", 1)[0]
                where = files.get(name, files[first])
                raise EvalError(f"{where}: rows {start}-{stop}: {text}") from None
            progress.update(stop)
        progress.update(n, final=True)
        if out_path:
            if out is None:   # no rows: still write a complete, empty file
                tmp = tempfile.NamedTemporaryFile(
                    dir=os.path.dirname(os.path.abspath(out_path)) or ".",
                    prefix=os.path.basename(out_path) + ".", suffix=".tmp", delete=False)
                tmp.close()
                np.save(tmp.name, np.empty((0,), acc.dtype or x.dtype))
                os.replace(tmp.name, out_path)
            else:
                out.flush()
                del out
                out = None
                os.replace(tmp.name, out_path)
            tmp = None
    finally:
        if tmp is not None:
            out = None
            try:
                os.unlink(tmp.name)
            except OSError:
                pass
    seconds = time.perf_counter() - t0

    result = {"loss": spec.name, "reduction": reduction, "sum": acc.total,
              "count": acc.items, "denominator": acc.denominator,
              "mean": float(fastloss._reduction.mean_of(acc.total, acc.denominator)),
              "result": float(acc.compute()), "rows": n, "seconds": seconds}
    int_target = "target" in streamed and streamed["target"].dtype.kind in "iu"
    if spec.name in ("nll_loss", "cross_entropy", "linear_cross_entropy") and int_target:
        result["perplexity"] = acc.perplexity()
    lines = [f"loss        {spec.name} (reduction={reduction!r})",
             f"rows        {n}",
             f"sum         {acc.total!r}",
             f"count       {acc.items}",
             f"denominator {acc.denominator!r}",
             f"mean        {result['mean']!r}"]
    if "perplexity" in result:
        lines.append(f"perplexity  {result['perplexity']!r}")
    print("\n".join(lines))
    if args.json:
        result["command"] = shlex.join(["fastloss", "eval", loss_name, *argv])
        result["inputs"] = {name: {"path": files[name], "shape": list(a.shape),
                                   "dtype": a.dtype.name} for name, a in arrays.items()}
        result["options"] = {k: (v.tolist() if isinstance(v, np.ndarray) else v)
                             for k, v in loss_kwargs.items()}
        result["state"] = acc.state_dict()
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2, allow_nan=True)
            f.write("\n")
    return 0


def main(argv):
    """``fastloss eval``; returns the exit code (2 with a one-line error on bad input)."""
    argv = list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        from ._registry import LOSSES
        print("usage: fastloss eval LOSS --input X.npy [--target Y.npy] [loss options] "
              "[--sample-weight W.npy] [--per-item OUT.npy] [--json FILE] [--chunk-rows N]"
              f"\n\nLOSS is one of: {', '.join(sorted(LOSSES))}\n"
              "(fastloss eval LOSS --help lists that loss's options)")
        return 0 if argv else 2
    try:
        import fastloss  # noqa: F401  (the registry is filled on import)
        return run(argv[0], argv[1:])
    except EvalError as exc:
        print(f"fastloss eval: error: {exc}", file=sys.stderr)
        return 2
