"""`fastloss bench`: arguments, a tiny end-to-end run (JSON, Markdown, plot, README),
the data generator of every registry loss, and the flagging of wrong results."""
import importlib.util
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from fastloss import _dispatch, _threads
from fastloss._bench import cli, data, impls, naive, report, runner, worker
from fastloss._registry import LOSSES

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None

WRONG_PLUGIN = '''
"""A fake implementation 1% off the reference, and one whose worker dies."""
import os
from fastloss._bench import impls
from fastloss._registry import LOSSES


class Wrong(impls.Impl):
    key = "wrong"
    label = "wrong (fake)"

    def applies(self, loss, mode):
        return mode == "forward"

    def build(self, loss, mode, args, kwargs):
        fn = LOSSES[loss].function
        return impls.Bound(lambda: fn(*args, backend="numpy", **kwargs) * 1.01,
                           impls._fetch_numpy)


class Dies(impls.Impl):
    key = "dies"
    label = "dies (fake)"

    def applies(self, loss, mode):
        return mode == "forward"

    def build(self, loss, mode, args, kwargs):
        os._exit(3)


impls.register(Wrong())
impls.register(Dies())
'''


def run_cli(*args, cwd=ROOT, timeout=120):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([ROOT, *filter(None, [env.get("PYTHONPATH")])])
    return subprocess.run([sys.executable, "-m", "fastloss", "bench", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, env=env)


# --- argument errors: one line on stderr, exit code 2, no traceback ----------------

@pytest.mark.parametrize("args,expected", [
    (["--loss", "no_such_loss"], "unknown loss 'no_such_loss'"),
    (["--size", "12xq"], "size '12xq'"),
    (["--size", "0x10"], "positive"),
    (["--size", "1x2x3x4x5"], "expected N, NxC"),
    (["--loss", "cross_entropy", "--size", "16M"], "fits none"),
    (["--backend", "cuda"], "unknown backend 'cuda'"),
    (["--dtype", "float16"], "unknown dtype 'float16'"),
    (["--threads", "0"], "threads"),
    (["--threads", "two"], "threads"),
    (["--peers", "tensorflow"], "unknown peer 'tensorflow'"),
    (["--mode", "backward"], "unknown mode 'backward'"),
    (["--repeat", "x"], "invalid int value"),
    (["--no-such-option"], "unrecognized arguments"),
    (["--baseline", "tensorflow"], "baseline 'tensorflow'"),
    (["--update-readme", "/nonexistent/README.md"], "not found"),
    (["--plugin", "no_such_plugin_module_xyz"], "plugin module"),
])
def test_bad_arguments_one_line_exit_2(args, expected, capsys):
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("fastloss bench: error: "), err
    assert expected in err


def test_bad_argument_from_the_command_line():
    r = run_cli("--loss", "nope")
    assert r.returncode == 2
    assert r.stdout == ""
    assert r.stderr.strip().splitlines() == [r.stderr.strip()]
    assert "Traceback" not in r.stderr and "unknown loss 'nope'" in r.stderr


def test_unknown_command():
    env = dict(os.environ, PYTHONPATH=ROOT)
    r = subprocess.run([sys.executable, "-m", "fastloss", "benchh"], capture_output=True,
                       text=True, env=env, timeout=60)
    assert r.returncode == 2 and "unknown command 'benchh'" in r.stderr
    assert "Traceback" not in r.stderr


def test_plot_without_matplotlib_is_a_clear_error(monkeypatch, capsys):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "matplotlib" else real_find_spec(name, *a))
    assert cli.main(["--plot", "x.png"]) == 2
    assert "pip install 'fastloss[plot]'" in capsys.readouterr().err


def test_list(capsys):
    assert cli.main(["--list"]) == 0
    out = capsys.readouterr().out
    for name in LOSSES:
        assert name in out
    for backend in _dispatch.backend_names():
        assert f"fastloss[{backend}]" in out


# --- the plan: sizes, defaults, backends from the dispatcher -------------------------

def test_parse_and_format_sizes():
    assert data.parse_size("65536x1000") == (65536, 1000)
    assert data.parse_size("1Mx10") == (1 << 20, 10)
    assert data.parse_size("16M") == (16 << 20,)
    assert data.parse_size("64Kx1000") == (65536, 1000)
    assert data.format_size((1 << 20, 10)) == "1Mx10"
    assert data.format_size((16 << 20,)) == "16M"
    assert data.format_size((4096, 32000)) == "4096x32000"
    for bad in ("", "x10", "10x", "-5", "1.5M", "10y"):
        with pytest.raises(data.SizeError):
            data.parse_size(bad)


