"""Quick checks used before the full evaluation notebooks: ROUGE-L recall of greedy answers."""

from __future__ import annotations

import numpy as np
import torch

from .generation import generate_answers
from .rouge import rouge_l_recall


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


@torch.no_grad()
def next_token_distribution(model, tokenizer, prompt_ids: list[int], k: int = 10):
    """Top-k next tokens and their probabilities after ``prompt_ids``."""
    device = next(model.parameters()).device
    logits = model(torch.tensor([prompt_ids], device=device)).logits[0, -1]
    probs = torch.softmax(logits.float(), -1)
    top = torch.topk(probs, k)
    return ([tokenizer.decode([i]) for i in top.indices.tolist()], top.values.tolist())
