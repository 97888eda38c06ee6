"""``fastloss bench``: fastloss's backends against torch, JAX, scikit-learn and naive
NumPy, each implementation timed in its own process on built-in synthetic data, every
result checked against the NumPy reference.

Modules: ``data`` (a synthetic data generator per loss, sizes), ``impls`` (the comparison
table: implementations and peers), ``naive`` (the naive array versions), ``floor`` (the
read-bandwidth floor), ``worker`` (the timing process), ``runner`` (plans, subprocesses,
progress), ``report`` (terminal, JSON, Markdown, plot, README), ``cli`` (arguments).
"""
from .cli import main

__all__ = ["main"]
