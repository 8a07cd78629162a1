"""PDU, primal-dual unlearning (Entesari et al. 2025, "Constrained Entropic Unlearning: A
Primal-Dual Framework for Large Language Models"; open-unlearning's ``pdu.py``).

The forget loss flattens the logits at the forget answer tokens, ``(max_v z_tv - mean_v
z_tv)^2`` (no preferred next token left), and the retain set is a *constraint*, not a weighted
term: its NLL should stay below ε. The total is ``γ L_f + λ (L_retain - ε)`` with a dual
variable λ that starts at ``alpha`` and, after ``dual_warmup_epochs``, takes a dual-ascent step
at every training step: ``λ ← max(0, λ + η (L_retain - ε))`` (it grows while the constraint is
broken and returns to 0 once it holds). Published TOFU run: λ0 = 100, η = 5, ε = 0.3, warm-up
5 epochs, lr 1e-5, 10 epochs.
"""

from dataclasses import dataclass

from .. import losses
from ..base import MethodConfig, UnlearningMethod, register


@dataclass(frozen=True)
class PDUConfig(MethodConfig):
    alpha: float = 100.0  # the dual variable's starting value λ0
    retain_epsilon: float = 0.3  # ε: the bound the retain NLL should stay under
    dual_step_size: float = 5.0  # η
    dual_warmup_epochs: float = 5.0  # λ stays at λ0 until this many epochs are done

    def check(self, method: str) -> None:
        super().check(method)
        for name in ("retain_epsilon", "dual_step_size", "dual_warmup_epochs"):
            if getattr(self, name) < 0:
                raise ValueError(f"{method}: {name} must not be negative, got {getattr(self, name)!r}")


@register
class PDU(UnlearningMethod):
    name = "pdu"
    paper = "Entesari et al. 2025, Constrained Entropic Unlearning: A Primal-Dual Framework for LLMs"
    config_cls = PDUConfig

    def __init__(self, config: PDUConfig):
        super().__init__(config)
        self.multiplier = config.alpha  # λ, updated during the run

    def forget_loss(self, model, batch, context):
        return losses.pdu_forget_loss(*self.answer_logits(model, batch["forget"]))

    def loss(self, model, batch, context):
        forget = self.forget_loss(model, batch, context)
        retain = self.retain_loss(model, batch, context)
        c = self.config
        total = c.gamma * forget + self.multiplier * (retain - c.retain_epsilon)
        parts = {"forget_loss": forget.detach().item(), "retain_loss": retain.detach().item(),
                 "dual_multiplier": self.multiplier}
        if context.epoch >= c.dual_warmup_epochs:  # after the loss that used the old λ
            self.multiplier = losses.dual_ascent(self.multiplier, parts["retain_loss"],
                                                 c.retain_epsilon, c.dual_step_size)
        return total, parts
