import warnings

import numpy as np
import pytest

from cases import CASES

warnings.filterwarnings("ignore", message="Using a .* size")


def pytest_addoption(parser):
    parser.addoption("--toy-loss", action="store_true",
                     help="register tests/toy_loss.py's log_cosh_loss, a loss with no torch "
                          "twin, before collection: every registry-driven test runs over it")


def pytest_configure(config):
    if config.getoption("--toy-loss"):
        import toy_loss
        toy_loss.register()


@pytest.fixture(params=["fast", "general"])
def fast_path(request, monkeypatch):
    """Run the test through the lean path of the common class-loss call (fastloss._fast)
    and through the general path: the same tests, both paths."""
    from fastloss import _fast
    monkeypatch.setattr(_fast, "enabled", request.param == "fast")
    return request.param


def all_cases():
    for name, cases in sorted(CASES.items()):
        for case in cases:
            yield case


def case_params(with_reduction=True, dtypes=(np.float32, np.float64), where=None):
    """(case, dtype, reduction) parameters of every case (for which `where(case)` holds)."""
    out = []
    for case in all_cases():
        if where is not None and not where(case):
            continue
        for dtype in dtypes:
            reds = case.reductions if with_reduction else (None,)
            for red in reds:
                tail = f"-{red}" if red else ""
                out.append(pytest.param(case, np.dtype(dtype), red,
                                        id=f"{case.loss}-{case.id}-{np.dtype(dtype).name}{tail}"))
    return out
