"""How WHP is judged: familiarity with the books, and general knowledge kept.

- **Familiarity** (the paper's completion-based evaluation): the model continues prompts such
  as "Harry Potter's two best friends are"; a completion *reveals* the books when it names
  one of the prompt's revealing keywords (Ron, Hermione, ...) or any idiosyncratic term of
  the books (an anchored term, or the series' author) that the prompt did not already
  contain. The paper had GPT-4 grade completions; matching terms we wrote keeps the score
  reproducible offline. Familiarity is the fraction of revealing completions. Base models
  continue the raw text; chat models (``prompt_format="chat"``) get the prompt as the user's
  message, since an instruct model answers rather than continues. ``answer_prob`` adds a
  smooth view: the per-token probability ``exp(mean log p)`` of the revealing answer we wrote.
- **General knowledge**: a multiple-choice set with no Harry Potter content, each choice
  scored by its summed log-probability as the answer to the question (the
  ``acc`` of lm-evaluation-harness); the paper's ARC / BoolQ / HellaSwag play this role.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from ..models.prompts import CHAT_FORMATS, encode_prompt, encode_qa
from .generation import generate_continuations, generate_from_prompt_ids
from .scoring import IGNORE, score_encoded


SERIES_TERMS = ("Harry Potter", "Rowling")  # naming the series itself reveals it too


def _has(text: str, term: str, flags=0) -> bool:
    return re.search(r"(?<!\w)" + re.escape(term) + r"(?!\w)", text, flags) is not None


def reveals(completion: str, keywords, prompt: str = "", book_terms=()) -> bool:
    """True when ``completion`` names a revealing keyword (whole words, any case) or one of
    ``book_terms`` (whole words, as written) that ``prompt`` does not already contain."""
    # a term the prompt already holds proves nothing when the completion repeats it
    if any(_has(completion, k, re.IGNORECASE) and not _has(prompt, k, re.IGNORECASE) for k in keywords):
        return True
    return any(_has(completion, t) and not _has(prompt, t) for t in book_terms)


def book_terms() -> tuple[str, ...]:
    """The books' idiosyncratic terms: every anchored term, and the series itself."""
    from ..data.harry_potter import anchor_terms
    return tuple(anchor_terms()) + SERIES_TERMS


def clean_completion(text: str) -> str:
    """The completion up to its first blank line (what a reader would call the answer)."""
    return text.split("\n\n")[0].strip()


def _prompt_ids(tokenizer, prompt: str, prompt_format: str, prefill: str = "") -> list[int]:
    """The prompt's ids; for a chat model, a ``prefill`` starts the assistant's turn."""
    if prompt_format in CHAT_FORMATS:
        ids = encode_prompt(tokenizer, prompt, prompt_format)
        return ids + (list(tokenizer(prefill.strip(), add_special_tokens=False)["input_ids"]) if prefill else [])
    if prefill:
        raise ValueError("a prefill starts a chat model's answer; raw-text prompts have no answer turn")
    return list(tokenizer(prompt, add_special_tokens=True)["input_ids"])


def answer_probabilities(model, tokenizer, prompts: list[dict], batch_size: int = 32,
                         prompt_format: str = "raw") -> list[float]:
    """``exp(mean log p)`` of each prompt's revealing ``answer`` after the prompt (raw text,
    or the chat template's assistant turn for ``prompt_format="chat"``)."""
    encoded = []
    for p in prompts:
        prompt_ids = _prompt_ids(tokenizer, p["prompt"], prompt_format, p.get("prefill", ""))
        answer = p["answer"].strip() if prompt_format in CHAT_FORMATS else p["answer"]
        answer = " " + answer if p.get("prefill") else answer
        answer_ids = list(tokenizer(answer, add_special_tokens=False)["input_ids"])
        encoded.append((prompt_ids + answer_ids, [IGNORE] * len(prompt_ids) + answer_ids))
    scores = score_encoded(model, encoded, tokenizer.pad_token_id, batch_size, stats=False)
    return [s.normalised_prob for s in scores]


def familiarity(model, tokenizer, prompts: list[dict], max_new_tokens: int = 24,
                batch_size: int = 32, prompt_format: str = "raw") -> dict:
    """Greedy completions of the familiarity prompts and how many reveal the books (a
    prompt's ``prefill``, for chat models, starts the answer: the completion follows it)."""
    texts = [p["prompt"] for p in prompts]
    if prompt_format in CHAT_FORMATS:
        completions = generate_from_prompt_ids(
            model, tokenizer, [_prompt_ids(tokenizer, p["prompt"], prompt_format, p.get("prefill", ""))
                               for p in prompts],
            max_new_tokens=max_new_tokens, batch_size=batch_size, stop_at_newline=False)
    else:
        completions = generate_continuations(model, tokenizer, texts, max_new_tokens=max_new_tokens,
                                             batch_size=batch_size)
    completions = [clean_completion(c) for c in completions]
    terms = book_terms()
    flags = [reveals(c, p["reveal"], p.get("judge_prompt", p["prompt"]), terms)
             for c, p in zip(completions, prompts)]
    probs = answer_probabilities(model, tokenizer, prompts, batch_size, prompt_format)
    return {"familiarity": float(np.mean(flags)), "answer_prob": float(np.mean(probs)),
            "completions": completions, "revealed": flags, "answer_probs": probs}


