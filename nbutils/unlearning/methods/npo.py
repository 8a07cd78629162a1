"""NPO, negative preference optimisation (Zhang et al. 2024).

``L_f = -(2/β) mean log σ(-β (S_θ(a|q) - S_ref(a|q)))`` with sequence sums and the frozen
starting model as reference, β = 0.1; plus α·NLL_retain. A bounded, adaptive gradient
ascent: as β → 0 its gradient equals GradAscent's, but each example's weight
σ(β (S_θ - S_ref)) fades once the model has moved away from it.

``S_ref`` never changes during training, so it is computed once before training.
"""

from dataclasses import dataclass

from .. import losses
from ..base import MethodConfig, UnlearningMethod, register


@dataclass(frozen=True)
class NPOConfig(MethodConfig):
    beta: float = 0.1
    alpha: float = 1.0
    retain_loss: str = "nll"


@register
class NPO(UnlearningMethod):
    name = "npo"
    paper = "Zhang et al. 2024, Negative Preference Optimization"
    config_cls = NPOConfig
    reference_logprobs = ("forget",)

    def forget_loss(self, model, batch, context):
        s_theta, _ = self.sequence_scores(model, batch["forget"])
        return losses.npo_loss(s_theta, batch["forget"]["ref_logprob"], self.config.beta)
