"""Fluency: forgetting that turns answers into gibberish is not forgetting to admire.

Two numbers per generated answer, beside the forget metrics:

- **perplexity under a reference model** (the model before unlearning): ``exp(-mean_t log
  p_ref(g_t | question, g_<t))`` of the generated answer ``g`` as an answer to its question.
  A fluent answer, right or wrong, is ordinary text to the reference; "cooo cooo" is not;
- **repetition rate**: the share of word n-grams (n = 3) that repeat an earlier n-gram of the
  same answer (0: none; degenerate loops approach 1);

and the share of empty answers.
"""

from __future__ import annotations

import numpy as np
import torch

from ..evaluation.scoring import encode_pair, score_encoded
from ..models.prompts import answer_text, encode_prompt


def repetition_rate(text: str, n: int = 3) -> float:
    """Share of the word ``n``-grams of ``text`` that already occurred in it (0 for texts
    shorter than ``n + 1`` words)."""
    words = text.lower().split()
    grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
    if len(grams) < 2:
        return 0.0
    seen, repeats = set(), 0
    for g in grams:
        repeats += g in seen
        seen.add(g)
    return repeats / len(grams)


@torch.no_grad()
def answer_perplexities(reference_model, tokenizer, questions: list[str], answers: list[str],
                        prompt_format: str, batch_size: int = 32) -> list[float]:
    """Perplexity of each ``answer`` after its question under ``reference_model`` (``prompt_format``
    ``"raw"``: the answer continues the question's text as it is; EOS not
    scored: an answer cut by the length limit is not penalised for lacking one; NaN for an
    empty answer)."""
    encoded = []
    for q, a in zip(questions, answers):
        if not a.strip():
            continue
        if prompt_format == "raw":  # WHP's familiarity prompts on a base model: text continued as is
            prompt = list(tokenizer(q, add_special_tokens=True)["input_ids"])
            # a stripped completion continues the prompt after a space, as it was generated
            answer_ids = tokenizer(a if a[:1].isspace() else " " + a, add_special_tokens=False)["input_ids"]
        else:
            prompt = encode_prompt(tokenizer, q, prompt_format)
            answer_ids = tokenizer(answer_text(a, prompt_format), add_special_tokens=False)["input_ids"]
        ids, labels = encode_pair(tokenizer, prompt, a, prompt_format, answer_ids=answer_ids)
        labels = labels[:-1] + [-100]  # the closing EOS is ours, not the model's
        encoded.append((ids, labels))
    scores = score_encoded(reference_model, encoded, tokenizer.pad_token_id, batch_size, stats=False)
    it = iter(scores)
    return [float(np.exp(-next(it).logprobs.mean())) if a.strip() else float("nan") for a in answers]


def fluency(reference_model, tokenizer, questions: list[str], answers: list[str],
            prompt_format: str, batch_size: int = 32) -> dict:
    """Median perplexity under the reference, mean repetition rate and share of empty answers
    (the median: one runaway answer should not decide a method's row)."""
    ppl = answer_perplexities(reference_model, tokenizer, questions, answers, prompt_format, batch_size)
    finite = [p for p in ppl if np.isfinite(p)]
    return {"perplexity": float(np.median(finite)) if finite else float("nan"),
            "repetition": float(np.mean([repetition_rate(a) for a in answers])) if answers else 0.0,
            "empty": float(np.mean([not a.strip() for a in answers])) if answers else 0.0,
            "perplexities": ppl}
