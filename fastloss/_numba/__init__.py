"""The Numba backend: fused, parallel kernels with the signatures of fastloss._reference.

Every kernel is an ``@njit(cache=True)`` function at module level with its own name, so a
fresh process loads it from Numba's on-disk cache instead of compiling it again. Each
loss has a serial driver (small inputs: no thread-pool wake-up) and a ``parallel=True``
driver over fixed-size blocks; see ``_common`` for why the result does not depend on the
thread count, and ``_common.configure_threading`` for the threading layer and fork safety.

Families: ``classification`` (NLL, cross-entropy), ``elementwise`` (regression, binary
cross-entropy, Poisson/Gaussian NLL, KL divergence, hinge/soft-margin/margin-ranking),
``rows`` (multi-class and multi-label margins, cosine and triplet embeddings); the
vectorizable exp/log they share are in ``_math``. The cache is kept out of the package
(``fastloss._numba_cache``).
"""
from .. import _numba_cache

# Before any kernel is defined: Numba picks a function's cache directory at decoration.
_numba_cache.install()

from ._common import configure_threading  # noqa: E402

# Before any kernel runs: the threading layer cannot change once Numba has started it.
THREADING_LAYER = configure_threading()

# The kernels of the contract (fastloss._engine), looked up by name in this namespace.
from .classification import *  # noqa: E402,F401,F403
from .elementwise import *  # noqa: E402,F401,F403
from .rows import *  # noqa: E402,F401,F403
from .sequence import *  # noqa: E402,F401,F403
# A user's distance function is Python called on whole arrays: nothing to compile, so the
# reference's kernels serve this backend too (and calls do not fall through a backend).
from .._reference.distance import triplet_distance_fwd, triplet_distance_vg  # noqa: E402,F401
from .linear import *  # noqa: E402,F401,F403
