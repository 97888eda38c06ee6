import warnings

import numpy as np
import pytest

from cases import CASES

warnings.filterwarnings("ignore", message="Using a .* size")


def all_cases():
    for name, cases in sorted(CASES.items()):
        for case in cases:
            yield case


def case_params(with_reduction=True, dtypes=(np.float32, np.float64)):
    out = []
    for case in all_cases():
        for dtype in dtypes:
            reds = case.reductions if with_reduction else (None,)
            for red in reds:
                tail = f"-{red}" if red else ""
                out.append(pytest.param(case, np.dtype(dtype), red,
                                        id=f"{case.loss}-{case.id}-{np.dtype(dtype).name}{tail}"))
    return out
