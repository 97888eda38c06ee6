"""The comparison table: every implementation a loss is timed against.

One row per implementation (``IMPLS``), the same for every loss; ``applies(loss, mode)``
says whether it has a version of that loss. fastloss's backends come from
``fastloss._dispatch`` (whatever is present: numpy always, numba and c when they load),
each timed with ``backend=`` forced. The peers: torch CPU (the loss's torch twin that the
registry names, ``LossSpec.oracle``; none for a loss torch lacks), JAX (``jax.jit`` of
the naive forward, ``jax.value_and_grad`` for the gradient), scikit-learn's ``log_loss``
where it applies, and the naive NumPy version. ``floor`` is not a loss at all: the time
to read the case's inputs once (and, for value-and-grad, to write one gradient), the
memory-bandwidth bound no loss can beat.

The parent process only asks which implementations exist and apply (cheap, no import
of torch or JAX); ``setup``/``build`` run inside the worker process that times them.
"""
import importlib.util
import os

import numpy as np

from . import naive

MODES = ("forward", "grad")
MODE_LABELS = {"forward": "forward", "grad": "value+grad"}


class NotApplicable(Exception):
    """This implementation has no version of the loss (or mode, or options)."""


class Bound:
    """One implementation bound to one call's data: ``call()`` is what is timed,
    ``fetch(result)`` turns its result into (float value, gradient array or None)."""

    def __init__(self, call, fetch):
        self.call = call
        self.fetch = fetch


class Impl:
    key = ""          # what --backend / the JSON call it
    label = ""        # what the table calls it
    group = "peer"    # "fastloss", "peer" or "floor"
    module = None     # the package that must be importable
    whole_check_limit = 0   # check the whole case up to this many elements per input,
                            # whatever --check-limit says (for per-shape compilers)
    compiles_on_first_call = False   # its first call always compiles (jax.jit)

    def installed(self):
        """None when usable, else why not (shown as "skipped")."""
        if self.module and importlib.util.find_spec(self.module) is None:
            return f"{self.module} not installed"
        return None

    def applies(self, loss, mode):
        return True

    def setup(self, threads, dtype):
        """Import and configure in the worker; return the library's version or None."""

    def build(self, loss, mode, args, kwargs):
        raise NotImplementedError


def _fetch_numpy(result, grad=None):
    return float(np.asarray(result, dtype=np.float64)), grad


class FastlossImpl(Impl):
    group = "fastloss"

    def __init__(self, backend):
        self.key = backend
        self.label = f"fastloss[{backend}]"

    def installed(self):
        from .. import _dispatch
        if self.key == _dispatch.AUTO:
            return None
        b = _dispatch._BACKENDS.get(self.key)
        if b is None:
            return "unknown backend"
        return None if b.available else f"backend missing: {b.error}"

    def setup(self, threads, dtype):
        from .. import _dispatch, _threads
        _threads.set_num_threads(threads)
        if self.key != _dispatch.AUTO:
            _dispatch._BACKENDS[self.key].available    # import the backend module now
        import fastloss
        return fastloss.__version__

    def build(self, loss, mode, args, kwargs):
        import fastloss
        from .._registry import LOSSES
        fn = LOSSES[loss].function
        backend = self.key
        if mode == "forward":
            return Bound(lambda: fn(*args, backend=backend, **kwargs), _fetch_numpy)
        wrt = _wrt(loss)
        vg = fastloss.value_and_grad(fn, argnums=wrt)
        # reused across calls, as a training loop would
        out = tuple(np.empty_like(args[i]) for i in wrt)

        def fetch(result):
            value, grads = result
            return _fetch_numpy(value, np.array(grads[0]))
        return Bound(lambda: vg(*args, out=out, backend=backend, **kwargs), fetch)


def _oracle(loss):
    """The loss's torch twin (``fastloss._registry.Oracle``), or None; a loss the registry
    does not have has none either (``data.generator_for`` reports it)."""
    from .._registry import LOSSES
    spec = LOSSES.get(loss)
    return None if spec is None else spec.oracle


