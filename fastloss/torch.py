"""fastloss inside PyTorch: every loss as an autograd-aware torch operator.

``fastloss.torch.cross_entropy(input, target, ...)`` and
``fastloss.torch.CrossEntropyLoss(...)`` take and return tensors, with the names,
arguments and defaults of ``fastloss.cross_entropy`` (PyTorch's, without the legacy
``size_average``/``reduce``), so swapping ``torch.nn.CrossEntropyLoss()`` for
``fastloss.torch.CrossEntropyLoss()`` in a training loop is the whole change.

How it works. Each loss of the registry (``fastloss.LOSSES``) becomes three operators
registered with ``torch.library.custom_op`` in the ``fastloss`` namespace, with fake
(meta) implementations, so that ``torch.compile`` traces them without a graph break and
``torch.library.opcheck`` accepts them:

- ``fastloss::<loss>``: the value only. Its autograd formula calls ``<loss>_backward``.
  Used without gradients, and for ``reduction="none"``.
- ``fastloss::<loss>_vg``: the value and, in the same fused pass, the gradients of the
  arguments that require grad, for ``grad_output = 1``. Used for the reduced losses
  ("mean", "sum", "batchmean"): the backward only multiplies the saved gradients by the
  scalar ``grad_output``.
- ``fastloss::<loss>_backward``: the fused value-and-gradient for a given
  ``grad_output``. With ``reduction="none"`` the gradient of an input can only be scaled
  item by item when no input was broadcast, and which axis an item spans differs from
  loss to loss, so the backward runs the fused kernel once more with the real
  ``grad_output`` (the forward skips the gradient): a forward plus one fused pass, as
  many passes as torch takes.

In eager mode the dispatcher's cost per ``custom_op`` call is larger than a whole loss
on a small batch, so calls outside ``torch.compile`` take a fast path (a
``torch.autograd.Function`` around the same host functions, no dispatcher); the results
are identical. ``FASTLOSS_TORCH_OPS=1`` (read at import) or ``use_ops(True)`` sends
eager calls through the registered operators too.

Rules:

- CPU tensors only: a CUDA (or meta) tensor outside a fake-tensor context raises
  ``ValueError``. Tensors are read in place (zero copy) whatever their strides:
  non-contiguous and channels-last tensors work.
- Gradients: for every argument fastloss differentiates (``LOSSES[name].differentiable``),
  and for ``target`` of ``l1_loss``, ``mse_loss``, ``smooth_l1_loss`` and ``huber_loss``
  (the negated input gradient, summed over broadcast axes, when target broadcasts to
  input's shape). Any other tensor that
  requires grad (a float target torch would differentiate, a weight) raises
  ``ValueError`` instead of silently getting no gradient. Double backward
  (``create_graph=True`` followed by a second differentiation) raises ``RuntimeError``.
- ``sample_weight=`` (fastloss's per-sample weights, keyword-only, where
  ``fastloss.<loss>`` takes it) is a tensor (or array) like the others, applied as
  fastloss applies it; it is never differentiated (one that requires grad raises
  ``ValueError``) and does not change the loss's dtype.
- Dtypes: float32 and float64 as fastloss computes them. float16 and bfloat16 are
  computed in float32; the loss is returned in the half dtype when the promotion of the
  floating arguments is that dtype (as torch returns it), and each gradient in its
  input's dtype.
"""
try:
    import torch as _torch
except ImportError as exc:   # pragma: no cover - exercised without torch installed
    raise ImportError("fastloss.torch needs PyTorch: pip install torch==2.13.0 "
                      "(that pin is a CPU build; an unpinned torch pulls a CUDA build)") from exc

import inspect
import json
import numbers
import os
import types
import typing

import numpy as np

from . import losses as _losses
from . import _bridge
from ._registry import LOSSES

torch = _torch
Tensor = torch.Tensor

__all__ = ["BRIDGED", "EXCLUDED", "UNSUPPORTED", "use_ops"]

# Losses deliberately not bridged, with the reason (the tripwire test requires every loss
# of the registry to be bridged or listed here).
EXCLUDED = {
    "triplet_margin_with_distance_loss":
        "distance_function is a Python callable, which a torch operator cannot take; "
        "use torch.nn.functional.triplet_margin_with_distance_loss (or "
        "fastloss.torch.triplet_margin_loss for the default distance)",
}

_NEGATED = _bridge.NEGATED

