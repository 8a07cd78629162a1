"""The TOFU evaluation, as open-unlearning computes and logs it.

Per split (the forget split's ``*_perturbed`` config, ``retain_perturbed``,
``real_authors_perturbed``, ``world_facts_perturbed``) there is **one** teacher-forced
scoring pass (:func:`~nbutils.evaluation.scoring.score_pairs`) over every pair the split
needs: ``(q, answer)``, ``(q, paraphrased_answer)`` and ``(q, perturbed_answer_k)`` for all
items, sorted into length buckets together. Every probability, truth-ratio and
memorisation metric reads those :class:`TokenScores`; ROUGE needs one batched greedy
generation per question. Definitions follow REFERENCE §2 and open-unlearning's code:

- ``P̃(a|q) = exp(mean_t log p(a_t))`` over answer tokens, EOS included;
- probability: forget/retain mean ``P̃(answer|q)``; real authors / world facts
  ``P̃(a) / (P̃(a) + Σ_j P̃(wrong_j) + 1e-10)`` (``*_Q_A_Prob_normalised``);
- truth ratio ``R = exp(mean_k log P̃(wrong_k)) / (P̃(correct) + 1e-10)`` with "correct" the
  paraphrased answer (forget/retain) or the answer (real authors/world facts); scores:
  forget ``mean(min(R, 1/(R + 1e-10)))``, others ``mean(max(0, 1 - R))``;
- ROUGE-L recall (Porter stemmer) of the greedy answer against ``answer``;
- exact memorisation / extraction strength on ``(q, answer)``, EOS excluded
  (:mod:`nbutils.evaluation.memorisation`);
- forget quality: ``scipy.stats.ks_2samp`` p-value between the per-item forget truth ratios
  of the model and of a reference (the retain model on the same split);
- model utility: ``scipy.stats.hmean`` of the 9 retain / real-author / world-fact numbers.

The ``1e-10`` terms are where open-unlearning puts them (``probability_w_options``,
``truth_ratio``); they change nothing measurable but make our numbers its numbers.

Logs are written in open-unlearning's layout and key names (from its
``configs/eval/tofu.yaml`` and ``configs/eval/tofu_metrics/*.yaml``): ``TOFU_EVAL.json``
maps each metric to ``{"agg_value": ..., "value_by_index": {"0": {...}, ...}}`` and
``TOFU_SUMMARY.json`` each metric to its ``agg_value``, so a published open-unlearning
retain log can serve as the forget-quality reference, and our logs can be read by its
tools. Membership inference (``mia_*``, ``privleak``) is not part of this module.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from scipy.stats import hmean, ks_2samp

from ..models.precision import model_precision, resolve_precision
from ..profiles import Profile
from .generation import generate_answers
from .memorisation import memorisation_scores
from .rouge import _scorer
from .scoring import TokenScores, score_pairs

EVAL_VERSION = 2  # 2: extraction strength as open-unlearning's loop (1/|y| floor)
EPS = 1e-10  # open-unlearning's guard in probability_w_options and truth_ratio

EVAL_FILE = "TOFU_EVAL.json"
SUMMARY_FILE = "TOFU_SUMMARY.json"
META_FILE = "TOFU_META.json"  # ours: split sizes, settings, timings (not an open-unlearning file)

# model utility: {probability, ROUGE, truth ratio} x {retain, real authors, world facts},
# with open-unlearning's key names (configs/eval/tofu_metrics/model_utility.yaml)
MODEL_UTILITY_KEYS = (
    "retain_Q_A_Prob", "retain_Q_A_ROUGE", "retain_Truth_Ratio",
    "ra_Q_A_Prob_normalised", "ra_Q_A_ROUGE", "ra_Truth_Ratio",
    "wf_Q_A_Prob_normalised", "wf_Q_A_ROUGE", "wf_Truth_Ratio",
)
HEADLINE_KEYS = ("forget_quality", "model_utility", "forget_truth_ratio", "forget_Q_A_Prob",
                 "forget_Q_A_ROUGE", "extraction_strength", "exact_memorization")


@dataclass(frozen=True)
class TofuSplit:
    """One evaluated split: its key prefix in the logs and its TOFU config."""

    prefix: str  # "forget", "retain", "ra" (real authors), "wf" (world facts)
    config: str

    @property
    def paraphrased(self) -> bool:
        """Forget/retain: the truth ratio's correct answer is ``paraphrased_answer``."""
        return self.prefix in ("forget", "retain")

    @property
    def truth_ratio_key(self) -> str:
        return "forget_truth_ratio" if self.prefix == "forget" else f"{self.prefix}_Truth_Ratio"


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


