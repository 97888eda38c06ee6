"""The run time around the kernels: forking while other threads run kernels, where
Numba's cache lives, version and public names, and thread limits through threadpoolctl.

Tests that change process-wide state (threads, fork, environment variables read at
import) run their code in a fresh interpreter."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastloss

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(fastloss.__file__)))


def run_python(code, env=None, timeout=300, cwd=None):
    """Run `code` in a fresh interpreter that imports fastloss from this checkout."""
    full_env = dict(os.environ if env is None else env)
    full_env["PYTHONPATH"] = ROOT + os.pathsep + full_env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=full_env,
                          capture_output=True, text=True, timeout=timeout, cwd=cwd)


# ---------------------------------------------------------------- fork while threads run kernels
_FORK_STRESS = r"""
import os, sys, threading, time, warnings
import numpy as np, numba, fastloss
warnings.simplefilter("ignore", DeprecationWarning)   # 3.12+: fork() with threads running
from fastloss._numba import _common

N_FORKS, PER_CHILD = {n_forks}, {per_child}
x = np.linspace(-2, 2, 40_000, dtype=np.float32)       # above PARALLEL_MIN: parallel driver
y = np.zeros_like(x)
def kernel():
    return float(fastloss.mse_loss(x, y, backend="numba"))
expected = kernel()                                    # the main thread starts the pool
if numba.threading_layer() != "tbb":
    print("SKIP: threading layer", numba.threading_layer()); sys.exit(0)

stop = threading.Event()
def loop():
    while not stop.is_set():
        assert kernel() == expected
busy = threading.Thread(target=loop, daemon=True)
busy.start()
time.sleep(0.05)

hung = wrong = parallel_children = 0
for i in range(N_FORKS):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:                                       # the child: one parallel-sized call
        os.close(r)
        ok = kernel() == expected
        os.write(w, b"%d%d" % (ok, _common.STATE.parallel))
        os._exit(0)
    os.close(w)
    deadline = time.monotonic() + PER_CHILD
    while True:                                        # a hang is also possible inside fork()
        done, status = os.waitpid(pid, os.WNOHANG)
        if done or time.monotonic() > deadline:
            break
        time.sleep(0.002)
    if not done:
        os.kill(pid, 9); os.waitpid(pid, 0); hung += 1
    else:
        got = os.read(r, 2)
        wrong += got[:1] != b"1"
        parallel_children += got[1:2] == b"1"
    os.close(r)
stop.set(); busy.join()
print("RESULT", hung, wrong, parallel_children, flush=True)
"""


def _fork_stress(n_forks, per_child=10.0):
    out = run_python(_FORK_STRESS.format(n_forks=n_forks, per_child=per_child), timeout=600)
    if out.stdout.startswith("SKIP"):
        pytest.skip(out.stdout.strip())
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT")]
    assert out.returncode == 0 and lines, out.stdout[-2000:] + out.stderr[-2000:]
    hung, wrong, parallel_children = map(int, lines[0].split()[1:])
    return hung, wrong, parallel_children, out


def test_fork_while_another_thread_runs_parallel_kernels():
    """Numba's TBB pool cannot shut down for a fork once a second live thread has used it
    (it prints "Unable to join threads ..."), and a child then deadlocks now and then
    inside fork() itself. fastloss lets only the thread that started the pool run
    parallel drivers, so TBB always shuts down cleanly and every child works, keeping
    its parallel kernels."""
    hung, wrong, parallel_children, out = _fork_stress(120)
    assert hung == 0, f"{hung} of 120 forked children hung"
    assert wrong == 0, f"{wrong} children computed a different value"
    assert "Unable to join threads" not in out.stdout + out.stderr
    assert parallel_children == 120


_FORK_FROM_THREAD = r"""
import os, sys, threading, time
import numpy as np, numba, fastloss
from fastloss._numba import _common
x = np.linspace(-2, 2, 40_000, dtype=np.float32); y = np.zeros_like(x)
expected = float(fastloss.mse_loss(x, y, backend="numba"))     # the main thread owns the pool
if numba.threading_layer() != "tbb":
    print("SKIP: threading layer", numba.threading_layer()); sys.exit(0)
result = {{}}
def fork_here():
    pid = os.fork()
    if pid == 0:
        ok = float(fastloss.mse_loss(x, y, backend="numba")) == expected
        os._exit(0 if ok and not _common.STATE.parallel else 3)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            result["status"] = status; return
        time.sleep(0.005)
    os.kill(pid, 9); os.waitpid(pid, 0); result["status"] = "hung"
