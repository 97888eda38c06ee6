#!/usr/bin/env bash
# Type checking as fastloss's users do it: install mypy in the (activated) CI venv, then
# tests/test_typing.py runs `mypy --strict` on tests/typing/user_script.py (the documented
# API, which must pass) and tests/typing/user_errors.py (mistakes it must reject), and
# checks that py.typed is shipped and every public loss and class is annotated.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q "mypy>=1.8"
python -m pytest -q -p no:cacheprovider tests/test_typing.py