_HALF = (torch.float16, torch.bfloat16)
_NP_OF = {torch.float32: np.float32, torch.float64: np.float64, torch.float16: np.float16,
          torch.bfloat16: np.float32, torch.int64: np.int64, torch.int32: np.int32,
          torch.int16: np.int16, torch.int8: np.int8, torch.uint8: np.uint8,
          torch.bool: np.bool_}
_TORCH_OF = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}

_use_ops = os.environ.get("FASTLOSS_TORCH_OPS") == "1"


def use_ops(enabled=True):
    """Send eager calls through the registered ``fastloss::`` operators (True) or the
    eager fast path (False, the default). Under ``torch.compile`` the operators are always
    used. Returns the previous setting."""
    global _use_ops
    previous, _use_ops = _use_ops, bool(enabled)
    return previous


# --------------------------------------------------------------------------- schema

def _members(annotation):
    """The member types of an annotation (a union is split), as strings or types."""
    if isinstance(annotation, str):
        return [m.strip() for m in annotation.split("|")]
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return list(typing.get_args(annotation))
    return [annotation]


def _kind_of_annotation(annotation):
    """A schema type for a parameter annotation, or None when it has none we can express."""
    names = set()
    for m in _members(annotation):
        if m is type(None) or m in ("None", "NoneType"):
            names.add("None")
        # fastloss's own "ArrayLike" (an array argument): what a loss with no torch twin
        # declares, there being no torch annotation to read
        elif m is Tensor or m in ("Tensor", "torch.Tensor", "ArrayLike"):
            names.add("Tensor")
        elif m in (float, int, bool, str) or m in ("float", "int", "bool", "str"):
            names.add(m if isinstance(m, str) else m.__name__)
        else:
            return None
    optional = "None" in names
    names.discard("None")
    if names == {"Tensor", "float"}:          # gaussian_nll_loss's var: a number is
        return "Tensor|Number"                 # value * ones_like(input), as in torch
    if names == {"float", "int"}:
        names = {"float"}
    if len(names) != 1:
        return None
    (base,) = names
    return base + ("?" if optional else "")


def _kind_of_default(default):
    if default is inspect.Parameter.empty:
        return "Tensor"
    for t in (bool, int, float, str):
        if type(default) is t:
            return t.__name__
    return None     # None or an object: the type is not known from the default alone


def _schema_of(spec):
    """[(name, kind)] for the loss's parameters, or a reason string when some parameter
    cannot be expressed in a torch operator's schema.

    The type of each parameter is, in order: the annotation in the loss's torch twin (the
    registry's oracle; none for a loss torch lacks), the annotation in fastloss's
    own signature, else the type of its default (a parameter without a default is a
    tensor). A parameter with a default whose type none of these gives (say ``None``, or
    an annotation a schema cannot express) is a "literal": its value, which must then be
    a Python literal (None, a number, a string, a list of them), travels to the operators
    JSON-encoded in one ``str literals`` argument, a constant under torch.compile."""
    torch_params = {}
    if spec.oracle is not None:   # torch's parameters, under fastloss's names
        theirs = inspect.signature(spec.oracle.resolve()).parameters
        torch_params = {n: theirs.get(spec.oracle.argument(n)) for n in spec.parameters}
    own = inspect.signature(spec.prepare).parameters
    out = []
    for name in spec.parameters:
        kind = None
        for params in (torch_params, own):
            p = params.get(name)
            if p is not None and p.annotation is not inspect.Parameter.empty:
                kind = _kind_of_annotation(p.annotation)
                break
        else:
            kind = _kind_of_default(own[name].default)
        if kind is None:
            if own[name].default is inspect.Parameter.empty:
                return f"parameter {name!r} has a type a torch operator cannot take"
            kind = "literal"    # passed as JSON in one str argument of the operators
        out.append((name, kind))
    if not any(k.startswith("Tensor") for _, k in out):
        return "it takes no tensor"
    return out


_SCHEMA_TYPE = {"Tensor": "Tensor", "Tensor?": "Tensor?", "Tensor|Number": "Tensor",
                "float": "float", "float?": "float?", "int": "int", "int?": "int?",
                "bool": "bool", "bool?": "bool?", "str": "str", "str?": "str?"}


# --------------------------------------------------------------------------- host side

