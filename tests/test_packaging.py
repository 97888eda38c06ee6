"""What a user of the distribution gets: the sdist (the whole test tree, links that
resolve), the README's install commands in one virtualenv, the license, one version and
`fastloss --version`, and the public names in `fastloss.__all__`.

The build and install tests work on a copy of the source tree in a temporary directory
(a build writes build/ and *.egg-info next to the sources) and reuse this interpreter's
installed dependencies (--no-deps --no-build-isolation --no-index), so they need neither
a network nor a compiler and take seconds."""
import os
import re
import shutil
import subprocess
import sys
import tarfile
import textwrap

import pytest

import fastloss

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HAS_SOURCE = os.path.isfile(os.path.join(ROOT, "pyproject.toml"))
needs_source = pytest.mark.skipif(not HAS_SOURCE, reason="not run from a source tree")

_NOT_SOURCE = {".git", "build", "dist", ".pytest_cache", ".benchmarks", "__pycache__"}


def copy_source(dst):
    """The source tree without build products, as a fresh checkout (or sdist) has it."""
    def ignore(directory, names):
        return [n for n in names
                if n in _NOT_SOURCE or n.endswith((".egg-info", ".so", ".pyc", ".o"))
                or n == "_fastloss_c_build.txt" or n.startswith(".venv")]
    shutil.copytree(ROOT, dst, ignore=ignore, symlinks=True)
    return str(dst)


def _run(cmd, **kw):
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=kw.pop("timeout", 600),
                         **kw)
    assert out.returncode == 0, f"{cmd}\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out


def _repo_files(sub):
    found = set()
    for d, dirs, files in os.walk(os.path.join(ROOT, sub)):
        dirs[:] = [x for x in dirs if x != "__pycache__"]
        for f in files:
            if not f.endswith((".pyc", ".pyo", ".so", ".o")):
                found.add(os.path.relpath(os.path.join(d, f), ROOT).replace(os.sep, "/"))
    return found


@pytest.fixture(scope="module")
def sdist(tmp_path_factory):
    """(path of the built sdist, its member names relative to its top directory)."""
    if not HAS_SOURCE:
        pytest.skip("not run from a source tree")
    tmp = tmp_path_factory.mktemp("sdist")
    src = copy_source(tmp / "src")
    code = ("import sys; from setuptools import build_meta as b; "
            "print(b.build_sdist(sys.argv[1]))")
    out = _run([sys.executable, "-c", code, str(tmp / "dist")], cwd=src)
    path = tmp / "dist" / out.stdout.strip().splitlines()[-1]
    with tarfile.open(path) as tar:
        names = {m.name.split("/", 1)[1] for m in tar.getmembers()
                 if "/" in m.name and m.isfile()}
    return path, names


# ---------------------------------------------------------------- the sdist
def test_sdist_ships_the_whole_test_tree(sdist):
    """All of tests/ (conftest, helpers, cases, golden fixtures) or none of it: a test
    module without its conftest fails to collect."""
    _, names = sdist
    shipped = {n for n in names if n.startswith("tests/")}
    assert shipped == _repo_files("tests")


def test_unpacked_sdist_collects_its_tests(sdist, tmp_path):
    path, _ = sdist
    with tarfile.open(path) as tar:
        tar.extractall(tmp_path, filter="data") if hasattr(tarfile, "data_filter") \
            else tar.extractall(tmp_path)
    (top,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    # An unpacked sdist has no compiled C module, so it is collected as a machine without a
    # compiler is; CI's FASTLOSS_REQUIRE_C=1 (which makes test_c_backend raise at import
    # when the C module is missing) is for the tree it built, not for this copy.
    env = {k: v for k, v in os.environ.items() if k != "FASTLOSS_REQUIRE_C"}
    env.update(PYTHONPATH=str(top), FASTLOSS_NO_C="1")
    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q",
                          "-p", "no:cacheprovider", "tests"], cwd=top, env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert " error" not in out.stdout.lower()
    assert re.search(r"\b\d{3,} tests? collected", out.stdout), out.stdout[-500:]


