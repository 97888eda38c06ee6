"""Dask arrays in, lazy Dask results out (the optional extra ``fastloss[dask]``).

A loss over a Dask array is a graph, never a gather of the data:

- "mean"/"sum": each batch chunk gives a record (float64 total, float64 denominator)
  from one kernel call (`_weighted.parts`); one last task sums the records and divides:
  a 0-d Dask array.
- "none": one block of per-item losses per batch chunk, chunked like the batch.
- gradients: one fused value-and-gradient kernel call per batch chunk. A "mean" divides
  by a denominator that depends on the targets and weights only (the item count, the
  summed class weights of the counted targets, the summed sample weights), never on the
  logits: it is summed first in the graph from per-chunk records that read only those,
  and every gradient block then runs with the global scale, exactly as the in-memory
  call does. The logits are read once. Arguments shared by every item (a
  ``linear_weight``, a ``positive`` broadcast along the batch) get the sum of the
  per-chunk gradients, by a tree of additions eight at a time.

The graph is written directly, one layer of plain tasks over the inputs' layers
(`_Graph`), in time linear in the number of chunks.

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

import functools
import inspect
import math
import operator
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
        # The graph is written directly (see _Graph): each task names the keys of its
        # chunks, and arguments shared by every task are one key each.
        self.graph = _Graph()
        self._keys = {k: self.graph.block_keys(a, axes[k]) for k, a in self.batch.items()}
        self._fixed_keys = {k: self.graph.whole(v) if is_dask(v) else self.graph.const(v)
                            for k, v in self.fixed.items()}

    def block(self, i):
        """The batch arguments of block i (keys of chunks), by name."""
        return {k: keys[i] for k, keys in self._keys.items()}

    def call(self, i, reduction):
        return {**self._fixed_keys, **self.block(i), "reduction": reduction}

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
            whole = self.graph.whole(value) if is_dask(value) else self.graph.const(value)
            return [whole] * self.n_blocks
        a = value if is_dask(value) else da.from_array(np.asarray(value), chunks=-1)
        return self.graph.block_keys(_merged(name, a, 0, self.chunks0), 0)

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


class _Key:
    """A task argument that is the result of another task (dask substitutes it): a key,
    or a task expression such as (getitem, key, 0)."""
    __slots__ = ("key",)

    def __init__(self, key):
        self.key = key


class _Graph:
    """One call's tasks, written as a plain dict of dask tasks in a single
    HighLevelGraph layer over the input collections.

    Why not dask.delayed: each delayed call merges the graphs of its arguments (every
    chunk's Delayed carries the whole input array's graph, the shared denominator every
    record's layer), so building cost grew with chunks x layers: a value_and_grad over
    2000 chunks took 46 s to build (forward 2.0 s), 20 chunks 44 ms (forward 19 ms).
    Written directly, the build is linear in the number of chunks."""

    def __init__(self):
        import uuid
        self.tasks = {}
        self.dependencies = []
        self._seen = set()
        self.token = uuid.uuid4().hex

    def name(self, what):
        return f"fastloss-{what}-{self.token}"

    def _depend(self, a):
        if id(a) not in self._seen:
            self._seen.add(id(a))
            self.dependencies.append(a)

    def block_keys(self, a, axis):
        """The keys of a Dask array's blocks along `axis` (one chunk along the others)."""
        self._depend(a)
        keys = a.__dask_keys__()
        out = []
        for i in range(a.numblocks[axis]):
            k = keys
            for ax in range(a.ndim):
                k = k[i if ax == axis else 0]
            out.append(_Key(k))
        return out

    def whole(self, a):
        """A Dask array as the key of its one chunk."""
        a = a.rechunk(-1)
        self._depend(a)
        k = a.__dask_keys__()
        while isinstance(k, list):
            k = k[0]
        return _Key(k)

    def const(self, v):
        """A NumPy array goes into the graph once (not into every task); anything else
        is given to the tasks as it is."""
        if not isinstance(v, np.ndarray):
            return v
        key = (self.name("const"), len(self.tasks))
        self.tasks[key] = v
        return _Key(key)

    def add(self, key, fn, **kwargs):
        """tasks[key] = fn(**kwargs), where a _Key value (also inside a dict value, the
        loss's `call`) is another task's result: those become the task's arguments, which
        dask substitutes; the rest rides in a functools.partial, which dask leaves alone."""
        static, paths, args = {}, [], []
        for k, v in kwargs.items():
            if isinstance(v, dict):
                inner = {}
                for kk, vv in v.items():
                    if isinstance(vv, _Key):
                        paths.append((k, kk))
                        args.append(vv.key)
                    else:
                        inner[kk] = vv
                static[k] = inner
            elif isinstance(v, _Key):
                paths.append((k,))
                args.append(v.key)
            elif isinstance(v, _Keys):
                paths.append((k,))
                args.append(v.keys)
            else:
                static[k] = v
        self.tasks[key] = (functools.partial(_run, fn, static, tuple(paths)), *args)
        return _Key(key)

    def array(self, name, chunks, dtype):
        """The Dask array whose blocks are the tasks named `name`."""
        import dask.array as da
        from dask.highlevelgraph import HighLevelGraph
        hlg = HighLevelGraph.from_collections(name, self.tasks,
                                              dependencies=self.dependencies)
        return da.Array(hlg, name, chunks=chunks, dtype=dtype)


class _Keys:
    """A list of task results given as one argument (`_Graph.add` passes them as a
    list, which dask substitutes element by element)."""
    __slots__ = ("keys",)

    def __init__(self, keys):
        self.keys = [k.key for k in keys]


def _run(fn, static, paths, *values):
    """A task of `_Graph.add`: fn(**kwargs) with the computed values put back in place."""
    kwargs = {k: dict(v) if isinstance(v, dict) else v for k, v in static.items()}
    for path, v in zip(paths, values):
        if len(path) == 2:
            kwargs[path[0]][path[1]] = v
        else:
            kwargs[path[0]] = v
    return fn(**kwargs)


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


def _finish(reduction, dtype, records):
    """The 0-d loss from every block's [total, denominator] record, in one task (see
    `forward`)."""
    from ._reduction import reduce_total
    rec = _add(*records).reshape(-1)
    total, denom = float(rec[0]), float(rec[1])
    return reduce_total(total, "sum" if reduction == "sum" else "mean", denom, dtype)


def _finish_total(reduction, dtype, denom, totals):
    from ._reduction import reduce_total
    total = float(_add(*totals).reshape(-1)[0])
    d = 1.0 if denom is None else float(np.asarray(denom).reshape(-1)[0])
    return reduce_total(total, "sum" if reduction == "sum" else "mean", d, dtype)


def _add_all(parts):
    return _add(*parts)


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
    reduction, plan, tail, dtype, _, sws = _plan_call(spec, args, kwargs, sample_weight)
    g = plan.graph
    if reduction == "none":
        name = g.name(spec.name)
        for i in range(plan.n_blocks):
            g.add((name, i, *[0] * len(tail)), _none_block, name=spec.name,
                  call=plan.call(i, "none"), backend=backend, sample_weight=sws[i])
        return g.array(name, (plan.chunks0, *[(s,) for s in tail]), dtype)
    records = [g.add((g.name("record"), i), _record, name=spec.name,
                     call=plan.call(i, reduction), backend=backend, sample_weight=sws[i])
               for i in range(plan.n_blocks)]
    # The records (16 bytes each) are summed and finished by one task: each level of a
    # tree of sums is one more hop between the workers (the task stream of a 2-worker
    # LocalCluster showed each hop waiting on a transfer from the other worker), and a
    # flat sum of 16-byte records needs no tree for memory.
    name = g.name(spec.name)
    g.add((name,), _finish, reduction=reduction, dtype=dtype, records=_Keys(records))
    return g.array(name, (), dtype)


def _add(*parts):
    """The sum of a group of arrays (float64 records, or one gradient per block)."""
    total = np.array(parts[0], copy=True)
    for p in parts[1:]:
        total += p
    return total


def _tree_sum(g, name, parts, shape):
    """Add the block gradients `parts` of an argument shared by every item as a tree,
    eight at a time (dask's own split_every for a sum, which bounds the memory of a task
    to eight gradients); the last task's key is (name, 0, ..., 0)."""
    level = 0
    while len(parts) > 8:
        parts = [g.add((f"{name}-{level}", j // 8), _add_all, parts=_Keys(parts[j:j + 8]))
                 for j in range(0, len(parts), 8)]
        level += 1
    g.add((name, *[0] * len(shape)), _add_all, parts=_Keys(parts))


def value_and_grad(spec, single, positions, args, kwargs, grad_output, backend,
                   sample_weight):
    """value_and_grad with Dask inputs: (lazy value, lazy gradient(s))."""
    from ._validate import grad_output_scalar
    reduction, plan, tail, dtype, prep0, sws = _plan_call(spec, args, kwargs, sample_weight)
    g = plan.graph
    if reduction == "none":
        gos = plan.cut_items(grad_output, "grad_output", tail)
        denom = None
    else:
        go = 1.0 if grad_output is None else grad_output_scalar(grad_output, reduction)
        gos = [go] * plan.n_blocks
        denom = None
        if prep0.reduction == "mean":       # "mean" and kl_div's "batchmean"
            records = [g.add((g.name("denominator"), i), _denominator_record,
                             name=spec.name, call=plan.call(i, reduction),
                             backend=backend, sample_weight=sws[i])
                       for i in range(plan.n_blocks)]
            denom = g.add((g.name("denominator-sum"),), _add_all,
                          parts=_Keys(records))     # one task, as forward's records
    names = [spec.differentiable[p] for p in positions]
    block = g.name("grad-block")
    for i in range(plan.n_blocks):
        g.add((block, i), _grad_block, name=spec.name, positions=positions,
              call=plan.call(i, reduction), backend=backend, sample_weight=sws[i],
              grad_output=gos[i], denom=denom)

    def part(i, k):     # item k of block i's (value, *gradients)
        return _Key((operator.getitem, (block, i), k))

    graph_arrays = []
    if reduction == "none":
        vname = g.name(spec.name)
        for i in range(plan.n_blocks):
            g.tasks[(vname, i, *[0] * len(tail))] = part(i, 0).key
        graph_arrays.append((vname, (plan.chunks0, *[(s,) for s in tail]), dtype))
    else:
        vname = g.name(spec.name)
        g.add((vname,), _finish_total, reduction=reduction, dtype=dtype, denom=denom,
              totals=_Keys([part(i, 0) for i in range(plan.n_blocks)]))
        graph_arrays.append((vname, (), dtype))
    for k, name in enumerate(names, start=1):
        if name in plan.batch:
            a, axis = plan.batch[name], plan.axes[name]
        else:
            a, axis = plan.fixed.get(name), None
        if a is None or not hasattr(a, "shape"):
            raise ValueError(f"{name}: a Dask gradient needs {name} as an array")
        gdt = _grad_dtype(a.dtype, dtype)
        gname = g.name(f"grad-{name}")
        if axis is None:       # shared by every item: the sum of the blocks' gradients
            _tree_sum(g, gname, [part(i, k) for i in range(plan.n_blocks)], a.shape)
            graph_arrays.append((gname, tuple((s,) for s in a.shape), gdt))
            continue
        for i in range(plan.n_blocks):
            g.tasks[(gname, *[i if ax == axis else 0 for ax in range(a.ndim)])] = \
                part(i, k).key
        graph_arrays.append((gname, tuple(plan.chunks0 if ax == axis else (s,)
                                          for ax, s in enumerate(a.shape)), gdt))
    value, *grads = [g.array(*spec_) for spec_ in graph_arrays]
    return value, (grads[0] if single else tuple(grads))


def _grad_dtype(input_dtype, computed):
    """What `Wrt.dtype` gives a gradient: the input's own float32/float64."""
    from ._validate import compute_dtype, is_floating
    dt = np.dtype(input_dtype)
    return compute_dtype(dt) if is_floating(dt) else computed
