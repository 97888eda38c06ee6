"""fastloss: PyTorch's loss functions on NumPy arrays, on the CPU, fused and fast."""
# `import name as name`: these are the package's public names, for type checkers too
# (under mypy --strict, a plain `from m import name` in a py.typed package is private).
from . import functional as functional, losses as losses
from ._dispatch import (Backend as Backend, Unsupported as Unsupported,
                        register_backend as register_backend, show_backends as show_backends,
                        use_backend as use_backend)
from ._grad import value_and_grad as value_and_grad
from ._registry import LOSSES as LOSSES
from ._running import RunningLoss as RunningLoss
from ._threads import get_num_threads as get_num_threads, set_num_threads as set_num_threads
from .functional import *  # noqa: F401,F403
from .losses import *  # noqa: F401,F403

__version__ = "0.1.0"