t = threading.Thread(target=fork_here); t.start(); t.join()
print("STATUS", result["status"])
"""


def test_fork_from_another_thread_runs_serial_drivers_in_the_child():
    """A fork from a thread that did not start the pool: TBB does not restart the pool in
    the child, which must then use the serial drivers (and get the same value)."""
    out = run_python(_FORK_FROM_THREAD.format(), timeout=300)
    if out.stdout.startswith("SKIP"):
        pytest.skip(out.stdout.strip())
    assert "STATUS 0" in out.stdout, out.stdout[-2000:] + out.stderr[-2000:]


def test_other_threads_get_the_same_bits_while_the_owner_lives():
    """Threads other than the pool's owner run the serial drivers: the same blocks in the
    same order, so the same bits as the owner's parallel call."""
    import threading
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4000, 100)).astype(np.float32)
    t = rng.integers(0, 100, 4000)
    vg = fastloss.value_and_grad(fastloss.cross_entropy)
    v0, g0 = vg(x, t, backend="numba")
    got = []
    th = threading.Thread(target=lambda: got.append(vg(x, t, backend="numba")))
    th.start()
    th.join()
    assert got[0][0].tobytes() == v0.tobytes() and got[0][1].tobytes() == g0.tobytes()


# ---------------------------------------------------------------- where Numba's cache goes
_CACHE_PROBE = r"""
import json, os, sys, numpy as np
import numba
from fastloss import _numba_cache
from fastloss._numba import _common
_common.sum_partials(np.zeros(3))          # a tiny cache=True kernel of fastloss's: compiled, saved
user = {user!r}
if user:                                   # someone else's cached function: not ours to move
    sys.path.insert(0, os.path.dirname(user))
    import user_kernels
    user_kernels.twice(2.0)
print(json.dumps({{"cache_dir": _numba_cache.cache_dir(),
                  "locator": _common.sum_partials._cache._cache_path,
                  "package": os.path.dirname(os.path.abspath(_numba_cache.__file__))}}))
"""


def _probe_cache(tmp_path, user_module=False, **env):
    base = {k: v for k, v in os.environ.items()
            if k not in ("FASTLOSS_CACHE_DIR", "NUMBA_CACHE_DIR", "XDG_CACHE_HOME")}
    base["HOME"] = str(tmp_path / "home")
    base.update(env)
    user = ""
    if user_module:
        src = tmp_path / "user" / "user_kernels.py"
        src.parent.mkdir()
        src.write_text("import numba\n@numba.njit(cache=True)\ndef twice(x):\n    return 2 * x\n")
        user = str(src)
    out = run_python(_CACHE_PROBE.format(user=user), env=base, cwd=str(tmp_path))
    assert out.returncode == 0, out.stderr[-3000:]
    import json
    return json.loads(out.stdout.strip().splitlines()[-1])


def _cache_files(root):
    return sorted(p.name for p in root.rglob("*") if p.suffix in (".nbi", ".nbc"))


def test_numba_cache_goes_to_the_per_user_cache_directory(tmp_path):
    """Not next to the source (site-packages for an install): under XDG_CACHE_HOME, one
    directory per Numba version; a user's own cached functions stay where Numba puts them."""
    import numba
    got = _probe_cache(tmp_path, user_module=True, XDG_CACHE_HOME=str(tmp_path / "xdg"))
    expected = tmp_path / "xdg" / "fastloss" / f"numba-{numba.__version__}"
    assert got["cache_dir"] == str(expected)
    assert got["locator"].startswith(str(expected) + os.sep)
    assert any(n.startswith("_common.sum_partials") for n in _cache_files(expected))
    assert _cache_files(tmp_path / "user" / "__pycache__"), "the user's function was moved"
    assert not any("user_kernels" in n for n in _cache_files(expected))


def test_numba_cache_default_is_dot_cache_and_never_the_package(tmp_path):
    import numba
    got = _probe_cache(tmp_path)
    expected = tmp_path / "home" / ".cache" / "fastloss" / f"numba-{numba.__version__}"
    assert got["cache_dir"] == str(expected)
    assert not got["locator"].startswith(got["package"])
    assert _cache_files(expected)


