"""A streaming, mergeable accumulator of a loss: `RunningLoss`.

Every "mean"/"sum" loss is total / denominator, both sums over items (the denominator:
the item count, the summed class weights of the counted targets, the summed element
weights, the batch size for kl_div's batchmean, or the weighted versions of these with
``sample_weight``). Both add up across batches, so the state is a handful of plain
numbers (float64 sums, int64 counts, as torcheval keeps them) that pickle, serialise to
JSON and merge across processes or machines; `compute()` is what one call over the
concatenation of every batch returns.
"""
from __future__ import annotations

import functools
import importlib
import inspect
import json
import math
from typing import Any, Callable

import numpy as np
from numpy.typing import NDArray

from . import _weighted
from ._reduction import mean_of
from ._registry import LOSSES, spec_of

_STATE_VERSION = 1
_CLASS_LOSSES = ("nll_loss", "cross_entropy", "linear_cross_entropy")


def _encode(value: Any) -> Any:
    """A loss keyword argument as JSON (arrays as {"array": list, "dtype": name}; a
    function by its importable name, as triplet_margin_with_distance_loss's
    ``distance_function``)."""
    if isinstance(value, np.ndarray) or type(value).__module__.startswith("torch"):
        if callable(value) and not hasattr(value, "shape"):   # torch.nn.PairwiseDistance
            return _encode_callable(value)
        a = np.asarray(value)
        return {"array": a.tolist(), "dtype": a.dtype.name}
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if callable(value):
        return _encode_callable(value)
    raise TypeError(f"RunningLoss: cannot keep the argument {value!r} in a plain state "
                    "(use numbers, strings, booleans, arrays or module-level functions)")


def _importable(fn: Any) -> str | None:
    module, qualname = getattr(fn, "__module__", None), getattr(fn, "__qualname__", "")
    if not module or not qualname or "<" in qualname:
        return None
    try:
        obj = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError):
        return None
    return f"{module}:{qualname}" if obj is fn else None


def _encode_callable(fn: Any) -> Any:
    """A callable as plain values: a module-level function by name, functools.partial of
    one with plain keywords, or a PairwiseDistance by its (norm, eps, keepdim)."""
    if isinstance(fn, functools.partial) and not fn.args:
        name = _importable(fn.func)
        if name is not None:
            return {"partial": name, "keywords": {k: _encode(v)
                                                  for k, v in sorted(fn.keywords.items())}}
    elif hasattr(fn, "norm") and hasattr(fn, "eps") and not callable(fn.norm):
        return {"pairwise_distance": {"p": float(fn.norm), "eps": float(fn.eps),
                                      "keepdim": bool(getattr(fn, "keepdim", False))}}
    else:
        name = _importable(fn)
        if name is not None:
            return {"callable": name}
    raise TypeError(f"RunningLoss: cannot keep the function {fn!r} in a plain state: give "
                    "a module-level function (importable by name), a functools.partial of "
                    "one, or a PairwiseDistance; not a lambda or a local function")


def _load(name: str) -> Any:
    module, qualname = name.split(":")
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"array", "dtype"}:
            return np.asarray(value["array"], dtype=value["dtype"])
        if set(value) == {"callable"}:
            return _load(value["callable"])
        if set(value) == {"partial", "keywords"}:
            return functools.partial(_load(value["partial"]),
                                     **{k: _decode(v) for k, v in value["keywords"].items()})
        if set(value) == {"pairwise_distance"}:
            from .functional.rows import PairwiseDistance
            return PairwiseDistance(**value["pairwise_distance"])
    return value


