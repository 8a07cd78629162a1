"""MUSE's metrics (muse_bench), REFERENCE §3: VerbMem, KnowMem and PrivLeak on raw text.

- **VerbMem** (verbatim memorisation): greedy 128 new tokens from each ``verbmem/forget``
  prompt; the reference is ``gt`` cut to its first 128 tokens; ROUGE-L F1 (no stemmer),
  mean x 100.
- **KnowMem** (knowledge memorisation on ``forget_qa``, utility on ``retain_qa``): a 10-shot
  prompt ``"Question: {q}\\nAnswer: {a}\\n\\n"`` x 10 from the ``*_icl`` split, then
  ``"Question: {q}\\nAnswer: "``; greedy 32 tokens, cut at ``"\\n\\n"``, ``"\\nQuestion"``,
  ``"Question:"``; ROUGE-L F1 against the answer, mean x 100.
- **PrivLeak**: Min-40% scores of ``privleak/forget`` vs ``privleak/holdout`` texts, AUC with
  forget = 0, compared with the retain model's AUC (:func:`~nbutils.evaluation.mia.privleak`).

Tokenisation and decoding follow muse_bench: prompts and ``gt`` are tokenised with
``add_special_tokens=True``, outputs and the cut ``gt`` decoded with
``skip_special_tokens=True`` (muse_bench's ``clean_up_tokenization_spaces=True`` is ignored for
BPE tokenizers by transformers 5 and would only remove spaces before punctuation, which ROUGE's
tokenizer drops anyway). MUSE evaluates base models on raw text, so the profile's chat/QA
prompt format is not applied here.
"""

from __future__ import annotations

import numpy as np

from ..models.precision import model_precision
from .generation import generate_continuations
from .mia import K, auc, min_k_score, privleak, roc
from .rouge import rouge_l_f1
from .scoring import score_texts

VERBMEM_TOKENS = 128
KNOWMEM_TOKENS = 32
KNOWMEM_STOPS = ("\n\n", "\nQuestion", "Question:")


def verbmem_reference(tokenizer, gt: str, max_tokens: int = VERBMEM_TOKENS) -> str:
    """``gt`` cut to its first ``max_tokens`` tokens and decoded (muse_bench's ``gt_short``)."""
    ids = list(tokenizer(gt, add_special_tokens=True)["input_ids"])[:max_tokens]
    return tokenizer.decode(ids, skip_special_tokens=True)


def knowmem_prompt(icl: list[dict], question: str) -> str:
    """The few-shot prompt: every ICL example, then the question with an open answer."""
    shots = "".join(f"Question: {x['question']}\nAnswer: {x['answer']}\n\n" for x in icl)
    return shots + f"Question: {question}\nAnswer: "


def cut_at_stops(text: str, stops=KNOWMEM_STOPS) -> str:
    """The text before the first occurrence of each stop string, in muse_bench's order."""
    for stop in stops:
        text = text.split(stop)[0]
    return text


def verbmem(model, tokenizer, rows, max_new_tokens: int = VERBMEM_TOKENS,
            batch_size: int = 32, max_prompt_tokens: int | None = None) -> dict:
    """VerbMem on ``{prompt, gt}`` rows: mean ROUGE-L F1 x 100, with the per-item details.
    ``max_prompt_tokens``: the training block length, the most context the model learnt a
    continuation from (a longer prompt keeps its latest tokens)."""
    rows = list(rows)
    prompts = [r["prompt"] for r in rows]
    refs = [verbmem_reference(tokenizer, r["gt"], max_new_tokens) for r in rows]
    outputs = generate_continuations(model, tokenizer, prompts, max_new_tokens, batch_size,
                                     max_prompt_tokens=max_prompt_tokens)
    f1 = rouge_l_f1(refs, outputs)
    return {"value": 100.0 * float(np.mean(f1)),
            "items": [{"prompt": p, "gt": g, "output": o, "rougeL_f1": s}
                      for p, g, o, s in zip(prompts, refs, outputs, f1)]}


