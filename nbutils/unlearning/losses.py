"""The unlearning objectives as pure tensor functions (REFERENCE §4).

Notation: for question q and answer a (answer tokens + EOS), ``S(a|q) = Σ_t log p(a_t|q,a_<t)``
over answer tokens only (labels of prompt and padding are -100) and ``|a|`` the number of
answer tokens. Every function here takes logits/labels or precomputed sequence scores, so the
unit tests can check each against a hand computation and the notebooks can write the same
formula out next to the package's value.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..models.prompts import IGNORE


def shift(logits: torch.Tensor, labels: torch.Tensor):
    """Align next-token logits with the tokens they predict."""
    return logits[:, :-1, :], labels[:, 1:]


def token_logprobs(logits: torch.Tensor, labels: torch.Tensor):
    """``(log p(label_t), mask)`` per predicted position; mask is 1 on answer tokens."""
    logits, labels = shift(logits, labels)
    mask = labels != IGNORE
    safe = labels.masked_fill(~mask, 0)
    logp = torch.log_softmax(logits.float(), dim=-1).gather(-1, safe.unsqueeze(-1)).squeeze(-1)
    return logp * mask, mask


def sequence_logprob(logits: torch.Tensor, labels: torch.Tensor):
    """``(S(a|q), |a|)`` per row: summed answer log-probability and answer length."""
    logp, mask = token_logprobs(logits, labels)
    return logp.sum(-1), mask.sum(-1)


def nll(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean token NLL over all answer tokens of the batch (the usual LM loss)."""
    logits, labels = shift(logits, labels)
    return F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), labels.reshape(-1),
                           ignore_index=IGNORE)


def grad_ascent_loss(logits, labels) -> torch.Tensor:
    """GradAscent: ``L = -NLL_forget``."""
    return -nll(logits, labels)


def npo_loss(s_theta: torch.Tensor, s_ref: torch.Tensor, beta: float) -> torch.Tensor:
    """NPO (Zhang et al. 2024): ``-(2/β) mean log σ(-β (S_θ - S_ref))``.

    As β → 0 its gradient tends to GradAscent's on the sequence sums (-∇ S_θ, per row).
    """
    return -(2.0 / beta) * F.logsigmoid(-beta * (s_theta - s_ref)).mean()


def simnpo_loss(s_theta: torch.Tensor, length: torch.Tensor, beta: float,
                delta: float = 0.0) -> torch.Tensor:
    """SimNPO (Fan et al. 2024): reference-free, length-normalised,
    ``-(2/β) mean log σ(β (NLL/|a| - δ))`` = ``-(2/β) mean log σ(-(β/|a|) S_θ - β·δ)``.

    The offset is the authors' and open-unlearning's code's ``δ``, scaled by β; the SimNPO
    paper writes it as γ = β·δ. Taking the code's δ means a value copied from their configs
    means the same here (identical at the published δ = 0)."""
    return -(2.0 / beta) * F.logsigmoid(
        -(beta / length.clamp(min=1)) * s_theta - beta * delta).mean()


def dpo_loss(s_w, s_w_ref, s_l, s_l_ref, beta: float) -> torch.Tensor:
    """DPO with w the preferred and l the rejected (true forget) answer:
    ``-(2/β) mean log σ(β [(S_θ(w) - S_ref(w)) - (S_θ(l) - S_ref(l))])``.

    With policy == reference the margin is 0 and the loss is ``(2/β) log 2``.
    """
    margin = (s_w - s_w_ref) - (s_l - s_l_ref)
    return -(2.0 / beta) * F.logsigmoid(beta * margin).mean()


def answer_kl(logits: torch.Tensor, ref_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``KL(p_ref || p_θ)`` per answer token, averaged over answer tokens only.

    (**ours**: the published code averages over prompt and padding positions too.)
    """
    logits, labels = shift(logits, labels)
    ref_logits = ref_logits[:, :-1, :]
    mask = (labels != IGNORE).float()
    logp = torch.log_softmax(logits.float(), -1)
    ref_logp = torch.log_softmax(ref_logits.float(), -1)
    kl = (ref_logp.exp() * (ref_logp - logp)).sum(-1)
    return (kl * mask).sum() / mask.sum().clamp(min=1)


def masked_mse(h: torch.Tensor, target: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """RMU's activation loss: ``mean_d (h - target)^2`` averaged over answer tokens.

    ``h`` and ``target`` are ``[batch, seq, d]`` hidden states at the same positions as
    ``labels`` (answer tokens are where labels != -100).
    """
    mask = (labels != IGNORE).float()
    per_token = ((h.float() - target.float()) ** 2).mean(-1)
    return (per_token * mask).sum() / mask.sum().clamp(min=1)


def undial_loss(logits: torch.Tensor, ref_logits: torch.Tensor, labels: torch.Tensor,
                beta: float) -> torch.Tensor:
    """UNDIAL (Dong et al. 2024): distil towards ``softmax(z_ref - β·onehot(y_t))`` at answer
    tokens (the reference's logits with the true next token pushed down by β); cross-entropy
    between that target distribution and the model, averaged over answer tokens."""
    logits, labels = shift(logits, labels)
    ref_logits = ref_logits[:, :-1, :].float()
    mask = labels != IGNORE
    onehot = F.one_hot(labels.masked_fill(~mask, 0), ref_logits.size(-1)).float()
    target = torch.softmax(ref_logits - beta * onehot, -1)
    ce = -(target * torch.log_softmax(logits.float(), -1)).sum(-1)
    return (ce * mask).sum() / mask.sum().clamp(min=1)