class RunningLoss:
    """Accumulate a loss over batches, exactly; merge accumulators from other processes.

    ``RunningLoss(loss_fn, **loss_kwargs)`` keeps what ``loss_fn(..., **loss_kwargs)``
    over the concatenation (along the first axis) of every batch given to `update` would
    return. The state is plain numbers: float64 ``total`` and ``denominator``, int64
    ``items`` and ``updates`` (and, for per-sequence perplexity, a float64 sum and an
    int64 count), so that it pickles, round-trips through JSON (`state_dict` /
    `from_state`) and combines (`merge`) exactly.

    Parameters
    ----------
    loss_fn : callable or str
        A fastloss loss (``fastloss.cross_entropy``) or its name.
    backend : str, optional, keyword-only
        The backend the updates run on.
    **loss_kwargs
        The loss's fixed arguments (``weight``, ``ignore_index``, ``label_smoothing``,
        ``reduction`` ...). ``reduction`` is "mean" (default, as the loss's own default),
        "sum" or kl_div's "batchmean"; "none" has nothing to accumulate and raises.

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> x = np.log([[0.5, 0.5], [0.25, 0.75], [0.9, 0.1]]); t = np.array([0, 1, 0])
    >>> acc = fastloss.RunningLoss(fastloss.nll_loss)
    >>> acc.update(x[:2], t[:2]); acc.update(x[2:], t[2:])
    >>> bool(np.isclose(acc.compute(), fastloss.nll_loss(x, t)))
    True
    >>> round(acc.perplexity(), 5)     # exp of the mean token NLL
    1.43629
    """

    def __init__(self, loss_fn: Callable[..., NDArray[Any]] | str, *,
                 backend: str | None = None, **loss_kwargs: Any) -> None:
        self._spec = spec_of(loss_fn)
        params = inspect.signature(self._spec.prepare).parameters
        unknown = [k for k in loss_kwargs if k not in self._spec.parameters]
        if unknown:
            raise TypeError(f"RunningLoss: {self._spec.name} has no argument "
                            f"{', '.join(map(repr, unknown))}")
        self.reduction = loss_kwargs.get("reduction", params["reduction"].default)
        if self.reduction not in ("mean", "sum", "batchmean"):
            raise ValueError(f"reduction: RunningLoss accumulates 'mean', 'sum' or "
                             f"'batchmean', not {self.reduction!r} (an unreduced loss has "
                             "nothing to add up)")
        self._kwargs = dict(loss_kwargs)
        self._key = json.dumps({k: _encode(v) for k, v in sorted(loss_kwargs.items())})
        self.backend = backend
        self.reset()

    @property
    def loss_name(self) -> str:
        return self._spec.name

    def reset(self) -> None:
        """Forget every update."""
        self.total = 0.0          # float64: sum of the (weighted) item losses
        self.denominator = 0.0    # float64: what "mean" divides total by
        self.items = 0            # int64: items seen (the unreduced loss's size)
        self.updates = 0          # int64
        self.sequence_ppl_sum = 0.0   # float64: sum over sequences of their perplexity
        self.sequences = 0            # int64: sequences with at least one counted token
        self.dtype: np.dtype | None = None
        self.item_tail: tuple | None = None   # the first array's shape after the batch axis

    # -- updating ---------------------------------------------------------------------
    def update(self, *arrays: Any, sample_weight: Any = None, **batch_kwargs: Any) -> None:
        """Add one batch: the loss's array arguments (``input, target``, ...), optional
        per-sample weights, and any per-element keyword arrays (l1/mse's ``weight``).
        A batch that does not fit the earlier ones (another class count or trailing
        shape, another dtype), or whose loss call raises, leaves the state unchanged."""
        clash = set(batch_kwargs) & set(self._kwargs)
        if clash:
            raise TypeError(f"update: {', '.join(sorted(clash))} was fixed when the "
                            "RunningLoss was made")
        prep = self._spec.prepare(*arrays, **self._kwargs, **batch_kwargs)
        spec = self._spec
        name = spec.parameters[0]
        first = np.shape(arrays[0]) if arrays else ()
        axis = spec.batch_axis(name)          # 1 for ctc_loss's (T, N, C) log_probs
        if (not prep.item_shape or axis is None or len(first) <= axis
                or prep.item_shape[0] != first[axis]):
            where = "first" if axis == 0 else f"axis {axis}"
            raise ValueError(f"{name}: RunningLoss needs batches with a leading batch axis "
                             f"(the {where} axis of {name} and the first of the unreduced "
                             f"loss); got {name} of shape {first} and a loss of shape "
                             f"{tuple(prep.item_shape)} (one item: add a batch axis of 1)")
        # the shape after the batch axis must not change (the class count above all); axes
        # before it (ctc_loss's time) may: a shorter batch is as if padded. Arguments
        # shared by every item (linear_weight) must keep their shapes too.
        tail = tuple(first[axis + 1:])
        bound = dict(zip(spec.parameters, arrays), **batch_kwargs)
        for k, v in bound.items():
            if k != name and k in dict(spec.batch_axes) and spec.batch_axis(k) is None \
                    and np.ndim(v):
                tail += tuple(np.shape(v))
        if self.dtype is not None and prep.dtype != self.dtype:
            raise TypeError(f"{name}: this batch computes in {prep.dtype}, the earlier "
                            f"updates in {self.dtype}; cast it (one accumulator, one dtype)")
        if self.item_tail is not None and tail != self.item_tail:
            if spec.name in _CLASS_LOSSES[:2] + ("multi_margin_loss",):
                what = (f"{tail[0] if tail else '?'} classes where the earlier updates had "
                        f"{self.item_tail[0] if self.item_tail else '?'}")
            else:
                what = (f"shapes {tail} after the batch axis (and of the arguments shared "
                        f"by every item) where the earlier updates had {self.item_tail}")
            raise ValueError(f"{name}: this batch has {what}; batches must concatenate "
                             "along the batch axis")
        want_seq = self._sequence_perplexity_applies(prep)
        total, denom, items = _weighted.parts(prep, self.backend, sample_weight, want_seq)
        seq_sum, n_seq = (self._sequence_terms(prep, items, sample_weight)
                          if want_seq else (0.0, 0))
        # every check and the kernel are done: commit
        self.total += total
        self.denominator += denom
        self.items += int(prep.n_items)
        self.updates += 1
        self.sequence_ppl_sum += seq_sum
        self.sequences += n_seq
        self.dtype, self.item_tail = prep.dtype, tail

    def _sequence_perplexity_applies(self, prep):
        return self._spec.name in _CLASS_LOSSES and prep.targets is not None

    @staticmethod
    def _sequence_terms(prep, items, sample_weight):
        """(sum over the batch's sequences of exp(their mean token NLL), how many had a
        counted token). A sequence is one row of the batch axis."""
        n = prep.item_shape[0]
        if n == 0 or prep.n_items == 0:
            return 0.0, 0
        units = _weighted.denominator_units(prep)
        if prep.n_items == n:
            # one token per sequence (a plain (N, C) call): exp(l_i / u_i) where u_i != 0,
            # without the general path's reshapes and per-row sums below, which cost 1.2 ms
            # per 25000-row update, 15% of a memmapped 8 GB stream (cProfile)
            den = (units if sample_weight is None
                   else units * _weighted.item_weights(prep, sample_weight))
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                ppl = np.exp(np.divide(items, den, dtype=np.float64))
            if np.ndim(den) == 0:
                return (float(ppl.sum()), n) if den != 0 else (0.0, 0)
            counted = den != 0
            return float(ppl.sum(where=counted)), int(np.count_nonzero(counted))
        units = np.broadcast_to(np.asarray(units, np.float64), (prep.n_items,))
        if sample_weight is not None:
            units = units * _weighted.item_weights(prep, sample_weight)
        nll = np.asarray(items, np.float64).reshape(n, -1).sum(axis=1)
        den = units.reshape(n, -1).sum(axis=1)
        counted = den != 0
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            ppl = np.exp(nll[counted] / den[counted])
        return float(ppl.sum()), int(counted.sum())

    # -- results ----------------------------------------------------------------------
    def compute(self) -> NDArray[Any]:
        """What one call over the concatenation of every update returns (its dtype;
        float64 before any update): a 0-d array."""
        dtype = self.dtype if self.dtype is not None else np.dtype(np.float64)
        if self.reduction == "sum":
            return np.array(self.total, dtype)
        return np.array(mean_of(self.total, self.denominator), dtype)

    def perplexity(self, per: str = "token") -> float:
        """Perplexity, for nll_loss, cross_entropy and linear_cross_entropy with
        class-index targets.

        ``per="token"``: exp of the mean token NLL over every counted token (the weighted
        mean, with class or sample weights), inf when that overflows. ``per="sequence"``:
        the mean over sequences (rows of the batch axis with a counted token) of each
        sequence's own perplexity. The NLL is the loss as configured (with
        ``label_smoothing`` it is the smoothed loss).
        """
        if self._spec.name not in _CLASS_LOSSES:
            raise ValueError(f"perplexity: defined for nll_loss, cross_entropy and "
                             f"linear_cross_entropy, not {self._spec.name}")
        if per == "token":
            mean = mean_of(self.total, self.denominator)
        elif per == "sequence":
            return mean_of(self.sequence_ppl_sum, self.sequences)
        else:
            raise ValueError(f"per: expected 'token' or 'sequence', got {per!r}")
        try:
            return math.exp(mean)
        except OverflowError:
            return math.inf

    # -- combining and saving -----------------------------------------------------------
    def merge(self, other: "RunningLoss") -> "RunningLoss":
        """Add another accumulator's updates to this one (same loss and arguments); the
        result is as if every batch had been given to this one. Returns self."""
        if not isinstance(other, RunningLoss):
            raise TypeError(f"merge: expected a RunningLoss, got {type(other).__name__}")
        if other._spec.name != self._spec.name or other._key != self._key:
            raise ValueError(f"merge: accumulators of different losses or arguments "
                             f"({self._spec.name} {self._key} vs {other._spec.name} "
                             f"{other._key})")
        if other.updates and self.updates:
            if other.dtype != self.dtype:
                raise TypeError(f"merge: dtype {other.dtype} differs from {self.dtype}")
            if other.item_tail != self.item_tail:
                raise ValueError(f"merge: batches of trailing shape {other.item_tail} "
                                 f"cannot join those of {self.item_tail}")
        self.total += other.total
        self.denominator += other.denominator
        self.items += other.items
        self.updates += other.updates
        self.sequence_ppl_sum += other.sequence_ppl_sum
        self.sequences += other.sequences
        if self.dtype is None:
            self.dtype, self.item_tail = other.dtype, other.item_tail
        return self

    def state_dict(self) -> dict[str, Any]:
        """The whole state as JSON-serialisable plain values (see `from_state`)."""
        return {"version": _STATE_VERSION, "loss": self._spec.name,
                "kwargs": json.loads(self._key), "backend": self.backend,
                "total": float(self.total), "denominator": float(self.denominator),
                "items": int(self.items), "updates": int(self.updates),
                "sequence_ppl_sum": float(self.sequence_ppl_sum),
                "sequences": int(self.sequences),
                "dtype": None if self.dtype is None else self.dtype.name,
                "item_tail": None if self.item_tail is None else list(self.item_tail)}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "RunningLoss":
        """Rebuild an accumulator from `state_dict()` (or its JSON)."""
        if state.get("version") != _STATE_VERSION or state.get("loss") not in LOSSES:
            raise ValueError(f"state: not a RunningLoss state of version {_STATE_VERSION} "
                             f"for a known loss (loss={state.get('loss')!r})")
        acc = cls(state["loss"], backend=state.get("backend"),
                  **{k: _decode(v) for k, v in state["kwargs"].items()})
        acc.total = float(state["total"])
        acc.denominator = float(state["denominator"])
        acc.items = int(state["items"])
        acc.updates = int(state["updates"])
        acc.sequence_ppl_sum = float(state["sequence_ppl_sum"])
        acc.sequences = int(state["sequences"])
        acc.dtype = None if state["dtype"] is None else np.dtype(state["dtype"])
        acc.item_tail = None if state["item_tail"] is None else tuple(state["item_tail"])
        return acc

    def __getstate__(self):
        return self.state_dict()

    def __setstate__(self, state):
        self.__dict__.update(RunningLoss.from_state(state).__dict__)

    def __repr__(self) -> str:
        return (f"RunningLoss({self._spec.name}, reduction={self.reduction!r}, "
                f"updates={self.updates}, items={self.items})")
