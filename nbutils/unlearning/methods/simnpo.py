"""SimNPO (Fan et al. 2024): NPO without a reference model, length-normalised.

``L_f = -(2/β) mean log σ(β (NLL(a|q)/|a| - δ))``, weighted by γ, plus α·NLL_retain.
Published TOFU forget10: β = 4.5, γ = 0.125, α = 1, δ = 0 (forget05: β = 2.5, γ = 0.1375);
MUSE: β ≈ 0.7.

δ is the offset as the authors' code and open-unlearning's compute it, inside β(...); the
SimNPO paper and model card write the same offset outside as γ = β·δ (and use γ for it, not
for the forget weight as the code does). A δ copied from their configs means the same here.
"""

from dataclasses import dataclass

from .. import losses
from ..base import MethodConfig, UnlearningMethod, register


@dataclass(frozen=True)
class SimNPOConfig(MethodConfig):
    beta: float = 4.5
    delta: float = 0.0
    gamma: float = 0.125
    alpha: float = 1.0
    retain_loss: str = "nll"


@register
class SimNPO(UnlearningMethod):
    name = "simnpo"
    paper = "Fan et al. 2024, Simplicity Prevails: Rethinking Negative Preference Optimization"
    config_cls = SimNPOConfig

    def forget_loss(self, model, batch, context):
        s_theta, length = self.sequence_scores(model, batch["forget"])
        return losses.simnpo_loss(s_theta, length, self.config.beta, self.config.delta)
