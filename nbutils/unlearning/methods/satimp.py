"""SatImp, saturation-importance weighted ascent (Yang et al. 2025, "Exploring Criteria of
Loss Reweighting to Enhance LLM Unlearning"; open-unlearning's ``satimp.py``).

Like WGA, token-weighted gradient ascent, with ``w_t = p_t^β1 (1 - p_t)^β2`` (detached): the
weight is on tokens that are likely (importance) but not yet certain (saturation).
``L_f = -mean_t(w_t ℓ_t)``. Published (its config, which produced its numbers): β1 = 5,
β2 = 1, γ = 0.1, α = 1, retain NLL, lr 1e-5 (its README swaps γ and α).
"""

from dataclasses import dataclass

from .. import losses
from ..base import MethodConfig, UnlearningMethod, register


@dataclass(frozen=True)
class SatImpConfig(MethodConfig):
    beta1: float = 5.0
    beta2: float = 1.0
    gamma: float = 0.1
    alpha: float = 1.0


@register
class SatImp(UnlearningMethod):
    name = "satimp"
    paper = "Yang et al. 2025, Exploring Criteria of Loss Reweighting to Enhance LLM Unlearning"
    config_cls = SatImpConfig

    def forget_loss(self, model, batch, context):
        logits, labels = self.answer_logits(model, batch["forget"])
        return losses.satimp_loss(logits, labels, self.config.beta1, self.config.beta2)
