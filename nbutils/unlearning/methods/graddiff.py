"""Gradient difference: ``L = -NLL_forget + α·NLL_retain`` (γ = α = 1; Liu et al. 2022).

The KL variant ("KL-min") replaces the retain NLL with ``KL(p_ref || p_θ)`` on the retain
answers, keeping the model's whole retain distribution where the starting model had it.
"""

from dataclasses import dataclass

from ..base import MethodConfig, register
from .gradascent import GradAscent


@dataclass(frozen=True)
class GradDiffConfig(MethodConfig):
    gamma: float = 1.0
    alpha: float = 1.0
    retain_loss: str = "nll"


@register
class GradDiff(GradAscent):
    """GradAscent's forget term with a retain term (the config turns it on)."""

    name = "graddiff"
    paper = "Liu et al. 2022, Continual learning and private unlearning; TOFU baseline"
    config_cls = GradDiffConfig


@dataclass(frozen=True)
class GradDiffKLConfig(GradDiffConfig):
    retain_loss: str = "kl"


@register
class GradDiffKL(GradDiff):
    """GradDiff with the KL retain term (TOFU's "KL" baseline)."""

    name = "graddiff_kl"
    config_cls = GradDiffKLConfig
