"""A read-only memmap (np.load(..., mmap_mode="r")) runs the same compiled Numba kernels
as a writable array: no second compile (the kernels take their inputs read-only)."""
import numpy as np
import pytest

import fastloss
from fastloss._registry import LOSSES
from conftest import all_cases

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _signatures():
    numba = pytest.importorskip("numba")
    from fastloss import _numba
    out = {}
    for mod in (_numba.classification, _numba.elementwise, _numba.rows, _numba._common,
                _numba.linear, _numba.sequence):
        for k, v in vars(mod).items():
            if isinstance(v, numba.core.registry.CPUDispatcher):
                out[f"{mod.__name__}.{k}"] = len(v.signatures)
    return out


def _first_cases(dtype):
    seen = {}
    for c in all_cases():
        if c.loss not in seen and c.grad:
            seen[c.loss] = c.build(dtype)
    return seen


def _readonly_copies(tmp_path, args, kwargs):
    def ro(i, a):
        if isinstance(a, np.ndarray) and a.ndim:
            path = tmp_path / f"a{i}.npy"
            np.save(path, a)
            m = np.load(path, mmap_mode="r")
            assert not m.flags.writeable
            return m
        return a
    return tuple(ro(i, a) for i, a in enumerate(args)), kwargs


@pytest.mark.parametrize("dtype", [np.float32])
def test_readonly_memmap_compiles_nothing_new(tmp_path, dtype):
    if not fastloss._dispatch._BACKENDS["numba"].available:
        pytest.skip("numba backend missing")
    cases = _first_cases(dtype)

    def run(name, args, kwargs):
        fn = LOSSES[name].function
        for red in ("mean", "none"):
            fn(*args, **kwargs, reduction=red, backend="numba")
        wrt = tuple(a for a in LOSSES[name].differentiable
                    if isinstance(dict(zip(LOSSES[name].parameters, args)).get(a), np.ndarray))
        fastloss.value_and_grad(fn, argnums=wrt)(*args, **kwargs, backend="numba")
    for name, (args, kwargs) in cases.items():       # compile (or load) the writable ones
        run(name, args, kwargs)
    before = _signatures()
    for name, (args, kwargs) in cases.items():
        (tmp_path / name).mkdir()
        ro_args, ro_kwargs = _readonly_copies(tmp_path / name, args, kwargs)
        run(name, ro_args, ro_kwargs)
        got = LOSSES[name].function(*ro_args, **ro_kwargs, backend="numba")
        np.testing.assert_allclose(got, LOSSES[name].function(*args, **kwargs,
                                                              backend="numba"), rtol=1e-6)
    after = _signatures()
    new = {k: (before.get(k, 0), v) for k, v in after.items() if v != before.get(k, 0)}
    assert not new, f"read-only inputs compiled new specialisations: {new}"


_RSS_CHILD = r"""
import json, sys, threading, time
import numpy as np
import fastloss

def anon_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])

xp, tp, chunk = sys.argv[1], sys.argv[2], int(sys.argv[3])
x = np.load(xp, mmap_mode="r")
t = np.load(tp, mmap_mode="r")
fastloss.cross_entropy(x[:64], t[:64])            # compiled (or loaded) before measuring
peak, stop = [0], threading.Event()
def sample():
    while not stop.is_set():
        peak[0] = max(peak[0], anon_kb())
        time.sleep(0.002)
base = anon_kb()
th = threading.Thread(target=sample); th.start()
whole = float(fastloss.cross_entropy(x, t))      # one call over the whole memmap
acc = fastloss.RunningLoss(fastloss.cross_entropy)
for i in range(0, x.shape[0], chunk):            # and streamed in chunks
    acc.update(x[i:i + chunk], t[i:i + chunk])
stop.set(); th.join()
peak[0] = max(peak[0], anon_kb())
print(json.dumps({"base_mb": base / 1024, "peak_mb": peak[0] / 1024, "whole": whole,
                  "streamed": float(acc.compute())}))
"""


def test_scoring_a_memmapped_npy_keeps_anonymous_memory_bounded(tmp_path):
    """A 512 MiB float32 .npy, memory-mapped, scored whole and through RunningLoss in
    32 MiB chunks: the process's anonymous memory (RssAnon) grows by far less than the
    file (the kernels read the mapped pages in place: no copy of the input), and stays
    under 256 MB in all."""
    import json
    import subprocess
    import sys
    n, c = 131072, 1024                               # 512 MiB of float32
    xp, tp = tmp_path / "x.npy", tmp_path / "t.npy"
    x = np.lib.format.open_memmap(xp, mode="w+", dtype=np.float32, shape=(n, c))
    row = (np.arange(c, dtype=np.float32) % 13) * 0.25
    step = 8192
    for i in range(0, n, step):
        x[i:i + step] = row + (np.arange(i, i + step, dtype=np.float32) % 7)[:, None]
    x.flush()
    del x
    t = np.arange(n) % c
    np.save(tp, t)
    out = subprocess.run([sys.executable, "-c", _RSS_CHILD, str(xp), str(tp),
                          str((32 << 20) // (4 * c))], capture_output=True, text=True,
                         check=True, timeout=600)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    grown = r["peak_mb"] - r["base_mb"]
    assert grown < 64, r            # the file is 512 MiB; a chunk is 32 MiB
    assert r["peak_mb"] < 256, r
    np.testing.assert_allclose(r["streamed"], r["whole"], rtol=1e-6)