# --- the formulas, on plain numbers --------------------------------------------------------
def truth_ratio(correct_logprob: float, wrong_logprobs) -> float:
    """``R = exp(mean_k log P̃(wrong_k)) / (P̃(correct) + 1e-10)``.

    Arguments are length-normalised log-probabilities ``log P̃ = mean_t log p(a_t)``; the
    wrong answers are averaged in log space (a geometric mean of their ``P̃``)."""
    wrong = float(np.exp(np.mean(np.asarray(wrong_logprobs, dtype=np.float64))))
    return wrong / (float(np.exp(correct_logprob)) + EPS)


def truth_ratio_score(ratios, forget: bool) -> float:
    """Forget set: ``mean(min(R, 1/R))`` (1 = the model cannot tell true from false);
    retain / real authors / world facts: ``mean(max(0, 1 - R))`` (1 = true answers win)."""
    r = np.asarray(ratios, dtype=np.float64)
    if forget:
        return float(np.mean(np.minimum(r, 1.0 / (r + EPS))))
    return float(np.mean(np.maximum(0.0, 1.0 - r)))


def normalised_answer_prob(p_correct: float, p_wrong) -> float:
    """Real authors / world facts: ``P̃(a) / (P̃(a) + Σ_j P̃(wrong_j) + 1e-10)``."""
    return float(p_correct / (p_correct + float(np.sum(p_wrong)) + EPS))


def forget_quality(model_truth_ratios, reference_truth_ratios) -> float:
    """KS-test p-value between the model's and the reference's per-item forget truth
    ratios (total separation of n vs n items gives the floor ``2 / C(2n, n)``)."""
    return float(ks_2samp(np.asarray(model_truth_ratios, dtype=np.float64),
                          np.asarray(reference_truth_ratios, dtype=np.float64)).pvalue)


def model_utility(values) -> float:
    """Harmonic mean of the 9 utility numbers (a dict with :data:`MODEL_UTILITY_KEYS`, or
    a sequence of 9 values); 0 if any of them is 0."""
    if isinstance(values, dict):
        missing = [k for k in MODEL_UTILITY_KEYS if k not in values]
        if missing:
            raise KeyError(f"model utility needs {list(MODEL_UTILITY_KEYS)}; missing {missing}")
        values = [values[k] for k in MODEL_UTILITY_KEYS]
    values = [float(v) for v in values]
    if len(values) != 9:
        raise ValueError(f"model utility is the harmonic mean of 9 numbers, got {len(values)}")
    return float(hmean(values))


def rouge_entries(questions: list[str], references: list[str], generations: list[str]) -> list[dict]:
    """Per item ROUGE scores in open-unlearning's layout (``rougeL_recall`` is reported)."""
    scorer = _scorer(True)  # RougeScorer(["rouge1", "rougeL"], use_stemmer=True)
    out = []
    for q, ref, gen in zip(questions, references, generations):
        s = scorer.score(ref, gen)
        out.append({"rouge1_recall": s["rouge1"].recall, "rougeL_f1": s["rougeL"].fmeasure,
                    "rougeL_recall": s["rougeL"].recall, "input": q, "ground_truth": ref,
                    "generation": gen})
    return out


# --- one split -------------------------------------------------------------------------
@dataclass
class SplitScores:
    """The teacher-forced scores of one split, regrouped per item."""

    answer: list[TokenScores]
    paraphrased: list[TokenScores] | None
    perturbed: list[list[TokenScores]]


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


def _by_index(values: list) -> dict[str, object]:
    return {str(i): v for i, v in enumerate(values)}


def _metric(agg, values: list | None = None) -> dict:
    entry = {"agg_value": None if agg is None else float(agg)}
    if values is not None:
        entry["value_by_index"] = _by_index(values)
    return entry


def _prob(s: TokenScores) -> dict:
    mean = float(s.logprobs.mean())
    return {"prob": float(np.exp(mean)), "avg_loss": -mean}


