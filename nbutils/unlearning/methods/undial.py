"""UNDIAL, unlearning via self-distillation with adjusted logits (Dong et al. 2024).

At each forget answer token, the target distribution is the frozen model's, with the true
next token's logit lowered by β: ``softmax(z_ref - β·onehot(y_t))``; the model is trained
towards it with cross-entropy. β = 10, lr 1e-4, no retain term: only the forgotten token's
probability mass moves, everything else the model believed stays in the target.
"""

from dataclasses import dataclass

from .. import losses
from ..base import MethodConfig, UnlearningMethod, register


@dataclass(frozen=True)
class UNDIALConfig(MethodConfig):
    beta: float = 10.0
    alpha: float = 0.0
    retain_loss: str = "none"
    learning_rate: float | None = 1e-4


@register
class UNDIAL(UnlearningMethod):
    name = "undial"
    paper = "Dong et al. 2024, UNDIAL: Self-Distillation with Adjusted Logits for Robust Unlearning"
    config_cls = UNDIALConfig
    needs_reference_model = True

    def forget_loss(self, model, batch, context):
        forget = batch["forget"]
        ref = context.reference_logits(forget)
        logits, labels = self.answer_logits(model, forget)
        return losses.undial_loss(logits, ref, labels, self.config.beta)
