"""Bad calls to the probabilistic and binary losses raise the right exception, with a message
that starts by naming the argument at fault."""
import numpy as np
import pytest

import fastloss as fl

X = np.linspace(0.1, 0.9, 6).reshape(2, 3)
T = np.linspace(0.2, 0.7, 6).reshape(2, 3)
STR = np.array([["a", "b", "c"], ["d", "e", "f"]])
INT = np.arange(6).reshape(2, 3)

# (function, args, kwargs, exception, argument named first in the message)
BAD = {
    # poisson_nll_loss
    "poisson-reduction": (fl.poisson_nll_loss, (X, T), {"reduction": "batchmean"}, ValueError,
                          "reduction"),
    "poisson-str-input": (fl.poisson_nll_loss, (STR, T), {}, TypeError, "input"),
    "poisson-int-input": (fl.poisson_nll_loss, (INT, T), {}, TypeError, "input"),
    "poisson-str-target": (fl.poisson_nll_loss, (X, STR), {}, TypeError, "target"),
    "poisson-shape": (fl.poisson_nll_loss, (X, np.ones(4)), {}, ValueError, "target"),
    "poisson-log_input": (fl.poisson_nll_loss, (X, T), {"log_input": "yes"}, TypeError,
                          "log_input"),
    "poisson-full": (fl.poisson_nll_loss, (X, T), {"full": None}, TypeError, "full"),
    "poisson-eps": (fl.poisson_nll_loss, (X, T), {"eps": "small"}, TypeError, "eps"),
    # gaussian_nll_loss
    "gaussian-neg-float-var": (fl.gaussian_nll_loss, (X, T, -1.0), {}, ValueError, "var"),
    "gaussian-neg-var": (fl.gaussian_nll_loss, (X, T, np.array([1.0, -1e-9])), {}, ValueError,
                         "var"),
    "gaussian-var-wrong-last": (fl.gaussian_nll_loss, (X, T, np.ones(3)), {}, ValueError,
                                "var"),
    "gaussian-var-two-ones": (fl.gaussian_nll_loss, (X, T, np.ones((1, 1))), {}, ValueError,
                              "var"),
    "gaussian-var-extra-dim": (fl.gaussian_nll_loss, (X, T, np.ones((2, 3, 1))), {},
                               ValueError, "var"),
    "gaussian-var-0d-for-2d": (fl.gaussian_nll_loss, (X, T, np.array(1.0)), {}, ValueError,
                               "var"),
    "gaussian-int-var": (fl.gaussian_nll_loss, (X, T, np.ones((2, 3), np.int64)), {},
                         TypeError, "var"),
    "gaussian-str-var": (fl.gaussian_nll_loss, (X, T, STR), {}, TypeError, "var"),
    "gaussian-none-var": (fl.gaussian_nll_loss, (X, T, None), {}, TypeError, "var"),
    "gaussian-int-input": (fl.gaussian_nll_loss, (INT, T, 1.0), {}, TypeError, "input"),
    "gaussian-shape": (fl.gaussian_nll_loss, (X, np.ones((3, 2)), 1.0), {}, ValueError,
                       "target"),
    "gaussian-reduction": (fl.gaussian_nll_loss, (X, T, 1.0), {"reduction": "batchmean"},
                           ValueError, "reduction"),
    "gaussian-full": (fl.gaussian_nll_loss, (X, T, 1.0), {"full": "no"}, TypeError, "full"),
    "gaussian-eps": (fl.gaussian_nll_loss, (X, T, 1.0), {"eps": None}, TypeError, "eps"),
    # kl_div
    "kl-reduction": (fl.kl_div, (X, T), {"reduction": "avg"}, ValueError, "reduction"),
    "kl-str-input": (fl.kl_div, (STR, T), {"reduction": "sum"}, TypeError, "input"),
    "kl-int-input": (fl.kl_div, (INT, T), {"reduction": "sum"}, TypeError, "input"),
    "kl-str-target": (fl.kl_div, (X, STR), {"reduction": "sum"}, TypeError, "target"),
    "kl-shape": (fl.kl_div, (X, np.ones((3, 2))), {"reduction": "sum"}, ValueError, "target"),
    "kl-log_target": (fl.kl_div, (X, T), {"log_target": None}, TypeError, "log_target"),
    # binary_cross_entropy
    "bce-input-above-1": (fl.binary_cross_entropy, (X + 0.5, T), {}, ValueError, "input"),
    "bce-input-negative": (fl.binary_cross_entropy, (X - 0.5, T), {}, ValueError, "input"),
    "bce-input-nan": (fl.binary_cross_entropy, (np.full((2, 3), np.nan), T), {}, ValueError,
                      "input"),
    "bce-target-above-1": (fl.binary_cross_entropy, (X, T * 2), {}, ValueError, "target"),
    "bce-target-nan": (fl.binary_cross_entropy, (X, np.full((2, 3), np.nan)), {}, ValueError,
                       "target"),
    "bce-int-target-2": (fl.binary_cross_entropy, (X, np.full((2, 3), 2)), {}, ValueError,
                         "target"),
    "bce-target-shape": (fl.binary_cross_entropy, (X, T[:1]), {}, ValueError, "target"),
    "bce-weight-shape": (fl.binary_cross_entropy, (X, T), {"weight": np.ones((4, 3))},
                         ValueError, "weight"),
    "bce-weight-enlarges": (fl.binary_cross_entropy, (X, T), {"weight": np.ones((1, 2, 3))},
                            ValueError, "weight"),
    "bce-str-weight": (fl.binary_cross_entropy, (X, T), {"weight": STR}, TypeError, "weight"),
    "bce-int-input": (fl.binary_cross_entropy, (INT, T), {}, TypeError, "input"),
    "bce-str-input": (fl.binary_cross_entropy, (STR, T), {}, TypeError, "input"),
    "bce-reduction": (fl.binary_cross_entropy, (X, T), {"reduction": None}, ValueError,
                      "reduction"),
    # binary_cross_entropy_with_logits
    "logits-target-shape": (fl.binary_cross_entropy_with_logits, (X, T[:, :1]), {}, ValueError,
                            "target"),
    "logits-weight-shape": (fl.binary_cross_entropy_with_logits, (X, T),
                            {"weight": np.ones(2)}, ValueError, "weight"),
    "logits-pos_weight-shape": (fl.binary_cross_entropy_with_logits, (X, T),
                                {"pos_weight": np.ones(4)}, ValueError, "pos_weight"),
    "logits-pos_weight-enlarges": (fl.binary_cross_entropy_with_logits, (X, T),
                                   {"pos_weight": np.ones((5, 1, 3))}, ValueError,
                                   "pos_weight"),
    "logits-str-pos_weight": (fl.binary_cross_entropy_with_logits, (X, T),
                              {"pos_weight": STR}, TypeError, "pos_weight"),
    "logits-int-input": (fl.binary_cross_entropy_with_logits, (INT, T), {}, TypeError,
                         "input"),
    "logits-bool-input": (fl.binary_cross_entropy_with_logits, (INT > 2, T), {}, TypeError,
                          "input"),
    "logits-str-target": (fl.binary_cross_entropy_with_logits, (X, STR), {}, TypeError,
                          "target"),
    "logits-reduction": (fl.binary_cross_entropy_with_logits, (X, T), {"reduction": "max"},
                         ValueError, "reduction"),
}


