"""Dask arrays in, lazy Dask results out (the optional extra ``fastloss[dask]``).

A loss over a Dask array is a graph, never a gather of the data:

- "mean"/"sum": each batch chunk gives a record (float64 total, float64 denominator)
  from one kernel call (`_weighted.parts`); a tree of additions (eight at a time) sums
  the records and the last task divides: a 0-d Dask array.
- "none": one block of per-item losses per batch chunk, chunked like the batch.
- gradients: one fused value-and-gradient kernel call per batch chunk. A "mean" divides
  by a denominator that depends on the targets and weights only (the item count, the
  summed class weights of the counted targets, the summed sample weights), never on the
  logits: it is summed first in the graph from per-chunk records that read only those,
  and every gradient block then runs with the global scale, exactly as the in-memory
  call does. The logits are read once. Arguments shared by every item (a
  ``linear_weight``, a ``positive`` broadcast along the batch) get the sum of the
  per-chunk gradients, again by a tree reduction.

Which axis of which argument is the batch is the registry's (`LossSpec.batch_axis`):
the first axis, ctc_loss's log_probs (T, N, C) its second, linear_weight none. Chunks
along every other axis are merged into one (a row of logits must be whole for its
log-sum-exp); when a merged block would exceed ``8 x`` dask's ``array.chunk-size``
(1 GiB by default) the call raises with the rechunk that fits. NumPy arguments whose
batch axis has the batch's length are cut into the same chunks; any other argument (a
class weight) goes whole to every task.

Threads: dask's workers are the parallelism. Inside a dask.distributed worker each task
runs fastloss's kernels on ``FASTLOSS_DASK_THREADS`` threads (default 1), so that n
workers x t threads use n*t cores, not n*t*cores. fastloss's Numba kernels run on TBB,
which is safe to enter from several threads at once (Numba's default "workqueue" layer
aborts there; fastloss serialises its calls when it has to fall back to it).
"""
from __future__ import annotations

import inspect
import math
import os

import numpy as np

from . import _engine, _threads, _weighted

_F64 = np.dtype(np.float64)


def is_dask(x) -> bool:
    return type(x).__module__.startswith("dask") and hasattr(x, "dask") and hasattr(x, "chunks")


def _worker_threads():
    """Inside a dask.distributed worker: limit fastloss's kernel threads (see module
    docstring). The worker is its own process, so the setting is the worker's alone."""
    try:
        from distributed import get_worker
        get_worker()
    except (ImportError, ValueError):
        return
    want = max(1, int(os.environ.get("FASTLOSS_DASK_THREADS", "1")))
    if _threads.get_num_threads() != want:
        _threads.set_num_threads(want)


def max_block_bytes():
    """The largest block a merge of chunks may make: 8 x dask's array.chunk-size."""
    import dask
    from dask.utils import parse_bytes
    return 8 * parse_bytes(dask.config.get("array.chunk-size"))


def _default_reduction(spec, kwargs):
    reduction = kwargs.pop("reduction", None)
    if reduction is None:
        reduction = inspect.signature(spec.prepare).parameters["reduction"].default
    return reduction


