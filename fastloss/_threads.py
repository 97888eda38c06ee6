"""Thread count for the parallel backends, in one place.

Default: FASTLOSS_NUM_THREADS, else NUMBA_NUM_THREADS, else the CPUs this process may use.
"""
from __future__ import annotations

import os

_num_threads = None


def _default():
    for var in ("FASTLOSS_NUM_THREADS", "NUMBA_NUM_THREADS"):
        value = os.environ.get(var)
        if value:
            return max(1, int(value))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def get_num_threads() -> int:
    """The number of threads fastloss's parallel kernels use.

    Examples
    --------
    >>> import fastloss
    >>> fastloss.get_num_threads() >= 1
    True
    """
    global _num_threads
    if _num_threads is None:
        _num_threads = _default()
    return _num_threads


def set_num_threads(n: int) -> None:
    """Set the number of threads fastloss's parallel kernels use (>= 1).

    Examples
    --------
    >>> import fastloss
    >>> before = fastloss.get_num_threads()
    >>> fastloss.set_num_threads(1)
    >>> fastloss.get_num_threads()
    1
    >>> fastloss.set_num_threads(before)
    """
    global _num_threads
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n: expected an integer >= 1, got {n!r}")
    _num_threads = n
    for hook in _on_change:
        hook(n)


def on_change(hook):
    """Register `hook(n)`, called with the new count whenever `set_num_threads` changes it
    (how each parallel backend applies the count to its own pool); registering the same
    hook again does nothing. Returns `hook`."""
    if hook not in _on_change:
        _on_change.append(hook)
    return hook


_on_change: list = []   # the registered hooks (see on_change)
