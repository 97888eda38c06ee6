"""fastloss is typed for its users: it ships ``py.typed``, every public loss, class and
helper is annotated (array-likes in, ``numpy.ndarray`` out, ``backend: str | None``), and
``mypy --strict`` accepts a user's script of the documented API (tests/typing/
user_script.py) while rejecting the mistakes in tests/typing/user_errors.py: a loss's
result is an ndarray, not ``Any`` nor the internal ``Prepared``, and ``backend=`` is part
of every loss's signature.

The mypy check runs where mypy is installed (CI installs it: .ci/typecheck.sh)."""
import importlib.util
import inspect
import os
import re
import runpy
import site
import subprocess
import sys
import typing

import numpy as np
import pytest

import fastloss
from fastloss import _engine
from fastloss._registry import LOSSES

HERE = os.path.dirname(os.path.abspath(__file__))
TYPING = os.path.join(HERE, "typing")
PACKAGE = os.path.dirname(os.path.abspath(fastloss.__file__))


def test_py_typed_is_shipped():
    # next to the fastloss that is imported: in CI's non-editable install too
    assert os.path.isfile(os.path.join(PACKAGE, "py.typed"))
    pyproject = os.path.join(os.path.dirname(HERE), "pyproject.toml")
    if os.path.isfile(pyproject):
        assert re.search(r'fastloss = \[[^\]]*"py\.typed"', open(pyproject).read())


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_signature_is_annotated(name):
    """Every loss declares its full annotated signature, backend included: the @loss
    decorator hands exactly that (returning ndarray) to type checkers."""
    spec = LOSSES[name]
    own = inspect.signature(spec.prepare)
    missing = [p for p, par in own.parameters.items() if par.annotation is par.empty]
    assert not missing, f"{name}: parameters without annotations: {missing}"
    backend = own.parameters.get("backend")
    assert backend is not None, f"{name} must declare `*, backend: str | None = None`"
    assert backend.kind is backend.KEYWORD_ONLY and backend.default is None
    assert backend.annotation in ("str | None", str | None)
    hints = typing.get_type_hints(spec.prepare)
    assert hints["return"] is _engine.Prepared
    # what users see at run time (help(), inspect, get_type_hints): an ndarray result
    public = inspect.signature(spec.function)
    assert public.return_annotation is np.ndarray
    assert typing.get_type_hints(spec.function)["return"] is np.ndarray
    assert list(public.parameters) == list(own.parameters)
    assert "backend" not in spec.parameters


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_class_is_annotated(name):
    cls = getattr(fastloss, LOSSES[name].class_name)
    sig = inspect.signature(cls.__init__)
    missing = [p for p, par in sig.parameters.items()
               if p != "self" and par.annotation is par.empty]
    assert not missing, f"{cls.__name__}.__init__: parameters without annotations: {missing}"
    assert sig.return_annotation in ("None", None)
    assert "backend" in sig.parameters
    for method in (cls.__call__, cls.value_and_grad):
        assert inspect.signature(method).return_annotation is not inspect.Signature.empty


def test_helpers_are_annotated():
    for fn in (fastloss.value_and_grad, fastloss.use_backend, fastloss.show_backends,
               fastloss.set_num_threads, fastloss.get_num_threads,
               fastloss.register_backend):
        sig = inspect.signature(inspect.unwrap(fn))
        assert sig.return_annotation is not sig.empty, fn.__name__
        assert all(p.annotation is not p.empty for p in sig.parameters.values()), fn.__name__


def test_user_script_runs():
    runpy.run_path(os.path.join(TYPING, "user_script.py"), run_name="__main__")


def _mypy(tmp_path, *files):
    """mypy --strict on `files` as a user of the fastloss that is imported here would
    run it: an installed fastloss is found in site-packages (through its py.typed);
    a checkout's through MYPYPATH. fastloss's own modules are read for their types
    but not reported on (as for any installed package)."""
    config = tmp_path / "mypy.ini"
    config.write_text("[mypy]\nstrict = True\nwarn_unused_configs = False\n\n"
                      "[mypy-fastloss.*]\nfollow_imports = silent\n")
    env = dict(os.environ)
    root = os.path.dirname(PACKAGE)
    installed = {os.path.realpath(p) for p in site.getsitepackages()}
    if os.path.realpath(root) not in installed:
        env["MYPYPATH"] = root
    r = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(config),
                        "--cache-dir", str(tmp_path / "cache"), "--no-error-summary",
                        "--show-error-codes", "--python-executable", sys.executable,
                        *files], capture_output=True, text=True, env=env, cwd=str(tmp_path),
                       timeout=600)
    return r


@pytest.mark.skipif(importlib.util.find_spec("mypy") is None,
                    reason="mypy not installed (CI installs it: .ci/typecheck.sh)")
def test_mypy_strict_accepts_the_user_script_and_rejects_the_errors(tmp_path):
    script = os.path.join(TYPING, "user_script.py")
    errors = os.path.join(TYPING, "user_errors.py")
    r = _mypy(tmp_path, script, errors)
    assert "Traceback" not in r.stderr, r.stderr
    found = {}
    for line in r.stdout.splitlines():
        m = re.match(r"(.+?):(\d+): error: .*\[([\w-]+)\]$", line)
        if m:
            found.setdefault((os.path.basename(m.group(1)), int(m.group(2))),
                             set()).add(m.group(3))
    assert not [k for k in found if k[0] != "user_errors.py"], r.stdout
    expected = {}
    for n, line in enumerate(open(errors).read().splitlines(), 1):
        m = re.search(r"# error: ([\w-]+)$", line)
        if m:
            expected[("user_errors.py", n)] = {m.group(1)}
    assert len(expected) >= 10
    # every marked line fails with its code (an assignment of a loss's result to int
    # fails only if mypy infers ndarray), and nothing else fails
    assert found == expected, r.stdout


# The modules that make up the typed API: their own annotations must be consistent.
TYPED_MODULES = ["_typing.py", "_registry.py", "_grad.py", "losses.py", "_dispatch.py",
                 "_threads.py", "functional"]


@pytest.mark.skipif(importlib.util.find_spec("mypy") is None,
                    reason="mypy not installed (CI installs it: .ci/typecheck.sh)")
def test_mypy_accepts_fastloss_own_annotations(tmp_path):
    """mypy (default strictness: annotated functions are checked) on the modules behind
    the public API, so that a wrong annotation there fails here rather than in a user's
    editor."""
    config = tmp_path / "mypy.ini"
    config.write_text("[mypy]\nfollow_imports = silent\nignore_missing_imports = True\n")
    r = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(config),
                        "--cache-dir", str(tmp_path / "cache"), "--show-error-codes",
                        *[os.path.join(PACKAGE, m) for m in TYPED_MODULES]],
                       capture_output=True, text=True, cwd=str(tmp_path), timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
