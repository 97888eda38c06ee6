"""Synthetic benchmark data: one generator per loss, keyed by the registry name.

A generator turns a shape, a dtype and a seeded NumPy generator into the ``(args, kwargs)``
of a typical call of that loss — the arguments PyTorch's function takes under the same
names, so that every implementation (fastloss, torch, JAX, the naive NumPy version) gets
exactly the same data. Nothing is downloaded.

Three kinds of shape:

* ``class``: ``(N, C)`` — N samples over C classes (cross_entropy, nll_loss, the margin
  losses over classes). Default grid: small C (1M x 10), mid (65536 x 1000), wide C
  (4096 x 32000); cross_entropy also 8 x 10, the cost of a tiny call.
* ``elementwise``: any shape, 16M elements by default (regression, BCE, KLDiv, ...).
* ``rows``: ``(N, D)`` — N pairs or triplets of D-vectors (cosine, triplet), 65536 x 256
  by default, i.e. 16M elements per input.

Every loss in ``fastloss._registry.LOSSES`` must have a generator: a row here, or the
default of its kernel's standard signature (``default_generator``); a loss with neither is
an error (see ``missing_generators``), not silently left out of the benchmark, and a row
that repeats the default is stale (``redundant_generators``).
"""
import re
import zlib
from dataclasses import dataclass

import numpy as np

K = 1024
M = 1024 * 1024

KINDS = ("class", "elementwise", "rows", "sequence", "linear")
# sequence: T x N x C x S (CTC: time steps, batch, classes with the blank, target length);
# linear: N x d x V (linear cross-entropy: rows, features, vocabulary).
SHAPE_RANK = {"class": 2, "rows": 2, "sequence": 4, "linear": 3}
SHAPE_TEXT = {"class": "NxC", "rows": "NxD", "sequence": "TxNxCxS", "linear": "NxdxV"}
DEFAULT_SIZES = {
    "class": ((M, 10), (65536, 1000), (4096, 32000)),
    "elementwise": ((16 * M,),),
    "rows": ((65536, 256),),
    "sequence": ((500, 32, 32, 100), (200, 64, 1000, 50)),
    "linear": ((2048, 512, 32000), (2048, 512, 128000)),
}
# --quick: one small case per loss, a few ms each, so the whole run stays under a minute.
QUICK_SIZES = {
    "class": ((8192, 100),),
    "elementwise": ((512 * K,),),
    "rows": ((2048, 256),),
    "sequence": ((50, 8, 20, 10),),
    "linear": ((128, 32, 256),),
}


class SizeError(ValueError):
    """A size that cannot be parsed, or that does not fit a loss."""


def parse_size(text):
    """``"65536x1000"`` -> (65536, 1000); ``"16M"`` -> (16777216,); ``"1Mx10"``,
    ``"64Kx1000"`` also work (K = 1024, M = 1024**2)."""
    parts = text.strip().lower().split("x")
    shape = []
    for part in parts:
        m = re.fullmatch(r"(\d+)([km]?)", part.strip())
        if m is None:
            raise SizeError(f"size {text!r}: expected N or NxC, e.g. 16M, 65536x1000, 1Mx10")
        n = int(m.group(1)) * {"": 1, "k": K, "m": M}[m.group(2)]
        shape.append(n)
    if not 1 <= len(shape) <= 4 or min(shape) < 1:
        raise SizeError(f"size {text!r}: expected N, NxC (or TxNxCxS, NxdxV) with "
                        "positive numbers")
    return tuple(shape)


def format_size(shape):
    """(1048576, 10) -> "1Mx10", (65536, 1000) -> "65536x1000", (16777216,) -> "16M"."""
    def one(n):
        return f"{n // M}M" if n >= M and n % M == 0 else str(n)
    return "x".join([one(shape[0]), *map(str, shape[1:])])


@dataclass(frozen=True)
class Generator:
    loss: str
    kind: str                  # "class", "elementwise" or "rows"
    make: object               # make(shape, dtype, rng) -> (args, kwargs)
    reduction: str = "mean"    # the reduction benchmarked
    sizes: tuple = None        # default sizes, else DEFAULT_SIZES[kind]
    wrt: tuple = (0,)          # the arguments value+grad differentiates (torch too)
    part: object = None        # part(args, n) -> the args of a smaller check case, when
                               #   leading rows of every array are not one

    def check_shape(self, shape):
        rank = SHAPE_RANK.get(self.kind)
        if rank is not None and len(shape) != rank:
            example = format_size(DEFAULT_SIZES[self.kind][-1])
            raise SizeError(f"size {format_size(shape)} does not fit {self.loss}: "
                            f"expected {SHAPE_TEXT[self.kind]}, e.g. {example}")
        return shape

    def default_sizes(self, quick=False):
        if quick:
            return QUICK_SIZES[self.kind]
        return self.sizes or DEFAULT_SIZES[self.kind]

    def build(self, shape, dtype):
        """The call's (args, kwargs) with ``reduction`` set; the same on every run."""
        seed = zlib.crc32(f"{self.loss}/{shape}/{np.dtype(dtype).name}".encode())
        rng = np.random.default_rng(seed)
        args, kwargs = self.make(tuple(shape), np.dtype(dtype), rng)
        return tuple(args), {"reduction": self.reduction, **kwargs}


