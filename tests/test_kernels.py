"""The kernel declarations (fastloss._kernels) against every backend, the C header, the
registry and the dispatcher's ranking: a kernel is declared once, and everything that
names a kernel or orders its arguments agrees with that declaration."""
import inspect
import json
import os
import subprocess
import sys
import textwrap

import pytest

from fastloss import _dispatch, _kernels, _registry

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEADER = os.path.join(ROOT, "csrc", "fastloss.h")
FUNCTIONS = _kernels.functions()


def _backends():
    return [name for name in _kernels.BACKENDS
            if name in _dispatch._BACKENDS and _dispatch._BACKENDS[name].available]


@pytest.mark.parametrize("backend", _backends())
def test_every_backend_provides_its_required_kernels(backend):
    b = _dispatch._BACKENDS[backend]
    missing = [f for f in _kernels.required_kernels(backend) if not callable(b.kernel(f))]
    assert not missing, f"{backend} lacks {missing}"


@pytest.mark.parametrize("backend", _backends())
def test_every_kernel_has_the_declared_arguments(backend):
    b = _dispatch._BACKENDS[backend]
    checked = 0
    for fname, (kernel, suffix) in FUNCTIONS.items():
        fn = b.kernel(fname)
        if fn is None:
            continue
        got = tuple(inspect.signature(fn).parameters)
        assert got == kernel.signature(suffix), (backend, fname)
        checked += 1
    assert checked >= len(_kernels.required_kernels(backend))


def test_backends_have_no_undeclared_kernels():
    for backend in _backends():
        extra = set(_dispatch._BACKENDS[backend].kernel_names()) - set(FUNCTIONS)
        assert not extra, f"{backend} has kernels nobody declared: {sorted(extra)}"


def test_required_kernels_rejects_an_unknown_backend():
    assert "l1_fwd" in _kernels.required_kernels("c")
    assert "poisson_nll_fwd" not in _kernels.required_kernels("c")
    assert set(_kernels.required_kernels("numpy")) == set(FUNCTIONS)
    with pytest.raises(ValueError, match="backend"):
        _kernels.required_kernels("cuda")


def _header_abi():
    sys.path.insert(0, os.path.join(ROOT, "csrc"))
    try:
        import build_cffi
    finally:
        sys.path.pop(0)
    return build_cffi.cdef_from_header(HEADER)


def test_the_c_header_matches_the_declarations():
    abi = _kernels.parse_cdef(_header_abi())
    declared = set()
    for kernel in _kernels.KERNELS.values():
        if "c" not in kernel.backends:
            continue
        for suffix in kernel.suffixes:
            f32, f64 = (_kernels.c_name(kernel, suffix, dt) for dt in ("f32", "f64"))
            declared |= {f32, f64}
            assert f32 in abi and f64 in abi, f32
            assert [n for _, n in abi[f32]] == [n for _, n in abi[f64]], f32
            if kernel.name == "class_targets":   # written out by hand in fastloss._cffi
                names = [n for _, n in abi[f32]]
                assert [n for n in names if n in kernel.signature("")] == \
                    list(kernel.signature("")), f32
                continue
            exprs, _ = _kernels.c_arguments(kernel, suffix, abi[f32])   # raises on a mismatch
            assert len(exprs) == len(abi[f32])
    kernel_symbols = {n for n in abi if n.endswith(("_f32", "_f64"))}
    assert kernel_symbols == declared, sorted(kernel_symbols ^ declared)


def test_a_c_argument_outside_the_declaration_is_refused():
    # a dummy parameter (what l1 and mse used to carry) names nothing declared
    l1 = _kernels.KERNELS["l1"]
    args = [("const float *", "x"), ("const float *", "t"), ("const float *", "w"),
            ("int64_t", "n_w"), ("int64_t", "n"), ("double", "param"),
            ("float *", "loss_out"), ("int64_t", "n_out")]
    with pytest.raises(ValueError, match="param"):
        _kernels.c_arguments(l1, "_fwd", args)
    # the declared arguments in another order
    swapped = [args[1], args[0], *args[2:5], *args[6:]]
    with pytest.raises(ValueError, match="do not match"):
        _kernels.c_arguments(l1, "_fwd", swapped)
    exprs, unpack = _kernels.c_arguments(l1, "_fwd", args[:5] + args[6:])
    assert exprs == ["_buf(ctype, x)", "_buf(ctype, t)", "_opt(ctype, w)", "w.size", "n",
                     "_opt(ctype, loss_out)", "loss_out.size"]
    assert unpack == "n = x.size"


def test_the_built_c_module_carries_the_header_it_was_built_from():
    c = _dispatch._BACKENDS["c"]
    if not c.available:
        pytest.skip(f"C backend not built: {c.error}")
    from fastloss import _cffi
    assert _kernels.parse_cdef(_header_abi()) == _cffi._ABI, \
        "the compiled module is stale: run python csrc/build_cffi.py"


def test_registry_rows_name_declared_kernels():
    for spec in _registry.LOSSES.values():
        assert spec.kernels, spec.name
        assert set(spec.kernels) <= set(_kernels.KERNELS), spec.name
    with pytest.raises(ValueError, match="not declared"):
        _registry.loss("NoLoss", kernels=("no_such_kernel",))


def test_auto_order_is_keyed_by_declared_kernel_functions():
    with open(os.path.join(ROOT, "fastloss", "_auto_order.json")) as f:
        ranked = json.load(f)["kernels"]
    assert set(ranked) <= set(FUNCTIONS), sorted(set(ranked) - set(FUNCTIONS))
    for fname, order in ranked.items():
        assert set(order) <= set(_kernels.BACKENDS), fname


def test_the_first_call_of_an_elementwise_loss_compiles_that_loss_only(tmp_path):
    # Each element-wise loss has its own generated block and drivers; calling one must
    # not compile any other's (one shared driver used to compile all twelve, ~0.9 s each).
    code = textwrap.dedent("""
        import numpy as np, fastloss
        from fastloss import _kernels
        from fastloss._numba import elementwise as E
        x = np.linspace(-1, 1, 50).astype(np.float32)
        fastloss.mse_loss(x, x[::-1].copy(), backend="numba")
        fastloss.value_and_grad(fastloss.mse_loss)(x, x[::-1].copy(), backend="numba")
        for k in E.KERNELS:
            for part in ("_block", "_ser", "_par"):
                n = len(getattr(E, "_" + k.name + part).signatures)
                if n:
                    print(k.name + part, n)
    """)
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path), FASTLOSS_CACHE_DIR=str(tmp_path),
               FASTLOSS_NO_C="1", PYTHONPATH=ROOT)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout.split("\n")
    compiled = sorted(line.split()[0] for line in out if line)
    assert compiled == ["mse_block", "mse_ser"], compiled


def test_elementwise_kernels_take_their_own_named_arguments():
    numba_backend = _dispatch._BACKENDS["numba"]
    if not numba_backend.available:
        pytest.skip(numba_backend.error)
    from fastloss._numba import elementwise as E
    for k in E.KERNELS:
        block = inspect.signature(getattr(E, f"_{k.name}_block").py_func).parameters
        assert tuple(block) == ("b", *k.arrays, *(p for p, _ in k.params), "gscale", "gvec",
                                "loss_out", *("g" + a for a in k.grads), "want_grad"), k.name
    assert tuple(inspect.signature(E._margin_ranking_pts.py_func).parameters)[:4] == \
        ("x1", "x2", "t", "margin")
