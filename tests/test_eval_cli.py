"""``fastloss eval``: streams .npy files through RunningLoss in chunks; the result equals
the in-memory call; --per-item is written completely or not at all; bad input gives a
one-line error naming the file (and row) with exit code 2."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import fastloss
from fastloss._eval import main

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture()
def files(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1003, 7)).astype(np.float32)
    t = rng.integers(0, 7, 1003)
    t[::9] = -100
    w = np.linspace(0.5, 2.0, 7).astype(np.float32)
    s = rng.uniform(0, 2, 1003)
    paths = {}
    for name, a in dict(x=x, t=t, w=w, s=s).items():
        paths[name] = str(tmp_path / f"{name}.npy")
        np.save(paths[name], a)
    return paths, x, t, w, s


def test_eval_equals_the_in_memory_call(files, tmp_path, capsys):
    paths, x, t, w, s = files
    out, js = str(tmp_path / "items.npy"), str(tmp_path / "r.json")
    rc = main(["cross_entropy", "--input", paths["x"], "--target", paths["t"],
               "--weight", paths["w"], "--label-smoothing", "0.1", "--chunk-rows", "100",
               "--sample-weight", paths["s"], "--per-item", out, "--json", js,
               "--backend", "numpy"])
    assert rc == 0
    captured = capsys.readouterr()
    expected = fastloss.cross_entropy(x, t, w, label_smoothing=0.1, sample_weight=s)
    r = json.load(open(js))
    np.testing.assert_allclose(r["mean"], expected, rtol=1e-6)
    np.testing.assert_allclose(r["perplexity"], np.exp(r["mean"]), rtol=1e-12)
    assert r["count"] == 1003 and r["rows"] == 1003
    assert r["inputs"]["input"] == {"path": paths["x"], "shape": [1003, 7], "dtype": "float32"}
    assert r["inputs"]["target"]["dtype"] == "int64"
    assert r["command"].startswith("fastloss eval cross_entropy --input")
    assert "mean " in captured.out and "perplexity" in captured.out
    assert "rows/s" in captured.err and "GB/s" in captured.err
    items = np.load(out)
    np.testing.assert_allclose(items, fastloss.cross_entropy(
        x, t, w, label_smoothing=0.1, sample_weight=s, reduction="none"), rtol=1e-6)
    assert sorted(os.listdir(tmp_path)) == ["items.npy", "r.json", "s.npy", "t.npy",
                                            "w.npy", "x.npy"]


def test_eval_generic_loss_flags(tmp_path, capsys):
    rng = np.random.default_rng(1)
    p = rng.uniform(0.1, 1, (50, 4))
    p /= p.sum(1, keepdims=True)
    q = np.log(rng.dirichlet(np.ones(4), 50))
    np.save(tmp_path / "q.npy", q)
    np.save(tmp_path / "p.npy", p)
    js = str(tmp_path / "r.json")
    assert main(["kl_div", "--input", str(tmp_path / "q.npy"), "--target",
                 str(tmp_path / "p.npy"), "--reduction", "batchmean", "--chunk-rows", "7",
                 "--json", js, "--quiet"]) == 0
    r = json.load(open(js))
    np.testing.assert_allclose(r["result"], fastloss.kl_div(q, p, reduction="batchmean"),
                               rtol=1e-12)
    assert "perplexity" not in r
    assert capsys.readouterr().err == ""


def _error(capsys, argv):
    rc = main(argv)
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1 and err.startswith("fastloss eval: error: ")
    return err


def test_eval_bad_input_one_line_errors(files, tmp_path, capsys):
    paths, x, t, w, s = files
    bad = t.copy()
    bad[517] = 11
    np.save(tmp_path / "bad.npy", bad)
    out = str(tmp_path / "items.npy")
    err = _error(capsys, ["cross_entropy", "--input", paths["x"], "--target",
                          str(tmp_path / "bad.npy"), "--chunk-rows", "100", "--per-item",
                          out, "--quiet", "--backend", "numpy"])
    assert "bad.npy: class index 11 at row 517 is out of range [0, 7)" in err
    assert not any(n.startswith("items.npy") for n in os.listdir(tmp_path)), \
        "--per-item must be written completely or not at all"
    err = _error(capsys, ["cross_entropy", "--input", str(tmp_path / "missing.npy"),
                          "--target", paths["t"]])
    assert "missing.npy: no such file (--input)" in err
    err = _error(capsys, ["cross_entropy", "--input", paths["t"], "--target", paths["t"]])
    assert "t.npy: expected a floating-point array" in err and "int64" in err
    err = _error(capsys, ["cross_entropy", "--input", paths["x"], "--target", paths["w"]])
    assert "w.npy: has 7 rows" in err and "1003" in err
    err = _error(capsys, ["cross_entropy", "--input", paths["x"], "--target", paths["t"],
                          "--sample-weight", paths["w"]])
    assert "w.npy: has 7 rows" in err
    err = _error(capsys, ["no_such_loss", "--input", paths["x"]])
    assert "unknown loss 'no_such_loss'" in err
    err = _error(capsys, ["cross_entropy", "--input", paths["x"], "--target", paths["t"],
                          "--chunk-rows", "0"])
    assert "--chunk-rows" in err
    open(tmp_path / "junk.npy", "w").write("not numpy")
    err = _error(capsys, ["mse_loss", "--input", str(tmp_path / "junk.npy"), "--target",
                          paths["x"]])
    assert "junk.npy: not a readable .npy file" in err


def test_fastloss_eval_command_dispatches(files):
    paths, x, t, w, s = files
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(HERE),
                                                        os.environ.get("PYTHONPATH", "")]))
    r = subprocess.run([sys.executable, "-m", "fastloss", "eval", "nll_loss", "--input",
                        paths["x"], "--target", paths["t"], "--quiet", "--backend", "numpy"],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    mean = float([ln for ln in r.stdout.splitlines() if ln.startswith("mean")][0].split()[1])
    np.testing.assert_allclose(mean, fastloss.nll_loss(x, t), rtol=1e-6)


def test_eval_ctc_streams_along_the_batch_axis_and_linear_weight_whole(tmp_path, capsys):
    """ctc_loss's log_probs (T, N, C) are cut along N (the registry's batch axis);
    linear_cross_entropy's linear_weight goes whole to every chunk, with perplexity."""
    rng = np.random.default_rng(4)
    T, N, C = 9, 23, 5
    lp = rng.standard_normal((T, N, C))
    lp -= np.log(np.exp(lp).sum(-1, keepdims=True))
    tg, il, tl = rng.integers(1, C, (N, 3)), rng.integers(6, T + 1, N), rng.integers(0, 4, N)
    p = {}
    for name, a in dict(lp=lp, tg=tg, il=il, tl=tl).items():
        p[name] = str(tmp_path / f"{name}.npy")
        np.save(p[name], a)
    js = str(tmp_path / "ctc.json")
    assert main(["ctc_loss", "--input", p["lp"], "--targets", p["tg"], "--input-lengths",
                 p["il"], "--target-lengths", p["tl"], "--chunk-rows", "5", "--json", js,
                 "--quiet", "--backend", "numpy"]) == 0
    r = json.load(open(js))
    np.testing.assert_allclose(r["result"], fastloss.ctc_loss(lp, tg, il, tl), rtol=1e-12)
    assert r["count"] == N and r["denominator"] == N
    np.save(p["tg"], tg[:, :2].reshape(-1)[:int(tl.sum())] if tl.sum() <= 2 * N else
            np.ones(int(tl.sum()), np.int64))
    assert main(["ctc_loss", "--input", p["lp"], "--targets", p["tg"], "--input-lengths",
                 p["il"], "--target-lengths", p["tl"], "--quiet"]) == 2
    assert "padded, shape (N, S)" in capsys.readouterr().err

    x, W = rng.standard_normal((40, 3)), rng.standard_normal((6, 3))
    t = rng.integers(0, 6, 40)
    for name, a in dict(x=x, W=W, t=t).items():
        p[name] = str(tmp_path / f"{name}.npy")
        np.save(p[name], a)
    js = str(tmp_path / "lce.json")
    assert main(["linear_cross_entropy", "--input", p["x"], "--linear-weight", p["W"],
                 "--target", p["t"], "--chunk-rows", "7", "--json", js, "--quiet"]) == 0
    r = json.load(open(js))
    expected = float(fastloss.linear_cross_entropy(x, W, t))
    np.testing.assert_allclose(r["result"], expected, rtol=1e-12)
    np.testing.assert_allclose(r["perplexity"], np.exp(expected), rtol=1e-12)


