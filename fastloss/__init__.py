"""fastloss: PyTorch's loss functions on NumPy arrays, on the CPU, fused and fast."""
# `import name as name`: these are the package's public names, for type checkers too
# (under mypy --strict, a plain `from m import name` in a py.typed package is private).
from . import functional as functional, losses as losses
from ._dispatch import (Backend as Backend, BackendNotAvailable as BackendNotAvailable,
                        Unsupported as Unsupported, register_backend as register_backend,
                        show_backends as show_backends, use_backend as use_backend)
from ._grad import value_and_grad as value_and_grad
from ._registry import LOSSES as LOSSES
from ._running import RunningLoss as RunningLoss
from ._threads import get_num_threads as get_num_threads, set_num_threads as set_num_threads
from ._version import __version__ as __version__
# the family modules' own star exports (type checkers do not follow a star import of
# names fastloss.functional itself star-imported)
from .functional.classification import *  # noqa: F401,F403
from .functional.elementwise import *  # noqa: F401,F403
from .functional.rows import *  # noqa: F401,F403
from .functional.sequence import *  # noqa: F401,F403
from .functional.linear import *  # noqa: F401,F403
from .losses import *  # noqa: F401,F403

__all__ = [*functional.__all__, *losses.__all__,
           "value_and_grad", "use_backend", "show_backends", "register_backend", "Backend",
           "BackendNotAvailable", "Unsupported", "get_num_threads", "set_num_threads", "LOSSES",
           "functional", "losses", "RunningLoss"]

from . import _threadpoolctl  # noqa: E402

_threadpoolctl.install()   # threadpoolctl.threadpool_limits(n) limits fastloss too
