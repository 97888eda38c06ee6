"""Dask arrays in, lazy Dask results out (the optional extra ``fastloss[dask]``).

A loss over a Dask array is a graph, never a gather of the data:

- "mean"/"sum": each batch chunk gives a record (float64 total, float64 denominator)
  from one kernel call (`_weighted.parts`); dask's tree reduction sums the records
  (chunk -> combine -> aggregate) and the last task divides: a 0-d Dask array.
- "none": one block of per-item losses per batch chunk, chunked like the batch.
- gradients: one block per batch chunk; for "mean" each block depends on the summed
  records, so the global denominator is computed in the graph, not eagerly.

Chunks along every axis but the batch axis are merged into one (a row of logits must
be whole for its log-sum-exp). NumPy arrays whose first axis is the batch are cut into
the same chunks; any other array (a class weight) goes whole to every task.

Threads: dask's workers are the parallelism. Inside a dask.distributed worker each task
runs fastloss's kernels on ``FASTLOSS_DASK_THREADS`` threads (default 1), so that n
workers x t threads use n*t cores, not n*t*cores. (fastloss's Numba kernels run on TBB,
which is safe to enter from several threads; Numba's default "workqueue" layer aborts.)
"""
from __future__ import annotations

import os

import numpy as np

from . import _threads, _weighted

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


class _Plan:
    """How one call's arguments meet the batch chunks."""

    def __init__(self, spec, args, kwargs):
        import dask.array as da
        self.spec = spec
        names = spec.parameters
        bound = dict(zip(names, args), **kwargs)
        self.first = names[0]
        lazy = [n for n, v in bound.items() if is_dask(v)]
        x = bound[self.first]
        if np.ndim(x) == 0:
            raise ValueError(f"{self.first}: a Dask call needs a batch axis (got a 0-d "
                             "array)")
        n = x.shape[0]
        ref = next(bound[k] for k in lazy if bound[k].ndim and bound[k].shape[0] == n)
        chunks0 = ref.rechunk({i: -1 for i in range(1, ref.ndim)}).chunks[0]
        self.batch, self.fixed = {}, {}
        for k, v in bound.items():
            if not hasattr(v, "shape") or not np.ndim(v):
                self.fixed[k] = v
                continue
            per_class = k in ("weight", "pos_weight") and v.ndim < np.ndim(x)
            if not per_class and v.shape[0] == n:
                a = v if is_dask(v) else da.from_array(np.asarray(v), chunks=-1)
                self.batch[k] = a.rechunk({0: chunks0, **{i: -1 for i in range(1, a.ndim)}})
            else:
                if is_dask(v):
                    raise ValueError(f"{k}: a Dask array must have the batch ({n} rows) as "
                                     f"its first axis, got shape {v.shape}; pass a NumPy "
                                     "array for an argument shared by every batch")
                self.fixed[k] = v
        self.chunks0 = chunks0
        self.n_blocks = len(chunks0)

    def blocks(self, i):
        """The delayed batch arrays of block i, by name."""
        return {k: a.blocks[i] for k, a in self.batch.items()}

    def item_tail(self, dtype_probe):
        """The shape of the unreduced loss after its batch axis, and its dtype, from a
        call on zero rows (no data)."""
        args = {k: np.zeros((0, *a.shape[1:]), a.dtype) for k, a in self.batch.items()}
        prep = self.spec.prepare(**args, **{k: v for k, v in self.fixed.items()},
                                 **dtype_probe)
        return tuple(prep.item_shape[1:]), prep.dtype


def _call_kwargs(plan, arrays, reduction):
    return {**plan.fixed, **arrays, "reduction": reduction}


def _record(spec, call, backend, sample_weight):
    _worker_threads()
    prep = spec.prepare(**call)
    total, denom, _ = _weighted.parts(prep, backend, sample_weight)
    return np.array([[total, denom]], _F64)


def _none_block(spec, call, backend, sample_weight):
    _worker_threads()
    return spec.function(**call, backend=backend, sample_weight=sample_weight)


def _grad_block(spec, argnums, call, backend, sample_weight, grad_output, records=None):
    from ._grad import value_and_grad
    _worker_threads()
    if records is not None:      # "mean": the global denominator, summed in the graph
        grad_output = float(grad_output) / float(records[1]) if records[1] else \
            float(grad_output) * np.nan
    _, grads = value_and_grad(spec.function, argnums)(
        **call, grad_output=grad_output, backend=backend, sample_weight=sample_weight)
    return grads


