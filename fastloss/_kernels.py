"""The kernels, declared once: each kernel's arrays, scalar parameters, gradient outputs
and target statistics, its family, and which Python backends must provide it (the C
backend provides the kernels its header declares, ``csrc/fastloss.h`` and its kernel list
``csrc/fl_list.h``: `c_kernels`). A loss's registry row may declare its kernel instead,
when it has its family's standard signature (`STANDARD`, `declare_standard`).

A kernel ``k`` is a pair of functions of the contract in ``fastloss._engine``, with these
arguments, in this order, under these names, in every backend::

    k_fwd(*arrays, *params, loss_out[, target_stats])
    k_vg(*arrays, *params, gscale, gvec, loss_out, *("g" + a for a in grads))

(``class_targets`` is one function, ``class_targets(*arrays, *params) -> (wsum, bad)``.)
The registry's ``kernels=``, the dispatcher's per-kernel order (``_auto_order.json``), the
cffi wrappers of the C backend (generated from this declaration and the C header) and the
tests read it; ``tests/test_kernels.py`` checks every backend and ``csrc/fastloss.h``
against it.

Families (the same split in ``functional/``, ``_reference/``, ``_numba/`` and ``csrc/``,
see the README's layout): ``elementwise`` (flat, already broadcast arrays, one item per
element; an array named ``w`` is the element weight), ``classification`` (class scores of
shape (N, C, D) with class-index or class-probability targets), ``rows`` (one item per row of
(N, C) or (N, D) arrays: multi-class margins, embeddings), ``sequence`` (CTC) and
``linear`` (a linear layer fused with cross-entropy, and cross-entropy's extensions).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

FAMILIES = ("elementwise", "classification", "rows", "sequence", "linear")
BACKENDS = ("numpy", "numba", "c")
PARAM_TYPES = {"float": float, "int": int, "bool": bool, "object": object}


@dataclass(frozen=True)
class Kernel:
    name: str                  # base name: functions "<name>_fwd" and "<name>_vg"
    family: str                # one of FAMILIES
    arrays: tuple              # array arguments, in order
    params: tuple              # (name, type) of the scalar arguments, in order
    grads: tuple = ("x",)      # the arrays a _vg kernel writes gradients of ("g" + name)
    optional: tuple = ()       # arrays that may be empty, meaning absent (no weight)
    target_stats: bool = False  # the _fwd kernel counts class targets (fills target_stats)
    backends: tuple = ("numpy", "numba")   # the Python backends that must provide it (the
                                           #   C backend: what its module exports, c_kernels)
    suffixes: tuple = ("_fwd", "_vg")

    def functions(self):
        """The names of the kernel's functions: ``("l1_fwd", "l1_vg")``."""
        return tuple(self.name + s for s in self.suffixes)

    def signature(self, suffix):
        """The argument names of the function ``name + suffix``, in order."""
        names = [*self.arrays, *(p for p, _ in self.params)]
        if suffix == "_fwd":
            return (*names, "loss_out", *(("target_stats",) if self.target_stats else ()))
        if suffix == "_vg":
            return (*names, "gscale", "gvec", "loss_out", *("g" + a for a in self.grads))
        return tuple(names)


def _k(name, family, arrays, params="", grads="x", backends="numpy numba", **kw):
    """A declaration from compact text: ``arrays="x t w?"`` (``?``: optional, may be
    empty) and ``params="ignore_index:int eps"`` (type float unless given)."""
    arr = tuple(a.rstrip("?") for a in arrays.split())
    optional = tuple(a.rstrip("?") for a in arrays.split() if a.endswith("?"))
    ps = []
    for p in params.split():
        pname, _, ptype = p.partition(":")
        ps.append((pname, ptype or "float"))
    assert family in FAMILIES, family
    return Kernel(name, family, arr, tuple(ps), tuple(grads.split()), optional,
                  backends=tuple(backends.split()), **kw)