def _to_numpy(t):
    """A zero-copy NumPy view of a CPU tensor (bfloat16, which NumPy lacks, as float32)."""
    if not isinstance(t, Tensor):
        return t
    if t.requires_grad:
        t = t.detach()
    if t.dtype == torch.bfloat16:
        t = t.float()
    return t.numpy()


@torch._dynamo.assume_constant_result
def _encode(pairs):
    # a constant of the trace: torch.compile calls it once and bakes the string in
    return json.dumps(dict(pairs))


def _jsonable(v):
    try:
        json.dumps(v)
        return True
    except (TypeError, ValueError):
        return False


def _half_result(tensors):
    """The dtype torch returns a loss in when its floating arguments promote to float16 or
    bfloat16 (fastloss computes those in float32), else None."""
    dtypes = [t.dtype for t in tensors if isinstance(t, Tensor)]
    if not any(d in _HALF for d in dtypes):
        return None          # the common case, without torch calls (~5 us a call)
    dtype = None
    for d in dtypes:
        if d.is_floating_point:
            dtype = d if dtype is None else torch.promote_types(dtype, d)
    return dtype if dtype in _HALF else None


def _value_tensor(value, tensors):
    out = torch.from_numpy(np.asarray(value))
    half = _half_result(tensors)
    return out.to(half) if half is not None else out


class _Bridge:
    """One loss: its schema, the host functions and the registered operators."""

    def __init__(self, spec, schema):
        self.spec = spec
        self.name = spec.name
        self.params = [n for n, _ in schema]
        self.kinds = dict(schema)
        extra = _NEGATED.get(spec.name)
        self.diff = list(spec.differentiable) + ([extra[0]] if extra else [])
        self.derived = {extra[0]: extra[1]} if extra else {}
        self.diff_index = [self.params.index(n) for n in self.diff]
        self.tensor_params = [n for n in self.params if self.kinds[n].startswith("Tensor")]
        self.literals = [n for n in self.params if self.kinds[n] == "literal"]
        self.op_params = [n for n in self.params if self.kinds[n] != "literal"]
        self.op_diff_index = [self.op_params.index(n) for n in self.diff]
        self.signature = inspect.signature(spec.function)
        self.reduction_index = self.params.index("reduction")
        self.sample_weight_index = (self.params.index("sample_weight")
                                    if "sample_weight" in self.params else None)

    def pack(self, full):
        """The operators' arguments (without backend) from the full parameter tuple."""
        values = dict(zip(self.params, full))
        out = [values[n] for n in self.op_params]
        if self.literals:
            lit = tuple((n, values[n]) for n in self.literals)
            try:
                out.append(_encode(lit))
            except (TypeError, ValueError):
                bad = next(n for n in self.literals if not _jsonable(values[n]))
                raise TypeError(
                    f"{self.name}: {bad} must be a Python literal (None, a number, a string "
                    f"or a list of them) to pass through a torch operator, got "
                    f"{type(values[bad]).__name__}") from None
        return tuple(out)

    def unpack(self, op_args):
        if not self.literals:
            return tuple(op_args)
        *plain, lit = op_args
        values = dict(zip(self.op_params, plain))
        values.update(json.loads(lit))
        return tuple(values[n] for n in self.params)

    # host computations: args is the full tuple of parameter values, tensors inside
    def forward(self, args, backend):
        np_args = [_to_numpy(a) for a in args]
        value = self.spec.function(**dict(zip(self.params, np_args)), backend=backend)
        return _value_tensor(value, self.loss_args(args))

    def value_and_grads(self, args, wrt, backend, grad_output=None):
        """(value tensor, [grad tensor for each True in wrt]) in one fused pass."""
        names = [n for n, w in zip(self.diff, wrt) if w]
        base = []
        for n in names:
            src = self.derived.get(n, n)
            if src not in base:
                base.append(src)
        np_args = [_to_numpy(a) for a in args]
        go = None if grad_output is None else _to_numpy(grad_output)
        positions = [self.spec.differentiable.index(n) for n in base]
        # each gradient comes back in the computed dtype and is cast to its tensor's below
        value, grads = _bridge.value_and_grads(self.spec, dict(zip(self.params, np_args)),
                                               positions, go, backend)
        by_name = dict(zip(base, grads))
        out = []
        for n in names:
            src = self.derived.get(n)
            t = args[self.params.index(n)]
            g = by_name[n] if src is None else _bridge.negated_grad(by_name[src], t.shape)
            g = torch.from_numpy(g)
            out.append(g if g.dtype == t.dtype else g.to(t.dtype))
        return _value_tensor(value, self.loss_args(args)), out

    def loss_args(self, args):
        """The arguments that decide the loss's dtype: all but fastloss's sample_weight
        (weights do not change what the loss is returned in)."""
        if self.sample_weight_index is None:
            return args
        return [a for i, a in enumerate(args) if i != self.sample_weight_index]

    # fake (meta) implementations: shapes and dtypes without data
    def fake_value(self, args):
        shape, dtype = self._fake_layout(args)
        return args[self.diff_index[0]].new_empty(shape, dtype=dtype)

    def fake_grads(self, args, wrt):
        return [args[i].new_empty(args[i].shape, dtype=args[i].dtype)
                for i, w in zip(self.diff_index, wrt) if w]

    def _fake_layout(self, args):
        """(shape, dtype) of the loss: fastloss's own validation run on zero-filled NumPy
        arrays of the same shapes (calloc'd: no memory is touched for a contiguous one)."""
        reduction = args[self.params.index("reduction")]
        values = {n: _bridge.array_spec(a.shape, _NP_OF[a.dtype]) if isinstance(a, Tensor)
                  else a for n, a in zip(self.params, args)}
        half = _half_result(self.loss_args(args))
        try:
            item_shape, dtype = _bridge.layout(self.spec, values)
        except Exception:
            # validation that needs the data (e.g. lengths that must add up): the reduced
            # loss is still a scalar of the promoted floating dtype
            if reduction == "none":
                raise NotImplementedError(
                    f"fastloss.torch.{self.name}: the shape of reduction='none' cannot be "
                    "inferred without the data under torch.compile; call it eagerly "
                    "(torch.compiler.disable) or use a reduced loss") from None
            floats = [a.dtype for a in self.loss_args(args)
                      if isinstance(a, Tensor) and a.is_floating_point()]
            dtype = floats[0] if floats else torch.float32
            for d in floats[1:]:
                dtype = torch.promote_types(dtype, d)
            return (), (half or (torch.float32 if dtype in _HALF else dtype))
        shape = item_shape if reduction == "none" else ()
        return shape, (half or _TORCH_OF[dtype])


