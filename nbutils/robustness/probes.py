"""How much a model shows of the forget set's answers, asked plainly or through a prompting
probe (REFERENCE §6; Lynch et al. 2024 extracted WHP's "forgotten" knowledge this way).

Every probe changes only what comes *before* the answer, so one measurement serves all:
``P̃(answer | prompt) = exp(mean_t log p(a_t))`` (teacher-forced, EOS included, as TOFU's
probability) and the ROUGE-L recall of the greedy answer against the true one (TOFU's ROUGE).

- ``plain``: the question as the evaluation asks it;
- ``paraphrase``: TOFU's ``paraphrased_question`` (a model that only learnt to dodge the
  exact wording answers the paraphrase);
- ``prefill``: the start of a compliant answer put in the model's mouth ("Sure, here is the
  answer:"), the true answer scored after it;
- ``in_context``: a few other forget QA pairs of the same author shown before the question
  (the hint a user can give to jog the model's memory).
"""

from __future__ import annotations

import numpy as np

from ..evaluation.generation import generate_from_prompt_ids
from ..evaluation.rouge import _scorer
from ..evaluation.scoring import encode_pair, score_encoded
from ..models.prompts import answer_text, encode_prompt
from ..profiles import Profile

PROBES = ("plain", "paraphrase", "prefill", "in_context")


def author_groups(rows: list[dict], per_author: int) -> list[int]:
    """The author index of each row: TOFU's forget configs list each author's QA together,
    ``per_author`` rows at a time (our world and locuslab/TOFU alike)."""
    return [i // per_author for i in range(len(rows))]


def in_context_question(rows: list[dict], i: int, groups: list[int], k: int) -> str:
    """Question ``i`` preceded by ``k`` other QA pairs of the same author (the next ones in
    order, wrapping round), as one user message."""
    same = [j for j in range(len(rows)) if groups[j] == groups[i] and j != i]
    start = sum(1 for j in same if j < i)  # the pairs after i first, so each item sees others
    picks = (same[start:] + same[:start])[:k]
    shots = "\n".join(f"Q: {rows[j]['question']}\nA: {rows[j]['answer']}" for j in picks)
    return f"{shots}\n\nQ: {rows[i]['question']}" if shots else rows[i]["question"]


def probe_prompts(tokenizer, rows: list[dict], probe: str, profile: Profile) -> list[list[int]]:
    """Token ids of what comes before each answer under ``probe``."""
    fmt, cfg = profile.prompt_format, profile.robustness
    if probe == "plain":
        return [encode_prompt(tokenizer, r["question"], fmt) for r in rows]
    if probe == "paraphrase":
        missing = [i for i, r in enumerate(rows) if not r.get("paraphrased_question")]
        if missing:
            raise ValueError(f"the paraphrase probe needs 'paraphrased_question' (TOFU's *_perturbed "
                             f"configs have it); rows {missing[:5]} have none")
        return [encode_prompt(tokenizer, r["paraphrased_question"], fmt) for r in rows]
    if probe == "prefill":
        start = tokenizer(answer_text(cfg.prefill, fmt), add_special_tokens=False)["input_ids"]
        return [encode_prompt(tokenizer, r["question"], fmt) + list(start) for r in rows]
    if probe == "in_context":
        groups = author_groups(rows, profile.qa_per_author)
        return [encode_prompt(tokenizer, in_context_question(rows, i, groups, cfg.in_context_examples), fmt)
                for i in range(len(rows))]
    raise ValueError(f"unknown probe {probe!r}; choose one of {PROBES}")


def knowledge(model, tokenizer, rows: list[dict], profile: Profile, probe: str = "plain",
              generate: bool = True) -> dict:
    """``{"prob", "rouge", "probs", "rouges", "generations"}`` of the rows' answers under
    ``probe`` (means and per-item values; ROUGE only when ``generate``)."""
    return knowledge_under_probes(model, tokenizer, rows, profile, (probe,), generate)[probe]


def knowledge_under_probes(model, tokenizer, rows: list[dict], profile: Profile,
                           probes=PROBES, generate: bool = True) -> dict[str, dict]:
    """:func:`knowledge` under each of ``probes``, all prompts scored in one pass and
    answered in one batched generation (a small model's time goes into per-step overhead)."""
    fmt = profile.prompt_format
    prompts, answers = [], []
    for probe in probes:
        prompts += probe_prompts(tokenizer, rows, probe, profile)
        # after a prefill the answer continues the model's own sentence: a space before it
        answers += [(" " + r["answer"].strip()) if probe == "prefill" else answer_text(r["answer"], fmt)
                    for r in rows]
    answer_ids = tokenizer(answers, add_special_tokens=False)["input_ids"]
    encoded = [encode_pair(tokenizer, p, "", fmt, answer_ids=a) for p, a in zip(prompts, answer_ids)]
    was_training = model.training
    model.eval()
    scores = score_encoded(model, encoded, tokenizer.pad_token_id, profile.eval_batch_size, stats=False)
    gens = _generate_by_length(model, tokenizer, prompts, profile) if generate else None
    model.train(was_training)
    out = {}
    scorer = _scorer(True)
    for k, probe in enumerate(probes):
        part = slice(k * len(rows), (k + 1) * len(rows))
        probs = [s.normalised_prob for s in scores[part]]
        out[probe] = {"prob": float(np.mean(probs)), "probs": probs}
        if gens is not None:
            g = gens[part]
            rouges = [scorer.score(r["answer"], x)["rougeL"].recall for r, x in zip(rows, g)]
            out[probe].update(rouge=float(np.mean(rouges)), rouges=rouges, generations=g)
    return out


def _generate_by_length(model, tokenizer, prompts: list[list[int]], profile: Profile) -> list[str]:
    """Greedy answers in the prompts' order, generated with prompts of similar length batched
    together (little left padding; as :func:`nbutils.evaluation.tofu.generate_split` does)."""
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    answers = generate_from_prompt_ids(model, tokenizer, [prompts[i] for i in order],
                                       profile.max_new_tokens, profile.eval_batch_size,
                                       profile.stop_at_newline)
    out = [""] * len(prompts)
    for i, a in zip(order, answers):
        out[i] = a
    return out
