"""One teacher-forced pass that serves every log-probability metric.

Every TOFU, memorisation and membership-inference metric needs, per answer token, the same
few numbers from one forward pass: ``log p(y_t)``, whether the argmax equals ``y_t``, and
(for Min-K%++) the mean and spread of ``log p`` under the model's own distribution. We
compute them once per (prompt, answer) pair, for many pairs at a time:

- pairs are sorted by length and cut into batches, so padding is small;
- a question's answer, paraphrased answer and perturbed answers are just more pairs in
  the same pass;
- nothing is recomputed: each metric reads the :class:`TokenScores` it needs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..models.prompts import answer_text, encode_prompt
from ..unlearning.losses import IGNORE


@dataclass
class TokenScores:
    """Per answer token (EOS included) of one (prompt, answer) pair."""

    logprobs: np.ndarray  # log p(y_t | prefix)
    correct: np.ndarray  # teacher-forced argmax == y_t
    mu: np.ndarray  # E_v[log p_v] under the model's distribution at t (Min-K%++)
    sigma: np.ndarray  # its standard deviation (variance clamped at 1e-6)

    @property
    def n(self) -> int:
        return len(self.logprobs)

    @property
    def sum(self) -> float:
        """``S(a|q)``: the summed log-probability."""
        return float(self.logprobs.sum())

    @property
    def normalised_prob(self) -> float:
        """``P̃(a|q) = exp(S/|a|)``."""
        return float(np.exp(self.logprobs.mean()))


def encode_pair(tokenizer, prompt_ids: list[int], answer: str, prompt_format: str,
                max_length: int | None = None) -> tuple[list[int], list[int]]:
    """Ids and labels (-100 on the prompt) for a prompt and an answer with EOS."""
    answer_ids = list(tokenizer(answer_text(answer, prompt_format), add_special_tokens=False)["input_ids"])
    answer_ids.append(tokenizer.eos_token_id)
    ids = prompt_ids + answer_ids
    labels = [IGNORE] * len(prompt_ids) + answer_ids
    if max_length is not None:
        ids, labels = ids[:max_length], labels[:max_length]
    return ids, labels


@torch.no_grad()
def score_pairs(model, tokenizer, pairs: list[tuple[str, str]], prompt_format: str,
                batch_size: int = 32, max_length: int | None = None,
                progress: bool = False) -> list[TokenScores]:
    """Teacher-forced :class:`TokenScores` of every ``(question, answer)`` pair, in order."""
    prompt_cache: dict[str, list[int]] = {}
    encoded = []
    for q, a in pairs:
        if q not in prompt_cache:
            prompt_cache[q] = encode_prompt(tokenizer, q, prompt_format)
        encoded.append(encode_pair(tokenizer, prompt_cache[q], a, prompt_format, max_length))
    return score_encoded(model, encoded, tokenizer.pad_token_id, batch_size, progress)


@torch.no_grad()
def score_texts(model, tokenizer, texts: list[str], batch_size: int = 32,
                max_length: int | None = None, progress: bool = False) -> list[TokenScores]:
    """Raw text (MUSE, MIA on documents): every token after the first is scored."""
    encoded = []
    for t in texts:
        ids = list(tokenizer(t, add_special_tokens=True)["input_ids"])
        if max_length is not None:
            ids = ids[:max_length]
        labels = [IGNORE] + ids[1:]
        encoded.append((ids, labels))
    return score_encoded(model, encoded, tokenizer.pad_token_id, batch_size, progress)


@torch.no_grad()
def score_encoded(model, encoded: list[tuple[list[int], list[int]]], pad_token_id: int,
                  batch_size: int = 32, progress: bool = False) -> list[TokenScores]:
    from tqdm.auto import tqdm
    model.eval()
    device = next(model.parameters()).device
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i][0]))  # length buckets
    results: list[TokenScores | None] = [None] * len(encoded)
    starts = range(0, len(order), batch_size)
    for start in tqdm(starts, desc="scoring", disable=not progress):
        idx = order[start:start + batch_size]
        width = max(len(encoded[i][0]) for i in idx)
        ids = torch.full((len(idx), width), pad_token_id, dtype=torch.long)
        labels = torch.full((len(idx), width), IGNORE, dtype=torch.long)
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        for row, i in enumerate(idx):
            n = len(encoded[i][0])
            ids[row, :n] = torch.tensor(encoded[i][0])
            labels[row, :n] = torch.tensor(encoded[i][1])
            mask[row, :n] = 1
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits[:, :-1].float()
        target = labels[:, 1:].to(device)
        logp_all = torch.log_softmax(logits, -1)
        valid = target != IGNORE
        logp = logp_all.gather(-1, target.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        correct = logits.argmax(-1) == target
        p_all = logp_all.exp()
        mu = (p_all * logp_all).sum(-1)
        var = (p_all * logp_all.square()).sum(-1) - mu.square()
        sigma = var.clamp(min=1e-6).sqrt()
        for row, i in enumerate(idx):
            keep = valid[row]
            results[i] = TokenScores(
                logprobs=logp[row][keep].cpu().numpy(), correct=correct[row][keep].cpu().numpy(),
                mu=mu[row][keep].cpu().numpy(), sigma=sigma[row][keep].cpu().numpy())
    return results  # type: ignore[return-value]
