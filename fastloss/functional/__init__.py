"""One public function per loss, with PyTorch's names, arguments and defaults.

Each is defined in the module of its kernels' family (``fastloss._kernels.FAMILIES``, the
same split in every layer: ``elementwise``, ``classification``, ``rows``, ``sequence``,
``linear``), where it validates its arguments and describes the call to the kernels (a
``Prepared``); ``fastloss._engine`` runs it on a backend.
PyTorch's legacy ``size_average``/``reduce`` arguments are not provided: arguments after
the last one PyTorch still documents as positional are keyword-only, so a call that
meant a legacy slot fails loudly instead of silently meaning something else.
"""
from . import classification, elementwise, linear, rows, sequence
from .classification import *  # noqa: F401,F403
from .elementwise import *  # noqa: F401,F403
from .rows import *  # noqa: F401,F403
from .sequence import *  # noqa: F401,F403
from .linear import *  # noqa: F401,F403

# Each family module lists its public functions (its __all__, next to their definitions):
# a loss added to a family is exported with no line here.
__all__: list[str] = []
__all__ += classification.__all__
__all__ += elementwise.__all__
__all__ += rows.__all__
__all__ += sequence.__all__
__all__ += linear.__all__