def _sample_weight_blocks(plan, sample_weight):
    import dask.array as da
    if sample_weight is None:
        return [None] * plan.n_blocks
    s = sample_weight if is_dask(sample_weight) else da.from_array(np.asarray(sample_weight),
                                                                  chunks=-1)
    if s.ndim == 0 or s.shape[0] != sum(plan.chunks0):
        raise ValueError("sample_weight: a Dask call needs per-sample weights with the batch "
                         "as their first axis")
    s = s.rechunk({0: plan.chunks0, **{i: -1 for i in range(1, s.ndim)}})
    return [s.blocks[i] for i in range(plan.n_blocks)]


def _records(plan, backend, sample_weight, reduction):
    import dask
    import dask.array as da
    sws = _sample_weight_blocks(plan, sample_weight)
    parts = [da.from_delayed(dask.delayed(_record)(plan.spec, _call_kwargs(
                 plan, plan.blocks(i), reduction), backend, sws[i]), (1, 2), _F64)
             for i in range(plan.n_blocks)]
    # dask's tree reduction: chunk -> combine -> aggregate over (1, 2) records
    return da.concatenate(parts, axis=0).sum(axis=0, dtype=_F64)


def forward(spec, args, kwargs, backend, sample_weight):
    """A loss call with Dask inputs: a lazy Dask array."""
    import dask
    import dask.array as da
    reduction = kwargs.pop("reduction", None)
    if reduction is None:
        import inspect
        reduction = inspect.signature(spec.prepare).parameters["reduction"].default
    plan = _Plan(spec, args, kwargs)
    tail, dtype = plan.item_tail({"reduction": "sum" if reduction == "batchmean"
                                  else reduction})
    if reduction == "none":
        sws = _sample_weight_blocks(plan, sample_weight)
        blocks = [da.from_delayed(dask.delayed(_none_block)(
                      spec, _call_kwargs(plan, plan.blocks(i), "none"), backend, sws[i]),
                      (plan.chunks0[i], *tail), dtype) for i in range(plan.n_blocks)]
        return da.concatenate(blocks, axis=0)
    rec = _records(plan, backend, sample_weight, reduction)
    return da.from_delayed(dask.delayed(_finish)(rec, reduction, dtype), (), dtype)


def _finish(rec, reduction, dtype):
    from ._reduction import reduce_total
    total, denom = float(rec[0]), float(rec[1])
    return reduce_total(total, "sum" if reduction == "sum" else "mean", denom, dtype)


def value_and_grad(spec, single, positions, args, kwargs, grad_output, backend,
                   sample_weight):
    """value_and_grad with Dask inputs: (lazy value, lazy gradient(s))."""
    import dask
    import dask.array as da
    value = forward(spec, args, dict(kwargs), backend, sample_weight)
    reduction = kwargs.get("reduction")
    if reduction is None:
        import inspect
        reduction = inspect.signature(spec.prepare).parameters["reduction"].default
    plan = _Plan(spec, args, {k: v for k, v in kwargs.items() if k != "reduction"})
    names = [spec.differentiable[p] for p in positions]
    for name in names:
        if name not in plan.batch:
            raise ValueError(f"{name}: a Dask gradient needs {name} to have the batch as its "
                             "first axis")
    sws = _sample_weight_blocks(plan, sample_weight)
    argnums = tuple(names)
    if reduction == "none":
        go = grad_output
        if go is not None:
            go = go if is_dask(go) else da.from_array(np.asarray(go), chunks=-1)
            go = go.rechunk({0: plan.chunks0, **{i: -1 for i in range(1, go.ndim)}})
        gos = [None if go is None else go.blocks[i] for i in range(plan.n_blocks)]
        records = None
    else:
        if np.ndim(grad_output if grad_output is not None else 1.0) != 0:
            raise ValueError(f"grad_output: expected a scalar for reduction={reduction!r}")
        g = 1.0 if grad_output is None else float(grad_output)
        gos = [g] * plan.n_blocks
        records = (_records(plan, backend, sample_weight, reduction)
                   if reduction in ("mean", "batchmean") else None)
    block_reduction = "none" if reduction == "none" else "sum"
    per_block = [dask.delayed(_grad_block, nout=len(names))(
                     spec, argnums, _call_kwargs(plan, plan.blocks(i), block_reduction),
                     backend, sws[i], gos[i], records)
                 for i in range(plan.n_blocks)]
    grads = []
    for k, name in enumerate(names):
        a = plan.batch[name]
        dtype = a.dtype if a.dtype in (np.float32, np.float64) else value.dtype
        grads.append(da.concatenate(
            [da.from_delayed(per_block[i][k], (plan.chunks0[i], *a.shape[1:]), dtype)
             for i in range(plan.n_blocks)], axis=0))
    return value, (grads[0] if single else tuple(grads))
