"""Regenerate tests/golden/*.npz from torch: `python tests/make_golden.py [loss ...]` (all
losses, or only the ones named).

The fixtures hold torch's value and gradients for every case x dtype x reduction, and the
case's inputs themselves (once per case x dtype), so that the core checks run where torch
is not installed. test_golden.py runs fastloss on the stored inputs, so its comparison with
torch's stored results is exact in its inputs on any machine; it only checks that freshly
built inputs still match the stored ones within a tolerance (NumPy's exp/log and friends
differ in the last bit between CPUs, e.g. AVX-512 vs AVX2 dispatch, so a bitwise digest
of float inputs would be machine-dependent)."""
import os
import sys
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(1, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from cases import CASES  # noqa: E402
from helpers import run_torch  # noqa: E402

HERE = os.path.join(os.path.dirname(__file__), "golden")

# How a freshly built input may differ from the stored one and still count as the same
# case (last-bit differences of NumPy's SIMD math across CPUs, not a changed case).
INPUT_RTOL = {np.dtype(np.float32): 1e-6, np.dtype(np.float64): 1e-12}


def key(case, dtype, reduction):
    return f"{case.id}|{np.dtype(dtype).name}|{reduction}"


def input_key(case, dtype):
    return f"{case.id}|{np.dtype(dtype).name}|input"


# Inputs are stored as "<input_key>|<slot>|<kind>" with slot "arg|<i>" or "kw|<name>" and
# kind "array" (an ndarray, stored as is), "py" (a Python bool/int/float, stored as a
# 0-d array and given back as the same Python type) or "none" (None).
_PY = (bool, int, float)


def pack_inputs(prefix, args, kwargs):
    out = {}
    for slot, a in [*((f"arg|{i}", a) for i, a in enumerate(args)),
                    *((f"kw|{k}", v) for k, v in sorted(kwargs.items()))]:
        if isinstance(a, np.ndarray):
            out[f"{prefix}|{slot}|array"] = a
        elif type(a) in _PY:
            out[f"{prefix}|{slot}|py"] = np.array(a)
        elif a is None:
            out[f"{prefix}|{slot}|none"] = np.array(0)
        else:
            raise TypeError(f"{prefix} {slot}: cannot store a {type(a).__name__} input")
    return out


def unpack_inputs(data, prefix):
    """(args, kwargs) as stored under prefix, or None if the fixture has none."""
    args, kwargs = {}, {}
    for k, v in data.items():
        if not k.startswith(prefix + "|"):
            continue
        where, name, kind = k[len(prefix) + 1:].split("|")
        value = v if kind == "array" else None if kind == "none" else v.item()
        if where == "arg":
            args[int(name)] = value
        else:
            kwargs[name] = value
    if not args and not kwargs:
        return None
    assert sorted(args) == list(range(len(args))), f"{prefix}: positional inputs missing"
    return [args[i] for i in range(len(args))], kwargs


def main(names=()):
    warnings.simplefilter("ignore")
    import torch
    os.makedirs(HERE, exist_ok=True)
    unknown = set(names) - set(CASES)
    if unknown:
        raise SystemExit(f"no cases for {', '.join(sorted(unknown))}")
    for name, cases in sorted(CASES.items()):
        if names and name not in names:
            continue
        data = {}
        for case in cases:
            for dtype in (np.float32, np.float64):
                args, kwargs = case.build(dtype)
                data.update(pack_inputs(input_key(case, dtype), args, kwargs))
                for red in case.reductions:
                    value, grads = run_torch(name, args, kwargs, red, grad=case.grad)
                    k = key(case, dtype, red)
                    data[f"{k}|value"] = value
                    for arg, g in grads.items():
                        data[f"{k}|grad|{arg}"] = g
        np.savez_compressed(os.path.join(HERE, f"{name}.npz"), **data)
        print(f"{name}: {sum(k.endswith('|value') for k in data)} results (torch {torch.__version__})")


if __name__ == "__main__":
    main(tuple(sys.argv[1:]))
