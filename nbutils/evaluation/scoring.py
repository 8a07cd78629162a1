"""One teacher-forced pass that serves every log-probability metric.

Every TOFU, memorisation and membership-inference metric needs, per answer token, the same
few numbers from one forward pass: ``log p(y_t)``, whether the argmax equals ``y_t``, and
(for Min-K%++) the mean and spread of ``log p`` under the model's own distribution. We
compute them once per (prompt, answer) pair, for many pairs at a time:

- pairs are sorted by length and cut into batches, so padding is small;
- a question's answer, paraphrased answer and perturbed answers are just more pairs in
  the same pass, and share one run of their prompt (KV cache) within a batch;
- vocabulary-wide work (log-softmax, argmax, mu, sigma) happens at answer tokens only;
- nothing is recomputed: each metric reads the :class:`TokenScores` it needs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..models.prompts import IGNORE, answer_text, encode_prompt


@dataclass
class TokenScores:
    """Per answer token (EOS included) of one (prompt, answer) pair."""

    logprobs: np.ndarray  # log p(y_t | prefix)
    correct: np.ndarray  # teacher-forced argmax == y_t
    mu: np.ndarray | None  # E_v[log p_v] under the model's distribution at t (Min-K%++)
    sigma: np.ndarray | None  # its standard deviation (variance clamped at 1e-6); None if stats=False

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
                max_length: int | None = None,
                answer_ids: list[int] | None = None) -> tuple[list[int], list[int]]:
    """Ids and labels (-100 on the prompt) for a prompt and an answer with EOS
    (``answer_ids``: the answer text already tokenised, without EOS)."""
    if answer_ids is None:
        answer_ids = tokenizer(answer_text(answer, prompt_format), add_special_tokens=False)["input_ids"]
    answer_ids = list(answer_ids) + [tokenizer.eos_token_id]
    ids = prompt_ids + answer_ids
    labels = [IGNORE] * len(prompt_ids) + answer_ids
    if max_length is not None:
        ids, labels = ids[:max_length], labels[:max_length]
    return ids, labels


@torch.no_grad()
def score_pairs(model, tokenizer, pairs: list[tuple[str, str]], prompt_format: str,
                batch_size: int = 32, max_length: int | None = None,
                progress: bool = False, stats: bool = True) -> list[TokenScores]:
    """Teacher-forced :class:`TokenScores` of every ``(question, answer)`` pair, in order.
    ``stats=False`` skips ``mu``/``sigma`` (only Min-K%++ needs them)."""
    prompt_cache: dict[str, list[int]] = {}
    # one tokenizer call for every answer
    answer_ids = tokenizer([answer_text(a, prompt_format) for _, a in pairs],
                           add_special_tokens=False)["input_ids"] if pairs else []
    for q, _ in pairs:
        if q not in prompt_cache:
            prompt_cache[q] = encode_prompt(tokenizer, q, prompt_format)
    if max_length is None and len(prompt_cache) < len(pairs):
        # questions with several answers (TOFU): each prompt is run once per batch
        prompt_index = {q: k for k, q in enumerate(prompt_cache)}
        try:
            return score_shared_prompts(
                model, list(prompt_cache.values()), [prompt_index[q] for q, _ in pairs],
                [list(a) + [tokenizer.eos_token_id] for a in answer_ids],
                tokenizer.pad_token_id, batch_size, progress, stats)
        except (TypeError, AttributeError, NotImplementedError):
            pass  # a model without a reorderable KV cache: score full sequences
    encoded = [encode_pair(tokenizer, prompt_cache[q], a, prompt_format, max_length, a_ids)
               for (q, a), a_ids in zip(pairs, answer_ids)]
    return score_encoded(model, encoded, tokenizer.pad_token_id, batch_size, progress, stats)


def _token_scores(logits, target, valid, stats: bool):
    """Per scored position (``valid``): log p(label), argmax == label, mu, sigma (numpy)."""
    logits, target = logits[valid].float(), target[valid]  # [N, V]: scored positions only
    logp_all = torch.log_softmax(logits, -1)
    logp = logp_all.gather(-1, target.unsqueeze(-1)).squeeze(-1)
    correct = logits.max(-1).indices == target  # = argmax (first maximum), faster on CPU
    mu = sigma = None
    if stats:
        p_all = logp_all.exp()
        mu = (p_all * logp_all).sum(-1)
        var = (p_all * logp_all.square()).sum(-1) - mu.square()
        sigma = var.clamp(min=1e-6).sqrt()
    return tuple(None if t is None else t.cpu().numpy() for t in (logp, correct, mu, sigma))


def _split_rows(idx, results, valid, logp, correct, mu, sigma) -> None:
    ends = np.cumsum(valid.sum(1).cpu().numpy())
    for row, i in enumerate(idx):
        a, b = (ends[row - 1] if row else 0), ends[row]
        results[i] = TokenScores(logprobs=logp[a:b], correct=correct[a:b],
                                 mu=None if mu is None else mu[a:b],
                                 sigma=None if sigma is None else sigma[a:b])


@torch.no_grad()
def score_shared_prompts(model, prompts: list[list[int]], prompt_of: list[int],
                         answers: list[list[int]], pad_token_id: int, batch_size: int = 32,
                         progress: bool = False, stats: bool = True) -> list[TokenScores]:
    """The :class:`TokenScores` of ``prompts[prompt_of[i]] + answers[i]`` for every i, with
    each batch's distinct prompts run once (left-padded, KV cache kept) and every answer
    continuing from its prompt's cache: a question's answer, paraphrase and perturbed
    answers share one prompt pass. Same numbers as :func:`score_encoded` up to float
    rounding; ``answers`` end with EOS."""
    from tqdm.auto import tqdm
    model.eval()
    device = next(model.parameters()).device
    # a question's answers next to each other (one prompt pass); questions whose answers
    # are of similar length together (little right padding in the answer pass)
    lengths: dict[int, list[int]] = {}
    for i, u in enumerate(prompt_of):
        lengths.setdefault(u, []).append(len(answers[i]))
    mean_length = {u: sum(v) / len(v) for u, v in lengths.items()}
    order = sorted(range(len(answers)),
                   key=lambda i: (mean_length[prompt_of[i]], prompt_of[i], len(answers[i])))
    results: list[TokenScores | None] = [None] * len(answers)
    for start in tqdm(range(0, len(order), batch_size), desc="scoring", disable=not progress):
        idx = order[start:start + batch_size]
        distinct = sorted({prompt_of[i] for i in idx})
        slot = {u: k for k, u in enumerate(distinct)}
        width = max(len(prompts[u]) for u in distinct)
        p_ids = torch.full((len(distinct), width), pad_token_id, dtype=torch.long)
        p_mask = torch.zeros((len(distinct), width), dtype=torch.long)
        for k, u in enumerate(distinct):  # left padding: every prompt ends at the same column
            p_ids[k, width - len(prompts[u]):] = torch.tensor(prompts[u])
            p_mask[k, width - len(prompts[u]):] = 1
        p_pos = (p_mask.cumsum(-1) - 1).clamp(min=0)
        kwargs = dict(input_ids=p_ids.to(device), attention_mask=p_mask.to(device),
                      position_ids=p_pos.to(device), use_cache=True)
        try:
            out = model(**kwargs, logits_to_keep=1)
        except TypeError:  # a model without logits_to_keep
            out = model(**kwargs)
        cache = out.past_key_values
        if cache is None or not hasattr(cache, "reorder_cache"):
            raise AttributeError("the model returns no reorderable KV cache")
        rows = torch.tensor([slot[prompt_of[i]] for i in idx])
        cache.reorder_cache(rows.to(device))  # one cache row per pair
        first = out.logits[:, -1][rows.to(device)]  # predicts each answer's first token
        a_width = max(len(answers[i]) for i in idx)
        target = torch.full((len(idx), a_width), IGNORE, dtype=torch.long)
        a_ids = torch.full((len(idx), a_width), pad_token_id, dtype=torch.long)
        a_mask = torch.zeros((len(idx), a_width), dtype=torch.long)
        for r, i in enumerate(idx):  # right padding after the prompt
            n = len(answers[i])
            target[r, :n] = a_ids[r, :n] = torch.tensor(answers[i])
            a_mask[r, :n] = 1
        target = target.to(device)
        valid = target != IGNORE
        # each answer's first token, predicted at the end of its prompt
        head = _token_scores(first.unsqueeze(1), target[:, :1], valid[:, :1], stats)
        if a_width > 1:  # the rest, continuing from the prompt's cache; EOS is not fed
            p_len = p_mask.sum(1)[rows]
            pos = p_len.unsqueeze(1) + torch.arange(a_width - 1).unsqueeze(0)
            rest = model(input_ids=a_ids[:, :-1].to(device),
                         attention_mask=torch.cat([p_mask[rows], a_mask[:, :-1]], 1).to(device),
                         position_ids=pos.to(device), past_key_values=cache,
                         use_cache=False).logits
            tail = _token_scores(rest, target[:, 1:], valid[:, 1:], stats)
            ends = np.cumsum(valid[:, 1:].sum(1).cpu().numpy())
            head = tuple(None if h is None else np.concatenate(
                [x for r in range(len(idx)) for x in (h[r:r + 1], t[(ends[r - 1] if r else 0):ends[r]])])
                for h, t in zip(head, tail))
        _split_rows(idx, results, valid, *head)
    return results  # type: ignore[return-value]


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
                  batch_size: int = 32, progress: bool = False,
                  stats: bool = True) -> list[TokenScores]:
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
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits[:, :-1]
        target = labels[:, 1:].to(device)
        valid = target != IGNORE
        _split_rows(idx, results, valid, *_token_scores(logits, target, valid, stats))
    return results  # type: ignore[return-value]


@torch.no_grad()
def next_token_distribution(model, tokenizer, prompt_ids: list[int], k: int = 10):
    """Top-k next tokens and their probabilities after ``prompt_ids``."""
    device = next(model.parameters()).device
    logits = model(torch.tensor([prompt_ids], device=device)).logits[0, -1]
    probs = torch.softmax(logits.float(), -1)
    top = torch.topk(probs, k)
    return ([tokenizer.decode([i]) for i in top.indices.tolist()], top.values.tolist())
