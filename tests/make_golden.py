"""Regenerate tests/golden/*.npz from torch: `python tests/make_golden.py`.

The fixtures hold torch's value and gradients for every case x dtype x reduction, plus a
digest of the inputs, so that the core checks run where torch is not installed."""
import hashlib
import os
import sys
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(1, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from cases import CASES  # noqa: E402
from helpers import run_torch  # noqa: E402

HERE = os.path.join(os.path.dirname(__file__), "golden")


def digest(args, kwargs):
    h = hashlib.sha256()
    for a in [*args, *(kwargs[k] for k in sorted(kwargs))]:
        a = np.asarray(a)
        h.update(str(a.dtype).encode() + str(a.shape).encode() + np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def key(case, dtype, reduction):
    return f"{case.id}|{np.dtype(dtype).name}|{reduction}"


def main():
    warnings.simplefilter("ignore")
    import torch
    os.makedirs(HERE, exist_ok=True)
    for name, cases in sorted(CASES.items()):
        data = {}
        for case in cases:
            for dtype in (np.float32, np.float64):
                args, kwargs = case.build(dtype)
                for red in case.reductions:
                    value, grads = run_torch(name, args, kwargs, red, grad=case.grad)
                    k = key(case, dtype, red)
                    data[f"{k}|digest"] = np.array(digest(args, kwargs))
                    data[f"{k}|value"] = value
                    for arg, g in grads.items():
                        data[f"{k}|grad|{arg}"] = g
        np.savez_compressed(os.path.join(HERE, f"{name}.npz"), **data)
        print(f"{name}: {sum(k.endswith('|value') for k in data)} results (torch {torch.__version__})")


if __name__ == "__main__":
    main()
