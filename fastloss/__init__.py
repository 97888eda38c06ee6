"""fastloss: PyTorch's loss functions on NumPy arrays, on the CPU, fused and fast."""
from . import functional, losses
from ._dispatch import Backend, Unsupported, register_backend, show_backends, use_backend
from ._grad import value_and_grad
from ._registry import LOSSES
from ._threads import get_num_threads, set_num_threads
from ._version import __version__
from .functional import *  # noqa: F401,F403
from .losses import *  # noqa: F401,F403

__all__ = [*functional.__all__, *losses.__all__,
           "value_and_grad", "use_backend", "show_backends", "register_backend", "Backend",
           "Unsupported", "get_num_threads", "set_num_threads", "LOSSES",
           "functional", "losses"]

from . import _threadpoolctl  # noqa: E402

_threadpoolctl.install()   # threadpoolctl.threadpool_limits(n) limits fastloss too
