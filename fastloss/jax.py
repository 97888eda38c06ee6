"""fastloss inside JAX: every loss as a JAX function usable in ``jax.jit``,
``jax.grad`` and ``jax.vmap``, on the CPU.

``fastloss.jax.cross_entropy(logits, labels, ...)`` has the name, arguments and defaults
of ``fastloss.cross_entropy`` and returns a ``jax.Array``. Inside a trace the kernel runs
as a host callback (``jax.pure_callback``): fastloss's fused kernels are not XLA
operations. Its derivative is a ``jax.custom_vjp`` built from fastloss's fused
value-and-gradient:

- reduced losses ("mean", "sum", "batchmean"): the forward pass of ``jax.grad`` /
  ``jax.value_and_grad`` computes the value and the gradients in one fused call, and the
  backward pass only multiplies them by the scalar cotangent;
- ``reduction="none"``: the forward computes the value only and the backward runs the
  fused kernel once with the real (array) cotangent.

``jax.vmap`` maps the callback over the batch one item at a time
(``vmap_method="sequential"``): the kernels give a leading axis a meaning of its own
(the batch of a loss), so adding one would change the loss.

Differentiable arguments are those of ``fastloss.LOSSES[name].differentiable``, plus
``target`` for ``l1_loss``, ``mse_loss``, ``smooth_l1_loss`` and ``huber_loss`` (the
negated input gradient, when target broadcasts to input's shape). Every other array argument is
treated as a constant, like ``jax.lax.stop_gradient``: its cotangent is zero. float16
and bfloat16 are computed in float32 and returned in that dtype when the floating
arguments promote to it. ``sample_weight=`` (fastloss's per-sample weights, where ``fastloss.<loss>`` takes it) is
an array argument like the others, never differentiated (zero cotangent), and does not
change the loss's dtype. Arguments that are not arrays (``reduction``, ``margin``, a
Python ``var``, ...) are static: each new value traces again. Outside a trace (plain
eager calls on arrays) the loss is computed directly, with fastloss's own exceptions.

Inside ``jax.jit`` the callback runs on XLA's CPU threads, which flush subnormal floats
to zero (so does NumPy there): a subnormal input is read as 0, e.g. a probability of
1e-44 in ``binary_cross_entropy`` gives the clamped loss 100 rather than 99.0.
"""
try:
    import jax
    import jax.numpy as jnp
except ImportError as exc:   # pragma: no cover - exercised without jax installed
    raise ImportError("fastloss.jax needs JAX: pip install jax") from exc

import inspect

import numpy as np

from . import _bridge
from ._registry import LOSSES

__all__ = ["BRIDGED", "EXCLUDED"]

# Losses deliberately not bridged, with the reason (the tripwire test requires every loss
# of the registry to be bridged or listed here).
EXCLUDED = {
    "triplet_margin_with_distance_loss":
        "distance_function is a Python callable on arrays: write the loss in jax.numpy "
        "(or use fastloss.jax.triplet_margin_loss for the default distance)",
}

_HALF = (np.dtype(np.float16), np.dtype(jnp.bfloat16))


def _is_array(v):
    return isinstance(v, (jax.Array, np.ndarray, np.generic)) and not isinstance(v, str)


def _host_dtype(dtype):
    """The dtype fastloss reads an array in: bfloat16 (an ml_dtypes type) as float32."""
    return np.dtype(np.float32) if np.dtype(dtype) == _HALF[1] else np.dtype(dtype)


def _host(a):
    a = np.asarray(a)
    return a.astype(np.float32) if a.dtype == _HALF[1] else a


def _half_result(arrays):
    floats = [a.dtype for a in arrays if jnp.issubdtype(a.dtype, jnp.floating)]
    if not floats:
        return None
    dtype = jnp.result_type(*floats)
    return np.dtype(dtype) if np.dtype(dtype) in _HALF else None