@pytest.mark.parametrize("fn,args,kwargs,exc,arg", BAD.values(), ids=BAD.keys())
def test_bad_call_raises_naming_the_argument(fn, args, kwargs, exc, arg):
    with pytest.raises(exc) as info:
        fn(*args, **kwargs)
    assert str(info.value).startswith(arg), str(info.value)


# Arguments after PyTorch's first legacy size_average/reduce slot are keyword-only, so a
# call written for torch's positional order fails instead of meaning something else.
LEGACY = {
    "poisson-eps": (fl.poisson_nll_loss, (X, T, True, False, 1e-8)),
    "kl-reduction": (fl.kl_div, (X, T, "sum")),
    "bce-reduction": (fl.binary_cross_entropy, (X, T, None, "sum")),
    "logits-reduction": (fl.binary_cross_entropy_with_logits, (X, T, None, "sum")),
}


@pytest.mark.parametrize("fn,args", LEGACY.values(), ids=LEGACY.keys())
def test_legacy_positional_slot_raises(fn, args):
    with pytest.raises(TypeError, match="positional argument"):
        fn(*args)


def test_gaussian_grad_wrt_target_is_refused():
    with pytest.raises(ValueError) as info:
        fl.value_and_grad(fl.gaussian_nll_loss, argnums="target")(X, T, 1.0)
    assert str(info.value).startswith("argnums")


def test_kl_div_mean_warns_like_torch():
    with pytest.warns(UserWarning, match="'batchmean' divides only by the batch size"):
        fl.kl_div(np.log(X), T)