def test_default_grid_and_issue_targets_are_expressible():
    ns = cli.build_parser().parse_args([])
    plan = cli.make_plan(ns)
    sizes = {(c["loss"], c["size"]) for c in plan.cases}
    for s in ("1Mx10", "65536x1000", "4096x32000"):
        assert ("cross_entropy", s) in sizes
    assert ("binary_cross_entropy_with_logits", "16M") in sizes
    assert plan.modes == ["forward", "grad"]
    assert plan.impl_keys[:1] == ["floor"]
    # every backend fastloss knows is timed (missing ones then show as skipped)
    for b in _dispatch.backend_names():
        assert b in plan.impl_keys
    assert {c["loss"] for c in plan.cases} == set(LOSSES)


def test_named_grids_cover_issue_13():
    """--grid ce: cross_entropy and nll_loss over C x N where the logits fit, both modes,
    with the floor and the peers; --grid small: the small-call series."""
    plan = cli.make_plan(cli.build_parser().parse_args(["--grid", "ce"]))
    sizes = {(c["loss"], c["size"]) for c in plan.cases}
    for loss in ("cross_entropy", "nll_loss"):
        for n in ("8192", "64K", "1M"):
            for c in (2, 10, 32, 100, 256):
                assert (loss, data.format_size(data.parse_size(f"{n}x{c}"))) in sizes
        assert (loss, "65536x1000") in sizes and (loss, "8192x32000") in sizes
        assert (loss, "1Mx1000") not in sizes and (loss, "65536x32000") not in sizes
    assert {c["loss"] for c in plan.cases} == {"cross_entropy", "nll_loss"}
    assert len(plan.cases) == 2 * len(cli.GRIDS["ce"][1])
    assert plan.modes == ["forward", "grad"]
    assert plan.impl_keys[0] == "floor" and {"torch", "jax"} <= set(plan.impl_keys)

    small = cli.make_plan(cli.build_parser().parse_args(["--grid", "small"]))
    assert [(c["loss"], c["size"]) for c in small.cases] == [
        ("cross_entropy", s) for s in ("8x10", "64x10", "64x1000", "512x100", "8192x100")]
    # --size and --loss replace the grid's
    only = cli.make_plan(cli.build_parser().parse_args(["--grid", "ce", "--size", "1Mx10",
                                                        "--loss", "nll_loss"]))
    assert [(c["loss"], c["size"]) for c in only.cases] == [("nll_loss", "1Mx10")]


