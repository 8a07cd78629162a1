"""TOFU evaluation logs in open-unlearning's layout and key names (from its
``configs/eval/tofu.yaml`` and ``configs/eval/tofu_metrics/*.yaml``), and :class:`TofuEval`,
the object that holds one.

``TOFU_EVAL.json`` maps each metric to ``{"agg_value": ..., "value_by_index": {"0": {...},
...}}`` and ``TOFU_SUMMARY.json`` each metric to its ``agg_value``, so a published
open-unlearning retain log can serve as the forget-quality reference, and our logs can be
read by its tools.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..paths import write_json
from .memorisation import memorisation_scores
from .rouge import _scorer
from .scoring import TokenScores
from .tofu_metrics import (MODEL_UTILITY_KEYS, forget_quality, model_utility, normalised_answer_prob,
                           truth_ratio, truth_ratio_score)

EVAL_FILE = "TOFU_EVAL.json"
SUMMARY_FILE = "TOFU_SUMMARY.json"
META_FILE = "TOFU_META.json"  # ours: split sizes, settings, timings (not an open-unlearning file)

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


@dataclass
class SplitScores:
    """The teacher-forced scores of one split, regrouped per item."""

    answer: list[TokenScores]
    paraphrased: list[TokenScores] | None
    perturbed: list[list[TokenScores]]


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
        meta["reference"] = None if reference is None else describe_reference(reference)
        return TofuEval(logs, meta)

    def save(self, folder) -> Path:
        """Write ``TOFU_EVAL.json``, ``TOFU_SUMMARY.json`` (and our ``TOFU_META.json``)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        write_json(folder / EVAL_FILE, self.logs, indent=2)
        write_json(folder / META_FILE, self.meta, indent=2)
        write_json(folder / SUMMARY_FILE, self.summary, indent=2)
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


def describe_reference(reference) -> str:
    if isinstance(reference, (str, Path)):
        return str(reference)
    if isinstance(reference, TofuEval):
        return reference.meta.get("model", "TofuEval")
    return type(reference).__name__


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
