"""Where Numba's on-disk cache of fastloss's kernels lives: never inside the package.

Numba writes the cache of a ``cache=True`` function next to its source file
(``__pycache__``) unless ``NUMBA_CACHE_DIR`` is set. For an installed fastloss that is
site-packages, which is read-only for many users, and files pip did not install are left
behind by ``pip uninstall`` (megabytes), where they even shadow a later editable install
(the leftover ``fastloss/`` directory becomes a namespace package). So fastloss adds a
cache locator of its own, consulted first and only for functions defined in fastloss's
own files (other Numba users' functions are untouched):

1. ``$FASTLOSS_CACHE_DIR``, if set;
2. else Numba's own ``NUMBA_CACHE_DIR``, if the user set it (Numba's locator handles it);
3. else the per-user cache directory: ``$XDG_CACHE_HOME/fastloss`` or ``~/.cache/fastloss``
   (``%LOCALAPPDATA%\\fastloss`` on Windows, ``~/Library/Caches/fastloss`` on macOS);
4. if that cannot be created or written to, a private directory in the system's temporary
   directory (``fastloss-<user id>``, mode 0700, used only if it is this user's).

Under the chosen directory the cache sits in ``numba-<Numba version>/`` (then a directory
per fastloss source tree, as Numba names them), so that caches of other Numba versions
can be deleted as a whole. When no directory is writable the kernels still run: Numba then
falls back to its own locators, and compiles every process when they fail too.
"""
import functools
import os
import sys
import tempfile

ENV = "FASTLOSS_CACHE_DIR"
PACKAGE_DIR = os.path.dirname(os.path.realpath(__file__))


def user_cache_dir():
    """The per-user cache directory for fastloss (not created here)."""
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or os.path.expanduser(r"~\AppData\Local")
        return os.path.join(base, "fastloss", "Cache")
    if sys.platform == "darwin":
        return os.path.expanduser("~/Library/Caches/fastloss")
    base = os.environ.get("XDG_CACHE_HOME")
    if not base or not os.path.isabs(base):     # the XDG spec: ignore a relative path
        base = os.path.expanduser("~/.cache")
    return os.path.join(base, "fastloss")


def _private_temp_dir():
    """``<tmp>/fastloss-<uid>``, created 0700; None if it is not safely this user's (the
    cache holds pickles, which must not come from another user)."""
    uid = os.getuid() if hasattr(os, "getuid") else None
    path = os.path.join(tempfile.gettempdir(), f"fastloss-{uid if uid is not None else 'user'}")
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        st = os.lstat(path)
    except OSError:
        return None
    import stat
    if not stat.S_ISDIR(st.st_mode):
        return None
    if uid is not None and (st.st_uid != uid or st.st_mode & 0o022):
        return None
    return path


def _preferred_root():
    """$FASTLOSS_CACHE_DIR or the per-user directory; None when the user set Numba's own
    NUMBA_CACHE_DIR instead (Numba's locator then handles it)."""
    explicit = os.environ.get(ENV)
    if explicit:
        return os.path.abspath(os.path.expanduser(explicit))
    from numba.core import config
    if config.CACHE_DIR:
        return None
    return user_cache_dir()


@functools.lru_cache(maxsize=None)
def _writable(path):
    try:
        os.makedirs(path, exist_ok=True)
        tempfile.TemporaryFile(dir=path).close()
        return True
    except OSError:
        return False


def cache_dir():
    """The directory fastloss's kernels are cached in (``numba-<version>`` included), or
    None when that is left to Numba (NUMBA_CACHE_DIR set, or nothing writable)."""
    import numba
    root = _preferred_root()
    if root is None:
        return None
    sub = f"numba-{numba.__version__}"
    if _writable(os.path.join(root, sub)):
        return os.path.join(root, sub)
    tmp = _private_temp_dir()       # only now: nothing is created there otherwise
    if tmp is not None and _writable(os.path.join(tmp, sub)):
        return os.path.join(tmp, sub)
    return None


def _in_package(py_file):
    try:
        path = os.path.realpath(py_file)
        return os.path.commonpath([path, PACKAGE_DIR]) == PACKAGE_DIR
    except ValueError:          # another drive on Windows
        return False


@functools.lru_cache(maxsize=None)
def _locator_class():
    from numba.core import caching

    class FastlossCacheLocator(caching._SourceFileBackedLocatorMixin,
                               caching._CacheLocator):
        """Numba cache locator for fastloss's own kernels (see fastloss._numba_cache)."""

        def __init__(self, py_func, py_file, root):
            self._py_file = py_file
            self._lineno = py_func.__code__.co_firstlineno
            self._cache_path = os.path.join(root, self.get_suitable_cache_subpath(py_file))

        def get_cache_path(self):
            return self._cache_path

        @classmethod
        def from_function(cls, py_func, py_file):
            if not _in_package(py_file) or not os.path.exists(py_file):
                return None
            root = cache_dir()
            if root is None:
                return None
            self = cls(py_func, py_file, root)
            try:
                self.ensure_cache_path()
            except OSError:
                return None
            return self

    return FastlossCacheLocator


def install():
    """Put fastloss's locator first in Numba's list (once); call it before any of
    fastloss's ``cache=True`` functions is defined."""
    from numba.core import caching
    cls = _locator_class()
    if cls not in caching.CacheImpl._locator_classes:
        caching.CacheImpl._locator_classes.insert(0, cls)
