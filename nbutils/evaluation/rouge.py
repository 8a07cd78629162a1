"""ROUGE exactly as TOFU and MUSE report it, through the ``rouge_score`` package."""

from __future__ import annotations

from functools import lru_cache

from rouge_score import rouge_scorer


@lru_cache(maxsize=None)
def _scorer(use_stemmer: bool):
    return rouge_scorer.RougeScorer(["rouge1", "rougeL"], use_stemmer=use_stemmer)


def rouge_l_recall(references: list[str], predictions: list[str]) -> list[float]:
    """TOFU: per-item ROUGE-L recall with the Porter stemmer, ``score(reference, generated)``."""
    scorer = _scorer(True)
    return [scorer.score(ref, pred)["rougeL"].recall for ref, pred in zip(references, predictions)]


def rouge_l_f1(references: list[str], predictions: list[str]) -> list[float]:
    """MUSE: per-item ROUGE-L F1, no stemmer."""
    scorer = _scorer(False)
    return [scorer.score(ref, pred)["rougeL"].fmeasure for ref, pred in zip(references, predictions)]