# --------------------------------------------------------------------------- operators

class _NoDoubleBackward(torch.autograd.Function):
    """Passes a gradient through; differentiating it again raises."""

    @staticmethod
    def forward(ctx, message, grad, *deps):
        ctx.message = message
        return grad.view_as(grad)

    @staticmethod
    def backward(ctx, *grads):
        raise RuntimeError(ctx.message)


def _guard_twice(bridge, grads, deps):
    """In a backward run with create_graph=True, make the returned gradients raise when
    they are differentiated (fastloss has no second derivatives), instead of silently
    carrying none."""
    if not torch.is_grad_enabled() or torch.compiler.is_compiling():
        return grads
    deps = [d for d in deps if isinstance(d, Tensor) and d.requires_grad]
    if not deps:
        return grads
    msg = (f"fastloss.torch.{bridge.name}: double backward is not supported (fastloss "
           "computes first derivatives only); use torch.nn.functional for "
           "second-order gradients")
    return [None if g is None else _NoDoubleBackward.apply(msg, g, *deps) for g in grads]


def _register(bridge):
    """Define fastloss::<loss>, <loss>_vg and <loss>_backward with their fake and
    autograd implementations."""
    sig = ", ".join(f"{_SCHEMA_TYPE[bridge.kinds[n]]} {n}" for n in bridge.op_params)
    sig += (", str literals" if bridge.literals else "") + ", str? backend"
    n_op = len(bridge.op_params) + (1 if bridge.literals else 0)   # without backend
    ns = f"fastloss::{bridge.name}"

    def value_impl(*args):
        *args, backend = args
        return bridge.forward(bridge.unpack(args), backend)

    def vg_impl(wrt, *args):
        *args, backend = args
        value, grads = bridge.value_and_grads(bridge.unpack(args), wrt, backend)
        return [value, *grads]

    def backward_impl(grad_output, wrt, *args):
        *args, backend = args
        return bridge.value_and_grads(bridge.unpack(args), wrt, backend, grad_output)[1]

    value_op = torch.library.custom_op(ns, value_impl, mutates_args=(), device_types="cpu",
                                       schema=f"({sig}) -> Tensor")
    vg_op = torch.library.custom_op(ns + "_vg", vg_impl, mutates_args=(), device_types="cpu",
                                    schema=f"(bool[] wrt, {sig}) -> Tensor[]")
    bw_op = torch.library.custom_op(ns + "_backward", backward_impl, mutates_args=(),
                                    device_types="cpu",
                                    schema=f"(Tensor grad_output, bool[] wrt, {sig}) -> Tensor[]")

    full = bridge.unpack
    value_op.register_fake(lambda *args: bridge.fake_value(full(args[:-1])))
    vg_op.register_fake(lambda wrt, *args: [bridge.fake_value(full(args[:-1])),
                                            *bridge.fake_grads(full(args[:-1]), wrt)])
    bw_op.register_fake(lambda go, wrt, *args: bridge.fake_grads(full(args[:-1]), wrt))

    # value op: the backward runs the fused kernel with the real grad_output
    def value_setup(ctx, inputs, output):
        ctx.save_for_backward(*[a if isinstance(a, Tensor) else None for a in inputs])
        ctx.others = [None if isinstance(a, Tensor) else a for a in inputs]

    def value_backward(ctx, grad_output):
        saved = ctx.saved_tensors
        inputs = [s if o is None and s is not None else o
                  for s, o in zip(saved, ctx.others)]
        needs = ctx.needs_input_grad
        if len(needs) > len(inputs):   # called by the vg op: its first input is wrt
            needs = needs[1:]
        wrt = [bool(needs[i]) for i in bridge.op_diff_index]
        out = [None] * len(inputs)
        if any(wrt):
            grads = bw_op(grad_output, wrt, *inputs)
            grads = _guard_twice(bridge, list(grads), [grad_output, *saved])
            it = iter(grads)
            for i, w in zip(bridge.op_diff_index, wrt):
                if w:
                    out[i] = next(it)
        return tuple(out)

    value_op.register_autograd(value_backward, setup_context=value_setup)

    # value-and-gradient op: the backward scales the saved gradients (for a reduced
    # loss; with reduction="none" it is the value op's backward, kept correct for opcheck
    # and direct callers though the public functions never take it)
    red_index = bridge.op_params.index("reduction")

    def vg_setup(ctx, inputs, output):
        ctx.wrt = list(inputs[0])
        ctx.none = inputs[1 + red_index] == "none"
        if ctx.none:
            value_setup(ctx, inputs[1:], output[0])
        else:
            ctx.save_for_backward(*output[1:])
        # the inputs, for _guard_twice (setup_context runs under no_grad: keep them all)
        ctx.deps = [] if torch.compiler.is_compiling() else \
            [a for a in inputs[1:] if isinstance(a, Tensor) and a.requires_grad]

    def vg_backward(ctx, out_grads):
        g = out_grads[0]
        if ctx.none:
            inputs = value_backward(ctx, g)
            return (None, *inputs)
        saved = list(ctx.saved_tensors)
        if torch.compiler.is_compiling() or _is_fake(g) or type(g) is not Tensor:
            grads = [g * s for s in saved]        # traced: a graph op
        else:
            # eager through the ops: the NumPy multiply (none for the usual 1) for the
            # reason _scaled gives; torch's multiply here made the LM-head step's loss
            # 5x slower than the fast path (1069 ms against 213 ms, bench/torch_step.py)
            grads = [_scaled(s, g) for s in saved]
        grads = _guard_twice(bridge, grads, [g, *ctx.deps])
        result = [None] * (1 + n_op + 1)
        it = iter(grads)
        for i, w in zip(bridge.op_diff_index, ctx.wrt):
            if w:
                result[1 + i] = next(it)
        return tuple(result)

    vg_op.register_autograd(vg_backward, setup_context=vg_setup)
    return value_op, vg_op, bw_op


