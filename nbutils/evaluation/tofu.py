"""The TOFU evaluation, as open-unlearning computes it: one call evaluates a model, one
cached call evaluates a checkpoint once.

Per split (the forget split's ``*_perturbed`` config, ``retain_perturbed``,
``real_authors_perturbed``, ``world_facts_perturbed``) there is **one** teacher-forced
scoring pass (:func:`~nbutils.evaluation.scoring.score_pairs`) over every pair the split
needs: ``(q, answer)``, ``(q, paraphrased_answer)`` and ``(q, perturbed_answer_k)`` for all
items, sorted into length buckets together. Every probability, truth-ratio and
memorisation metric reads those token scores; ROUGE-L recall (Porter stemmer) needs one
batched greedy generation per question, all splits together.

- the formulas (truth ratio, forget quality, model utility, ...): :mod:`.tofu_metrics`;
- the logs in open-unlearning's layout and :class:`TofuEval`: :mod:`.tofu_logs`;
- exact memorisation / extraction strength: :mod:`.memorisation`.

Membership inference (``mia_*``, ``privleak``) is not part of this module.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from ..models.precision import model_precision, resolve_precision
from ..paths import is_complete, mark_complete
from ..profiles import Profile
from .generation import generate_answers
from .scoring import score_pairs
from .tofu_logs import (SplitScores, TofuEval, TofuSplit, describe_reference,
                        finish_logs, split_logs)

EVAL_VERSION = 2  # 2: extraction strength as open-unlearning's loop (1/|y| floor)




def tofu_splits(profile: Profile) -> list[TofuSplit]:
    return [TofuSplit("forget", f"{profile.forget_split}_perturbed"),
            TofuSplit("retain", "retain_perturbed"),
            TofuSplit("ra", "real_authors_perturbed"),
            TofuSplit("wf", "world_facts_perturbed")]


_ROWS: dict[tuple, list[dict]] = {}


def tofu_rows(profile: Profile, config: str) -> list[dict]:
    """The rows of a TOFU config, loaded (and validated) once per process: evaluating many
    checkpoints re-reads nothing. Keyed by the data source and its files' sizes and times."""
    from ..data.tofu import ensure_tofu_source, load_tofu, local_load_kwargs
    source = ensure_tofu_source(profile)
    key = (source, config, json.dumps(local_load_kwargs(source), sort_keys=True))
    if key not in _ROWS:
        _ROWS[key] = [dict(r) for r in load_tofu(profile, config)]
    return _ROWS[key]


# --- one split -------------------------------------------------------------------------
def split_pairs(rows: list[dict], paraphrased: bool) -> tuple[list[tuple[str, str]], list[tuple]]:
    """All (question, answer) pairs of a split and, per item, where its answers sit:
    ``(answer index, paraphrased index or None, [perturbed indices])``."""
    pairs: list[tuple[str, str]] = []
    layout = []
    for row in rows:
        q = row["question"]
        a = len(pairs)
        pairs.append((q, row["answer"]))
        p = None
        if paraphrased:
            p = len(pairs)
            pairs.append((q, row["paraphrased_answer"]))
        w = list(range(len(pairs), len(pairs) + len(row["perturbed_answer"])))
        pairs.extend((q, x) for x in row["perturbed_answer"])
        layout.append((a, p, w))
    return pairs, layout


def score_split(model, tokenizer, rows: list[dict], split: TofuSplit, prompt_format: str,
                batch_size: int = 32, progress: bool = False) -> SplitScores:
    """One :func:`score_pairs` call over every pair of the split."""
    pairs, layout = split_pairs(rows, split.paraphrased)
    scores = score_pairs(model, tokenizer, pairs, prompt_format, batch_size=batch_size,
                         progress=progress, stats=False)  # TOFU needs no mu / sigma
    return SplitScores(answer=[scores[a] for a, _, _ in layout],
                       paraphrased=[scores[p] for _, p, _ in layout] if split.paraphrased else None,
                       perturbed=[[scores[j] for j in w] for _, _, w in layout])


def generate_split(model, tokenizer, questions: list[str], prompt_format: str,
                   max_new_tokens: int, batch_size: int, progress: bool = False,
                   stop_at_newline: bool = False) -> list[str]:
    """Greedy answers, batched with questions of similar length (less left padding)."""
    order = sorted(range(len(questions)), key=lambda i: len(questions[i]))
    answers = generate_answers(model, tokenizer, [questions[i] for i in order], prompt_format,
                               max_new_tokens=max_new_tokens, batch_size=batch_size,
                               stop_at_newline=stop_at_newline, progress=progress)
    out = [""] * len(questions)
    for i, a in zip(order, answers):
        out[i] = a
    return out


