"""fastloss's thread count under threadpoolctl (optional: never imported by fastloss).

scikit-learn and joblib users limit native thread pools with
``threadpoolctl.threadpool_limits(n)``. threadpoolctl (>= 3.0) finds pools by scanning the
shared libraries loaded in the process and asking each registered ``LibController``
class whether a library's file name is one of its own; ``threadpoolctl.register`` adds a
class. fastloss registers one controller, ``internal_api="fastloss"``, whose limit is
``fastloss.set_num_threads`` (both the C pool and Numba's kernels follow it), matched on
fastloss's C module, or, in an install without the C backend, on Numba's ``_helperlib``
(then loaded for the purpose: Numba runs the kernels there).

Importing threadpoolctl takes a noticeable fraction of ``import fastloss``, so fastloss
does not import it: it registers the controller when threadpoolctl is imported, before or
after fastloss (an import hook that removes itself).
"""
import importlib.abc
import importlib.util
import sys

MODULE = "threadpoolctl"
_registered = False


def _controller_class(threadpoolctl, prefix):
    from . import _threads
    from ._version import __version__

    class FastlossController(threadpoolctl.LibController):
        """fastloss's kernels (C pool and Numba): limit = fastloss.set_num_threads."""
        user_api = "fastloss"
        internal_api = "fastloss"
        filename_prefixes = (prefix,)

        def get_num_threads(self):
            return _threads.get_num_threads()

        def set_num_threads(self, num_threads):
            _threads.set_num_threads(max(1, int(num_threads)))

        def get_version(self):
            return __version__

    return FastlossController


def _library_prefix():
    """The prefix of a loaded shared library that stands for fastloss (loading it)."""
    from ._dispatch import _BACKENDS
    if _BACKENDS["c"].available:          # imports fastloss._cffi: its C module
        return "_fastloss_c"
    import numba._helperlib  # noqa: F401
    return "_helperlib"


def register(threadpoolctl):
    """Register fastloss's controller with this threadpoolctl (once; needs >= 3.0)."""
    global _registered
    if _registered or not hasattr(threadpoolctl, "register") \
            or not hasattr(threadpoolctl, "LibController"):
        return
    _registered = True
    threadpoolctl.register(_controller_class(threadpoolctl, _library_prefix()))


class _RegisterOnImport(importlib.abc.MetaPathFinder):
    """Finds nothing itself: when threadpoolctl is imported, wraps its loader so that
    fastloss's controller is registered right after the module has run."""

    def __init__(self):
        self._busy = False

    def find_spec(self, fullname, path=None, target=None):
        if fullname != MODULE or self._busy:
            return None
        self._busy = True
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            self._busy = False
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return None
        run = spec.loader.exec_module
        finder = self

        def exec_module(module):
            run(module)
            if finder in sys.meta_path:
                sys.meta_path.remove(finder)
            try:
                register(module)
            except Exception:       # fastloss must never break another package's import
                pass

        spec.loader.exec_module = exec_module    # this spec's own loader instance
        return spec


def install():
    """Register now if threadpoolctl is imported already, else when it is."""
    module = sys.modules.get(MODULE)
    if module is not None:
        try:
            register(module)
        except Exception:
            pass
    elif not any(isinstance(f, _RegisterOnImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _RegisterOnImport())
