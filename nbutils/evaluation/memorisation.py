"""Exact memorisation and extraction strength, from one teacher-forced pass.

Both read the ``correct`` array of a :class:`~nbutils.evaluation.scoring.TokenScores`
(teacher-forced argmax == label, per answer token). As in open-unlearning, the closing EOS
is excluded: its ``tokenwise_vocab_logprobs`` drops the last labelled position ("ignore eos
prediction") for both metrics, so ``|y|`` below counts the answer tokens without EOS.

- **Exact memorisation** (EM): the fraction of answer tokens whose argmax is the label.
- **Extraction strength** (ES): ``ES = 1 - k/|y|`` with ``k`` the smallest index such that
  the teacher-forced argmax sequence equals the answer from ``k`` on (``ŷ[k:] == y[k:]``),
  i.e. the length of the trailing run of correct tokens divided by ``|y|``. ``k`` ranges
  over ``0..|y|`` (REFERENCE §2 and the ES paper): when even the last token is wrong, only
  the empty suffix matches and ES = 0. (open-unlearning's loop stops at ``k = |y| - 1``
  and reports ``1/|y|`` in that case; the two agree everywhere else.)
"""

from __future__ import annotations

import numpy as np

from .scoring import TokenScores


def answer_correct(scores: TokenScores) -> np.ndarray:
    """Per answer token, argmax == label, with the closing EOS excluded."""
    return np.asarray(scores.correct, dtype=bool)[:-1]


def exact_memorisation(correct) -> float | None:
    """Fraction of correct tokens (``None`` for an empty answer, as open-unlearning)."""
    correct = np.asarray(correct, dtype=bool)
    if correct.size == 0:
        return None
    return float(correct.mean())


def extraction_strength(correct) -> float | None:
    """``1 - k/|y|`` for the smallest ``k`` with every token from ``k`` on correct.

    When not even the last token is right, open-unlearning's search loop ends at
    ``k = |y| - 1`` and reports ``1/|y|`` rather than 0; the published numbers use that, so
    we do too (REFERENCE §2)."""
    correct = np.asarray(correct, dtype=bool)
    n = correct.size
    if n == 0:
        return None
    wrong = np.flatnonzero(~correct)
    k = 0 if wrong.size == 0 else int(wrong[-1]) + 1  # first index after the last mistake
    return 1.0 - min(k, n - 1) / n


def memorisation_scores(scores: list[TokenScores]) -> tuple[list, list]:
    """Per item EM and ES of teacher-forced (question, answer) scores (EOS excluded)."""
    em, es = [], []
    for s in scores:
        c = answer_correct(s)
        em.append(exact_memorisation(c))
        es.append(extraction_strength(c))
    return em, es
