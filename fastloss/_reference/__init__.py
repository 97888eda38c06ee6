"""The NumPy reference backend: every kernel of the contract in fastloss._engine, written
plainly in float64. Each module defines the kernels of one family
(``fastloss._kernels.FAMILIES``, the same split in every layer); this namespace is what the
dispatcher looks kernels up in, and where every declared kernel is wrapped in
``_common.ieee`` (NumPy's floating-point warnings off: NaN and inf are data), the one
warning policy of the reference."""
from .classification import *  # noqa: F401,F403
from .elementwise import *  # noqa: F401,F403
from .rows import *  # noqa: F401,F403
from .sequence import *  # noqa: F401,F403
from .linear import *  # noqa: F401,F403

from .._kernels import functions as _functions  # noqa: E402
from ._common import ieee as _ieee  # noqa: E402

for _name in _functions():
    globals()[_name] = _ieee(globals()[_name])
del _name