def test_fastloss_cache_dir_overrides_and_numba_cache_dir_is_respected(tmp_path):
    import numba
    got = _probe_cache(tmp_path, FASTLOSS_CACHE_DIR=str(tmp_path / "mine"),
                       NUMBA_CACHE_DIR=str(tmp_path / "numba"))
    assert got["cache_dir"] == str(tmp_path / "mine" / f"numba-{numba.__version__}")
    assert _cache_files(tmp_path / "mine") and not (tmp_path / "numba").exists()
    got = _probe_cache(tmp_path, NUMBA_CACHE_DIR=str(tmp_path / "numba"))
    assert got["cache_dir"] is None                      # Numba's own locator handles it
    assert got["locator"].startswith(str(tmp_path / "numba") + os.sep)
    assert _cache_files(tmp_path / "numba")


def test_unwritable_cache_directory_falls_back_to_a_private_temporary_one(tmp_path):
    """A cache directory that cannot be created (here: below a regular file, which even
    root cannot write into) must not break the kernels."""
    import tempfile
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    got = _probe_cache(tmp_path, FASTLOSS_CACHE_DIR=str(blocker / "cache"), TMPDIR=str(tmp))
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    private = tmp / f"fastloss-{uid}"
    assert got["cache_dir"].startswith(str(private) + os.sep)
    assert oct(private.stat().st_mode & 0o777) == oct(0o700)
    assert _cache_files(private)
    assert tempfile.gettempdir() != str(tmp)             # the test did not change ours


# ---------------------------------------------------------------- threadpoolctl
_TPC = r"""
import json, os, sys
import numpy as np
first, second = {order!r}
__import__(first); __import__(second)
import fastloss, numba, threadpoolctl
mine = [i for i in threadpoolctl.threadpool_info() if i["internal_api"] == "fastloss"]
x = np.linspace(-3, 3, 400_000, dtype=np.float32).reshape(4000, 100)
t = np.arange(4000) % 100
before = fastloss.get_num_threads()
with threadpoolctl.threadpool_limits(1):
    inside = fastloss.get_num_threads()
    value = float(fastloss.cross_entropy(x, t, backend="numba"))   # parallel-sized
    numba_inside = numba.get_num_threads()
    c_inside = None
    if "fastloss._cffi" in sys.modules:
        c_inside = sys.modules["fastloss._cffi"].lib.fl_get_num_threads()
with threadpoolctl.threadpool_limits(limits=1, user_api="fastloss"):
    by_api = fastloss.get_num_threads()
after = fastloss.get_num_threads()
print(json.dumps(dict(mine=mine, before=before, inside=inside, numba_inside=numba_inside,
                      c_inside=c_inside, by_api=by_api, after=after, value=value)))
"""


@pytest.mark.parametrize("order", [("fastloss", "threadpoolctl"), ("threadpoolctl", "fastloss")])
@pytest.mark.parametrize("no_c", [False, True], ids=["with-c", "no-c"])
def test_threadpool_limits_limits_fastloss(order, no_c):
    """threadpoolctl (optional) lists fastloss's pool and its limit is fastloss's thread
    count, whichever is imported first, with or without the C backend."""
    pytest.importorskip("threadpoolctl")
    import json
    env = dict(os.environ, FASTLOSS_NUM_THREADS="2")
    if no_c:
        env["FASTLOSS_NO_C"] = "1"
    else:
        env.pop("FASTLOSS_NO_C", None)
    out = run_python(_TPC.format(order=order), env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(got["mine"]) == 1, got["mine"]
    info = got["mine"][0]
    assert info["user_api"] == "fastloss" and info["num_threads"] == 2
    assert info["version"] == fastloss.__version__
    with_c = not no_c and "c" in _available_backends()
    assert info["prefix"] == ("_fastloss_c" if with_c else "_helperlib")
    assert got["before"] == 2 and got["inside"] == 1 and got["after"] == 2
    assert got["numba_inside"] == 1
    assert got["c_inside"] == (1 if with_c else None)
    assert got["by_api"] == 1


def _available_backends():
    from fastloss._dispatch import _BACKENDS
    return {name for name, b in _BACKENDS.items() if b.available}


def test_import_fastloss_does_not_import_threadpoolctl():
    out = run_python("import sys, fastloss; print('threadpoolctl' in sys.modules)")
    assert out.returncode == 0 and out.stdout.strip() == "False", out.stderr[-2000:]