KERNELS = {k.name: k for k in [
    # classification: scores (N, C, D), targets by index (int64) or probability
    _k("class_targets", "classification", "t w?",
       "n_classes:int ignore_index:int use_ignore:bool", grads="", suffixes=("",)),
    _k("nll", "classification", "x t w?", "ignore_index:int", target_stats=True),
    _k("ce_class", "classification", "x t w?", "ignore_index:int label_smoothing",
       target_stats=True),
    _k("ce_prob", "classification", "x p w?", "label_smoothing"),
    # elementwise: flat arrays of one length; w is the element weight
    _k("l1", "elementwise", "x t w?"),
    _k("mse", "elementwise", "x t w?"),
    _k("smooth_l1", "elementwise", "x t w?", "beta"),
    _k("huber", "elementwise", "x t w?", "delta"),
    _k("bce", "elementwise", "x t w?"),
    _k("bce_logits", "elementwise", "x t w? pw?"),
    _k("poisson_nll", "elementwise", "x t", "log_input:bool full:bool eps"),
    _k("gaussian_nll", "elementwise", "x t v", "full:bool eps", grads="x v"),
    _k("kl_div", "elementwise", "x t", "log_target:bool"),
    _k("hinge_embedding", "elementwise", "x t", "margin"),
    _k("soft_margin", "elementwise", "x t"),
    _k("margin_ranking", "elementwise", "x1 x2 t", "margin", grads="x1 x2"),
    # rows: one item per row of (N, C) / (N, D) arrays
    _k("multi_margin", "rows", "x t w?", "p:int margin"),
    _k("multilabel_margin", "rows", "x t"),
    _k("multilabel_soft_margin", "rows", "x y w?"),
    _k("cosine_embedding", "rows", "x1 x2 t", "margin", grads="x1 x2"),
    _k("triplet_margin", "rows", "a pos neg", "margin p eps swap:bool", grads="a pos neg"),
    _k("triplet_distance", "rows", "a pos neg", "margin swap:bool fn:object",
       grads="a pos neg"),
    # sequence
    _k("ctc", "sequence", "lp tp il tl scale", "blank:int zero_infinity:bool exact_grad:bool",
       grads="lp"),
    # linear: cross-entropy's extensions (z-loss, softcap) and the fused linear layer
    _k("ce_ext_class", "linear", "x t w?", "ignore_index:int eps z_loss cap"),
    _k("ce_ext_prob", "linear", "x p w?", "eps z_loss cap"),
    _k("linear_ce_class", "linear", "x wf t b w?",
       "c:int d:int ignore_index:int eps z_loss cap chunk:int", grads="x wf b"),
    _k("linear_ce_prob", "linear", "x wf p b w?", "c:int d:int eps z_loss cap chunk:int",
       grads="x wf b"),
]}


# The standard signature of a family: a kernel a loss names in its registry row without a
# declaration here is declared with it (``fastloss._registry.loss``), so that adding a loss
# of that shape touches no row of this file. elementwise: input and target, flat and
# broadcast (what ``functional._common.pointwise`` passes without weights or parameters);
# rows: scores (N, C) and int64 class indices (N,).
STANDARD = {"elementwise": "x t", "rows": "x t"}


def declare_standard(name, family):
    """Declare kernel `name` with the standard signature of `family` (numpy and numba
    must provide it, as any declared kernel); returns the declaration. A kernel already
    declared is returned as it is."""
    if name in KERNELS:
        return KERNELS[name]
    if family not in STANDARD:
        raise ValueError(f"kernels: {name!r} is not declared in fastloss._kernels, and the "
                         f"{family!r} family has no standard signature to declare it with "
                         f"(families that have one: {', '.join(STANDARD)})")
    KERNELS[name] = _k(name, family, STANDARD[family])
    return KERNELS[name]


def functions():
    """{function name: (kernel, suffix)} for every function of every kernel."""
    return {k.name + s: (k, s) for k in KERNELS.values() for s in k.suffixes}