def _scaled(grad, grad_output):
    """grad * grad_output (a 0-d tensor) in NumPy, and no copy for the usual 1: a torch
    multiply here would wake torch's OpenMP team, whose spinning threads then hold the
    cores fastloss's next parallel kernel needs (measured: 24 ms instead of 0.2 ms per
    call at 64 x 1000 on 2 cores)."""
    g = float(grad_output)
    if g == 1.0:
        return grad
    out = torch.empty_like(grad)
    np.multiply(grad.numpy(), np.asarray(g, dtype=_NP_OF[grad.dtype]), out=out.numpy()) \
        if grad.dtype != torch.bfloat16 else out.copy_(grad * g)
    return out


class _Eager(torch.autograd.Function):
    """The eager fast path: the same host functions as the operators, no dispatcher.

    ``apply(bridge, backend, call, *diff)``: ``call`` is the full parameter tuple and
    ``diff`` its differentiable arguments again, the only tensors autograd has to track
    (apply walks every argument it is given)."""

    @staticmethod
    def forward(ctx, bridge, backend, call, *diff):
        wrt = list(ctx.needs_input_grad[3:])
        ctx.bridge, ctx.backend, ctx.wrt, ctx.args = bridge, backend, wrt, call
        ctx.saved = None
        reduction = call[bridge.reduction_index]
        if reduction == "none" or not any(wrt):
            return bridge.forward(call, backend)
        value, ctx.saved = bridge.value_and_grads(call, wrt, backend)
        return value

    @staticmethod
    def backward(ctx, grad_output):
        bridge = ctx.bridge
        if ctx.saved is not None:
            # Hand the saved gradients over: with no other reference left, autograd keeps
            # them as .grad instead of copying them (a copy is a parallel torch op, which
            # on a busy machine costs far more than the loss). A second backward
            # (retain_graph=True) recomputes them below.
            saved, ctx.saved = ctx.saved, None
            grads = [_scaled(s, grad_output) for s in saved]
            del saved
        else:
            _, grads = bridge.value_and_grads(ctx.args, ctx.wrt, ctx.backend,
                                              grad_output.detach())
        deps = [grad_output, *[a for a in ctx.args if isinstance(a, Tensor)]]
        grads = _guard_twice(bridge, grads, deps)
        it = iter(grads)
        out = [next(it) if w else None for w in ctx.wrt]
        del grads, it
        return (None, None, None, *out)


