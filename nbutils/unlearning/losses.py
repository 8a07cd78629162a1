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


def token_nll(logits: torch.Tensor, labels: torch.Tensor):
    """``(ℓ_t, mask)``: each answer token's cross-entropy ``-log p(y_t)`` (0 elsewhere) and
    the answer mask, after the shift."""
    logp, mask = token_logprobs(logits, labels)
    return -logp, mask


def _pooled(values: torch.Tensor, mask) -> torch.Tensor:
    """Mean over every answer token of the batch together (not per answer, then per batch)."""
    mask = mask.float()
    return (values * mask).sum() / mask.sum().clamp(min=1)


def wga_loss(logits: torch.Tensor, labels: torch.Tensor, beta: float) -> torch.Tensor:
    """WGA (open-unlearning's ``wga.py``): gradient ascent with each token weighted by its own
    detached probability, ``w_t = p_t^β``: ``-mean_t(w_t ℓ_t)`` over the batch's answer tokens.
    Tokens the model already finds unlikely get little weight, so the ascent stops on its own."""
    nll, mask = token_nll(logits, labels)
    weight = torch.exp(-nll).detach() ** beta
    return -_pooled(weight * nll, mask)


def satimp_loss(logits: torch.Tensor, labels: torch.Tensor, beta1: float, beta2: float) -> torch.Tensor:
    """SatImp (``satimp.py``): ``w_t = p_t^β1 (1 - p_t)^β2`` (detached), ``-mean_t(w_t ℓ_t)``:
    weight on tokens that are likely but not yet saturated."""
    nll, mask = token_nll(logits, labels)
    p = torch.exp(-nll).detach()
    return -_pooled(p ** beta1 * (1 - p) ** beta2 * nll, mask)


def ceu_loss(logits: torch.Tensor, labels: torch.Tensor, skip_first: int = 1) -> torch.Tensor:
    """CE-U (``ceu.py``): cross-entropy to the model's own distribution with the true token's
    logit set to -inf (detached), at every answer token but the first ``skip_first`` of each
    answer (the one predicted from the prompt alone, which the paper leaves out)."""
    valid = labels != IGNORE
    first = valid & (valid.long().cumsum(-1) <= skip_first)
    logits, labels = shift(logits, labels.masked_fill(first, IGNORE))
    mask = labels != IGNORE
    z = logits.float()
    target_logits = z.detach().scatter(-1, labels.masked_fill(~mask, 0).unsqueeze(-1), float("-inf"))
    target = torch.softmax(target_logits, -1)
    ce = -(target * torch.log_softmax(z, -1)).sum(-1)
    return _pooled(ce, mask)


def pdu_forget_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """PDU's forget loss (``pdu.py``): the squared gap between the largest logit and the mean
    logit, ``(max_v z_tv - mean_v z_tv)^2``, at the positions of the answer tokens themselves
    (no shift, as its code): flattening the logits leaves no preferred next token."""
    z = logits.float()
    margin = (z.max(-1).values - z.mean(-1)) ** 2
    return _pooled(margin, labels != IGNORE)


def dual_ascent(multiplier: float, retain_loss: float, epsilon: float, step_size: float) -> float:
    """PDU's dual step: ``λ ← max(0, λ + η (L_retain - ε))``: λ grows while the retain loss
    breaks its bound ε and falls back to 0 once it holds."""
    return max(0.0, multiplier + step_size * (retain_loss - epsilon))