class TorchImpl(Impl):
    key = label = module = "torch"

    def setup(self, threads, dtype):
        import torch
        torch.set_num_threads(threads)
        return torch.__version__

    def applies(self, loss, mode):
        return _oracle(loss) is not None

    def extra_kwargs(self, loss):
        """Keywords this peer adds to torch's call (the chunked variant's options)."""
        return {}

    def build(self, loss, mode, args, kwargs):
        oracle = _oracle(loss)
        if oracle is None:
            raise NotApplicable(f"torch has no {loss} (its registry oracle is None)")
        import torch
        fn = oracle.resolve()
        targs = [torch.from_numpy(a) if isinstance(a, np.ndarray) else a for a in args]
        tkw = {oracle.argument(k): torch.from_numpy(v) if isinstance(v, np.ndarray) else v
               for k, v in kwargs.items()}
        if mode == "forward":
            tkw.update(self.extra_kwargs(loss))
            # no tensor requires grad, so no graph is recorded: a plain inference call
            return Bound(lambda: fn(*targs, **tkw), lambda r: _fetch_numpy(r.numpy()))
        tkw.update(self.extra_kwargs(loss))
        wrt = _wrt(loss)
        targs = [a.detach().requires_grad_(True) if i in wrt else a
                 for i, a in enumerate(targs)]
        x = targs[0]

        def call():
            for i in wrt:
                targs[i].grad = None      # what optimizer.zero_grad() does by default
            value = fn(*targs, **tkw)
            value.backward()
            return value, x.grad

        return Bound(call, lambda r: _fetch_numpy(r[0].detach().numpy(), r[1].numpy().copy()))


class TorchChunkedImpl(TorchImpl):
    """torch's chunked linear cross-entropy (``options=LinearCrossEntropyOptions()``)."""
    key = label = "torch_chunked"

    def applies(self, loss, mode):
        return loss == "linear_cross_entropy"

    def extra_kwargs(self, loss):
        import torch
        return {"options": torch.nn.LinearCrossEntropyOptions()}


class GemmImpl(Impl):
    """The GEMM floor of linear_cross_entropy: NumPy's own matrix products for the same
    work, x @ W.T into a reused buffer (forward), and also G @ W and G.T @ x (value+grad,
    G the logits' gradient, here the logits themselves)."""
    key = "gemm"
    label = "numpy GEMMs"
    group = "floor"

    def applies(self, loss, mode):
        return loss == "linear_cross_entropy"

    def setup(self, threads, dtype):
        return np.__version__

    def build(self, loss, mode, args, kwargs):
        if not self.applies(loss, mode):
            raise NotApplicable("a GEMM floor only for linear_cross_entropy")
        x, w = args[0], args[1]
        z = np.empty((x.shape[0], w.shape[0]), x.dtype)
        gx, gw = np.empty_like(x), np.empty_like(w)

        def forward():
            return np.matmul(x, w.T, out=z)

        def grad():
            np.matmul(x, w.T, out=z)
            np.matmul(z, w, out=gx)
            return np.matmul(z.T, x, out=gw)
        return Bound(forward if mode == "forward" else grad, lambda r: (None, None))


class JaxImpl(Impl):
    key = label = module = "jax"
    # jax.jit compiles once per shape: a check on the leading rows of a case would compile
    # each loss again (about half of a --quick JAX worker), so cases up to this many
    # elements per input (the default --check-limit) are checked whole instead.
    whole_check_limit = 1 << 22
    compiles_on_first_call = True    # jax.jit traces and compiles per shape

    def applies(self, loss, mode):
        return loss in naive.FORWARD

    def setup(self, threads, dtype):
        import jax
        if np.dtype(dtype) == np.float64:
            jax.config.update("jax_enable_x64", True)
        return jax.__version__

    def build(self, loss, mode, args, kwargs):
        import jax
        import jax.numpy as jnp
        forward = naive.FORWARD.get(loss)
        if forward is None:
            raise NotApplicable(f"no JAX version of {loss}")
        jargs = [jnp.asarray(a) if isinstance(a, np.ndarray) else a for a in args]

        def f(*a):
            return forward(jnp, *a, **kwargs)

        if mode == "forward":
            jf = jax.jit(f)
            return Bound(lambda: jf(*jargs).block_until_ready(),
                         lambda r: _fetch_numpy(np.asarray(r)))
        jvg = jax.jit(jax.value_and_grad(f))

        def call():
            value, grad = jvg(*jargs)
            grad.block_until_ready()
            return value, grad
        return Bound(call, lambda r: _fetch_numpy(np.asarray(r[0]), np.asarray(r[1])))