# --------------------------------------------------------------------------- public API

def _is_fake(t):
    return isinstance(t, torch._subclasses.fake_tensor.FakeTensor)


def _make_function(bridge, ops):
    value_op, vg_op, _ = ops
    spec = bridge.spec
    sig = bridge.signature
    tensor_params = bridge.tensor_params
    first = bridge.params[0]

    bind = _bridge.binder(sig, spec.name)

    def fn(*args, **kwargs):
        values = bind(args, kwargs)
        backend = values.pop("backend", None)
        tracing = torch.compiler.is_compiling()
        fake = tracing
        needs = False
        for name in tensor_params:
            v = values[name]
            if type(v) is Tensor:
                # the common case, tested first and cheaply (a fake tensor is a subclass)
                if not (v.is_cpu or tracing):
                    _not_on_cpu(spec.name, name, v)
                needs = needs or v.requires_grad
                continue
            if v is None:
                if bridge.kinds[name] != "Tensor?":
                    raise TypeError(f"{spec.name}: {name} must be a tensor, got None")
                continue
            if not isinstance(v, Tensor):
                if isinstance(v, numbers.Number) and bridge.kinds[name] == "Tensor|Number":
                    ref = values[first]
                    v = torch.full_like(ref, v) if isinstance(ref, Tensor) else torch.tensor(v)
                else:
                    v = torch.as_tensor(v)
                values[name] = v
            elif not tracing:
                if _is_fake(v):
                    fake = True
                elif not v.is_cpu:
                    _not_on_cpu(spec.name, name, v)
            needs = needs or v.requires_grad
        call = tuple([values[n] for n in bridge.params])
        needs = needs and torch.is_grad_enabled()
        if needs:
            _check_requires_grad(bridge, values)
        if not tracing and not fake and not _use_ops:
            if needs:
                return _Eager.apply(bridge, backend, call,
                                    *[call[i] for i in bridge.diff_index])
            return bridge.forward(call, backend)
        reduction = values["reduction"]
        op_args = bridge.pack(call)
        if needs and reduction != "none":
            wrt = [isinstance(values[n], Tensor) and values[n].requires_grad
                   for n in bridge.diff]
            return vg_op(wrt, *op_args, backend)[0]
        return value_op(*op_args, backend)

    fn.__name__ = fn.__qualname__ = spec.name
    fn.__signature__ = sig
    fn.__doc__ = (f"fastloss.{spec.name} on tensors, differentiable in "
                  f"{', '.join(bridge.diff)}; see fastloss.{spec.name} for the arguments "
                  f"and fastloss.torch for the rules.\n\n"
                  + (inspect.getdoc(spec.function) or ""))
    return fn