def required_kernels(backend):
    """The function names `backend` ("numpy", "numba", "c") must provide, sorted. For "c",
    those of the kernels whose C functions the compiled module exports (`c_kernels`; none
    without it): which kernels C has is its header's (and kernel list's) to say, and
    tests/test_kernels.py checks the header against these declarations."""
    if backend not in BACKENDS:
        raise ValueError(f"backend: expected one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "c":
        try:
            from . import _cffi
        except ImportError:
            return []
        return sorted(f for k in c_kernels(_cffi._ABI) for f in k.functions())
    return sorted(f for k in KERNELS.values() if backend in k.backends for f in k.functions())


def c_kernels(abi):
    """The declared kernels whose every function has both C symbols in `abi` (a
    `parse_cdef` result), in declaration order."""
    return [k for k in KERNELS.values()
            if all(c_name(k, s, dt) in abi for s in k.suffixes for dt in ("f32", "f64"))]


def of_family(family):
    """The kernels of one family, in declaration order."""
    return [k for k in KERNELS.values() if k.family == family]


# ---------------------------------------------------------------- the C ABI (csrc/fastloss.h)
def parse_cdef(text):
    """{C function name: [(C type, argument name), ...]} of the ``fl_*`` declarations in a
    cdef (the header without comments and preprocessor lines)."""
    found = {}
    for m in re.finditer(r"\b(fl_\w+)\s*\(([^)]*)\)\s*;", text):
        args = []
        for a in m.group(2).split(","):
            a = a.strip()
            if a and a != "void":
                name = re.findall(r"\w+", a)[-1]
                args.append((a[:a.rindex(name)].strip(), name))
        found[m.group(1)] = args
    return found


def c_name(kernel, suffix, dtype="f32"):
    """The C symbol of a kernel function: ``fl_<kernel><suffix>_<f32|f64>``."""
    return f"fl_{kernel.name}{suffix}_{dtype}"


def c_arguments(kernel, suffix, c_args):
    """How the contract function ``kernel.name + suffix`` calls its C symbol, whose
    arguments (from `parse_cdef`, float32 variant) are `c_args`: the Python expression of
    each C argument, in terms of the contract's argument names, and the statement that
    unpacks the sizes it needs ("" if none). The C header names the arguments as this
    declaration does; besides them it may only take sizes: ``n_<array>`` (its length;
    ``n_out``, ``n_gvec``), ``<array>_rows`` (its rows, 0 when absent) and ``n``, ``c``,
    ``d`` (the first array's shape (n, c, d), (n, c), or its length n). Raises ValueError
    for any other argument, or for the declared ones in another order or missing.

    The expressions use ``ctype`` (the float array type of the first array's dtype),
    ``_I64``/``_F64_C`` (int64 and float64 arrays), ``_buf`` and ``_opt`` (an optional
    array: NULL when empty) of fastloss._cffi."""
    contract = kernel.signature(suffix)
    where = f"{c_name(kernel, suffix)} (kernel {kernel.name!r})"
    sizes = {"n_out": "loss_out.size", "n_gvec": "gvec.size"}
    sizes.update({"n_" + a: a + ".size" for a in kernel.arrays})
    sizes.update({a + "_rows": f"({a}.shape[0] if {a}.size else 0)" for a in kernel.arrays})
    optional = {*kernel.optional, "loss_out", "gvec"}
    a0 = kernel.arrays[0]
    exprs, used, shape = [], [], set()
    for ctype, name in c_args:
        if name in contract:
            used.append(name)
            if "*" not in ctype:
                exprs.append(name)
                continue
            base = ctype.replace("const", "").replace("*", "").strip()
            array_type = {"float": "ctype", "int64_t": "_I64", "double": "_F64_C"}.get(base)
            if array_type is None:
                raise ValueError(f"{where}: argument {name} has type {ctype!r}")
            exprs.append(f"{'_opt' if name in optional else '_buf'}({array_type}, {name})")
        elif name in sizes:
            exprs.append(sizes[name])
        elif name in ("n", "c", "d"):
            shape.add(name)
            exprs.append(name)
        else:
            raise ValueError(f"{where}: C argument {name!r} is neither declared in "
                             "fastloss._kernels nor a size")
    if tuple(used) != contract:
        raise ValueError(f"{where}: the C arguments {tuple(used)} do not match the "
                         f"declaration {contract}")
    unpack = ("n, c, d = {0}.shape" if "d" in shape else "n, c = {0}.shape" if "c" in shape
              else "n = {0}.size" if shape else "").format(a0)
    return exprs, unpack
