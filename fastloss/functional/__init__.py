"""One public function per loss, with PyTorch's names, arguments and defaults.

Each is defined in the module of its kernels' family (``fastloss._kernels.FAMILIES``, the
same split in every layer: ``elementwise``, ``classification``, ``rows``, ``sequence``,
``linear``), where it validates its arguments and describes the call to the kernels (a
``Prepared``); ``fastloss._engine`` runs it on a backend.
PyTorch's legacy ``size_average``/``reduce`` arguments are not provided: arguments after
the last one PyTorch still documents as positional are keyword-only, so a call that
meant a legacy slot fails loudly instead of silently meaning something else.
"""
from .classification import cross_entropy, nll_loss
from .elementwise import (binary_cross_entropy, binary_cross_entropy_with_logits,
                          gaussian_nll_loss, hinge_embedding_loss, huber_loss, kl_div, l1_loss,
                          margin_ranking_loss, mse_loss, poisson_nll_loss, smooth_l1_loss,
                          soft_margin_loss)
from .rows import (cosine_embedding_loss, multi_margin_loss, multilabel_margin_loss,
                   multilabel_soft_margin_loss, pairwise_distance,
                   triplet_margin_loss, triplet_margin_with_distance_loss)
from .sequence import ctc_loss
from .linear import linear_cross_entropy

__all__ = ["l1_loss", "mse_loss", "smooth_l1_loss", "huber_loss", "nll_loss", "cross_entropy"]
__all__ += ["poisson_nll_loss", "gaussian_nll_loss", "kl_div",
            "binary_cross_entropy", "binary_cross_entropy_with_logits"]
__all__ += ["hinge_embedding_loss", "margin_ranking_loss", "soft_margin_loss",
            "multi_margin_loss", "multilabel_margin_loss", "multilabel_soft_margin_loss",
            "cosine_embedding_loss", "triplet_margin_loss"]
__all__ += ["ctc_loss"]
__all__ += ["triplet_margin_with_distance_loss", "pairwise_distance"]
__all__ += ["linear_cross_entropy"]
