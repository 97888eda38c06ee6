#!/usr/bin/env bash
# CI: the C kernels under AddressSanitizer and UndefinedBehaviorSanitizer.
#
# Builds the C module with -fsanitize=address,undefined (every UB report fatal) in a
# temporary copy of the package, so that the normal build is untouched (at -O1: the
# instrumented -O3 build of the inlined templates takes several times longer to compile
# for the same checks), and runs the C
# backend tests and the unaligned / strided / byte-swapped array tests against it. The
# Python host is not instrumented, so libasan is preloaded (it must come first), and
# leak checking is off (the interpreter itself keeps memory until exit).
#
# Usage: .ci/sanitize.sh [python]   (default: python3; .ci/run passes its venv's python)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
py=${1:-python3}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$root/fastloss" "$root/csrc" "$root/tests" "$work/"
rm -f "$work"/fastloss/_fastloss_c*.so "$work"/fastloss/_fastloss_c_build.txt
find "$work" -name __pycache__ -prune -exec rm -rf {} +

cd "$work"
FASTLOSS_C_CFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -O1" \
    "$py" csrc/build_cffi.py -q

asan=$(gcc -print-file-name=libasan.so)
if [ ! -e "$asan" ]; then
    echo "sanitize.sh: libasan not found (gcc -print-file-name=libasan.so gave $asan)" >&2
    exit 1
fi

export LD_PRELOAD="$asan"
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export FASTLOSS_REQUIRE_C=1
export PYTHONPATH="$work"
# the instrumented module, not an installed one
"$py" -c "import fastloss._cffi as c, sys; assert c.__file__.startswith('$work'), c.__file__"
# Numba's LLVM is not built for ASan's allocator: the Numba backend is left out (its
# kernels never reach C), and the array-layout tests run on the C backend only.
"$py" -m pytest -q -p no:cacheprovider tests/test_c_backend.py \
    "tests/test_memory_layouts.py" -k "not numba and not numpy" "${@:2}"