class _Plan:
    """How one call's arguments meet the batch chunks."""

    def __init__(self, spec, args, kwargs):
        import dask.array as da
        self.spec = spec
        names = spec.parameters
        if len(args) > len(names):
            raise TypeError(f"{spec.name}() takes {len(names)} arguments, got {len(args)}")
        bound = dict(zip(names, args), **kwargs)
        self.first = first = names[0]
        if first not in bound:
            raise TypeError(f"{spec.name}() missing its first argument {first!r}")
        x = bound[first]
        ax0 = spec.batch_axis(first)
        x_ndim = np.ndim(x) if hasattr(x, "shape") else np.ndim(np.asarray(x))
        if ax0 is None or x_ndim <= ax0 or (spec.name == "ctc_loss" and x_ndim != 3):
            raise ValueError(f"{first}: a Dask call needs a batch axis (got shape "
                             f"{np.shape(x)}); add one of length 1 for a single item")
        n = x.shape[ax0]
        self.n = n
        if spec.name == "ctc_loss" and np.ndim(bound.get("targets", 0)) == 1:
            bound["targets"] = _ctc_padded(bound)
        # which argument is cut along which axis; the reference chunks: the input's
        axes = {}
        for k, v in bound.items():
            if not hasattr(v, "shape") and not isinstance(v, (list, tuple)):
                continue
            if isinstance(v, (list, tuple)):   # lengths as a list (ctc_loss)
                v = bound[k] = np.asarray(v)
            axis = spec.axis_of(k, v, x_ndim)
            if axis is not None and v.shape[axis] == n:
                axes[k] = axis
        lazy = [k for k in axes if is_dask(bound[k])]
        ref = first if first in lazy else lazy[0] if lazy else None
        if ref is None:    # only a sample_weight (or grad_output) is lazy: one chunk
            chunks0 = (n,)
        else:
            chunks0 = bound[ref].chunks[axes[ref]]
        self.chunks0, self.n_blocks = tuple(chunks0), len(chunks0)
        self.batch, self.fixed, self.axes = {}, {}, axes
        for k, v in bound.items():
            if k in axes:
                a = v if is_dask(v) else da.from_array(np.asarray(v), chunks=-1)
                self.batch[k] = _merged(k, a, axes[k], self.chunks0)
            elif is_dask(v):
                # shared by every item (a class weight, a linear_weight, an argument
                # broadcast along the batch): whole, one chunk, to every task
                self.fixed[k] = v.rechunk(-1)
            else:
                self.fixed[k] = v
        self.names = names
        # Tasks get their chunks as Delayed objects naming the chunks' keys: a dask
        # Array given to dask.delayed would be finalised (concatenated) in a subgraph of
        # its own per task, which costs ~10 ms each on a distributed scheduler.
        self._chunks = {k: a.to_delayed(optimize_graph=False) for k, a in self.batch.items()}
        self._fixed_delayed = {k: _one(v) if is_dask(v) else v for k, v in self.fixed.items()}

    def block(self, i):
        """The batch arguments of block i (lazy), by name."""
        out = {}
        for k, chunks in self._chunks.items():
            index = [0] * chunks.ndim
            index[self.axes[k]] = i
            out[k] = chunks[tuple(index)]
        return out

    def call(self, i, reduction):
        return {**self._fixed_delayed, **self.block(i), "reduction": reduction}

    def cut_items(self, value, name, tail):
        """`value` (sample_weight, or grad_output of "none": broadcastable to, or of, the
        unreduced loss's shape) as one block per batch chunk: cut when its first axis is
        the batch, else whole. Its shape is checked here, before anything is computed."""
        import dask.array as da
        if value is None:
            return [None] * self.n_blocks
        shape = (self.n, *tail)
        vshape = tuple(np.shape(value))
        if name == "grad_output":
            ok = vshape == shape
            want = f"expected shape {shape} (the shape of the unreduced loss)"
        else:
            try:
                ok = np.broadcast_shapes(vshape, shape) == shape
            except ValueError:
                ok = False
            want = f"expected a shape that broadcasts to the unreduced loss's shape {shape}"
        if not ok:
            raise ValueError(f"{name}: {want}, got {vshape}")
        item_ndim = len(shape)
        batched = np.ndim(value) == item_ndim and item_ndim and np.shape(value)[0] == self.n
        if not batched:
            whole = _one(value) if is_dask(value) else value
            return [whole] * self.n_blocks
        a = value if is_dask(value) else da.from_array(np.asarray(value), chunks=-1)
        chunks = _merged(name, a, 0, self.chunks0).to_delayed(optimize_graph=False)
        return [chunks[(i,) + (0,) * (a.ndim - 1)] for i in range(self.n_blocks)]

    def probe(self, reduction):
        """(shape of the unreduced loss after its batch axis, result dtype), from a call
        on zero rows of each batch argument (one row if the loss refuses an empty call):
        nothing is computed."""
        last = None
        for rows in (0, 1):
            call = {}
            for k, a in self.batch.items():
                shape = list(a.shape)
                shape[self.axes[k]] = rows
                call[k] = np.zeros(shape, a.dtype)
            fixed = {k: (np.zeros(v.shape, v.dtype) if is_dask(v) else v)
                     for k, v in self.fixed.items()}
            try:
                prep = self.spec.prepare(**fixed, **call, reduction=reduction)
            except (ValueError, IndexError, TypeError) as exc:
                last = exc
                continue
            return tuple(prep.item_shape[1:]), prep.dtype, prep
        raise last


def _one(a):
    """A Dask array as one Delayed chunk (see _Plan)."""
    return a.rechunk(-1).to_delayed(optimize_graph=False).reshape(-1)[0]