class SklearnImpl(Impl):
    """``sklearn.metrics.log_loss`` on probabilities: softmax first for cross_entropy,
    the sigmoid first for BCE-with-logits. Forward only, mean reduction. log_loss clips
    probabilities to [eps, 1 - eps] of their dtype, so with many classes in float32 its
    value differs from torch's (and the check flags it)."""
    key = label = "sklearn"
    module = "sklearn"
    LOSSES = ("cross_entropy", "binary_cross_entropy", "binary_cross_entropy_with_logits")

    def applies(self, loss, mode):
        return mode == "forward" and loss in self.LOSSES

    def setup(self, threads, dtype):
        import sklearn
        return sklearn.__version__

    def build(self, loss, mode, args, kwargs):
        from scipy.special import expit, softmax
        from sklearn.metrics import log_loss
        if not self.applies(loss, mode) or kwargs.get("reduction") != "mean":
            raise NotApplicable("log_loss is a mean of the forward loss")
        x, t = args
        if loss == "cross_entropy":
            labels = np.arange(x.shape[1])
            call = lambda: log_loss(t, softmax(x, axis=1), labels=labels)  # noqa: E731
        elif loss == "binary_cross_entropy":
            call = lambda: log_loss(t.ravel(), x.ravel(), labels=[0, 1])  # noqa: E731
        else:
            call = lambda: log_loss(t.ravel(), expit(x).ravel(), labels=[0, 1])  # noqa: E731
        return Bound(call, _fetch_numpy)


class NaiveImpl(Impl):
    key = "naive"
    label = "numpy (naive)"

    def applies(self, loss, mode):
        return loss in (naive.FORWARD if mode == "forward" else naive.VALUE_AND_GRAD)

    def setup(self, threads, dtype):
        return np.__version__

    def build(self, loss, mode, args, kwargs):
        if not self.applies(loss, mode):
            raise NotApplicable(f"no naive {mode} for {loss}")
        if mode == "forward":
            f = naive.FORWARD[loss]
            return Bound(lambda: f(np, *args, **kwargs), _fetch_numpy)
        vg = naive.VALUE_AND_GRAD[loss]
        return Bound(lambda: vg(*args, **kwargs), lambda r: _fetch_numpy(r[0], r[1]))


class FloorImpl(Impl):
    """Read every input once (a parallel sum per array); for value-and-grad also write
    one gradient-sized array (a parallel copy of the input into a reused buffer). With
    Numba present this runs at the machine's parallel read bandwidth; without it, NumPy's
    single-threaded sum and copy stand in (and the JSON says which)."""
    key = "floor"
    label = "read floor"
    group = "floor"

    def setup(self, threads, dtype):
        from . import floor
        self.floor = floor
        return floor.setup(threads)

    def build(self, loss, mode, args, kwargs):
        arrays = [a for a in args if isinstance(a, np.ndarray)]
        arrays += [v for v in kwargs.values() if isinstance(v, np.ndarray)]
        if mode == "forward":
            return Bound(lambda: self.floor.read(arrays), lambda r: (None, None))
        out = np.empty_like(arrays[0])
        rest = arrays[1:]
        return Bound(lambda: self.floor.read_write(arrays[0], out, rest),
                     lambda r: (None, None))


def fastloss_backends():
    """Names of fastloss's backends, fastest first (whatever fastloss._dispatch knows)."""
    from .. import _dispatch
    return _dispatch.backend_names()


def _wrt(loss):
    """The arguments value+grad differentiates for `loss` (the generator's choice)."""
    from .data import generator
    gen = generator(loss)
    return gen.wrt if gen is not None else (0,)


PEERS = {"torch": TorchImpl(), "torch_chunked": TorchChunkedImpl(), "gemm": GemmImpl(),
         "jax": JaxImpl(), "sklearn": SklearnImpl(), "naive": NaiveImpl()}
EXTRA = {}     # more implementations (tests add fakes here), key -> Impl


def get(key):
    """The Impl for a key: a fastloss backend, a peer, "floor", or an extra."""
    if key in EXTRA:
        return EXTRA[key]
    if key in PEERS:
        return PEERS[key]
    if key == "floor":
        return FloorImpl()
    if key == "auto" or key in fastloss_backends():
        return FastlossImpl(key)
    raise KeyError(key)


def worker_env(threads):
    """Environment for a worker pinned to `threads` threads, whatever runtime it uses."""
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                "NUMBA_NUM_THREADS", "FASTLOSS_NUM_THREADS"):
        env[var] = str(threads)
    if threads == 1:
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false "
                            "intra_op_parallelism_threads=1").strip()
    return env


def register(impl):
    """Add an implementation to the comparison (used by ``--plugin`` modules and tests):
    an ``Impl`` subclass instance with a unique ``key``."""
    if impl.key in PEERS or impl.key == "floor":
        raise ValueError(f"implementation key {impl.key!r} is taken")
    EXTRA[impl.key] = impl
    return impl
