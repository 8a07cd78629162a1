"""Gradient ascent: ``L = -NLL_forget`` (the simplest baseline; TOFU, Maini et al. 2024).

Pushing the forget answers' likelihood down without anything holding the rest in place
collapses the model at default settings (TOFU forget10: model utility 0).
"""

from dataclasses import dataclass

from .. import losses
from ..base import MethodConfig, UnlearningMethod, register


@dataclass(frozen=True)
class GradAscentConfig(MethodConfig):
    alpha: float = 0.0
    retain_loss: str = "none"


@register
class GradAscent(UnlearningMethod):
    name = "gradascent"
    paper = "Maini et al. 2024, TOFU: A Task of Fictitious Unlearning for LLMs"
    config_cls = GradAscentConfig

    def forget_loss(self, model, batch, context):
        forget = batch["forget"]
        return losses.grad_ascent_loss(*self.answer_logits(model, forget))
