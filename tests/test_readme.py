"""The README's table of losses and its statement of what is covered are the registry's:
`python tests/test_readme.py` rewrites both.

What "covered" is measured against is the list of loss functions of torch 2.13 below
(checked against torch itself when torch 2.13 is installed), so the statement stays exact
as losses are added: it names every torch loss the registry does not have yet."""
import os
import re
import sys

import pytest

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")
START, END = "<!-- losses:start -->", "<!-- losses:end -->"
COVERAGE_START, COVERAGE_END = "<!-- coverage:start -->", "<!-- coverage:end -->"

TORCH_VERSION = "2.13"
# Every loss function of torch.nn.functional in torch 2.13, with its torch.nn class, in
# the order of torch's documentation.
TORCH_LOSSES = {
    "binary_cross_entropy": "BCELoss",
    "binary_cross_entropy_with_logits": "BCEWithLogitsLoss",
    "poisson_nll_loss": "PoissonNLLLoss",
    "cosine_embedding_loss": "CosineEmbeddingLoss",
    "cross_entropy": "CrossEntropyLoss",
    "linear_cross_entropy": "LinearCrossEntropyLoss",
    "ctc_loss": "CTCLoss",
    "gaussian_nll_loss": "GaussianNLLLoss",
    "hinge_embedding_loss": "HingeEmbeddingLoss",
    "kl_div": "KLDivLoss",
    "l1_loss": "L1Loss",
    "mse_loss": "MSELoss",
    "margin_ranking_loss": "MarginRankingLoss",
    "multilabel_margin_loss": "MultiLabelMarginLoss",
    "multilabel_soft_margin_loss": "MultiLabelSoftMarginLoss",
    "multi_margin_loss": "MultiMarginLoss",
    "nll_loss": "NLLLoss",
    "huber_loss": "HuberLoss",
    "smooth_l1_loss": "SmoothL1Loss",
    "soft_margin_loss": "SoftMarginLoss",
    "triplet_margin_loss": "TripletMarginLoss",
    "triplet_margin_with_distance_loss": "TripletMarginWithDistanceLoss",
}
# torch.nn loss classes that are no loss function of their own (deprecated aliases)
TORCH_ALIASES = {"NLLLoss2d"}


def package_losses():
    """The registry rows of fastloss's own losses (defined in the package), which the
    README documents; a loss registered from outside (a plug-in, the test suite's toy
    loss of tests/toy_loss.py) is its registrant's to document."""
    from fastloss._registry import LOSSES
    return {name: spec for name, spec in LOSSES.items()
            if spec.prepare.__module__.startswith("fastloss.")}


def torch_twins():
    """The torch function names the registry's oracles mirror."""
    from fastloss._registry import LOSSES
    return {spec.oracle.function.rsplit(".", 1)[1]
            for spec in LOSSES.values() if spec.oracle is not None}


def losses_table():
    rows = [f"| `{name}` | `{spec.class_name}` | {', '.join(f'`{a}`' for a in spec.differentiable)} |"
            for name, spec in package_losses().items()]
    return "\n".join(rows)


