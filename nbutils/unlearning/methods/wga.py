"""WGA, weighted gradient ascent (Wang et al. 2025, "Rethinking LLM Unlearning Objectives: A
Gradient Perspective and Go Beyond"; open-unlearning's ``wga.py``).

Gradient ascent with each forget answer token weighted by its own probability (detached),
``w_t = p_t^β``: ``L_f = -mean_t(w_t ℓ_t)`` over the batch's answer tokens, ``ℓ_t`` the
token's cross-entropy. A token the model already finds unlikely gets little weight, so the
ascent fades where it is done instead of driving the loss to infinity. Published: β = 1,
γ = α = 1, retain NLL, lr 1e-5.
"""

from dataclasses import dataclass

from .. import losses
from ..base import MethodConfig, UnlearningMethod, register


@dataclass(frozen=True)
class WGAConfig(MethodConfig):
    beta: float = 1.0


@register
class WGA(UnlearningMethod):
    name = "wga"
    paper = "Wang et al. 2025, Rethinking LLM Unlearning Objectives: A Gradient Perspective and Go Beyond"
    config_cls = WGAConfig

    def forget_loss(self, model, batch, context):
        return losses.wga_loss(*self.answer_logits(model, batch["forget"]), self.config.beta)