# --- building blocks: fast (float32 draws stay float32) and deterministic ---------------

def normal(rng, shape, dtype, scale=1.0, shift=0.0):
    a = rng.standard_normal(shape, dtype=dtype)
    if scale != 1.0:
        a *= dtype.type(scale)
    if shift:
        a += dtype.type(shift)
    return a


def uniform(rng, shape, dtype, low=0.0, high=1.0):
    a = rng.random(shape, dtype=dtype)
    a *= dtype.type(high - low)
    a += dtype.type(low)
    return a


def bits(rng, shape, dtype):
    """0/1 targets as floats."""
    return (rng.random(shape, dtype=np.float32) < 0.5).astype(dtype)


def signs(rng, shape, dtype):
    """-1/+1 targets as floats."""
    return bits(rng, shape, dtype) * dtype.type(2) - dtype.type(1)


def classes(rng, n, c):
    return rng.integers(0, c, size=n, dtype=np.int64)


# --- one generator per loss ------------------------------------------------------------

def _pair(shape, dtype, rng):
    return (normal(rng, shape, dtype), normal(rng, shape, dtype)), {}


def _class_logits(shape, dtype, rng):
    n, c = shape
    return (normal(rng, shape, dtype, 2.0), classes(rng, n, c)), {}


def _log_probs(shape, dtype, rng):
    # nll_loss takes log-probabilities; any values <= 0 time the same as normalized ones.
    n, c = shape
    x = uniform(rng, shape, dtype, 0.01, 1.0)
    np.log(x, out=x)
    return (x, classes(rng, n, c)), {}


def _bce(shape, dtype, rng):
    return (uniform(rng, shape, dtype, 0.01, 0.99), bits(rng, shape, dtype)), {}


def _bce_logits(shape, dtype, rng):
    return (normal(rng, shape, dtype, 2.0), bits(rng, shape, dtype)), {}


def _kl_div(shape, dtype, rng):
    x = uniform(rng, shape, dtype, 0.01, 1.0)
    np.log(x, out=x)
    return (x, uniform(rng, shape, dtype, 0.0, 1.0)), {}


def _poisson(shape, dtype, rng):
    return (normal(rng, shape, dtype, 0.5), rng.poisson(2.0, shape).astype(dtype)), {}


def _gaussian(shape, dtype, rng):
    return (normal(rng, shape, dtype), normal(rng, shape, dtype),
            uniform(rng, shape, dtype, 0.1, 2.0)), {}


def _signed_target(shape, dtype, rng):
    return (normal(rng, shape, dtype), signs(rng, shape, dtype)), {}


def _ranking(shape, dtype, rng):
    return (normal(rng, shape, dtype), normal(rng, shape, dtype),
            signs(rng, shape, dtype)), {}


def _multilabel_margin(shape, dtype, rng):
    # Up to 4 target classes per row, then -1 (torch reads up to the first -1).
    n, c = shape
    t = np.full(shape, -1, np.int64)
    k = min(4, c)
    t[:, :k] = rng.integers(0, c, size=(n, k), dtype=np.int64)
    return (normal(rng, shape, dtype), t), {}


def _multilabel_soft(shape, dtype, rng):
    return (normal(rng, shape, dtype, 2.0), bits(rng, shape, dtype)), {}


def _cosine(shape, dtype, rng):
    n, _ = shape
    return (normal(rng, shape, dtype), normal(rng, shape, dtype),
            signs(rng, (n,), dtype)), {}


def _triplet(shape, dtype, rng):
    return (normal(rng, shape, dtype), normal(rng, shape, dtype),
            normal(rng, shape, dtype)), {}


def _ctc(shape, dtype, rng):
    t, n, c, s = shape
    x = normal(rng, (t, n, c), dtype)
    x -= np.log(np.exp(x).sum(axis=2, keepdims=True))
    targets = rng.integers(1, c, size=(n, s), dtype=np.int64)
    return (x, targets, np.full(n, t, np.int64), np.full(n, s, np.int64)), {}


def _ctc_part(args, n):
    """The first n samples (the batch is log_probs' second axis)."""
    x, targets, il, tl = args
    return (np.ascontiguousarray(x[:, :n]), targets[:n], il[:n], tl[:n])