def test_readme_links_resolve_where_the_readme_is_shipped(sdist):
    """The README is also the package description (PyPI, the sdist): a relative link or
    image must point at a file the sdist ships, anything else must be absolute."""
    _, names = sdist
    text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    targets = re.findall(r"\]\(([^)\s]+)", text)
    targets += re.findall(r"<img[^>]+src=\"([^\"]+)\"", text)
    for target in targets:
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue
        assert target.split("#")[0] in names, f"README links to {target}, not in the sdist"


def test_sdist_metadata_license_and_version(sdist):
    _, names = sdist
    assert "LICENSE" in names
    path, _ = sdist
    with tarfile.open(path) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith("/PKG-INFO")
                      and m.name.count("/") == 1)
        pkg_info = tar.extractfile(member).read().decode()
    assert re.search(r"^Version: " + re.escape(fastloss.__version__) + "$", pkg_info, re.M)
    assert re.search(r"^License-Expression: BSD-3-Clause$", pkg_info, re.M)
    assert re.search(r"^License-File: LICENSE$", pkg_info, re.M)


# ---------------------------------------------------------------- the README's two commands
def _dependency_dir(tmp_path):
    """This interpreter's installed packages, minus any fastloss, as one directory of
    symlinks (a test virtualenv reads it through a .pth file)."""
    deps = tmp_path / "deps"
    deps.mkdir()
    for site_dir in [p for p in sys.path if p.endswith("site-packages") and os.path.isdir(p)]:
        for name in os.listdir(site_dir):
            low = name.lower()
            if (low.startswith(("fastloss", "__editable__", "_fastloss")) or low.endswith(".pth")
                    or (deps / name).exists()):
                continue
            os.symlink(os.path.join(site_dir, name), deps / name)
    return deps


def _site_packages(venv):
    out = _run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
    return out.stdout.strip()