def split_logs(split: TofuSplit, rows: list[dict], scores: SplitScores,
               generations: list[str]) -> dict[str, dict]:
    """The open-unlearning metrics of one split, from its scores and generations."""
    p = split.prefix
    logs: dict[str, dict] = {}
    answer = [_prob(s) for s in scores.answer]
    logs[f"{p}_Q_A_Prob"] = _metric(np.mean([e["prob"] for e in answer]), answer)
    if split.paraphrased:
        para = [_prob(s) for s in scores.paraphrased]
        logs[f"{p}_Q_A_PARA_Prob"] = _metric(np.mean([e["prob"] for e in para]), para)
    pert = []
    for item in scores.perturbed:
        es = [_prob(s) for s in item]
        pert.append({"prob": [e["prob"] for e in es], "avg_loss": [e["avg_loss"] for e in es]})
    logs[f"{p}_Q_A_PERT_Prob"] = _metric(np.mean([np.mean(e["prob"]) for e in pert]), pert)
    if not split.paraphrased:
        norm = [{"prob": normalised_answer_prob(a["prob"], w["prob"])} for a, w in zip(answer, pert)]
        logs[f"{p}_Q_A_Prob_normalised"] = _metric(np.mean([e["prob"] for e in norm]), norm)
    rouge = rouge_entries([r["question"] for r in rows], [r["answer"] for r in rows], generations)
    logs[f"{p}_Q_A_ROUGE"] = _metric(np.mean([e["rougeL_recall"] for e in rouge]), rouge)
    correct = para if split.paraphrased else answer
    ratios = [truth_ratio(-c["avg_loss"], [-x for x in w["avg_loss"]]) for c, w in zip(correct, pert)]
    logs[split.truth_ratio_key] = _metric(truth_ratio_score(ratios, forget=p == "forget"),
                                          [{"score": r} for r in ratios])
    if p in ("forget", "retain"):
        em, es = memorisation_scores(scores.answer)
        if p == "forget":
            logs["extraction_strength"] = _metric(_mean(es), [{"score": v} for v in es])
            logs["exact_memorization"] = _metric(_mean(em), [{"score": v} for v in em])
        else:
            logs["retain_extraction_strength"] = _metric(_mean(es), [{"score": v} for v in es])
    return logs


def _mean(values) -> float | None:
    v = [x for x in values if x is not None]
    return float(np.mean(v)) if v else None


def finish_logs(split_results: dict[str, dict], reference=None) -> dict[str, dict]:
    """All split metrics plus model utility and forget quality, in open-unlearning's order."""
    logs: dict[str, dict] = {"forget_quality": {"agg_value": None},
                             "model_utility": {"agg_value": model_utility(
                                 {k: split_results[k]["agg_value"] for k in MODEL_UTILITY_KEYS})}}
    logs.update(split_results)
    ev = TofuEval(logs)
    return ev.with_reference(reference).logs if reference is not None else ev.logs