def _linear_ce(shape, dtype, rng):
    n, d, v = shape
    return (normal(rng, (n, d), dtype), normal(rng, (v, d), dtype, 0.05),
            classes(rng, n, v)), {}


def _linear_part(args, n):
    """The first rows of input and target, the whole weight (at most 64 rows: the
    reference materialises their logits in float64)."""
    x, w, t = args
    n = min(n, 64)
    return (x[:n], w, t[:n])


# The losses whose data must be special. A loss whose first kernel has a family's standard
# arrays (fastloss._kernels.STANDARD: x and t, besides optional ones) needs no row: it gets
# `default_generator`'s (l1, mse, smooth_l1, huber, multi_margin do). The seed depends on
# the loss, shape and dtype only, so a default makes the same data a row would.
_ROWS = [
    Generator("poisson_nll_loss", "elementwise", _poisson),
    Generator("gaussian_nll_loss", "elementwise", _gaussian),
    Generator("binary_cross_entropy", "elementwise", _bce),
    Generator("binary_cross_entropy_with_logits", "elementwise", _bce_logits),
    Generator("kl_div", "elementwise", _kl_div, reduction="batchmean"),
    Generator("hinge_embedding_loss", "elementwise", _signed_target),
    Generator("margin_ranking_loss", "elementwise", _ranking),
    Generator("soft_margin_loss", "elementwise", _signed_target),
    Generator("nll_loss", "class", _log_probs),
    # 8x10: the cost of a tiny call, dispatch included (issues 3 and 4 set targets for it)
    Generator("cross_entropy", "class", _class_logits,
              sizes=((M, 10), (65536, 1000), (4096, 32000), (8, 10))),
    Generator("multilabel_margin_loss", "class", _multilabel_margin),
    Generator("multilabel_soft_margin_loss", "class", _multilabel_soft),
    Generator("cosine_embedding_loss", "rows", _cosine),
    Generator("triplet_margin_loss", "rows", _triplet),
    Generator("triplet_margin_with_distance_loss", "rows", _triplet),
    Generator("ctc_loss", "sequence", _ctc, part=_ctc_part),
    Generator("linear_cross_entropy", "linear", _linear_ce, wrt=(0, 1), part=_linear_part),
]
GENERATORS = {g.loss: g for g in _ROWS}


def default_generator(loss):
    """The generator of a loss that has no row in GENERATORS, from its first kernel's
    declaration: element-wise ``x t`` -> two normal arrays (16M elements); rows ``x t``
    -> (N, C) logits and class indices. None for another signature, or a loss the
    registry does not have."""
    from .. import _kernels
    from .._registry import LOSSES
    spec = LOSSES.get(loss)
    if spec is None or not spec.kernels:
        return None
    k = _kernels.KERNELS[spec.kernels[0]]
    if tuple(a for a in k.arrays if a not in k.optional) != ("x", "t"):
        return None
    make = {"elementwise": ("elementwise", _pair), "rows": ("class", _class_logits)}.get(k.family)
    return None if make is None else Generator(loss, *make)


def generator(loss):
    """The generator of `loss`: its row in GENERATORS, else its default; None if neither."""
    return GENERATORS.get(loss) or default_generator(loss)


def missing_generators(losses=None):
    """Registry losses that have no generator, neither a row nor a default (must be empty)."""
    if losses is None:
        from .._registry import LOSSES as losses
    return sorted(name for name in losses if generator(name) is None)


def redundant_generators():
    """Rows of GENERATORS that only repeat their loss's default (must be empty)."""
    return sorted(name for name, g in GENERATORS.items() if g == default_generator(name))


def generator_for(loss):
    gen = generator(loss)
    if gen is None:
        raise LookupError(f"fastloss bench has no data generator for loss {loss!r}: add a "
                          "Generator row to fastloss/_bench/data.py")
    return gen


def leading_slice(args, n_rows):
    """The first n_rows along axis 0 of every array argument that has the batch's
    length (the first argument's), for a correctness check on a part of a large case."""
    n = np.shape(args[0])[0] if np.ndim(args[0]) else 1
    out = []
    for a in args:
        if isinstance(a, np.ndarray) and a.ndim and a.shape[0] == n:
            a = np.ascontiguousarray(a[:n_rows])
        out.append(a)
    return tuple(out)


def rows_for(args, limit):
    """How many leading rows of `args` hold at most `limit` elements in the largest
    argument (at least 1)."""
    big = max((a for a in args if isinstance(a, np.ndarray)), key=lambda a: a.size)
    per_row = max(1, big.size // max(1, big.shape[0])) if big.ndim else 1
    return max(1, limit // per_row)
