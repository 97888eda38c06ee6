"""The NumPy reference backend: every kernel of the contract in fastloss._engine, written
plainly in float64. Each family module defines its kernels; this namespace is what the
dispatcher looks kernels up in."""
from .classification import *  # noqa: F401,F403
from .regression import *  # noqa: F401,F403
from .binary import *  # noqa: F401,F403
from .probabilistic import *  # noqa: F401,F403
from .margin import *  # noqa: F401,F403
from .embedding import *  # noqa: F401,F403
from .sequence import *  # noqa: F401,F403
from .distance import *  # noqa: F401,F403
from .linear import *  # noqa: F401,F403
