"""Batched greedy generation: left padding, KV cache, stop at EOS (or a newline); and the
quick check of greedy answers, their ROUGE-L recall (:func:`rouge_recall_on`)."""

from __future__ import annotations

import numpy as np
import torch
from transformers import StoppingCriteria, StoppingCriteriaList

from ..models.prompts import encode_prompt
from .rouge import rouge_l_recall


_NEWLINE_IDS: dict[tuple, frozenset] = {}


def newline_token_ids(tokenizer) -> frozenset:
    """Ids of every token whose text contains a newline (scanned once per vocabulary)."""
    key = (tokenizer.name_or_path or id(tokenizer), len(tokenizer))
    if key not in _NEWLINE_IDS:
        _NEWLINE_IDS[key] = frozenset(i for t, i in tokenizer.get_vocab().items()
                                      if "\n" in tokenizer.convert_tokens_to_string([t]))
    return _NEWLINE_IDS[key]


class StopOnNewline(StoppingCriteria):
    """Stops a sequence once it has produced a newline after the prompt (per row)."""

    def __init__(self, tokenizer, prompt_length: int):
        self.newline_ids = newline_token_ids(tokenizer)
        self.prompt_length = prompt_length

    def __call__(self, input_ids, scores, **kwargs):
        new = input_ids[:, self.prompt_length:]
        if not self.newline_ids or new.shape[1] == 0:
            return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        ids = torch.tensor(sorted(self.newline_ids), device=input_ids.device)
        return torch.isin(new, ids).any(dim=1)