# --- the evaluation object ---------------------------------------------------------------
@dataclass
class TofuEval:
    """A TOFU evaluation: ``logs`` is the content of ``TOFU_EVAL.json``."""

    logs: dict[str, dict]
    meta: dict = field(default_factory=dict)

    @property
    def summary(self) -> dict[str, float | None]:
        """Metric -> aggregate value: the content of ``TOFU_SUMMARY.json``."""
        return {k: v.get("agg_value") for k, v in self.logs.items()}

    def __getitem__(self, metric: str):
        return self.logs[metric]["agg_value"]

    def headline(self) -> dict[str, float | None]:
        """Forget quality, model utility and the forget-set numbers most tables show."""
        return {k: self.logs[k]["agg_value"] for k in HEADLINE_KEYS if k in self.logs}

    @property
    def forget_truth_ratios(self) -> np.ndarray:
        """Per-item forget truth ratios (what forget quality compares)."""
        return load_reference(self.logs)

    def generations(self, prefix: str = "forget") -> list[str]:
        vbi = self.logs[f"{prefix}_Q_A_ROUGE"]["value_by_index"]
        return [vbi[k]["generation"] for k in sorted(vbi, key=int)]

    def with_reference(self, reference) -> "TofuEval":
        """A copy whose forget quality is computed against ``reference`` (anything
        :func:`load_reference` accepts; ``None`` clears it)."""
        logs = dict(self.logs)
        if reference is None:
            logs["forget_quality"] = {"agg_value": None}
        else:
            ref = load_reference(reference)
            mine = self.forget_truth_ratios
            if len(ref) != len(mine):
                raise ValueError(
                    f"forget quality compares the same forget split: this evaluation has "
                    f"{len(mine)} forget items, the reference {len(ref)}. Evaluate the retain "
                    f"model on the same forget split (profile.forget_split).")
            logs["forget_quality"] = {"agg_value": forget_quality(mine, ref)}
        meta = dict(self.meta)
        meta["reference"] = None if reference is None else _describe(reference)
        return TofuEval(logs, meta)

    def save(self, folder) -> Path:
        """Write ``TOFU_EVAL.json``, ``TOFU_SUMMARY.json`` (and our ``TOFU_META.json``)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        _write_json(folder / EVAL_FILE, self.logs)
        _write_json(folder / META_FILE, self.meta)
        _write_json(folder / SUMMARY_FILE, self.summary)  # last: marks a complete save
        return folder

    @classmethod
    def load(cls, folder) -> "TofuEval":
        folder = Path(folder)
        path = folder / EVAL_FILE if folder.is_dir() else folder
        logs = json.loads(path.read_text())
        meta_path = path.parent / META_FILE
        meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
        return cls(logs, meta)

    def __repr__(self) -> str:
        head = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                         for k, v in self.headline().items())
        return f"TofuEval({head})"


def _describe(reference) -> str:
    if isinstance(reference, (str, Path)):
        return str(reference)
    if isinstance(reference, TofuEval):
        return reference.meta.get("model", "TofuEval")
    return type(reference).__name__


def _write_json(path: Path, payload) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(payload, indent=2))
    os.replace(tmp, path)


def load_reference(reference) -> np.ndarray:
    """Per-item forget truth ratios of a reference model, from: a ``TOFU_EVAL.json`` path
    (ours or an open-unlearning log) or its folder, the loaded dict, a :class:`TofuEval`, or
    the values themselves (a list / array)."""
    if isinstance(reference, TofuEval):
        reference = reference.logs
    if isinstance(reference, (str, Path)):
        path = Path(reference)
        if path.is_dir():
            path = path / EVAL_FILE
        if not path.exists():
            raise FileNotFoundError(f"reference log {path} not found (expected a TOFU_EVAL.json)")
        reference = json.loads(path.read_text())
    if isinstance(reference, dict):
        entry = reference.get("forget_truth_ratio")
        if not isinstance(entry, dict) or "value_by_index" not in entry:
            hint = (" It looks like a TOFU_SUMMARY.json, which holds aggregates only."
                    if isinstance(entry, (int, float)) else "")
            raise ValueError("reference has no per-item 'forget_truth_ratio' values "
                             "(value_by_index); pass a TOFU_EVAL.json." + hint)
        vbi = entry["value_by_index"]
        keys = sorted(vbi, key=lambda k: int(k))
        values = [vbi[k]["score"] if isinstance(vbi[k], dict) else vbi[k] for k in keys]
        return np.asarray([v for v in values if v is not None], dtype=np.float64)
    return np.asarray(reference, dtype=np.float64)


# --- entry points --------------------------------------------------------------------------
def evaluate_tofu(model, tokenizer, profile: Profile, reference=None, progress: bool = True,
                  batch_size: int | None = None) -> TofuEval:
    """Every TOFU metric of ``model`` on the profile's splits.

    ``reference``: the retain model's per-item forget truth ratios for forget quality (see
    :func:`load_reference`; ``"retain"`` evaluates the profile's retain model, cached);
    ``None`` leaves forget quality empty, as open-unlearning does without retain logs.
    """
    if isinstance(reference, str) and reference == "retain":
        reference = ensure_retain_eval(profile)
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
            "reference": None if reference is None else _describe(reference),
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
    if (folder / SUMMARY_FILE).exists():
        ev = TofuEval.load(folder)
    else:
        model = load_model(str(model_path), profile, load_in_4bit=False, revision=revision)
        tokenizer = load_tokenizer(str(model_path), profile, revision)
        ev = evaluate_tofu(model, tokenizer, profile, progress=progress)
        ev.meta["model"] = str(model_path)
        ev.meta["revision"] = revision
        ev.save(folder)
        del model
    if isinstance(reference, str) and reference == "retain":
        reference = ensure_retain_eval(profile, progress=progress)
    return ev.with_reference(reference) if reference is not None else ev


def artifact_dir_for_eval(profile: Profile, model_path, name: str, revision: str | None = None) -> Path:
    from ..paths import artifact_dir
    return artifact_dir("eval", name, eval_key(profile, model_path, revision))


def ensure_retain_eval(profile: Profile, progress: bool = True) -> TofuEval:
    """The retain model's evaluation, with itself as the forget-quality reference (1.0):
    the reference every other model of this profile is compared with."""
    from ..finetune import ensure_retain_model
    path = ensure_retain_model(profile)
    ev = ensure_tofu_eval(profile, path, f"retain-{profile.name}-{profile.forget_split}",
                          progress=progress)
    return ev.with_reference(ev)