def knowmem(model, tokenizer, rows, icl_rows, max_new_tokens: int = KNOWMEM_TOKENS,
            batch_size: int = 32) -> dict:
    """KnowMem on ``{question, answer}`` rows with ``icl_rows`` as the few-shot examples."""
    return _knowmem_many(model, tokenizer, [(rows, icl_rows)], max_new_tokens, batch_size)[0]


def _knowmem_many(model, tokenizer, sets, max_new_tokens: int, batch_size: int) -> list[dict]:
    """KnowMem of several ``(rows, icl_rows)`` sets with their prompts in shared batches (fewer
    generation calls; each prompt is generated exactly as on its own)."""
    sets = [(list(rows), list(icl)) for rows, icl in sets]
    prompts = [knowmem_prompt(icl, r["question"]) for rows, icl in sets for r in rows]
    outputs = [cut_at_stops(o) for o in
               generate_continuations(model, tokenizer, prompts, max_new_tokens, batch_size,
                                      stop_strings=KNOWMEM_STOPS)]
    results, start = [], 0
    for rows, _ in sets:
        out = outputs[start:start + len(rows)]
        start += len(rows)
        answers = [r["answer"] for r in rows]
        f1 = rouge_l_f1(answers, out)
        results.append({"value": 100.0 * float(np.mean(f1)),
                        "items": [{"question": r["question"], "answer": a, "output": o, "rougeL_f1": x}
                                  for r, a, o, x in zip(rows, answers, out, f1)]})
    return results


def text_min_k_auc(model, tokenizer, forget_texts: list[str], holdout_texts: list[str],
                   k: float = K, batch_size: int = 32, max_length: int | None = None) -> dict:
    """Min-K% (k=0.4) scores of raw forget vs holdout texts and their AUC (forget = 0)."""
    scored = score_texts(model, tokenizer, list(forget_texts) + list(holdout_texts),
                         batch_size=batch_size, max_length=max_length)
    s = np.array([min_k_score(t, k) for t in scored])
    f, h = s[:len(forget_texts)], s[len(forget_texts):]
    return {"auc": auc(f, h), "forget": f.tolist(), "holdout": h.tolist(), "roc": roc(f, h), "k": k}


def evaluate_muse(model, tokenizer, profile, retain_auc: float | None = None,
                  verbmem_tokens: int = VERBMEM_TOKENS, knowmem_tokens: int = KNOWMEM_TOKENS,
                  batch_size: int | None = None, source: str | None = None, k: float = K,
                  max_length: int | None = None, corpus: str = "news",
                  verbmem_prompt_tokens: int | None = None) -> dict:
    """VerbMem_f, KnowMem_f, KnowMem_r and PrivLeak of one model (MUSE's table row).

    ``retain_auc`` is the retain model's Min-K AUC on the same privleak texts (the ``auc``
    this function returns for the retain model). Without it ``PrivLeak`` is ``None``, never a
    guess; for the retain model itself it is ``privleak(auc, auc) = 0``. ``corpus`` is
    ``"news"`` or ``"books"`` (:func:`~nbutils.data.muse.muse_source` says where it comes
    from); ``source`` picks another MUSE source (a hub id such as ``muse-bench/MUSE-Books``,
    or a folder in its layout) instead. ``verbmem_prompt_tokens`` cuts VerbMem prompts to
    their latest tokens (:func:`verbmem`; the training block length).
    """
    from ..data.muse import load_muse
    bs = batch_size or profile.eval_batch_size

    def load(config, split):
        return load_muse(profile, config, split, source=source, corpus=corpus)

    vm = verbmem(model, tokenizer, load("verbmem", "forget"), verbmem_tokens, bs, verbmem_prompt_tokens)
    km_f, km_r = _knowmem_many(
        model, tokenizer, [(load("knowmem", "forget_qa"), load("knowmem", "forget_qa_icl")),
                           (load("knowmem", "retain_qa"), load("knowmem", "retain_qa_icl"))],
        knowmem_tokens, bs)
    mia = text_min_k_auc(model, tokenizer, [r["text"] for r in load("privleak", "forget")],
                         [r["text"] for r in load("privleak", "holdout")], k, bs, max_length)
    return {
        "VerbMem_f": vm["value"], "KnowMem_f": km_f["value"], "KnowMem_r": km_r["value"],
        "PrivLeak": privleak(mia["auc"], retain_auc) if retain_auc is not None else None,
        "auc": mia["auc"],
        "items": {"verbmem_f": vm["items"], "knowmem_f": km_f["items"], "knowmem_r": km_r["items"],
                  "privleak": {"forget": mia["forget"], "holdout": mia["holdout"], "roc": mia["roc"]}},
        "settings": {"verbmem_tokens": verbmem_tokens, "knowmem_tokens": knowmem_tokens, "k": k,
                     "precision": model_precision(model), "corpus": corpus, "source": source},
    }


