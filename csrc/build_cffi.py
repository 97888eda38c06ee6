"""The cffi builder of the "c" backend: the module ``fastloss._fastloss_c``.

The cdef is generated from ``csrc/fastloss.h`` run through the C preprocessor (which
expands the prototypes of the kernel list ``fl_list.h``; cffi's parser cannot expand
macros), never copied by hand, so the header is the single source of the ABI.

Used in two ways:

- by ``setup.py`` at install time (``ffibuilder.distutils_extension()``), where a failed
  build is not fatal;
- by hand in a checkout, ``python csrc/build_cffi.py``, which compiles the module next to
  the sources (``fastloss/_fastloss_c*.so``) for development and tests.

Portability: one translation unit (``fl_isa_base.c``) is compiled for the compiler's
default target, one (``fl_isa_avx2.c``) for AVX2+FMA and one (``fl_isa_avx512.c``, GCC
only) for AVX-512 through target pragmas; the choice is made at run time. No flag that assumes the absence of NaN or inf is used (no
``-ffast-math``, no ``-ffinite-math-only``): ``-fno-math-errno`` only lets ``log``/``exp``
skip setting errno, and ``-fno-trapping-math`` only says nobody inspects FP exceptions.
"""
import os
import re
import shlex
import subprocess
import sys

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
HEADER = os.path.join(HERE, "fastloss.h")
MODULE = "fastloss._fastloss_c"
SOURCES = ["fl_entry.c", "fl_pool.c", "fl_isa_base.c", "fl_isa_avx2.c", "fl_isa_avx512.c"]
# The kernel families (fastloss._kernels.FAMILIES) that have C kernels, one template each.
DEPENDS = ["fastloss.h", "fl_list.h", "fl_kernels.h", "fl_pool.h", "fl_simd.h", "fl_real.h",
           "fl_isa_pass.h", "fl_vmath.inc", "fl_vhelpers.inc", "classification.inc", "elementwise.inc", "rows.inc"]
COMPILE_ARGS = ["-O3", "-std=gnu11", "-fno-math-errno", "-fno-trapping-math", "-Wno-psabi"]
# Extra flags for both compiling and linking, e.g. the sanitizer build of .ci/sanitize.sh:
# FASTLOSS_C_CFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
EXTRA_ARGS = shlex.split(os.environ.get("FASTLOSS_C_CFLAGS", ""))


def cdef_from_header(path=HEADER):
    """The declarations of `path` as cffi's parser wants them: the header preprocessed
    (``$CC -E -P``, macros expanded, comments gone) with ``FL_CDEF`` defined, which leaves
    out ``#include <stdint.h>`` (cffi knows int64_t), one declaration per line."""
    cc = shlex.split(os.environ.get("CC", "cc"))
    try:
        out = subprocess.run([*cc, "-E", "-P", "-DFL_CDEF", "-I", os.path.dirname(path), path],
                             capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", "") or exc
        raise RuntimeError(f"cannot preprocess {path} into the cffi cdef: {detail}") from exc
    # one declaration per line: a generated row of the list expands to one long line
    text = re.sub(r";\s*", ";\n", " ".join(out.split()))
    return "\n".join(ln.strip() for ln in text.splitlines() if ln.strip())


def abi_source(cdef):
    """The C definition of ``fl_abi()``: the cdef as a string constant, one literal per
    line (no compiler limit on a single literal is reached)."""
    lines = "\n".join('    "' + ln.replace("\\", "\\\\").replace('"', '\\"') + '\\n"'
                      for ln in cdef.splitlines())
    return f"const char *fl_abi(void)\n{{\n    return\n{lines};\n}}\n"


def make_builder(relative_to=None):
    """The FFI builder. Source paths are absolute (what cffi's own compile() needs, as it
    works in a temporary directory), or relative to `relative_to` (what setuptools wants
    from setup.py, which runs in the project directory)."""
    def path(name):
        full = os.path.join(HERE, name)
        return full if relative_to is None else os.path.relpath(full, relative_to)

    ffibuilder = FFI()
    cdef = cdef_from_header()
    ffibuilder.cdef(cdef)
    libraries = [] if sys.platform == "win32" else ["m", "pthread"]
    ffibuilder.set_source(
        MODULE,
        '#include "fastloss.h"\n' + abi_source(cdef),
        sources=[path(s) for s in SOURCES],
        depends=[path(s) for s in DEPENDS],
        include_dirs=[path(".")],
        extra_compile_args=COMPILE_ARGS + EXTRA_ARGS,
        extra_link_args=EXTRA_ARGS,
        libraries=libraries,
    )
    return ffibuilder


ffibuilder = make_builder()


if __name__ == "__main__":
    # Development build, in place: the module lands in <repo>/fastloss/, the generated C
    # source and objects in <repo>/build/cffi.
    root = os.path.dirname(HERE)
    os.chdir(root)
    tmp = os.path.join("build", "cffi")
    built = ffibuilder.compile(tmpdir=tmp, verbose="-q" not in sys.argv)
    target = os.path.join(root, "fastloss", os.path.basename(built))
    os.replace(built, target)
    print(f"built {target}")