def _not_on_cpu(loss, name, v):
    raise ValueError(
        f"{loss}: {name} is on {v.device}, but fastloss runs on the CPU only; move the "
        f"tensors with .cpu(), or use torch.nn.functional.{loss} on that device")


def _check_requires_grad(bridge, values):
    for name in bridge.tensor_params:
        v = values[name]
        if isinstance(v, Tensor) and v.requires_grad and name == "sample_weight":
            raise ValueError(
                f"{bridge.name}: sample_weight requires grad, but fastloss does not "
                "differentiate its per-sample weights; detach it (sample_weight.detach())")
        if isinstance(v, Tensor) and v.requires_grad and name not in bridge.diff:
            raise ValueError(
                f"{bridge.name}: {name} requires grad, but fastloss differentiates only "
                f"{', '.join(bridge.diff)}; detach it ({name}.detach()) or use "
                f"torch.nn.functional.{bridge.name} for that gradient")
    src = bridge.derived
    for name, base in src.items():
        v, b = values[name], values[base]
        if (isinstance(v, Tensor) and v.requires_grad
                and not _bridge.negated_derivable(b.shape, v.shape)):
            raise ValueError(
                f"{bridge.name}: the gradient with respect to {name} is provided when "
                f"{name} broadcasts to {base}'s shape {tuple(b.shape)}, got "
                f"{tuple(v.shape)}; detach it or expand {base}")


def _make_module(bridge, fn):
    """A torch.nn.Module with the constructor of fastloss.<ClassName> (torch's, without
    the legacy arguments); tensors among the hyper-parameters are buffers, as in torch."""
    base = getattr(_losses, bridge.spec.class_name, None)
    if base is None:
        return None
    init_sig = inspect.signature(base.__init__)
    hyper = [p for p in list(init_sig.parameters)[1:]]
    inputs = [n for n in bridge.params if n not in hyper]

    def __init__(self, *args, **kwargs):
        torch.nn.Module.__init__(self)
        bound = init_sig.bind(self, *args, **kwargs)
        bound.apply_defaults()
        for name, value in list(bound.arguments.items())[1:]:
            if isinstance(value, Tensor) or (value is None and name in bridge.tensor_params):
                self.register_buffer(name, value)
            else:
                setattr(self, name, value)

    def forward(self, *args, **kwargs):
        return fn(*args, **kwargs, **{n: getattr(self, n) for n in hyper})

    def extra_repr(self):
        return ", ".join(f"{n}={getattr(self, n)!r}" for n in hyper
                         if not isinstance(getattr(self, n), Tensor))

    __init__.__signature__ = init_sig
    forward.__signature__ = inspect.Signature(
        [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        + [bridge.signature.parameters[n] for n in inputs])
    cls = type(bridge.spec.class_name, (torch.nn.Module,),
               {"__init__": __init__, "forward": forward, "extra_repr": extra_repr,
                "__module__": __name__,
                "__doc__": f"torch.nn.Module computing fastloss.torch.{bridge.name}; "
                           f"constructor as fastloss.{bridge.spec.class_name}.\n\n"
                           + (inspect.getdoc(base) or "")})
    return cls


BRIDGED = {}       # name -> the public function
UNSUPPORTED = {}   # name -> why the registry-driven bridge could not express it
OPS = {}           # name -> (value op, value-and-grad op, backward op)
_BRIDGES = {}


def _bridge_of(name):
    return _BRIDGES[name]


def _bridge_loss(spec):
    """(bridge, ops, function, module class) for one registry row, or the reason it cannot
    be bridged."""
    schema = _schema_of(spec)
    if isinstance(schema, str):
        return schema
    if _bridge.has_sample_weight(spec):    # fastloss's extension: a tensor, never differentiated
        schema = [*schema, ("sample_weight", "Tensor?")]
    bridge = _Bridge(spec, schema)
    ops = _register(bridge)
    fn = _make_function(bridge, ops)
    return bridge, ops, fn, _make_module(bridge, fn)


def _build():
    for name, spec in LOSSES.items():
        if name in EXCLUDED:
            continue
        made = _bridge_loss(spec)
        if isinstance(made, str):
            UNSUPPORTED[name] = made
            continue
        _BRIDGES[name], OPS[name], fn, cls = made
        BRIDGED[name] = globals()[name] = fn
        __all__.append(name)
        if cls is not None:
            globals()[cls.__name__] = cls
            __all__.append(cls.__name__)


_build()
