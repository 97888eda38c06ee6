"""Build hook: the C backend is compiled through cffi when possible and skipped otherwise
(no compiler, a failed build, or FASTLOSS_NO_C=1), so fastloss always installs.

Everything else (metadata, packages) is in pyproject.toml. When the C build is skipped,
the reason is written next to the package as ``fastloss/_fastloss_c_build.txt``;
``fastloss.show_backends()`` prints it. The C module is only ever compiled here (or by
``python csrc/build_cffi.py`` in a checkout), never when fastloss is imported.
"""
import os
import sys

from setuptools import setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
STATUS_NAME = "_fastloss_c_build.txt"
DISABLED = os.environ.get("FASTLOSS_NO_C") == "1"


def _write_status(package_dir, reason):
    """Record why the C module is missing (reason None: it was built; forget old news)."""
    path = os.path.join(package_dir, STATUS_NAME)
    if reason is None:
        if os.path.exists(path):
            os.remove(path)
        return
    os.makedirs(package_dir, exist_ok=True)
    with open(path, "w") as f:
        f.write(reason + "\n")


def c_extensions():
    """The cffi extension, or none when disabled or when its C source cannot be generated."""
    if DISABLED:
        return []
    try:
        sys.path.insert(0, os.path.join(HERE, "csrc"))
        import build_cffi
        builder = build_cffi.make_builder(relative_to=HERE)
        return [builder.distutils_extension(tmpdir=os.path.join("build", "cffi-src"),
                                            verbose=False)]
    except Exception as exc:   # cffi missing or broken: install without the C backend
        print(f"fastloss: not building the C backend: {exc}", file=sys.stderr)
        return []
    finally:
        sys.path.pop(0)


class build_py_status(build_py):
    """Also leave the reason in the package when the C build was switched off."""

    def run(self):
        super().run()
        if DISABLED:
            _write_status(os.path.join(self.build_lib, "fastloss"),
                          "the C build was disabled (FASTLOSS_NO_C=1)")


class build_ext_optional(build_ext):
    """build_ext where a failure to compile or link the C backend is a warning."""

    def _package_dir(self):
        return os.path.join(HERE if self.inplace else self.build_lib, "fastloss")

    def _skip(self, exc):
        reason = f"the C build failed ({type(exc).__name__}: {exc})".replace("\n", " ")
        print(f"fastloss: WARNING: {reason}; installing without the C backend",
              file=sys.stderr)
        _write_status(self._package_dir(), reason[:2000])

    def run(self):
        try:
            super().run()
        except Exception as exc:   # e.g. no compiler found while setting one up
            self._skip(exc)

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:   # compile or link error, missing compiler
            self._skip(exc)
        else:
            _write_status(self._package_dir(), None)


setup(ext_modules=c_extensions(),
      cmdclass={"build_ext": build_ext_optional, "build_py": build_py_status})
