"""Gradient difference: ``L = -NLL_forget + α·NLL_retain`` (γ = α = 1; Liu et al. 2022).

The KL variant ("KL-min") replaces the retain NLL with ``KL(p_ref || p_θ)`` on the retain
answers, keeping the model's whole retain distribution where the starting model had it.
"""

from dataclasses import dataclass

from .. import losses
from ..base import MethodConfig, UnlearningMethod, register


@dataclass(frozen=True)
class GradDiffConfig(MethodConfig):
    gamma: float = 1.0
    alpha: float = 1.0
    retain_loss: str = "nll"


@register
class GradDiff(UnlearningMethod):
    name = "graddiff"
    paper = "Liu et al. 2022, Continual learning and private unlearning; TOFU baseline"
    config_cls = GradDiffConfig

    def forget_loss(self, model, batch, context):
        forget = batch["forget"]
        return losses.grad_ascent_loss(self.logits(model, forget), forget["labels"])


@dataclass(frozen=True)
class GradDiffKLConfig(GradDiffConfig):
    retain_loss: str = "kl"


@register
class GradDiffKL(GradDiff):
    """GradDiff with the KL retain term (TOFU's "KL" baseline)."""

    name = "graddiff_kl"
    config_cls = GradDiffKLConfig