def _merged(name, a, axis, chunks0):
    """`a` in the batch chunks along `axis`, one chunk along every other axis; raises
    (with the fix) when such a block would not fit in `max_block_bytes`."""
    other = math.prod(s for i, s in enumerate(a.shape) if i != axis)
    row_bytes = max(1, other * a.dtype.itemsize)
    limit = max_block_bytes()
    if max(chunks0, default=0) * row_bytes > limit and any(
            len(c) > 1 for i, c in enumerate(a.chunks) if i != axis):
        rows = max(1, limit // row_bytes)
        spec = ", ".join(f"{i}: {rows if i == axis else -1}" for i in range(a.ndim))
        raise ValueError(
            f"{name}: merging its chunks along the axes other than the batch (axis {axis}) "
            f"would make blocks of {max(chunks0) * row_bytes / 2**20:.0f} MiB, more than "
            f"{limit / 2**20:.0f} MiB (8 x dask's array.chunk-size); rechunk along the "
            f"batch first: {name}.rechunk({{{spec}}})")
    return a.rechunk({i: (chunks0 if i == axis else -1) for i in range(a.ndim)})


def _ctc_padded(bound):
    """ctc_loss's concatenated 1-D targets as the padded (N, S) layout (a batch chunk
    must hold its own rows): from NumPy targets and lengths; lazy ones cannot be cut."""
    from .functional.sequence import _padded_targets
    t, tl = bound["targets"], bound.get("target_lengths")
    if is_dask(t) or is_dask(tl) or tl is None:
        raise ValueError("targets: with Dask inputs, ctc_loss needs padded targets of shape "
                         "(N, S) (or NumPy concatenated targets with NumPy target_lengths)")
    x = bound["log_probs"]
    tl = np.asarray(tl, np.int64)
    return _padded_targets(np.asarray(t), tl, x.shape[1], True)


# -- tasks (run on the workers) -------------------------------------------------------
# They take the loss's name, not its registry row: a worker looks the row up in its own
# registry (the row's functions pickle by name only through the public function).
def _spec(name):
    from ._registry import LOSSES
    _worker_threads()
    return LOSSES[name]


def _record(name, call, backend, sample_weight):
    spec = _spec(name)
    prep = spec.prepare(**call)
    total, denom, _ = _weighted.parts(prep, backend, sample_weight)
    return np.array([[total, denom]], _F64)


def _denominator_record(name, call, backend, sample_weight):
    spec = _spec(name)
    prep = spec.prepare(**call)
    return np.array([_weighted.denominator(prep, backend, sample_weight)], _F64)


def _none_block(name, call, backend, sample_weight):
    return _spec(name).function(**call, backend=backend, sample_weight=sample_weight)


def _grad_block(name, positions, call, backend, sample_weight, grad_output, denom):
    """(float64 total or the block's per-item losses, gradients) of one batch chunk;
    `denom`: the whole array's denominator (None for "sum"/"none")."""
    spec = _spec(name)
    prep = spec.prepare(**call)
    dtypes = _engine.input_grad_dtypes(prep, positions)
    if denom is not None:
        denom = float(np.asarray(denom).reshape(-1)[0])
    if sample_weight is None:
        if denom is not None:
            prep = prep._replace(denom=denom)   # check_targets keeps a given denominator
        value, grads = _engine.value_and_grad(prep, positions, grad_output, None, backend,
                                              dtypes, spec.differentiable, raw_total=True)
    else:
        value, grads = _weighted.value_and_grad(prep, positions, grad_output, None, backend,
                                                dtypes, sample_weight, spec.differentiable,
                                                raw_total=True, denom=denom)
    if prep.reduction != "none":
        value = np.array([value], _F64)
    return (value, *grads)


def _finish(reduction, dtype, *records):
    """The 0-d loss from every block's [total, denominator] record, in one task (see
    `forward`)."""
    from ._reduction import reduce_total
    rec = _add(*records).reshape(-1)
    total, denom = float(rec[0]), float(rec[1])
    return reduce_total(total, "sum" if reduction == "sum" else "mean", denom, dtype)


def _finish_total(denom, reduction, dtype, *totals):
    from ._reduction import reduce_total
    total = float(_add(*totals).reshape(-1)[0])
    d = 1.0 if denom is None else float(np.asarray(denom).reshape(-1)[0])
    return reduce_total(total, "sum" if reduction == "sum" else "mean", d, dtype)


# -- graph builders ---------------------------------------------------------------------
def _plan_call(spec, args, kwargs, sample_weight):
    """What forward and value_and_grad both start from: (reduction, the chunk plan, the
    item shape's tail, the computed dtype, a probe Prepared, the sample weights per chunk)."""
    kwargs = dict(kwargs)
    reduction = _default_reduction(spec, kwargs)
    plan = _Plan(spec, args, kwargs)
    tail, dtype, prep0 = plan.probe(reduction)
    return reduction, plan, tail, dtype, prep0, plan.cut_items(sample_weight, "sample_weight",
                                                               tail)


def forward(spec, args, kwargs, backend, sample_weight):
    """A loss call with Dask inputs (or a Dask sample_weight): a lazy Dask array."""
    import dask
    import dask.array as da
    reduction, plan, tail, dtype, _, sws = _plan_call(spec, args, kwargs, sample_weight)
    if reduction == "none":
        blocks = [da.from_delayed(dask.delayed(_none_block)(
                      spec.name, plan.call(i, "none"), backend, sws[i]),
                      (plan.chunks0[i], *tail), dtype) for i in range(plan.n_blocks)]
        return da.concatenate(blocks, axis=0)
    records = [dask.delayed(_record)(spec.name, plan.call(i, reduction), backend, sws[i])
               for i in range(plan.n_blocks)]
    # The records (16 bytes each) are summed and finished by one task: each level of a
    # tree of sums is one more hop between the workers (the task stream of a 2-worker
    # LocalCluster showed each hop waiting on a transfer from the other worker), and a
    # flat sum of 16-byte records needs no tree for memory.
    return da.from_delayed(dask.delayed(_finish)(reduction, dtype, *records), (), dtype)


def _add(*parts):
    """The sum of a group of arrays (float64 records, or one gradient per block)."""
    total = np.array(parts[0], copy=True)
    for p in parts[1:]:
        total += p
    return total


def _delayed_sum(parts):
    """The sum of Delayed arrays (the blocks' gradients of an argument shared by every
    item) as a tree of additions, eight at a time (dask's own split_every for a sum): a
    Delayed. Fewer tasks than a dask.array reduction over the same parts (from_delayed,
    concatenate, sum, rechunk to one block for the last task): for 20 records, ~70 tasks
    against 20 + 4 took 213 -> 178 ms per compute on a 2-worker LocalCluster
    (bench/dask_eval.py, 2 GB in 100 MB chunks, side by side)."""
    import dask
    parts = list(parts)
    while len(parts) > 1:
        parts = [dask.delayed(_add)(*parts[i:i + 8]) for i in range(0, len(parts), 8)]
    return parts[0]


def _tree_sum(parts, shape, dtype):
    import dask.array as da
    return da.from_delayed(_delayed_sum(parts), shape, dtype)


def value_and_grad(spec, single, positions, args, kwargs, grad_output, backend,
                   sample_weight):
    """value_and_grad with Dask inputs: (lazy value, lazy gradient(s))."""
    import dask
    import dask.array as da
    from ._validate import grad_output_scalar
    reduction, plan, tail, dtype, prep0, sws = _plan_call(spec, args, kwargs, sample_weight)
    if reduction == "none":
        gos = plan.cut_items(grad_output, "grad_output", tail)
        denom = None
    else:
        g = 1.0 if grad_output is None else grad_output_scalar(grad_output, reduction)
        gos = [g] * plan.n_blocks
        denom = None
        if prep0.reduction == "mean":       # "mean" and kl_div's "batchmean"
            denom = dask.delayed(_add)(*[dask.delayed(_denominator_record)(
                spec.name, plan.call(i, reduction), backend, sws[i])
                for i in range(plan.n_blocks)])     # one task, as forward's records
    names = [spec.differentiable[p] for p in positions]
    n_out = 1 + len(names)
    blocks = [dask.delayed(_grad_block, nout=n_out)(
                  spec.name, positions, plan.call(i, reduction), backend, sws[i], gos[i], denom)
              for i in range(plan.n_blocks)]
    if reduction == "none":
        value = da.concatenate([da.from_delayed(b[0], (plan.chunks0[i], *tail), dtype)
                                for i, b in enumerate(blocks)], axis=0)
    else:
        value = da.from_delayed(dask.delayed(_finish_total)(
            denom, reduction, dtype, *[b[0] for b in blocks]), (), dtype)
    grads = []
    for k, name in enumerate(names, start=1):
        if name in plan.batch:
            a, axis = plan.batch[name], plan.axes[name]
        else:
            a, axis = plan.fixed.get(name), None
        if a is None or not hasattr(a, "shape"):
            raise ValueError(f"{name}: a Dask gradient needs {name} as an array")
        gdt = _grad_dtype(a.dtype, dtype)
        if axis is None:       # shared by every item: the sum of the blocks' gradients
            grads.append(_tree_sum([b[k] for b in blocks], tuple(a.shape), gdt))
            continue
        parts = []
        for i, b in enumerate(blocks):
            shape = list(a.shape)
            shape[axis] = plan.chunks0[i]
            parts.append(da.from_delayed(b[k], tuple(shape), gdt))
        grads.append(da.concatenate(parts, axis=axis))
    return value, (grads[0] if single else tuple(grads))


def _grad_dtype(input_dtype, computed):
    """What `Wrt.dtype` gives a gradient: the input's own float32/float64."""
    from ._validate import compute_dtype, is_floating
    dt = np.dtype(input_dtype)
    return compute_dtype(dt) if is_floating(dt) else computed