# --- MUSE as its own task: cached evaluations of the models trained on raw text -----------
MUSE_EVAL_VERSION = 1


def muse_eval_key(profile, model_path, corpus: str) -> dict:
    """What a cached MUSE evaluation depends on: the model's files, the corpus, the settings."""
    from ..data.muse import muse_eval_data_key
    from ..models.precision import resolve_precision
    from ..paths import checkpoint_identity
    model_path, files = checkpoint_identity(model_path)
    return {"model": model_path, "weights": files, "data": muse_eval_data_key(profile, corpus),
            "verbmem_tokens": profile.muse.verbmem_tokens, "knowmem_tokens": profile.muse.knowmem_tokens,
            "verbmem_prompt_tokens": verbmem_prompt_limit(profile, corpus),
            "precision": resolve_precision(profile.precision), "version": MUSE_EVAL_VERSION}


def verbmem_prompt_limit(profile, corpus: str) -> int:
    """The context a VerbMem prompt keeps: the block length the MUSE models trained on
    (``muse.block_length``, muse_bench's 2048 by default): a model never learnt a
    continuation from more."""
    from ..profiles import for_corpus
    return for_corpus(profile, corpus).muse.block_length


def ensure_muse_eval(profile, model_path, name: str, corpus: str = "news",
                     retain_auc: float | None = None, quantization: str | None = None) -> dict:
    """:func:`evaluate_muse` of the checkpoint at ``model_path`` on ``corpus``, computed once
    and cached under ``<cache>/eval/muse-<corpus>-<name>-<key>/``. PrivLeak is computed
    against ``retain_auc`` (the retrain model's ``auc``) on every call. ``quantization``
    (``"int8"``, ``"nf4"``, ``"fp4"``) evaluates the model reloaded in bitsandbytes weights."""
    from ..models.loading import load_model, load_tokenizer
    from ..paths import artifact_dir, read_cached_json, write_json
    from ..profiles import for_corpus
    profile = for_corpus(profile, corpus)
    key = muse_eval_key(profile, model_path, corpus)
    if quantization:  # (unquantized keys stay as they were: cached evaluations remain valid)
        key["quantization"] = quantization
    folder = artifact_dir("eval", f"muse-{corpus}-{name}" + (f"-{quantization}" if quantization else ""), key)
    path = folder / "MUSE_EVAL.json"
    result = read_cached_json(path)
    if result is None:
        model = load_model(str(model_path), profile, load_in_4bit=False, quantization=quantization)
        tokenizer = load_tokenizer(str(model_path), profile)
        result = evaluate_muse(model, tokenizer, profile, None, profile.muse.verbmem_tokens,
                               profile.muse.knowmem_tokens, corpus=corpus,
                               verbmem_prompt_tokens=verbmem_prompt_limit(profile, corpus))
        result["settings"]["model"] = str(model_path)
        write_json(path, result)
        del model
    result["PrivLeak"] = privleak(result["auc"], retain_auc) if retain_auc is not None else None
    return result