def mc_accuracy(model, tokenizer, items: list[dict], prompt_format: str, batch_size: int = 32) -> dict:
    """Accuracy on multiple-choice ``items`` (question, choices, answer index): the choice
    with the highest summed log-probability as the answer (its EOS not scored) is picked."""
    encoded, owner = [], []
    for i, item in enumerate(items):
        for choice in item["choices"]:
            enc = encode_qa(tokenizer, item["question"], choice, prompt_format)
            labels = list(enc.labels)
            labels[-1] = IGNORE  # the closing EOS says nothing about the choice
            encoded.append((enc.input_ids, labels))
            owner.append(i)
    scores = score_encoded(model, encoded, tokenizer.pad_token_id, batch_size, stats=False)
    per_item: dict[int, list[float]] = {}
    for i, s in zip(owner, scores):
        per_item.setdefault(i, []).append(s.sum)
    picks = [int(np.argmax(per_item[i])) for i in range(len(items))]
    correct = [p == item["answer"] for p, item in zip(picks, items)]
    return {"mc_accuracy": float(np.mean(correct)), "picks": picks, "correct": correct}


def familiarity_format(profile) -> str:
    """How familiarity prompts are put to this profile's model: chat models get a user
    message, base models continue raw text."""
    return profile.prompt_format if profile.prompt_format in CHAT_FORMATS else "raw"


def evaluate_whp(model, tokenizer, profile, prompts: list[dict] | None = None,
                 items: list[dict] | None = None) -> dict:
    """Familiarity, answer probability and general MC accuracy of one model."""
    from ..data.harry_potter import familiarity_prompts, general_mc
    prompts = prompts if prompts is not None else familiarity_prompts()
    items = items if items is not None else general_mc()
    fam = familiarity(model, tokenizer, prompts, profile.whp.max_new_tokens, profile.eval_batch_size,
                      familiarity_format(profile))
    mc = mc_accuracy(model, tokenizer, items, profile.prompt_format, profile.eval_batch_size)
    return {**fam, **mc}


def with_hints(prompts: list[dict], k: int) -> list[dict]:
    """Each familiarity prompt preceded by ``k`` others completed with their revealing
    answers (the next ones in order, wrapping round, among those whose answers hold none of
    this prompt's revealing keywords): a hint that the text is about the books, given in
    context. A completion is still judged against the prompt itself (``judge_prompt``): the
    hint's own terms may be named, its answers cannot simply be copied."""
    out = []
    for i, p in enumerate(prompts):
        others = [prompts[(i + j) % len(prompts)] for j in range(1, len(prompts))]
        shots = [o for o in others if not any(_has(o["answer"], kw, re.IGNORECASE) for kw in p["reveal"])][:k]
        prefix = " ".join(f"{s['prompt']}{s['answer'].rstrip('.')}." for s in shots)
        out.append({**p, "prompt": f"{prefix} {p['prompt']}", "judge_prompt": p["prompt"]})
    return out


def completions_table(prompts: list[dict], columns: dict[str, list[str]]) -> pd.DataFrame:
    """The WHP model card's table: one row per prompt, one column per model."""
    df = pd.DataFrame({"prompt": [p["prompt"] for p in prompts], **columns})
    return df.set_index("prompt")


def ensure_whp_eval(profile, model_path, name: str, quantization: str | None = None,
                    hints: int = 0, prefill: str = "") -> dict:
    """:func:`evaluate_whp` of the checkpoint at ``model_path``, computed once and cached.
    ``quantization`` (``"int8"``, ``"nf4"``, ``"fp4"``) reloads it in bitsandbytes weights;
    ``hints`` puts that many other familiarity prompts, completed with their answers, before
    each prompt (the in-context probe of Lynch et al. 2024); ``prefill`` starts a chat model's
    answer with it."""
    from ..data.harry_potter import familiarity_prompts, general_mc
    from ..models.loading import load_model, load_tokenizer
    from ..models.precision import model_precision
    from ..paths import artifact_dir, config_key, read_cached_json, write_json
    from .tofu import eval_key
    # the prompts and questions are part of the key: a baseline scored on an older prompt set
    # must not be compared with a model scored on the current one
    key = eval_key(profile, model_path) | {
        "whp": profile.whp.max_new_tokens, "whp_eval": 3,
        "questions": config_key({"prompts": familiarity_prompts(), "mc": general_mc()})}
    if quantization or hints or prefill:  # (plain keys stay as they were: cached ones remain valid)
        key |= {"quantization": quantization, "hints": hints, "hints_version": 2, "prefill": prefill}
    folder = artifact_dir("eval", f"{name}-whp" + (f"-{quantization}" if quantization else "")
                          + (f"-hints{hints}" if hints else "") + ("-prefill" if prefill else ""), key)
    cached = folder / "WHP_EVAL.json"
    result = read_cached_json(cached)
    if result is not None:
        return result
    model = load_model(str(model_path), profile, load_in_4bit=False, quantization=quantization)
    tokenizer = load_tokenizer(str(model_path), profile)
    prompts = with_hints(familiarity_prompts(), hints) if hints else familiarity_prompts()
    if prefill:
        prompts = [{**p, "prefill": prefill} for p in prompts]
    result = evaluate_whp(model, tokenizer, profile, prompts)
    result["precision"] = model_precision(model)
    write_json(cached, result, default=float)
    return result


def training_probe(profile, tokenizer):
    """Familiarity, answer probability and MC accuracy of a model in training: what WHP's
    fine-tune records every few steps (``probe`` of :func:`nbutils.unlearning.whp.pipeline.build_whp_model`)."""
    def probe(model) -> dict:
        r = evaluate_whp(model, tokenizer, profile)
        return {k: r[k] for k in ("familiarity", "answer_prob", "mc_accuracy")}
    return probe