def test_eval_reads_zarr_arrays(files, tmp_path):
    zarr = pytest.importorskip("zarr")
    paths, x, t, w, s = files
    zx = zarr.open(str(tmp_path / "x.zarr"), mode="w", shape=x.shape, dtype=x.dtype,
                   chunks=(128, 7))
    zx[...] = x
    zt = zarr.open(str(tmp_path / "t.zarr"), mode="w", shape=t.shape, dtype=t.dtype,
                   chunks=(300,))
    zt[...] = t
    js = str(tmp_path / "z.json")
    rc = main(["cross_entropy", "--input", str(tmp_path / "x.zarr"), "--target",
               str(tmp_path / "t.zarr"), "--weight", paths["w"], "--chunk-rows", "250",
               "--json", js, "--quiet", "--backend", "numpy"])
    assert rc == 0
    r = json.load(open(js))
    np.testing.assert_allclose(r["result"], fastloss.cross_entropy(x, t, w), rtol=1e-6)
    assert r["inputs"]["input"]["shape"] == [1003, 7]
    assert r["inputs"]["input"]["dtype"] == "float32"


def test_eval_zarr_errors_are_one_line(tmp_path, capsys, monkeypatch):
    missing = str(tmp_path / "nope.zarr")
    assert main(["mse_loss", "--input", missing, "--target", missing]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "nope.zarr" in err
    monkeypatch.setitem(sys.modules, "zarr", None)          # zarr not installed
    (tmp_path / "a.zarr").mkdir()
    assert main(["mse_loss", "--input", str(tmp_path / "a.zarr"), "--target",
                 str(tmp_path / "a.zarr")]) == 2
    assert "pip install 'fastloss[zarr]'" in capsys.readouterr().err
