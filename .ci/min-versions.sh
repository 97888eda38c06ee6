#!/usr/bin/env bash
# CI: the oldest dependency versions pyproject.toml allows. A fresh venv gets exactly the
# declared floors of numpy, numba, cffi and tbb (read from pyproject.toml, so the check
# follows the metadata), the oldest llvmlite that numba floor accepts, and fastloss[test]
# built against them; then the suite runs without torch (the golden fixtures stand in).
# numba 0.59-0.61 aborted the interpreter on the kernels (LLVM ERROR: Cannot select
# fmaximum): this is the step that catches a floor that does not work.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
work=$(mktemp -d)
python3 -m venv "$work/venv"
py="$work/venv/bin/python"
"$py" -m pip install -q --upgrade pip

floors=$("$py" - "$root/pyproject.toml" <<'PY'
import re, sys, tomllib
deps = tomllib.load(open(sys.argv[1], "rb"))["project"]["dependencies"]
pins = []
for dep in deps:
    m = re.match(r"\s*(numpy|numba|cffi|tbb)\s*>=\s*([\w.]+)\s*(;.*)?$", dep)
    if m and (not m.group(3) or __import__("platform").machine() in ("x86_64", "AMD64")):
        pins.append(f"{m.group(1)}=={m.group(2)}")
assert {p.split("==")[0] for p in pins} >= {"numpy", "numba", "cffi"}, (deps, pins)
print(" ".join(pins))
PY
)
echo "min-versions: $floors"
# shellcheck disable=SC2086
"$py" -m pip install -q $floors "setuptools>=77"
llvmlite=$("$py" -c "
import importlib.metadata as m, re
req = next(r for r in m.requires('numba') if r.startswith('llvmlite'))
print(re.search(r'>=\s*(\d+\.\d+(\.\d+)?)', req).group(1))")
"$py" -m pip install -q "llvmlite==$llvmlite"
# --no-build-isolation: the C module is built with the floor cffi, not the newest
# shellcheck disable=SC2086
"$py" -m pip install -q --no-build-isolation "$root[test]" $floors "llvmlite==$llvmlite"
"$py" -c "
import sys, numpy, numba, cffi, llvmlite
want = dict(p.split('==') for p in sys.argv[1:])
got = {'numpy': numpy.__version__, 'numba': numba.__version__, 'cffi': cffi.__version__,
       'llvmlite': llvmlite.__version__}
bad = {k: (got[k], v) for k, v in want.items() if k in got and got[k] != v}
assert not bad, bad
print('min-versions: installed', got)" $floors "llvmlite==$llvmlite"

cd "$work"
# Every kernel of every backend against the reference, the golden fixtures (the oracle
# without torch) and the runtime checks (threading layer, fork, cache): enough to catch a
# floor that aborts or miscomputes, in a few minutes (the whole suite runs in the main job).
FASTLOSS_CACHE_DIR="$work/numba-cache" "$py" -m pytest -q -p no:cacheprovider \
    "$root/tests/test_backends.py" "$root/tests/test_golden.py" "$root/tests/test_numba.py" \
    "$root/tests/test_runtime.py" "$root/tests/test_c_backend.py"
