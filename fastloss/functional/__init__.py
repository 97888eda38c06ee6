"""One public function per loss, with PyTorch's names, arguments and defaults.

Each is defined in its family module, where it validates its arguments and describes
the call to the kernels (a ``Prepared``); ``fastloss._engine`` runs it on a backend.
PyTorch's legacy ``size_average``/``reduce`` arguments are not provided: arguments after
the last one PyTorch still documents as positional are keyword-only, so a call that
meant a legacy slot fails loudly instead of silently meaning something else.
"""
from .classification import cross_entropy, nll_loss
from .regression import huber_loss, l1_loss, mse_loss, smooth_l1_loss

__all__ = ["l1_loss", "mse_loss", "smooth_l1_loss", "huber_loss", "nll_loss", "cross_entropy"]
