"""What every Numba kernel family shares: fastmath flags, reduction blocking, the
gradient coefficient, and serial/parallel drivers.

Determinism: every kernel splits its items into blocks of a fixed size (a constant, not
a function of the thread count), sums each block serially in float64 into ``partial[b]``
and then adds the partials serially in block order. The result is therefore bitwise the
same for 1, 2 or any number of threads, and for the serial driver used on small inputs.

Every kernel is compiled with ``error_model="numpy"``: a float division by zero gives
inf or NaN as in NumPy and torch, instead of raising (a kernel must never raise).
"""
import os
import sys
import threading
import weakref

import numba
import numpy as np
from numba import njit

from .. import _threads

# 'reassoc' lets LLVM vectorize a sum (it reorders the additions inside one block, the
# same way on every run); 'contract' allows FMA. Never 'nnan'/'ninf': NaN and inf must
# propagate as in torch.
FM = {"contract", "reassoc"}

# Below this many elements a kernel runs its serial driver: waking the thread pool costs
# more than the work.
PARALLEL_MIN = 32768


@njit(cache=True, error_model="numpy")
def coef_at(gscale, gvec, i):
    """c_i = gscale * gvec[i], or gscale when gvec is empty (see fastloss._engine)."""
    if gvec.shape[0] == 0:
        return gscale
    return gscale * np.float64(gvec[i])


@njit(cache=True, error_model="numpy")
def sum_partials(partial):
    total = 0.0
    for b in range(partial.shape[0]):
        total += partial[b]
    return total


# ------------------------------------------------------------------ threads and fork
class _State:
    layer = None         # Numba's threading layer, once configure_threading chose it
    parallel = True      # False in a forked child whose parallel layer is not usable
    lock = None          # a lock around parallel calls when the layer is not thread-safe
    generation = 0       # bumped by fastloss.set_num_threads
    fork_hooks = False   # os.register_at_fork done (once per process)


STATE = _State()
_local = threading.local()


class _PoolUsers:
    """Which thread may run parallel kernels on Numba's TBB pool, so that every forked
    child works.

    Before a fork from the thread that started the pool, Numba's TBB layer shuts the
    pool down, and its fork handler in the child starts a new one. The shutdown fails
    ("Unable to join threads to shut down before fork()") once another live thread has
    run a parallel region (TBB keeps per-thread state for it until it exits): the
    workers are then still running at the fork, may hold TBB's global lock, and the
    child deadlocks inside os.fork() on that lock, before any Python code runs (1 to 7
    in 100 forks while another thread looped over kernels). No check in the child can
    help, so only one thread at a time uses the pool: the thread that started it (the
    first to run a parallel kernel; normally the main thread). Other threads run the
    serial drivers (the same bits) while it is alive; once it has ended, any thread may
    use the pool, since TBB then never shuts it down at a fork. A child runs the serial
    drivers, which never touch the pool, unless the fork came from the owner with no
    other thread holding TBB state (the usual fork from the main thread), where TBB
    restarted the pool cleanly and the child keeps parallel kernels.
    """

    def __init__(self):
        self.lock = threading.Lock()
        self.owner = None        # ident of the thread that started Numba's pool
        self.owner_ref = None    # weakref to a token in the owner's threading.local:
                                 # dead once that thread has ended
        self.others = {}         # threads that used the pool after the owner ended
        self.child_serial = False

    def may_run_parallel(self):
        """Whether the calling thread may run a parallel driver (TBB layer only)."""
        token = getattr(_local, "token", None)
        if token is None:
            token = _local.token = _Token()
        if self.owner_ref is not None and self.owner_ref() is token:
            return True
        me = threading.get_ident()
        with self.lock:
            if self.owner is None:
                from numba.np.ufunc import parallel
                main = threading.main_thread().ident
                if parallel._is_initialized and main != me:
                    # other code in this process started the pool: assume the main
                    # thread did, where programs normally start it
                    self.owner = main
                else:
                    self.owner, self.owner_ref = me, weakref.ref(token)
                    return True
            if self._owner_alive():
                return False
            self.others[me] = weakref.ref(token)
            return True

    def _owner_alive(self):
        if self.owner_ref is not None:
            return self.owner_ref() is not None
        return threading.main_thread().is_alive()

    def before_fork(self):
        """Decide, in the forking thread, whether the child may use the pool."""
        me = threading.get_ident()
        with self.lock:
            others = any(i != me and ref() is not None for i, ref in self.others.items())
            self.child_serial = others or self.owner not in (None, me)

    def after_fork_in_child(self):
        serial, owner, owner_ref = self.child_serial, self.owner, self.owner_ref
        self.__init__()      # the other threads, and a lock they might hold, are gone
        if serial:
            STATE.parallel = False
        else:                # this thread, from which TBB restarted the pool (or none yet)
            self.owner, self.owner_ref = owner, owner_ref