# --- entry points --------------------------------------------------------------------------
def evaluate_tofu(model, tokenizer, profile: Profile, reference=None, progress: bool = True,
                  batch_size: int | None = None) -> TofuEval:
    """Every TOFU metric of ``model`` on the profile's splits.

    ``reference``: the retain model's per-item forget truth ratios for forget quality (see
    :func:`load_reference`; :func:`nbutils.leaderboard.ensure_retain_eval` is the profile's
    retain model, trained and evaluated once); ``None`` leaves forget quality empty, as
    open-unlearning does without retain logs.
    """
    from ..data.tofu import check_splits
    check_splits(profile)  # forget quality and MIA mean nothing on splits that do not fit
    batch_size = batch_size or profile.eval_batch_size
    results: dict[str, dict] = {}
    sizes, seconds = {}, {"scoring": 0.0, "generation": 0.0}
    was_training = model.training  # scoring and generation switch to eval mode
    with torch.inference_mode():
        splits = [(split, tofu_rows(profile, split.config)) for split in tofu_splits(profile)]
        scores = {}
        for split, rows in splits:
            sizes[split.config] = len(rows)
            t0 = time.perf_counter()
            scores[split.config] = score_split(model, tokenizer, rows, split, profile.prompt_format,
                                               batch_size, progress)
            seconds["scoring"] += time.perf_counter() - t0
        # one generation call for every split's questions: batches stay full (4 small splits
        # would each take max_new_tokens decoding steps for a partly empty batch)
        t0 = time.perf_counter()
        gens = generate_split(model, tokenizer, [r["question"] for _, rows in splits for r in rows],
                              profile.prompt_format, profile.max_new_tokens, batch_size, progress,
                              stop_at_newline=profile.stop_at_newline)
        seconds["generation"] += time.perf_counter() - t0
        start = 0
        for split, rows in splits:
            results.update(split_logs(split, rows, scores[split.config], gens[start:start + len(rows)]))
            start += len(rows)
    model.train(was_training)
    logs = finish_logs(results, reference)
    meta = {"profile": profile.name, "forget_split": profile.forget_split,
            "prompt_format": profile.prompt_format, "max_new_tokens": profile.max_new_tokens,
            # whether answers were cut at their first newline (open-unlearning's are not)
            "stop_at_newline": profile.stop_at_newline,
            "precision": model_precision(model),
            "model": str(getattr(getattr(model, "config", None), "_name_or_path", "")),
            "split_sizes": sizes, "seconds": {k: round(v, 3) for k, v in seconds.items()},
            "reference": None if reference is None else describe_reference(reference),
            "eval_version": EVAL_VERSION}
    return TofuEval(logs, meta)


def eval_key(profile: Profile, model_path, revision: str | None = None) -> dict:
    """What a cached evaluation depends on: the model (path and its weight files' sizes
    and times; for a hub repo, the revision and the commit it points at in the hub cache)
    and the profile's data and evaluation settings."""
    from ..data.tofu import synthetic_data_key
    from ..models.hub import resolve_commit
    from ..models.loading import hub_arguments
    from ..paths import checkpoint_identity
    # where load_model reads it from: a checkpoint folder, an exported repo's snapshot, or
    # a hub repo id (then named by revision and the commit the hub cache holds for it)
    model_path, _ = hub_arguments(str(model_path), revision)
    model_path, weights = checkpoint_identity(model_path)
    if weights is None:
        weights = {"revision": revision or "main", "commit": resolve_commit(model_path, revision)}
    data = ({"hub_dataset": profile.hub_dataset} if profile.data_source == "hub" else
            synthetic_data_key(profile))
    return {"model": str(model_path), "weights": weights, "data": data,
            "forget_split": profile.forget_split, "prompt_format": profile.prompt_format,
            "max_new_tokens": profile.max_new_tokens, "stop_at_newline": profile.stop_at_newline,
            "precision": resolve_precision(profile.precision),
            "version": EVAL_VERSION}


def ensure_tofu_eval(profile: Profile, model_path, name: str, reference=None,
                     progress: bool = True, revision: str | None = None) -> TofuEval:
    """The TOFU evaluation of the checkpoint at ``model_path`` (a folder or a hub repo id, at
    ``revision``), computed once and cached under ``<cache>/eval/<name>-<key>/`` (key:
    :func:`eval_key`). The cached logs hold no forget quality; it is computed against
    ``reference`` on every call (cheap)."""
    from ..models.loading import load_model, load_tokenizer
    folder = artifact_dir_for_eval(profile, model_path, name, revision)
    ev = _load_cached(folder)
    if ev is None:
        model = load_model(str(model_path), profile, load_in_4bit=False, revision=revision)
        tokenizer = load_tokenizer(str(model_path), profile, revision)
        ev = evaluate_tofu(model, tokenizer, profile, progress=progress)
        ev.meta["model"] = str(model_path)
        ev.meta["revision"] = revision
        ev.save(folder)
        mark_complete(folder)  # the manifest last: a killed save is never read back
        del model
    return ev.with_reference(reference) if reference is not None else ev


def _load_cached(folder: Path) -> TofuEval | None:
    """The evaluation cached in ``folder``, or ``None`` when it is missing or damaged (a log
    deleted or cut short): then it is computed again, never half-read."""
    if not is_complete(folder):  # no manifest (never finished), or a log deleted or cut short
        return None
    try:
        return TofuEval.load(folder)
    except (OSError, ValueError) as error:  # a missing TOFU_EVAL.json, or broken JSON
        import warnings
        warnings.warn(f"{folder}: the cached evaluation cannot be read ({error}); it is computed again",
                      stacklevel=3)
        return None


def artifact_dir_for_eval(profile: Profile, model_path, name: str, revision: str | None = None) -> Path:
    from ..paths import artifact_dir
    return artifact_dir("eval", name, eval_key(profile, model_path, revision))