def test_unknown_grid_is_a_usage_error(capsys):
    assert cli.main(["--grid", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--grid" in err and "invalid choice" in err

    ns = cli.build_parser().parse_args(
        ["--loss", "cross_entropy", "--size", "65536x1000", "--threads", "2", "--repeat", "7"])
    plan = cli.make_plan(ns)
    assert [(c["loss"], c["shape"]) for c in plan.cases] == [("cross_entropy", [65536, 1000])]
    assert plan.threads == [2] and plan.repeat == 7


def test_quick_plan_is_small():
    plan = cli.make_plan(cli.build_parser().parse_args(["--quick"]))
    assert len(plan.cases) == len(LOSSES)
    assert plan.repeat == 3 and plan.dtypes == ["float32"]
    assert max(math.prod(c["shape"]) for c in plan.cases) <= 1 << 20
    assert plan.check_limit == 1 << 16


def test_lists_accept_commas_and_repeats():
    ns = cli.build_parser().parse_args(["--loss", "mse_loss,l1_loss", "--loss", "kl_div",
                                        "--dtype", "f32", "float64", "--threads", "1,2"])
    plan = cli.make_plan(ns)
    assert [c["loss"] for c in plan.cases] == ["mse_loss", "l1_loss", "kl_div"]
    assert plan.dtypes == ["float32", "float64"] and plan.threads == [1, 2]


# --- generators: every loss has one, and fastloss accepts what it makes --------------

def test_every_registry_loss_has_a_generator():
    assert data.missing_generators() == []


def test_every_benchmark_row_is_a_registry_loss():
    """The other direction: a row of the benchmark's data, naive or peer tables for a
    loss the registry does not have (renamed, removed) is stale, not silently unused."""
    for table, rows in (("data.GENERATORS", data.GENERATORS), ("naive.FORWARD", naive.FORWARD),
                        ("naive.VALUE_AND_GRAD", naive.VALUE_AND_GRAD),
                        ("impls.SklearnImpl.LOSSES", dict.fromkeys(impls.SklearnImpl.LOSSES))):
        stale = sorted(set(rows) - set(LOSSES))
        assert not stale, f"{table} has rows for losses the registry lacks: {stale}"
    assert all(g.loss == name for name, g in data.GENERATORS.items())
    # and a row that only repeats its loss's default (standard kernel arrays) is stale too
    assert data.redundant_generators() == []


def test_torch_peer_follows_the_registry_oracle(monkeypatch):
    """torch is timed for a loss whose registry row names a torch twin, never for one
    that torch lacks (oracle None): that cell is "not applicable", not an error."""
    import dataclasses
    monkeypatch.setitem(LOSSES, "made_up_loss",
                        dataclasses.replace(LOSSES["mse_loss"], name="made_up_loss",
                                            oracle=None))
    peer = impls.PEERS["torch"]
    assert peer.applies("mse_loss", "forward") and peer.applies("mse_loss", "grad")
    assert not peer.applies("made_up_loss", "forward")
    assert not peer.applies("made_up_loss", "grad")
    with pytest.raises(impls.NotApplicable, match="made_up_loss"):
        peer.build("made_up_loss", "forward", (), {})


def test_stale_benchmark_rows_are_caught(monkeypatch):
    """The tripwire above fails for a row whose loss is not registered."""
    monkeypatch.setitem(naive.FORWARD, "made_up_loss", naive.FORWARD["mse_loss"])
    with pytest.raises(AssertionError, match="naive.FORWARD .*made_up_loss"):
        test_every_benchmark_row_is_a_registry_loss()


def test_a_loss_without_generator_is_an_error(monkeypatch, capsys):
    assert data.missing_generators({"made_up_loss": None}) == ["made_up_loss"]
    cases, _ = runner.make_cases(["made_up_loss"], None, quick=True)
    assert "no data generator" in cases[0]["error"]
    # a loss whose kernel has no family standard arrays (x t v: no default data)
    monkeypatch.setitem(LOSSES, "made_up_loss", LOSSES["gaussian_nll_loss"])
    assert data.generator("made_up_loss") is None
    assert cli.main(["--loss", "made_up_loss"]) == 2
    assert "no data generator for made_up_loss" in capsys.readouterr().err
    # in a default run (all losses) it is a visible error row, not left out
    plan = runner.Plan(cases=cases, dtypes=["float32"], threads=[1], modes=["forward"],
                       impl_keys=[])
    rows = runner.run_plan(plan)
    assert rows[0]["status"] == "error" and "no data generator" in rows[0]["note"]
    assert "no data generator" in report.terminal_table(rows)


def test_a_loss_with_standard_kernel_arrays_gets_default_data():
    # the rows l1, mse, smooth_l1, huber and multi_margin had were exactly these
    for loss, kind, make in (("l1_loss", "elementwise", data._pair),
                             ("huber_loss", "elementwise", data._pair),
                             ("multi_margin_loss", "class", data._class_logits)):
        assert loss not in data.GENERATORS
        gen = data.generator_for(loss)
        assert (gen.loss, gen.kind, gen.make, gen.reduction) == (loss, kind, make, "mean")
    assert data.default_generator("gaussian_nll_loss") is None      # x t v
    assert data.default_generator("no_such_loss") is None


@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_generated_data_fits_the_loss(loss):
    gen = data.generator_for(loss)
    shape = {"elementwise": (30,), "sequence": (9, 2, 5, 3), "linear": (6, 4, 5)}.get(
        gen.kind, (6, 5))
    args, kwargs = gen.build(shape, "float32")
    again, _ = gen.build(shape, "float32")
    for a, b in zip(args, again):          # seeded: every worker sees the same data
        np.testing.assert_array_equal(a, b)
    value, _ = worker.reference(loss, "forward", args, kwargs)
    assert np.isfinite(value)
    value_vg, grad = worker.reference(loss, "grad", args, kwargs)
    assert grad.shape == args[0].shape and np.isfinite(value_vg)


@pytest.mark.parametrize("loss", sorted(naive.FORWARD))
def test_naive_versions_match_the_reference(loss):
    gen = data.generator_for(loss)
    args, kwargs = gen.build((40, 7) if gen.kind != "elementwise" else (200,), "float64")
    ref_value, ref_grad = worker.reference(loss, "grad", args, kwargs)
    assert worker.rel_error(naive.FORWARD[loss](np, *args, **kwargs), ref_value) < 1e-12
    if loss in naive.VALUE_AND_GRAD:
        value, grad = naive.VALUE_AND_GRAD[loss](*args, **kwargs)
        assert worker.rel_error(value, ref_value) < 1e-12
        assert worker.rel_error(grad, ref_grad) < 1e-12


# --- correctness checks and flags ---------------------------------------------------

def test_rel_error_and_check():
    assert worker.rel_error(1.0, 1.0) == 0.0
    assert worker.rel_error(np.array([1.0, np.nan]), np.array([1.0, np.nan])) == 0.0
    assert worker.rel_error(np.array([1.0, 2.0]), np.array([1.0, np.nan])) == math.inf
    assert worker.rel_error(np.inf, np.inf) == 0.0
    assert worker.rel_error(-np.inf, np.inf) == math.inf
    assert worker.rel_error(np.zeros(3), np.zeros(4)) == math.inf
    assert worker.check(1.0 + 1e-6, None, 1.0, None, "float32")["status"] == "ok"
    bad = worker.check(1.0, np.ones(3), 1.0, np.array([1.0, 1.0, 1.5]), "float64")
    assert bad["status"] == "mismatch" and bad["worst"] == "gradient"
    nan = worker.check(np.nan, None, 1.0, None, "float32")
    assert nan["status"] == "mismatch" and nan["rel_err"] is None
    row = {"status": "mismatch", "check": nan}
    assert "MISMATCH: value has NaN/inf" in report.status_text(row)


def _job(impl, **kw):
    return {"impl": impl, "threads": _threads.get_num_threads(), "dtype": "float32",
            "cases": [{"loss": "mse_loss", "size": "64x10", "shape": [64, 10],
                       "modes": ["forward", "grad"]}],
            "repeat": 2, "warmup": 0, "budget_s": 1.0, "check_limit": 1 << 22, **kw}


def test_forced_backend_that_falls_through_is_shown_quietly_not_flagged():
    # The call the forced backend cannot run is flagged without being run on the next
    # backend (in the C worker that would compile Numba kernels for a row never timed).
    ran = []

    def recorder(*args):
        ran.append(args)
        return 0.0
    _dispatch.register_backend(_dispatch.Backend(
        "recording_test_backend", kernels={"mse_fwd": recorder, "mse_vg": recorder}))
    _dispatch.register_backend(_dispatch.Backend("empty_test_backend", kernels={}),
                               first=False)
    try:
        rows = []
        worker.run_job(_job("empty_test_backend"), rows.append)
    finally:
        _dispatch.unregister_backend("empty_test_backend")
        _dispatch.unregister_backend("recording_test_backend")
    assert [r["status"] for r in rows] == ["fallback", "fallback"]
    assert rows[0]["note"] == ("no empty_test_backend kernel for this call (mse_fwd): "
                               "falls through to recording_test_backend (not run)")
    assert rows[1]["falls_to"] == "recording_test_backend"
    assert ran == []
    # a fall-through is how dispatch works: a quiet note, not a flag
    text = report.terminal_table(rows)
    assert ("empty_test_backend -> recording_test_backend (no empty_test_backend kernel "
            "for mse_fwd; not timed)") in text
    assert "FALLBACK" not in text and report.FLAG not in text and "flagged" not in text
    assert report.flagged(rows) == []
    assert "none timed (empty_test_backend -> recording_test_backend)" in text
    md = report.markdown_table(rows)
    assert "→ recording_test_backend" in md and "⚠" not in md


def test_forced_backend_that_runs_is_not_flagged():
    rows = []
    worker.run_job(_job("numpy"), rows.append)
    assert [r["status"] for r in rows] == ["ok", "ok"]
    assert rows[0]["ran_on"] == ["numpy"]


def test_check_on_leading_rows_when_large():
    rows = []
    worker.run_job(_job("naive", check_limit=100), rows.append)
    assert [r["status"] for r in rows] == ["ok", "ok"]
    assert rows[0]["check"]["on"] == "first 10 rows"


def test_update_readme_markers(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# title\n\nintro\n")
    report.update_readme(readme, "| table one |")
    text = readme.read_text()
    assert text.startswith("# title\n\nintro\n")
    assert text.rstrip().endswith(f"{report.README_START}\n| table one |\n{report.README_END}")
    readme.write_text(text + "\n## after\n")
    report.update_readme(readme, "| table two |")
    text = readme.read_text()
    assert "table one" not in text and "| table two |" in text
    assert text.count(report.README_START) == 1 and text.endswith("## after\n")


# --- end to end: a tiny run with every output ---------------------------------------

@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("bench")
    (d / "wrong_plugin.py").write_text(WRONG_PLUGIN)
    (d / "README.md").write_text("# fastloss\n\nSome text.\n")
    args = ["--quick", "--loss", "cross_entropy", "mse_loss", "--size", "64x10",
            "--repeat", "2", "--backend", "numpy", "--peers", "naive",
            "--plugin", str(d / "wrong_plugin.py"),
            "--json", str(d / "out.json"), "--markdown", str(d / "out.md"),
            "--update-readme", str(d / "README.md")]
    if HAS_MATPLOTLIB:
        args += ["--plot", str(d / "out.png")]
    r = run_cli(*args, cwd=str(d))
    return r, d


def test_tiny_run_succeeds_and_prints_the_table(tiny_run):
    r, _ = tiny_run
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    assert "cross_entropy 64x10 float32, forward" in r.stdout
    assert "mse_loss 64x10 float32, value+grad" in r.stdout
    assert "fastloss[numpy]" in r.stdout and "numpy (naive)" in r.stdout
    assert "benchmark:" in r.stderr          # the progress bar's last line


def test_json_schema(tiny_run):
    _, d = tiny_run
    def no_nan(token):
        raise AssertionError(f"non-standard JSON constant {token}")
    doc = json.loads((d / "out.json").read_text(), parse_constant=no_nan)
    assert doc["schema"] == report.SCHEMA
    assert doc["command"].startswith("fastloss bench --quick")
    for key in ("cpu", "cores", "flags"):
        assert key in doc["machine"]
    assert set(doc["machine"]["flags"]) >= {"avx2", "fma", "avx512f"}
    for key in ("python", "numpy", "numba", "torch", "jax", "fastloss"):
        assert key in doc["versions"]
    assert doc["settings"]["repeat"] == 2
    assert doc["backends"]["numpy"] == "available"
    results = doc["results"]
    assert {r["impl"] for r in results} >= {"floor", "numpy", "naive", "wrong", "dies"}
    for r in results:
        for key in ("loss", "size", "shape", "dtype", "threads", "mode", "impl", "label",
                    "status"):
            assert key in r
        if r["status"] == "ok":
            assert r["median_ms"] > 0 and len(r["times_ms"]) == r["repeat"] == 2
            assert r["first_call_ms"] > 0 and r["peak_mb"] >= 0
            if r["impl"] != "floor":
                assert r["check"]["status"] == "ok" and r["check"]["on"] == "full"
    ok = {(r["impl"], r["loss"], r["mode"]) for r in results if r["status"] == "ok"}
    for loss in ("cross_entropy", "mse_loss"):
        for mode in ("forward", "grad"):
            assert {("numpy", loss, mode), ("naive", loss, mode), ("floor", loss, mode)} <= ok


def test_wrong_result_is_flagged(tiny_run):
    r, d = tiny_run
    doc = json.loads((d / "out.json").read_text())
    wrong = [x for x in doc["results"] if x["impl"] == "wrong"]
    assert len(wrong) == 2 and all(x["status"] == "mismatch" for x in wrong)
    assert all(abs(x["check"]["rel_err"] - 0.01) < 1e-3 for x in wrong)
    assert "!! MISMATCH: value off by 1.0e-02" in r.stdout
    assert "⚠ mismatch" in (d / "out.md").read_text()


def test_dead_worker_is_an_error_row(tiny_run):
    _, d = tiny_run
    doc = json.loads((d / "out.json").read_text())
    dies = [x for x in doc["results"] if x["impl"] == "dies"]
    assert len(dies) == 2
    assert all(x["status"] == "error" and "exited with code 3" in x["note"] for x in dies)


def test_markdown_and_readme(tiny_run):
    _, d = tiny_run
    md = (d / "out.md").read_text()
    assert md.startswith("| loss | size | mode | read floor |")
    assert "| `cross_entropy` | 64x10 | forward |" in md
    assert "Command: `fastloss bench --quick" in md and "Machine:" in md
    readme = (d / "README.md").read_text()
    assert readme.startswith("# fastloss\n\nSome text.\n")
    inner = readme.split(report.README_START)[1].split(report.README_END)[0]
    assert "| `mse_loss` | 64x10 | value+grad |" in inner
    if HAS_MATPLOTLIB:
        assert "![speed-up over numpy (naive)](out.png)" in inner


@pytest.mark.skipif(not HAS_MATPLOTLIB, reason="matplotlib (the 'plot' extra) not installed")
def test_plot_written(tiny_run):
    _, d = tiny_run
    png = (d / "out.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 2000


def test_absent_peer_is_folded_into_one_skipped_line(monkeypatch, capsys):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "torch" else real_find_spec(name, *a))
    code = cli.main(["--loss", "mse_loss", "--size", "64x10", "--repeat", "1", "--warmup", "0",
                     "--backend", "numpy", "--peers", "torch", "naive", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0
    assert "vs numpy (naive)" in out         # no torch: speed-ups are over naive NumPy
    # not one row per case: one line for the whole run
    assert not [ln for ln in out.splitlines() if ln.strip().startswith("torch ")]
    skipped = [ln for ln in out.splitlines() if ln.startswith("skipped:")]
    assert skipped == ["skipped: torch (torch not installed)"]
    assert out.count("torch not installed") == 1


def test_skipped_line_names_each_implementation_once():
    rows = [_fake(impl, status="skipped", note=f"{impl} not installed", mode=mode)
            for impl in ("jax", "sklearn") for mode in ("forward", "grad")]
    rows += [_fake("numpy", median_ms=1.0)]
    assert report.skipped_line(rows) == ("skipped: jax (jax not installed), "
                                         "sklearn (sklearn not installed)")
    text = report.terminal_table(rows, "numpy")
    assert text.count("not installed") == 2 and "  jax" not in text


# --- the terminal table's summary, first-call labels, an implausible floor ----------

def _fake(impl, mode="forward", status="ok", median_ms=None, loss="mse_loss", size="64x10",
          **extra):
    group = {"floor": "floor", "c": "fastloss", "numba": "fastloss",
             "numpy": "fastloss"}.get(impl, "peer")
    label = {"floor": "read floor"}.get(impl, f"fastloss[{impl}]" if group == "fastloss"
                                        else impl)
    row = {"loss": loss, "size": size, "shape": [64, 10], "dtype": "float32", "threads": 2,
           "mode": mode, "impl": impl, "label": label, "group": group, "status": status,
           **extra}
    if median_ms is not None:
        row.update(median_ms=median_ms, times_ms=extra.get("times_ms", [median_ms] * 3),
                   first_call_ms=extra.get("first_call_ms", 2 * median_ms))
    return row


def test_summary_gives_the_fastest_backend_its_ratios_and_floor_percent():
    rows = [_fake("floor", median_ms=1.0), _fake("c", median_ms=4.0),
            _fake("numba", median_ms=2.0), _fake("torch", median_ms=10.0),
            _fake("jax", median_ms=1.0),
            _fake("floor", mode="grad", median_ms=1.0), _fake("numba", mode="grad",
                                                                median_ms=5.0),
            _fake("c", mode="grad", status="fallback", falls_to="numba"),
            _fake("torch", mode="grad", median_ms=20.0)]
    lines = report.summary(rows)
    assert lines[0].startswith("summary: the fastest fastloss backend per case")
    assert lines[1].split() == ["case", "fastest", "fastloss", "vs", "torch", "vs", "jax",
                                "%", "floor"]
    # forward: numba is fastest (2 ms): 5x torch, 0.5x jax (slower is shown as it is),
    # the floor 1 ms is 50% of it
    assert lines[2].split() == ["mse_loss", "64x10", "forward", "fastloss[numba]", "5.00x",
                                "0.50x", "50%"]
    assert lines[3].split() == ["mse_loss", "64x10", "value+grad", "fastloss[numba]",
                                "4.00x", "-", "20%"]
    text = report.terminal_table(rows)
    assert text.rstrip().endswith(lines[3].rstrip())    # the run ends with the summary


def test_summary_ends_the_printed_run(tiny_run):
    r, _ = tiny_run
    out = r.stdout.splitlines()
    start = next(i for i, ln in enumerate(out) if ln.startswith("summary:"))
    body = [ln.split() for ln in out[start + 2:] if ln.startswith("  ")]
    assert [b[:3] for b in body] == [["cross_entropy", "64x10", "forward"],
                                     ["cross_entropy", "64x10", "value+grad"],
                                     ["mse_loss", "64x10", "forward"],
                                     ["mse_loss", "64x10", "value+grad"]]
    assert all(b[3] == "fastloss[numpy]" for b in body)
    assert "vs numpy (naive)" in out[start + 1] and "vs wrong (fake)" in out[start + 1]
    # the wrong fake is timed but flagged, and says so in the summary too
    assert "(mismatch)" in " ".join(out[start + 2:start + 3])


def test_floor_whose_repeats_disagree_is_unreliable():
    rows = [_fake("floor", median_ms=3.0, times_ms=[1.0, 1.1, 3.0, 3.2, 3.3]),
            _fake("numba", median_ms=6.0), _fake("torch", median_ms=12.0)]
    assert "repeats disagree" in report.floor_problem(rows)
    text = report.terminal_table(rows)
    assert "floor unreliable: its repeats disagree (1 to 3.3 ms)" in text
    assert "%" not in text.replace("% floor", "")
    assert report.summary(rows)[2].split()[-1] == "unreliable"
    assert "(unreliable)" in report.markdown_table(rows)


def test_floor_slower_than_the_kernel_is_unreliable():
    # nll_loss's forward reads one entry per row: a floor that reads all of input is no
    # bound for it (this printed "10490% of floor")
    rows = [_fake("floor", median_ms=8.08), _fake("c", median_ms=0.077),
            _fake("torch", median_ms=0.2)]
    assert report.floor_problem(rows) == "slower than fastloss[c]"
    text = report.terminal_table(rows)
    assert "floor unreliable: slower than fastloss[c]" in text and "10490%" not in text
    assert report.floor_percent(rows, 0.077) == "unreliable"
    # a plausible floor is a percentage
    ok = [_fake("floor", median_ms=1.0), _fake("c", median_ms=2.0)]
    assert report.floor_problem(ok) is None and report.floor_percent(ok, 2.0) == "50%"
    assert "(read floor 1.00 ms)" in report.terminal_table(ok)


def test_first_call_that_compiled_is_labelled_compile():
    rows = [_fake("numba", median_ms=1.0, first_call_ms=5000.0, first_call="compile"),
            _fake("c", median_ms=1.5, first_call_ms=0.5)]
    text = report.terminal_table(rows, "c")
    numba_row = next(ln for ln in text.splitlines() if ln.startswith("  fastloss[numba]"))
    c_row = next(ln for ln in text.splitlines() if ln.startswith("  fastloss[c]"))
    assert "5000.0 compile" in numba_row and "compile" not in c_row
    assert impls.get("jax").compiles_on_first_call
    assert not impls.get("torch").compiles_on_first_call


def test_numba_compiles_counts_compiled_and_cached_kernels(monkeypatch):
    import types
    numba = pytest.importorskip("numba")
    module = types.ModuleType("bench_test_jit_module")
    module.twice = numba.njit(lambda x: 2 * x)
    monkeypatch.setitem(sys.modules, module.__name__, module)
    watch = worker.NumbaCompiles(module.__name__)
    assert module.twice(2.0) == 4.0
    assert (watch.stop().compiled, watch.loaded) == (1, 0)
    watch = worker.NumbaCompiles(module.__name__)
    module.twice(3.0)                  # the same types: nothing new
    assert (watch.stop().compiled, watch.loaded) == (0, 0)


def test_worker_labels_a_first_call_that_compiled(monkeypatch):
    import types
    numba = pytest.importorskip("numba")
    from fastloss import _reference
    module = types.ModuleType("fastloss._numba._bench_test_jit")
    module.identity = numba.njit(lambda x: x)
    monkeypatch.setitem(sys.modules, module.__name__, module)

    def fwd(*args):                    # compiles `identity` on its first call only
        module.identity(1.0)
        return _reference.mse_fwd(*args)

    def vg(*args):
        module.identity(1.0)
        return _reference.mse_vg(*args)
    _dispatch.register_backend(_dispatch.Backend(
        "compiling_test_backend", kernels={"mse_fwd": fwd, "mse_vg": vg}))
    try:
        rows = []
        worker.run_job(_job("compiling_test_backend"), rows.append)
    finally:
        _dispatch.unregister_backend("compiling_test_backend")
    assert [r["status"] for r in rows] == ["ok", "ok"]
    assert rows[0]["first_call"] == "compile" and rows[0]["first_call_compiled"] >= 1
    assert "first_call" not in rows[1] and rows[1]["first_call_compiled"] == 0
    assert " compile" in report.terminal_table(rows, "compiling_test_backend")


FALLTHROUGH_PLUGIN = '''
"""A fastloss backend with no kernels: every forced call falls through."""
from fastloss import _dispatch

_dispatch.register_backend(_dispatch.Backend("emptyb", kernels={}), first=False)
'''


def test_strict_fails_on_mismatch_not_on_fall_through(tmp_path):
    (tmp_path / "fallthrough_plugin.py").write_text(FALLTHROUGH_PLUGIN)
    (tmp_path / "wrong_plugin.py").write_text(WRONG_PLUGIN)
    common = ["--strict", "--loss", "mse_loss", "--size", "64x10", "--repeat", "1",
              "--warmup", "0", "--no-progress", "--mode", "forward"]
    r = run_cli(*common, "--backend", "emptyb", "numpy", "--peers", "none",
                "--plugin", str(tmp_path / "fallthrough_plugin.py"), cwd=str(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "emptyb -> " in r.stdout and "not timed" in r.stdout
    assert "flagged" not in r.stdout and "FALLBACK" not in r.stdout
    r = run_cli(*common, "--backend", "numpy", "--peers", "none",
                "--plugin", str(tmp_path / "wrong_plugin.py"), cwd=str(tmp_path))
    assert r.returncode == 1
    # the wrong fake's mismatch and the dying fake's error: both real problems
    assert "!! 2 run(s) flagged (mismatch or error)" in r.stdout


def test_floor_without_numba(monkeypatch):
    from fastloss._bench import floor
    monkeypatch.setattr(floor, "numba", None)
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    t = np.arange(3)
    assert floor.read([a, t]) == 66.0 + 3.0
    out = np.empty_like(a)
    assert floor.read_write(a, out, [t]) == 3.0
    np.testing.assert_array_equal(out, a)


def test_quick_leaves_the_reference_out_of_the_timings_unless_asked():
    # every worker still checks its result against the reference; only its timing is cut
    r = run_cli("--quick", "--loss", "mse_loss", "--size", "64x10", "--peers", "naive",
                "--repeat", "1", "--no-progress")
    assert r.returncode == 0
    assert "fastloss[numpy]" not in r.stdout and "fastloss[numba]" in r.stdout
    r = run_cli("--quick", "--loss", "mse_loss", "--size", "64x10", "--peers", "naive",
                "--backend", "numpy", "--repeat", "1", "--no-progress")
    assert r.returncode == 0 and "fastloss[numpy]" in r.stdout


def test_workers_import_the_same_fastloss_as_the_runner():
    """Workers run in (and import from) the directory of this fastloss: started in a
    source checkout, `python -m` would otherwise import the checkout's copy, which lacks
    the C module an installed copy has."""
    import fastloss
    assert os.path.samefile(os.path.join(runner._ROOT, "fastloss"),
                            os.path.dirname(fastloss.__file__))


# --- the sequence and linear cases: ctc_loss and linear_cross_entropy ------------------

def test_sequence_and_linear_sizes_and_defaults():
    assert data.parse_size("500x32x32x100") == (500, 32, 32, 100)
    assert data.GENERATORS["ctc_loss"].default_sizes() == ((500, 32, 32, 100),
                                                          (200, 64, 1000, 50))
    assert data.GENERATORS["linear_cross_entropy"].default_sizes() == ((2048, 512, 32000),
                                                                      (2048, 512, 128000))
    with pytest.raises(data.SizeError, match="TxNxCxS"):
        data.GENERATORS["ctc_loss"].check_shape((10, 20))
    with pytest.raises(data.SizeError, match="NxdxV"):
        data.GENERATORS["linear_cross_entropy"].check_shape((10, 20))


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch peer")
def test_ctc_and_linear_cases_run_at_tiny_sizes(tmp_path):
    out = tmp_path / "out.json"
    r = run_cli("--loss", "ctc_loss", "linear_cross_entropy", "--size", "20x4x6x5",
                "64x16x300", "--repeat", "1", "--backend", "numba", "numpy",
                "--peers", "torch", "torch_chunked", "gemm", "--check-limit", "64",
                "--json", str(out), timeout=600)
    assert r.returncode == 0, r.stderr
    results = json.loads(out.read_text())["results"]
    ok = {(x["impl"], x["loss"], x["mode"]) for x in results if x["status"] == "ok"}
    for mode in ("forward", "grad"):
        for impl in ("numba", "numpy", "torch"):
            assert (impl, "ctc_loss", mode) in ok and (impl, "linear_cross_entropy", mode) in ok
        assert ("gemm", "linear_cross_entropy", mode) in ok
        assert ("torch_chunked", "linear_cross_entropy", mode) in ok
    checked = [x for x in results if x["status"] == "ok" and x["group"] != "floor"]
    assert all(x["check"]["status"] == "ok" for x in checked)
    # a check on part of a case: the CTC batch is log_probs' second axis
    assert any(x["check"]["on"] != "full" for x in checked if x["loss"] == "ctc_loss")
