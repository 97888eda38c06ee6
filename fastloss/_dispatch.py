"""Backend discovery and selection.

A backend is a module of kernels, found by name (``ce_class_fwd``, ``mse_vg`` ...), all
backends sharing one signature per kernel name (see ``fastloss._reference``). The choice
comes, in this order, from ``backend=`` on the call, the innermost ``use_backend`` block,
the ``FASTLOSS_BACKEND`` environment variable (read when fastloss is imported), else
``"auto"``. ``auto`` tries the backends
in order of speed; a backend that lacks a kernel, or whose kernel raises ``Unsupported``
for a case, falls through to the next one, ending at the NumPy reference that has them all.
"""
from __future__ import annotations

import contextlib
import contextvars
import importlib
import json
import os
import threading
from typing import IO, Iterator

AUTO = "auto"


class BackendNotAvailable(ValueError):
    """A backend was asked for by name (``backend=``, ``use_backend``, ``FASTLOSS_BACKEND``)
    but is not available in this install; the message says why and how to get it."""


class Unsupported(Exception):
    """Raised by a backend's kernel wrapper for a case it does not handle; the call then
    falls through to the next backend."""


_LOAD_LOCK = threading.RLock()


class Backend:
    """A named, lazily imported module of kernels."""

    def __init__(self, name: str, module: str | None = None,
                 kernels: dict[str, object] | None = None, doc: str = "") -> None:
        self.name = name
        self.doc = doc
        self._module_name = module
        self._kernels = kernels      # a dict, for backends made in Python (tests, plug-ins)
        self.error = None            # why it did not load, when it did not
        self._loaded = kernels is not None

    def _load(self):
        if not self._loaded:
            # Several threads may make their first call at once (dask's threaded
            # scheduler): one imports, the others wait for it instead of seeing a backend
            # marked loaded whose kernels are not there yet.
            with _LOAD_LOCK:
                if not self._loaded:
                    try:
                        module = importlib.import_module(self._module_name)
                        self._kernels = vars(module)
                    except Exception as exc:  # a missing compiler or package must not
                        self.error = f"{type(exc).__name__}: {exc}"   # break fastloss
                        self._kernels = None
                    self._loaded = True
        return self._kernels

    @property
    def available(self):
        return self._load() is not None

    def kernel(self, name):
        kernels = self._load()
        return None if kernels is None else kernels.get(name)

    def kernel_names(self, suffixes=("_fwd", "_vg")):
        kernels = self._load() or {}
        return sorted(k for k, v in kernels.items() if callable(v) and k.endswith(suffixes))


# Fastest first: the order `auto` tries them in.
_BACKENDS = {
    "c": Backend("c", "fastloss._cffi", doc="C kernels compiled through cffi"),
    "numba": Backend("numba", "fastloss._numba", doc="Numba @njit(parallel=True) kernels"),
    "numpy": Backend("numpy", "fastloss._reference", doc="NumPy reference (always present)"),
}
_AUTO_ORDER = ["c", "numba", "numpy"]


def _load_preferences():
    """Per-kernel `auto` order measured by the committed benchmarks (bench/auto_order.py
    writes it): {"ce_class_fwd": ["c", "numba", "numpy"], ...}."""
    try:
        with open(os.path.join(os.path.dirname(__file__), "_auto_order.json")) as f:
            return json.load(f)["kernels"]
    except (OSError, ValueError, KeyError):
        return {}


_PREFERENCES = _load_preferences()
_current: contextvars.ContextVar[str | None] = contextvars.ContextVar("fastloss_backend",
                                                                      default=None)
# Read once, at import (like NUMBA_NUM_THREADS): a per-call os.environ lookup costs ~1 us.
_ENV_CHOICE = os.environ.get("FASTLOSS_BACKEND") or None
_cache: dict = {}   # (kernel name, choice) -> the order of backends to try
_first: dict = {}   # (kernel name, choice) -> the first of them that has the kernel (see call)


def clear_caches():
    """Forget the resolved orders and kernels (after the backends or their ranking change)."""
    _cache.clear()
    _first.clear()


def register_backend(backend: Backend, first: bool = True) -> None:
    """Add (or replace) a backend; `first` puts it at the front of the `auto` order."""
    _BACKENDS[backend.name] = backend
    if backend.name in _AUTO_ORDER:
        _AUTO_ORDER.remove(backend.name)
    _AUTO_ORDER.insert(0 if first else len(_AUTO_ORDER) - 1, backend.name)
    clear_caches()


def unregister_backend(name):
    if name in ("numpy",):
        raise ValueError("the NumPy reference backend cannot be removed")
    _BACKENDS.pop(name, None)
    if name in _AUTO_ORDER:
        _AUTO_ORDER.remove(name)
    clear_caches()