class _Loss:
    """One loss: the static part of a call fixed, a custom_vjp function of its arrays."""

    def __init__(self, spec):
        self.spec = spec
        self.name = spec.name
        self.params = list(spec.parameters) + (
            ["sample_weight"] if _bridge.has_sample_weight(spec) else [])
        extra = _bridge.NEGATED.get(spec.name)
        self.diff = list(spec.differentiable) + ([extra[0]] if extra else [])
        self.derived = {extra[0]: extra[1]} if extra else {}
        self.bind = _bridge.binder(inspect.signature(spec.function), spec.name)
        self._cache = {}

    def __call__(self, *args, **kwargs):
        values = self.bind(args, kwargs)
        backend = values.pop("backend", None)
        names = tuple(n for n in self.params if _is_array(values[n]))
        if not any(isinstance(values[n], jax.core.Tracer) for n in names):
            # outside a trace: compute directly (exceptions are fastloss's own)
            return self._eager(values, names, backend)
        arrays = [jnp.asarray(values[n]) for n in names]
        static = tuple((n, _freeze(values[n])) for n in self.params if n not in names)
        key = (names, static, backend,
               tuple((a.shape, a.dtype) for a in arrays))
        fn = self._cache.get(key)
        if fn is None:
            if len(self._cache) > 256:
                self._cache.clear()
            fn = self._cache[key] = self._build(names, dict(static), backend, arrays)
        return fn(*arrays)

    def _eager(self, values, names, backend):
        arrays = [jnp.asarray(values[n]) for n in names]
        host = dict(values)
        host.update({n: _host(a) for n, a in zip(names, arrays)})
        value = np.asarray(self.spec.function(**host, backend=backend))
        half = _half_result([a for n, a in zip(names, arrays) if n != "sample_weight"])
        return jnp.asarray(value, dtype=half if half is not None else None)

    def _build(self, names, static, backend, arrays):
        spec, derived = self.spec, self.derived
        shapes = [(a.shape, np.dtype(a.dtype)) for a in arrays]
        values = dict(static)
        values.update({n: _bridge.array_spec(s, _host_dtype(d)) for n, (s, d) in
                       zip(names, shapes)})
        reduction = static.get("reduction")
        try:
            item_shape, dtype = _bridge.layout(spec, values)
        except Exception:
            if reduction == "none":
                raise NotImplementedError(
                    f"fastloss.jax.{self.name}: the shape of reduction='none' cannot be "
                    "inferred without the data for these arguments; call "
                    f"fastloss.{self.name} on NumPy arrays") from None
            floats = [_host_dtype(d) for n, (_, d) in zip(names, shapes)
                      if n != "sample_weight" and jnp.issubdtype(d, jnp.floating)]
            item_shape, dtype = (), np.result_type(np.float32, *floats)
        half = _half_result([a for n, a in zip(names, arrays) if n != "sample_weight"])
        out_dtype = jax.dtypes.canonicalize_dtype(half if half is not None else dtype)
        value_struct = jax.ShapeDtypeStruct(item_shape if reduction == "none" else (),
                                            out_dtype)
        shape_of = {n: sh for n, (sh, _) in zip(names, shapes)}
        wrt = [n for n in self.diff if n in names
               and jnp.issubdtype(shapes[names.index(n)][1], jnp.floating)
               and (n not in derived or derived[n] in names and _bridge.negated_derivable(
                   shape_of[derived[n]], shape_of[n]))]
        base = []
        for n in wrt:
            src = derived.get(n, n)
            if src not in base:
                base.append(src)
        positions = [spec.differentiable.index(n) for n in base]
        grad_structs = [jax.ShapeDtypeStruct(*shapes[names.index(n)]) for n in wrt]

        def call_args(arrs):
            kw = dict(static)
            kw.update(zip(names, (_host(a) for a in arrs)))
            return kw

        def host_value(*arrs):
            value = spec.function(**call_args(arrs), backend=backend)
            return np.asarray(value, dtype=out_dtype)

        def host_vg(go, *arrs):
            go = None if go is None else np.asarray(go)
            value, grads = _bridge.value_and_grads(spec, call_args(arrs), positions, go,
                                                   backend)
            by_name = dict(zip(base, grads))
            out = [np.asarray(by_name[n] if n not in derived else
                              _bridge.negated_grad(by_name[derived[n]], s.shape),
                              dtype=s.dtype) for n, s in zip(wrt, grad_structs)]
            return np.asarray(value, dtype=out_dtype), out

        def value(*arrs):
            return jax.pure_callback(host_value, value_struct, *arrs,
                                     vmap_method="sequential")

        reduced = reduction != "none"

        @jax.custom_vjp
        def f(*arrs):
            return value(*arrs)

        def f_fwd(*arrs):
            if reduced and wrt:
                v, grads = jax.pure_callback(lambda *a: host_vg(None, *a),
                                             (value_struct, grad_structs), *arrs,
                                             vmap_method="sequential")
                return v, (grads, arrs)
            return value(*arrs), (None, arrs)

        def f_bwd(res, g):
            grads, arrs = res
            if not wrt:
                grads = []
            elif grads is not None:
                grads = [(g * gr).astype(gr.dtype) for gr in grads]
            else:
                grads = jax.pure_callback(lambda go, *a: host_vg(go, *a)[1], grad_structs,
                                          g, *arrs, vmap_method="sequential")
            by_name = dict(zip(wrt, grads))
            out = []
            for n, a in zip(names, arrs):
                if n in by_name:
                    out.append(by_name[n])
                elif jnp.issubdtype(a.dtype, jnp.inexact):
                    out.append(jnp.zeros_like(a))
                else:
                    out.append(np.zeros(a.shape, dtype=jax.dtypes.float0))
            return tuple(out)

        f.defvjp(f_fwd, f_bwd)
        return f


def _freeze(v):
    """A hashable form of a static argument (lists, e.g. of lengths, become tuples)."""
    if isinstance(v, list):
        return tuple(_freeze(x) for x in v)
    return v


BRIDGED = {}


def _build():
    for name, spec in LOSSES.items():
        if name in EXCLUDED:
            continue
        loss = _Loss(spec)

        def fn(*args, _loss=loss, **kwargs):
            return _loss(*args, **kwargs)
        fn.__name__ = fn.__qualname__ = name
        fn.__signature__ = inspect.signature(spec.function)
        fn.__doc__ = (f"fastloss.{name} as a JAX function (jit, grad, vmap), differentiable "
                      f"in {', '.join(loss.diff)}; see fastloss.jax for the rules.\n\n"
                      + (inspect.getdoc(spec.function) or ""))
        BRIDGED[name] = globals()[name] = fn
        __all__.append(name)


_build()