def _names(names):
    quoted = [f"`{n}`" for n in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


def coverage_text():
    """What the registry covers of torch's loss functions (its oracles), in one sentence."""
    total = len(TORCH_LOSSES)
    twins = torch_twins()
    missing = [name for name in TORCH_LOSSES if name not in twins]
    what = f"loss functions of `torch.nn.functional` in torch {TORCH_VERSION}"
    if not missing:
        return f"fastloss has all {total} {what}, each with its `torch.nn` class."
    return (f"fastloss has {total - len(missing)} of the {total} {what}, each with its "
            f"`torch.nn` class: all but {_names(missing)}, which it does not provide (yet).")


def _block(text, start, end):
    m = re.search(re.escape(start) + r"\n(.*?)\n?" + re.escape(end), text, re.S)
    return m.group(1).strip() if m else None


def current():
    text = open(README).read()
    return text, _block(text, START, END)


def test_readme_lists_every_loss():
    _, table = current()
    assert table == losses_table(), "README's loss table is stale: run python tests/test_readme.py"


def test_readme_says_exactly_what_is_covered():
    text, _ = current()
    assert _block(text, COVERAGE_START, COVERAGE_END) == coverage_text(), \
        "README's coverage statement is stale: run python tests/test_readme.py"
    if any(name not in torch_twins() for name in TORCH_LOSSES):
        # nothing else in the README may claim more than the statement says
        assert not re.search(r"\b(every|all( of)?) (the )?(pytorch|torch)('s)? loss",
                             text, re.I), "the README claims every PyTorch loss"


def test_registry_oracles_are_torch_losses():
    """A registry row's oracle names a torch loss function and its class (the coverage is
    counted against torch's list), under the loss's own names; a row without one is not
    named like a torch loss (a twin must be declared, not forgotten)."""
    from fastloss._registry import LOSSES
    for name, spec in LOSSES.items():
        if spec.oracle is None:
            assert name not in TORCH_LOSSES, f"{name} is torch's: declare its oracle"
            assert spec.class_name not in TORCH_LOSSES.values(), spec.class_name
            continue
        module, _, twin = spec.oracle.function.rpartition(".")
        assert module == "torch.nn.functional" and twin in TORCH_LOSSES, \
            f"{name}: {spec.oracle.function} is not a torch {TORCH_VERSION} loss function"
        assert spec.oracle.class_name == f"torch.nn.{TORCH_LOSSES[twin]}", name
        assert spec.class_name == TORCH_LOSSES[twin], name


def test_coverage_text_names_what_is_missing(monkeypatch):
    from types import SimpleNamespace

    from fastloss import _registry
    every = {name: SimpleNamespace(oracle=_registry.Oracle(f"torch.nn.functional.{name}"))
             for name in TORCH_LOSSES}
    # a loss torch lacks counts for nothing
    every["focal_loss"] = SimpleNamespace(oracle=None)
    monkeypatch.setattr(_registry, "LOSSES", every)
    assert coverage_text() == ("fastloss has all 22 loss functions of `torch.nn.functional` "
                               "in torch 2.13, each with its `torch.nn` class.")
    del every["ctc_loss"], every["linear_cross_entropy"]
    assert coverage_text().startswith("fastloss has 20 of the 22 ")
    assert coverage_text().endswith("all but `linear_cross_entropy` and `ctc_loss`, which "
                                    "it does not provide (yet).")


def test_torch_loss_list_is_torch_2_13s():
    torch = pytest.importorskip("torch")
    if not torch.__version__.startswith(TORCH_VERSION + "."):
        pytest.skip(f"the list is torch {TORCH_VERSION}'s; torch {torch.__version__} is here")
    import inspect

    import torch.nn.functional as F
    from torch.nn.modules import loss as modules
    classes = {name for name, c in vars(modules).items()
               if inspect.isclass(c) and issubclass(c, modules._Loss)
               and not name.startswith("_") and name not in TORCH_ALIASES}
    assert classes == set(TORCH_LOSSES.values())
    for name in TORCH_LOSSES:
        assert callable(getattr(F, name)), name
    # and no other loss-named function in torch.nn.functional
    loss_like = {n for n in dir(F) if not n.startswith("_")
                 and (n.endswith("_loss") or "cross_entropy" in n or n == "kl_div")}
    assert loss_like == set(TORCH_LOSSES)


def rewrite():
    text = open(README).read()
    for start, end, body in ((START, END, losses_table()),
                             (COVERAGE_START, COVERAGE_END, coverage_text())):
        i, j = text.index(start) + len(start), text.index(end)
        text = text[:i] + "\n" + body + "\n" + text[j:]
    open(README, "w").write(text)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(README))
    rewrite()
