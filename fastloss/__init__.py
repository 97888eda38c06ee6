"""fastloss: PyTorch's loss functions on NumPy arrays, on the CPU, fused and fast."""
from . import functional, losses
from ._dispatch import (Backend, BackendNotAvailable, Unsupported, register_backend,
                        show_backends, use_backend)
from ._grad import value_and_grad
from ._registry import LOSSES
from ._threads import get_num_threads, set_num_threads
from .functional import *  # noqa: F401,F403
from .losses import *  # noqa: F401,F403

__version__ = "0.1.0"