def left_pad(sequences: list[list[int]], pad_token_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Ids and attention mask with every sequence ending at the same column (generation
    continues all rows from there)."""
    width = max(len(seq) for seq in sequences)
    ids = torch.full((len(sequences), width), pad_token_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, seq in enumerate(sequences):
        ids[i, width - len(seq):] = torch.tensor(seq)
        mask[i, width - len(seq):] = 1
    return ids, mask


def generate_answers(model, tokenizer, questions: list[str], prompt_format: str,
                     max_new_tokens: int = 200, batch_size: int = 32,
                     stop_at_newline: bool = True, progress: bool = False) -> list[str]:
    """Greedy answers to ``questions``; the text is cut at EOS and (optionally) a newline."""
    prompts = [encode_prompt(tokenizer, q, prompt_format) for q in questions]
    return generate_from_prompt_ids(model, tokenizer, prompts, max_new_tokens, batch_size,
                                    stop_at_newline, progress)


@torch.no_grad()
def generate_from_prompt_ids(model, tokenizer, prompts: list[list[int]], max_new_tokens: int = 200,
                             batch_size: int = 32, stop_at_newline: bool = True,
                             progress: bool = False) -> list[str]:
    """Greedy continuations of already tokenised prompts (a formatted question, perhaps with
    the start of an answer after it), cut at EOS and (optionally) a newline."""
    from tqdm.auto import tqdm
    model.eval()
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id
    answers: list[str] = []
    batches = range(0, len(prompts), batch_size)
    for start in tqdm(batches, desc="generating", disable=not progress):
        ids, mask = left_pad(prompts[start:start + batch_size], pad)
        width = ids.shape[1]
        stopping = StoppingCriteriaList([StopOnNewline(tokenizer, width)]) if stop_at_newline else None
        out = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device),
                             max_new_tokens=max_new_tokens, do_sample=False, use_cache=True,
                             pad_token_id=pad, eos_token_id=tokenizer.eos_token_id,
                             stopping_criteria=stopping)
        for row in out[:, width:]:
            text = tokenizer.decode(row, skip_special_tokens=True)
            answers.append(text.split("\n")[0].strip() if stop_at_newline else text.strip())
    return answers


def fit_context(ids: list[int], model, max_new_tokens: int, bos_token_id: int | None,
                max_prompt_tokens: int | None = None) -> list[int]:
    """``ids`` with their oldest tokens dropped (a leading BOS kept) down to
    ``max_prompt_tokens`` and to what leaves ``max_new_tokens`` inside the model's positions
    (``max_position_embeddings``): a continuation depends on the text just before it, a model
    trained on blocks of L tokens never saw a longer context, and positions past the model's
    last are garbage or an error. Prompts that fit are returned unchanged."""
    limit = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    room = min(limit - max_new_tokens if limit else len(ids), max_prompt_tokens or len(ids))
    if len(ids) <= room:
        return ids
    if room < 2:
        raise ValueError(f"{max_new_tokens} new tokens leave no room for a prompt in the model's "
                         f"{limit} positions; generate fewer tokens")
    keep_bos = bos_token_id is not None and ids[0] == bos_token_id
    return [ids[0], *ids[len(ids) - room + 1:]] if keep_bos else ids[len(ids) - room:]


@torch.no_grad()
def generate_continuations(model, tokenizer, prompts: list[str], max_new_tokens: int = 128,
                           batch_size: int = 32, progress: bool = False,
                           stop_strings: tuple[str, ...] = (),
                           max_prompt_tokens: int | None = None) -> list[str]:
    """Greedy continuations of raw text ``prompts`` (MUSE): no prompt format, no newline stop.

    Each prompt is tokenised as muse_bench does (``add_special_tokens=True``), the batch is
    left-padded, generation stops at EOS or after ``max_new_tokens``, and only the new tokens
    are decoded with ``skip_special_tokens=True``, unstripped. (muse_bench also passes
    ``clean_up_tokenization_spaces=True``; transformers 5 ignores it for BPE tokenizers, and it
    only moves spaces before punctuation, which ROUGE's tokenizer drops anyway.)
    ``stop_strings`` only saves time: a row stops once its text contains one of them, and the
    caller still cuts the text there (the text before a stop string never changes later).
    A prompt longer than ``max_prompt_tokens`` or than the model's positions allow keeps its
    latest tokens (:func:`fit_context`).
    """
    from tqdm.auto import tqdm
    model.eval()
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id
    outputs: list[str] = []
    for start in tqdm(range(0, len(prompts), batch_size), desc="generating", disable=not progress):
        encoded = [fit_context(list(tokenizer(p, add_special_tokens=True)["input_ids"]), model,
                               max_new_tokens, tokenizer.bos_token_id, max_prompt_tokens)
                   for p in prompts[start:start + batch_size]]
        ids, mask = left_pad(encoded, pad)
        width = ids.shape[1]
        stopping = (StoppingCriteriaList([StopOnStrings(tokenizer, width, stop_strings)])
                    if stop_strings else None)
        out = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device),
                             max_new_tokens=max_new_tokens, do_sample=False, use_cache=True,
                             pad_token_id=pad, eos_token_id=tokenizer.eos_token_id,
                             stopping_criteria=stopping)
        outputs += tokenizer.batch_decode(out[:, width:], skip_special_tokens=True)
    return outputs


class StopOnStrings(StoppingCriteria):
    """Stops a row once its decoded new text contains any of ``stops`` (per row)."""

    def __init__(self, tokenizer, prompt_length: int, stops: tuple[str, ...]):
        self.tokenizer, self.prompt_length, self.stops = tokenizer, prompt_length, tuple(stops)

    def __call__(self, input_ids, scores, **kwargs):
        texts = self.tokenizer.batch_decode(input_ids[:, self.prompt_length:], skip_special_tokens=True)
        return torch.tensor([any(s in t for s in self.stops) for t in texts],
                            dtype=torch.bool, device=input_ids.device)


def rouge_recall_on(model, tokenizer, rows, profile, limit: int | None = None) -> dict:
    """Greedy answers to ``rows`` (dicts or a Dataset with question/answer) and their mean
    ROUGE-L recall against the true answers, as TOFU computes it."""
    rows = list(rows)[:limit] if limit else list(rows)
    questions = [r["question"] for r in rows]
    answers = [r["answer"] for r in rows]
    generated = generate_answers(model, tokenizer, questions, profile.prompt_format,
                                 profile.max_new_tokens, profile.eval_batch_size,
                                 stop_at_newline=profile.stop_at_newline)
    scores = rouge_l_recall(answers, generated)
    return {"rougeL_recall": float(np.mean(scores)), "scores": scores, "generated": generated,
            "questions": questions, "answers": answers}