_USE = """
import os, sys, numpy as np
import fastloss
print(fastloss.__file__)
from fastloss._numba import _common
_common.sum_partials(np.zeros(3))                 # a cache=True kernel: compiled and saved
x = np.array([[1.0, 2.0, 0.5]], np.float32)
print(float(fastloss.cross_entropy(x, np.array([1]), backend="numpy")))
"""


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX virtualenv layout")
@needs_source
def test_readme_install_commands_in_one_venv_then_uninstall(tmp_path):
    """`pip install .` then `pip install -e '.[test]'` in one virtualenv: Numba's cache
    must not land in site-packages (pip leaves it behind, and the leftover fastloss/
    directory shadows the editable install), and `pip uninstall` removes everything."""
    src = copy_source(tmp_path / "src")
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    site_dir = _site_packages(venv)
    with open(os.path.join(site_dir, "_test_deps.pth"), "w") as f:
        f.write(str(_dependency_dir(tmp_path)) + "\n")
    py = str(venv / "bin" / "python")
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "NUMBA_CACHE_DIR", "FASTLOSS_CACHE_DIR", "PIP_FIND_LINKS")}
    env.update(HOME=str(tmp_path / "home"), XDG_CACHE_HOME=str(tmp_path / "xdg"),
               PIP_CACHE_DIR=str(tmp_path / "pip-cache"), FASTLOSS_NO_C="1",
               PIP_DISABLE_PIP_VERSION_CHECK="1")
    pip = [py, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index"]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    _run(pip + ["."], cwd=src, env=env)                              # the first command
    out = _run([py, "-c", textwrap.dedent(_USE)], cwd=elsewhere, env=env)
    assert out.stdout.splitlines()[0].startswith(site_dir)

    _run(pip + ["-e", ".[test]"], cwd=src, env=env)                  # the second command
    assert not os.path.exists(os.path.join(site_dir, "fastloss")), \
        sorted(os.path.relpath(os.path.join(d, f), site_dir)
               for d, _, fs in os.walk(os.path.join(site_dir, "fastloss")) for f in fs)[:10]
    out = _run([py, "-c", textwrap.dedent(_USE)], cwd=elsewhere, env=env)
    lines = out.stdout.splitlines()
    assert lines[0] == os.path.join(src, "fastloss", "__init__.py")
    assert abs(float(lines[1]) - 0.4643688) < 1e-6      # log(e + e**2 + e**0.5) - 2

    _run([py, "-m", "pip", "uninstall", "-y", "-q", "fastloss"], cwd=elsewhere, env=env)
    left = [n for n in os.listdir(site_dir) if "fastloss" in n.lower()]
    assert left == [], left
    assert os.listdir(tmp_path / "xdg" / "fastloss"), "the kernels were not cached"


# ---------------------------------------------------------------- license, version, names
@needs_source
def test_license_file_is_bsd_3_clause():
    text = open(os.path.join(ROOT, "LICENSE"), encoding="utf-8").read()
    assert text.startswith("BSD 3-Clause License")
    assert "fastloss developers" in text
    assert "Neither the name of the copyright holder" in text


@needs_source
def test_version_is_written_in_one_place():
    """pyproject.toml reads the version from fastloss/_version.py; nothing else writes it."""
    pyproject = open(os.path.join(ROOT, "pyproject.toml"), encoding="utf-8").read()
    project = pyproject.split("[project]", 1)[1].split("\n[", 1)[0]
    assert re.search(r'^dynamic = \[.*"version".*\]', project, re.M)
    assert not re.search(r"^version\s*=", project, re.M)
    assert 'version = {attr = "fastloss._version.__version__"}' in pyproject
    writers = []
    for d, dirs, files in os.walk(os.path.join(ROOT, "fastloss")):
        dirs[:] = [x for x in dirs if x != "__pycache__"]
        for f in files:
            if f.endswith(".py"):
                text = open(os.path.join(d, f), encoding="utf-8").read()
                if re.search(r"^__version__\s*=", text, re.M):
                    writers.append(f)
    assert writers == ["_version.py"]
    from fastloss._version import __version__
    assert fastloss.__version__ == __version__
    assert re.fullmatch(r"\d+\.\d+\.\d+([.-]?\w+)?", __version__)


def test_installed_metadata_matches_the_version():
    import importlib.metadata
    try:
        dist = importlib.metadata.distribution("fastloss")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("fastloss is not installed (run from a checkout)")
    location = os.path.realpath(str(dist.locate_file("fastloss")))
    if location != os.path.realpath(os.path.dirname(fastloss.__file__)) and \
            not any(f.name == "direct_url.json" for f in (dist.files or [])):
        pytest.skip("the installed fastloss is not the one imported")
    assert dist.version == fastloss.__version__


def test_cli_version(capsys):
    from fastloss.__main__ import main
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"fastloss {fastloss.__version__}\n"
    assert main(["-V"]) == 0
    assert capsys.readouterr().out == f"fastloss {fastloss.__version__}\n"
    out = subprocess.run([sys.executable, "-m", "fastloss", "--version"], capture_output=True,
                         text=True, timeout=120,
                         env=dict(os.environ, PYTHONPATH=os.path.dirname(
                             os.path.dirname(os.path.abspath(fastloss.__file__)))))
    assert out.returncode == 0 and out.stdout == f"fastloss {fastloss.__version__}\n"
    assert main([]) == 2 and "--version" in capsys.readouterr().out


def test_all_lists_the_public_names():
    names = fastloss.__all__
    assert len(names) == len(set(names))
    for name in names:
        assert hasattr(fastloss, name), name
    for spec in fastloss.LOSSES.values():
        assert spec.function.__name__ in names
        assert spec.class_name in names
    for name in ("value_and_grad", "use_backend", "show_backends", "set_num_threads",
                 "get_num_threads", "register_backend", "Backend", "Unsupported", "LOSSES"):
        assert name in names
    import types
    public = {n for n, v in vars(fastloss).items()
              if not n.startswith("_") and not isinstance(v, types.ModuleType)}
    assert public <= set(names), public - set(names)
    namespace = {}
    exec("from fastloss import *", namespace)
    assert set(names) <= set(namespace)