class _Token:
    pass


USERS = _PoolUsers()


def _apply_threads():
    """numba.set_num_threads is per calling thread: apply fastloss's count in this thread
    when it changed since this thread last ran a kernel."""
    if getattr(_local, "generation", -1) != STATE.generation:
        numba.set_num_threads(max(1, min(_threads.get_num_threads(),
                                         numba.config.NUMBA_NUM_THREADS)))
        _local.generation = STATE.generation


def _on_threads_changed(n):
    STATE.generation += 1


def call(par, ser, size, *args):
    """Run the parallel driver `par` or, for small inputs (or where threads are off), the
    serial driver `ser`; both compute the same blocks in the same order, so the result is
    the same bit for bit."""
    if size < PARALLEL_MIN or not STATE.parallel:
        return ser(*args)
    if STATE.layer == "tbb" and not USERS.may_run_parallel():
        return ser(*args)
    _apply_threads()
    if STATE.lock is None:
        return par(*args)
    with STATE.lock:
        return par(*args)


def _preload_tbb():
    """Load pip's libtbb from <prefix>/lib if it is there. The `tbb` wheel installs
    libtbb.so.12 into the environment's lib directory, which the dynamic loader does not
    search in a virtualenv (Python's own RPATH points at the base interpreter's lib), so
    Numba's TBB layer would silently be missing there; once loaded (RTLD_GLOBAL), Numba's
    own lookup by name finds it."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    for prefix in dict.fromkeys((sys.prefix, sys.base_prefix)):
        path = os.path.join(prefix, "lib", "libtbb.so.12")
        if os.path.exists(path):
            try:
                ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
                return
            except OSError:
                continue


def _available(layer):
    try:
        if layer == "tbb":
            _preload_tbb()
            # Numba's own check: loads libtbb by name (so that tbbpool then resolves it)
            # and rejects a TBB older than Numba supports.
            from numba.np.ufunc.parallel import _check_tbb_version_compatible
            _check_tbb_version_compatible()
            from numba.np.ufunc import tbbpool  # noqa: F401
        elif layer == "omp":
            from numba.np.ufunc import omppool  # noqa: F401
        return True
    except ImportError:
        return False


def configure_threading():
    """Pick Numba's threading layer before the first parallel kernel runs.

    TBB (the `tbb` package) is both fork-safe and thread-safe: a forked child
    (multiprocessing, DataLoader workers) can keep running parallel kernels, and several
    Python threads can call kernels at once. Without it, GNU OpenMP is thread-safe but a
    forked child that launches it is killed, so a child forked after the parent ran a
    kernel uses the serial drivers; the workqueue layer is neither, so parallel calls
    are then serialized with a lock. A layer the user chose (NUMBA_THREADING_LAYER) is
    respected.
    """
    from numba.np.ufunc import parallel
    chosen = numba.config.THREADING_LAYER
    if parallel._is_initialized:
        chosen = numba.threading_layer()      # already started by other code: it stays
    elif chosen in ("default", "safe", "threadsafe", "forksafe"):
        if _available("tbb"):
            chosen = "tbb"
        elif _available("omp"):
            chosen = "omp"
        else:
            chosen = "workqueue"
        numba.config.THREADING_LAYER = chosen
    STATE.layer = chosen
    STATE.lock = threading.Lock() if chosen == "workqueue" else None
    if hasattr(os, "register_at_fork") and not _State.fork_hooks:
        _State.fork_hooks = True
        os.register_at_fork(before=USERS.before_fork, after_in_child=_after_fork_in_child)
    if _on_threads_changed not in _threads._on_change:
        _threads._on_change.append(_on_threads_changed)
    return chosen


def _after_fork_in_child():
    USERS.after_fork_in_child()
    if STATE.layer != "tbb":
        # GNU OpenMP kills a child that starts its threads; workqueue is not fork-safe
        STATE.parallel = False
        STATE.lock = None


def readonly(a):
    """`a`, or a read-only view of it. Numba types a read-only array apart from a writable
    one and compiles every kernel again for it (~5-25 s cold): a read-only memmap
    (np.load(..., mmap_mode="r")) must not pay that. Kernels take their inputs read-only
    always, so one compiled version serves writable arrays and memmaps alike."""
    if a.flags.writeable:
        a = a.view()
        a.flags.writeable = False
    return a
