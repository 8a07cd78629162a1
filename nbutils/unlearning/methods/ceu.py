"""CE-U, cross-entropy unlearning (Yang et al. 2025, "CE-U: Cross Entropy Unlearning",
arXiv 2503.01224; open-unlearning's ``ceu.py``).

At each forget answer token the target is the model's *own* next-token distribution with the
true token's logit set to -inf (detached): ``q_t = softmax(z_t with z_t[y_t] = -inf)``, and
``L_f = mean_t CE(q_t, p_θ)``. The true token loses its mass to the alternatives the model
already considers, in proportion, and the loss stays bounded (the gradient at a token is
``p_θ(y_t)`` on the true token, which vanishes as it is forgotten). The first answer token,
predicted from the prompt alone, is left out (the paper's footnote). No retain term; lr 1e-5.
"""

from dataclasses import dataclass

from .. import losses
from ..base import MethodConfig, UnlearningMethod, register


@dataclass(frozen=True)
class CEUConfig(MethodConfig):
    alpha: float = 0.0
    retain_loss: str = "none"
    skip_first_tokens: int = 1


@register
class CEU(UnlearningMethod):
    name = "ceu"
    paper = "Yang et al. 2025, CE-U: Cross Entropy Unlearning"
    config_cls = CEUConfig

    def forget_loss(self, model, batch, context):
        logits, labels = self.answer_logits(model, batch["forget"])
        return losses.ceu_loss(logits, labels, self.config.skip_first_tokens)
