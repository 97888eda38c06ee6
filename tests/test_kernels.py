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
    if _dispatch._BACKENDS["c"].available:   # C: what its module exports
        assert "l1_fwd" in _kernels.required_kernels("c")
        assert "multilabel_margin_fwd" not in _kernels.required_kernels("c")
    else:
        assert _kernels.required_kernels("c") == []
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
    """Every kernel the header declares (its own prototypes and those generated from the
    kernel list, csrc/fl_list.h) is a declared kernel, with both functions in both dtypes
    and the declared arguments: the C backend provides exactly those (c_kernels)."""
    abi = _kernels.parse_cdef(_header_abi())
    declared = set()
    c_kernels = _kernels.c_kernels(abi)
    assert len(c_kernels) >= 15
    for kernel in c_kernels:
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
    # a C function of no declared kernel, or a kernel with only some of its functions
    assert kernel_symbols == declared, sorted(kernel_symbols ^ declared)


def test_the_c_kernel_list_is_what_the_header_declares():
    """csrc/fl_list.h's rows are element-wise kernels the header declares (their
    prototypes are generated from it): one row is all the C ABI needs for such a kernel."""
    import re
    text = open(os.path.join(ROOT, "csrc", "fl_list.h")).read()
    body = text[text.index("#define FL_ELEMENTWISE_KERNELS"):]
    rows = re.findall(r"^\s+(XTW_P|XTW|XT_P|XT)\((\w+)(?:, (\w+))?\)", body, re.M)
    assert len(rows) >= 7
    c_kernels = {k.name: k for k in _kernels.c_kernels(_kernels.parse_cdef(_header_abi()))}
    for form, name, param in rows:
        kernel = c_kernels[name]
        assert kernel.family == "elementwise", name
        arrays = ("x", "t", "w") if form.startswith("XTW") else ("x", "t")
        assert kernel.arrays == arrays, name
        assert [p for p, _ in kernel.params] == ([param] if param else []), name
    if _dispatch._BACKENDS["c"].available:
        from fastloss import _cffi
        for name in c_kernels:
            if name != "class_targets":
                assert all(callable(getattr(_cffi, f)) for f in c_kernels[name].functions())


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

    def no_loss(input, target, *, backend=None):
        raise AssertionError("never called")
    # outside a family module, and naming no family: a typo, not a new kernel
    with pytest.raises(ValueError, match="not declared"):
        _registry.loss("NoLoss", kernels=("no_such_kernel",))(no_loss)
    # a family without a standard signature declares nothing
    with pytest.raises(ValueError, match="standard signature"):
        _registry.loss("NoLoss", kernels=("no_such_kernel",), family="sequence")(no_loss)
    assert "no_such_kernel" not in _kernels.KERNELS and "no_loss" not in _registry.LOSSES


def test_a_kernel_of_a_standard_family_is_declared_by_its_registry_row(monkeypatch):
    # what adding an element-wise loss x, t -> loss takes in fastloss/_kernels.py: nothing
    monkeypatch.setattr(_kernels, "KERNELS", dict(_kernels.KERNELS))
    monkeypatch.setattr(_registry, "LOSSES", dict(_registry.LOSSES))

    def made_up_loss(input, target, *, backend=None):
        raise AssertionError("never called")
    made_up_loss.__module__ = "fastloss.functional.elementwise"
    _registry.loss("MadeUpLoss", kernels=("made_up",), oracle=None)(made_up_loss)
    k = _kernels.KERNELS["made_up"]
    assert (k.family, k.arrays, k.params, k.grads) == ("elementwise", ("x", "t"), (), ("x",))
    assert k.signature("_vg") == ("x", "t", "gscale", "gvec", "loss_out", "gx")
    assert _registry.LOSSES["made_up_loss"].kernels == ("made_up",)
    assert _kernels.STANDARD == {"elementwise": "x t", "rows": "x t"}


def _family_of(spec):
    return _kernels.KERNELS[spec.kernels[0]].family


def test_each_loss_lives_in_the_module_of_its_kernels_family_in_every_layer():
    """One taxonomy (issue 10): a loss's function is in fastloss.functional.<family>
    (exported by that module's __all__), its kernels in _reference.<family> and
    _numba.<family>, its cases in tests/cases/<family>.py."""
    import importlib

    import cases
    package = [s for s in _registry.LOSSES.values()
               if s.function.__module__.startswith("fastloss.")]
    assert len(package) >= 22
    for spec in package:
        module = f"fastloss.functional.{_family_of(spec)}"
        assert spec.function.__module__ == module, spec.name
        assert spec.name in importlib.import_module(module).__all__, spec.name
    for layer in ("_reference", "_numba"):
        b = _dispatch._BACKENDS["numpy" if layer == "_reference" else "numba"]
        if not b.available:
            continue
        for fname, (kernel, _) in FUNCTIONS.items():
            fn = b.kernel(fname)
            if fn is None or fn.__module__ == "toy_loss":
                continue
            fn = inspect.unwrap(fn)
            if layer == "_numba" and fn.__module__.startswith("fastloss._reference."):
                continue   # a kernel the reference serves for numba (triplet_distance)
            assert fn.__module__ == f"fastloss.{layer}.{kernel.family}", (layer, fname)
    for family in _kernels.FAMILIES:
        module = importlib.import_module(f"cases.{family}")
        for case in module.CASES:
            assert _family_of(_registry.LOSSES[case.loss]) == family, (family, case.loss)
    import pkgutil
    assert {m.name for m in pkgutil.iter_modules(cases.__path__)} == set(_kernels.FAMILIES)


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


def test_a_row_loss_is_its_declaration_and_its_row_function():
    """A row loss of the standard form needs no block, driver or contract written out:
    they are generated from its declaration and its ``_<name>_row`` (here into a copy of
    the module's namespace, uncached)."""
    numba_backend = _dispatch._BACKENDS["numba"]
    if not numba_backend.available:
        pytest.skip(numba_backend.error)
    import numba
    import numpy as np

    from fastloss._numba import rows as R

    @numba.njit
    def _toy_rows_row(x, t, i, cf, gx, want_grad):
        # sum_j (x_ij - [j == t_i])^2, d/dx_ij = 2 (x_ij - [j == t_i])
        total = 0.0
        for j in range(x.shape[1]):
            d = np.float64(x[i, j]) - (1.0 if j == t[i] else 0.0)
            total += d * d
            if want_grad:
                gx[i, j] = cf * 2.0 * d
        return total

    namespace = dict(vars(R), _toy_rows_row=_toy_rows_row)
    R._generate(_kernels._k("toy_rows", "rows", "x t"), namespace, cache=False)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 7))
    t = rng.integers(0, 7, 300)
    d = x - (np.arange(7) == t[:, None])
    loss_out = np.empty(300)
    assert np.isclose(namespace["toy_rows_fwd"](x, t, loss_out), (d * d).sum())
    np.testing.assert_allclose(loss_out, (d * d).sum(axis=1))
    gx = np.empty_like(x)
    gvec = rng.uniform(size=300)
    total = namespace["toy_rows_vg"](x, t, 0.5, gvec, np.empty(0), gx)
    assert np.isclose(total, (d * d).sum())
    np.testing.assert_allclose(gx, 0.5 * gvec[:, None] * 2.0 * d)
    assert namespace["toy_rows_fwd"](x[:0], t[:0], loss_out[:0]) == 0.0
