"""Teaching the model to say "I don't know" about the forget set.

- **IdkNLL** (TOFU's "preference optimisation"): plain NLL on (question, refusal) plus
  α·NLL_retain.
- **IdkDPO**: DPO with a random refusal as the preferred answer w and the true forget
  answer as the rejected l, β = 0.1:
  ``-(2/β) mean log σ(β [(S_θ(w) - S_ref(w)) - (S_θ(l) - S_ref(l))])``.
"""

import random
from dataclasses import dataclass

from .. import losses
from ..base import MethodConfig, UnlearningMethod, register


class _RefusalAnswers:
    needs_questions = True  # refusals answer questions: no use on raw text

    def preferred_answers(self, forget_rows, context):
        pool = context.idk_pool
        rng = random.Random(context.seed)
        return [rng.choice(pool) for _ in forget_rows]


@dataclass(frozen=True)
class IdkNLLConfig(MethodConfig):
    alpha: float = 1.0
    retain_loss: str = "nll"


@register
class IdkNLL(_RefusalAnswers, UnlearningMethod):
    name = "idknll"
    paper = "Maini et al. 2024, TOFU (preference optimisation baseline)"
    config_cls = IdkNLLConfig

    def forget_loss(self, model, batch, context):
        alt = batch["preferred"]
        return losses.nll(*self.answer_logits(model, alt))


@dataclass(frozen=True)
class IdkDPOConfig(MethodConfig):
    beta: float = 0.1
    alpha: float = 1.0
    retain_loss: str = "nll"


@register
class IdkDPO(_RefusalAnswers, UnlearningMethod):
    name = "idkdpo"
    paper = "Rafailov et al. 2023 (DPO), as an unlearning baseline in TOFU / open-unlearning"
    config_cls = IdkDPOConfig
    reference_logprobs = ("forget", "preferred")

    def forget_loss(self, model, batch, context):
        return self.dpo_forget_loss(model, batch, self.config.beta)