def backend_names() -> list[str]:
    return list(_AUTO_ORDER)


def current_choice(backend=None):
    return backend or _current.get() or _ENV_CHOICE or AUTO


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[None]:
    """Run the block with `name` ("auto", "numba", "c", "numpy") as the default backend.

    A ``backend=`` given to a call inside the block still wins; blocks nest (the innermost
    one counts) and are local to the thread or asyncio task that enters them.

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> with fastloss.use_backend("numpy"):
    ...     float(fastloss.mse_loss(np.array([1.0, 2.0]), np.zeros(2)))
    2.5
    """
    _check_name(name)
    token = _current.set(name)
    try:
        yield
    finally:
        _current.reset(token)


def _check_name(name):
    if name != AUTO and name not in _BACKENDS:
        raise ValueError(f"backend: expected 'auto' or one of {', '.join(map(repr, _AUTO_ORDER))}, "
                         f"got {name!r}")


def _auto_order(kernel_name):
    """_AUTO_ORDER with the backends ranked for this kernel by the benchmarks moved into
    that rank among themselves; any other backend (a registered plug-in) keeps its place."""
    ranked = _PREFERENCES.get(kernel_name)
    if not ranked:
        return _AUTO_ORDER
    ranked = [b for b in ranked if b in _AUTO_ORDER]
    it = iter(ranked)
    return [next(it) if b in ranked else b for b in _AUTO_ORDER]


def _order(kernel_name, choice):
    """The backend names to try for `kernel_name` under `choice`, best first (cached)."""
    key = (kernel_name, choice)
    order = _cache.get(key)
    if order is None:
        _check_name(choice)
        if choice == AUTO:
            order = _auto_order(kernel_name)
        else:
            chosen = _BACKENDS[choice]
            if not chosen.available:
                raise BackendNotAvailable(
                    f"backend: {choice!r} was asked for but is not available: "
                    f"{chosen.error} (see fastloss.show_backends(); backend='auto' runs "
                    "every loss on the backends that are present)")
            order = [choice] + [b for b in _AUTO_ORDER if b != choice]
        # The reference has every case: nothing after it is ever needed.
        order = tuple(order[:order.index("numpy") + 1]) if "numpy" in order else tuple(order)
        _cache[key] = order
    return order


def candidates(kernel_name, backend=None):
    """The (backend name, kernel) pairs that would be tried for `kernel_name`, best first.
    (This loads every backend in the order; `call` loads one only when it reaches it.)"""
    found = [(name, _BACKENDS[name].kernel(kernel_name))
             for name in _order(kernel_name, current_choice(backend))]
    return [(name, k) for name, k in found if k is not None]


def call(kernel_name, args, backend=None):
    """Run a kernel on the chosen backend, falling through to the next backend when one
    lacks the kernel or raises `Unsupported`; a backend is imported only when reached.
    Returns (result, name of the backend that ran it)."""
    choice = backend or _current.get() or _ENV_CHOICE or AUTO
    first = _first.get((kernel_name, choice))
    if first is None:
        first = _first[kernel_name, choice] = _find(kernel_name, choice, 0)
    name, k, position = first
    try:
        return k(*args), name
    except Unsupported:
        pass
    while True:   # this case is not the first backend's: try the next ones
        name, k, position = _find(kernel_name, choice, position + 1)
        try:
            return k(*args), name
        except Unsupported:
            continue


def _find(kernel_name, choice, start):
    """(backend name, kernel, position in the order) of the first backend from position
    `start` on that has `kernel_name`, importing backends as they are reached."""
    order = _order(kernel_name, choice)
    for position in range(start, len(order)):
        k = _BACKENDS[order[position]].kernel(kernel_name)
        if k is not None:
            return order[position], k, position
    raise LookupError(f"no backend provides kernel {kernel_name!r} for these arguments")


def show_backends(file: IO[str] | None = None) -> dict[str, tuple[bool, str | None]]:
    """Print which backends loaded, what each provides, and why any did not load.

    Returns ``{name: (available, why not or None)}`` for every backend, in `auto` order.

    Examples
    --------
    >>> import fastloss
    >>> status = fastloss.show_backends()
    fastloss backends (auto order: ...)
    ...
    >>> status["numpy"]
    (True, None)
    """
    lines = [f"fastloss backends (auto order: {' > '.join(_AUTO_ORDER)}; "
             f"current choice: {current_choice()})"]
    for name in _AUTO_ORDER:
        b = _BACKENDS[name]
        if b.available:
            lines.append(f"  {name:<6} available  {len(b.kernel_names()):3d} kernels  {b.doc}")
        else:
            lines.append(f"  {name:<6} missing    {b.error}")
    print("\n".join(lines), file=file)
    return {name: (_BACKENDS[name].available, _BACKENDS[name].error) for name in _AUTO_ORDER}
