"""Membership inference (MIA) and PrivLeak, as open-unlearning and MUSE define them.

Every attack turns one item's :class:`~nbutils.evaluation.scoring.TokenScores` into a score
where **higher means "less likely a member"** (REFERENCE §2):

- ``loss``: mean token NLL, ``-mean_t log p(y_t)``;
- ``zlib``: LOSS / ``len(zlib.compress(text.encode()))``;
- ``min_k``: ``-mean`` of the lowest ``max(1, floor(k·n))`` token log-probs (k = 0.4);
- ``min_k_plus_plus``: the same on ``z_t = (log p(y_t) - μ_t) / σ_t``;
- ``reference``: LOSS(model) - LOSS(reference model);
- ``gradnorm``: the mean, over the model's weight tensors, of the L2 norm of the gradient of
  the item's LOSS (members sit where the loss is flat: small gradients).

The AUC is ``sklearn.metrics.roc_auc_score`` with forget (members) labelled 0 and holdout
(non-members) labelled 1: a model that still knows the forget set gives its items low scores,
so its AUC is near **1**; a model that never saw them gives ≈ 0.5. PrivLeak compares a model's
Min-K AUC with the retain model's::

    PrivLeak = ((1 - AUC_model) - (1 - AUC_retain)) / (1 - AUC_retain) * 100

≈ -100: still memorised; 0: like the retain model; > 0: "over-unlearnt" (the forget set now
looks *less* familiar than text the model never saw).

Token conventions for TOFU QA follow open-unlearning exactly: LOSS (and so zlib and reference)
averages over every answer token including the appended EOS (its ``evaluate_probability``),
while Min-K and Min-K++ drop the last label, the EOS prediction (its ``tokenwise_logprobs``).
zlib compresses the decoded answer tokens (its ``extract_target_texts_from_processed_data``):
the answer text as the model sees it. On raw text (MUSE) every scored token counts.
"""

from __future__ import annotations

import math
import zlib as _zlib
from dataclasses import replace

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

from ..models.prompts import IGNORE, answer_text, encode_qa
from .scoring import TokenScores, score_pairs

K = 0.4  # Min-K% / Min-K%++ fraction (open-unlearning's TOFU config, MUSE's Min-40%)
ATTACKS = ("loss", "zlib", "min_k", "min_k_plus_plus")


# --- per-item scores ------------------------------------------------------------------------
def loss_score(ts: TokenScores) -> float:
    """Mean token negative log-likelihood."""
    return float(-np.mean(ts.logprobs))


def zlib_score(ts: TokenScores, text: str) -> float:
    """LOSS divided by the zlib-compressed length of ``text`` in bytes."""
    return loss_score(ts) / len(_zlib.compress(text.encode("utf-8")))


def _min_k(values: np.ndarray, k: float) -> float:
    if len(values) == 0:
        raise ValueError("an item with no scored tokens has no Min-K score")
    m = max(1, int(math.floor(k * len(values))))
    return float(-np.mean(np.sort(values)[:m]))


def min_k_score(ts: TokenScores, k: float = K) -> float:
    """``-mean`` of the lowest ``max(1, floor(k·n))`` token log-probabilities."""
    return _min_k(np.asarray(ts.logprobs, dtype=np.float64), k)


def min_k_plus_plus_score(ts: TokenScores, k: float = K) -> float:
    """Min-K on ``z_t = (log p(y_t) - μ_t) / σ_t`` (σ from a variance clamped at 1e-6)."""
    if ts.mu is None or ts.sigma is None:
        raise ValueError("Min-K%++ needs mu and sigma: score with stats=True")
    z = (np.asarray(ts.logprobs, np.float64) - np.asarray(ts.mu, np.float64)) / np.asarray(ts.sigma, np.float64)
    return _min_k(z, k)


def reference_score(ts: TokenScores, ref: TokenScores) -> float:
    """LOSS under the model minus LOSS under the reference model (the same tokens)."""
    return loss_score(ts) - loss_score(ref)


def drop_last_token(ts: TokenScores) -> TokenScores:
    """The scores without the last token (the EOS of a QA answer), as open-unlearning's
    Min-K / Min-K++ read them; an item of one token is kept whole."""
    if ts.n <= 1:
        return ts
    cut = (lambda a: None if a is None else a[:-1])
    return replace(ts, logprobs=ts.logprobs[:-1], correct=ts.correct[:-1],
                   mu=cut(ts.mu), sigma=cut(ts.sigma))


def attack_scores(scores: list[TokenScores], texts: list[str], k: float = K,
                  reference: list[TokenScores] | None = None,
                  drop_eos_for_min_k: bool = False) -> dict[str, np.ndarray]:
    """Every attack's per-item scores; ``texts`` are what zlib compresses."""
    if len(texts) != len(scores):
        raise ValueError(f"{len(scores)} scored items but {len(texts)} texts for zlib")
    mk = [drop_last_token(s) for s in scores] if drop_eos_for_min_k else scores
    out = {
        "loss": np.array([loss_score(s) for s in scores]),
        "zlib": np.array([zlib_score(s, t) for s, t in zip(scores, texts)]),
        "min_k": np.array([min_k_score(s, k) for s in mk]),
        "min_k_plus_plus": np.array([min_k_plus_plus_score(s, k) for s in mk]),
    }
    if reference is not None:
        if len(reference) != len(scores):
            raise ValueError("the reference model must score the same items")
        out["reference"] = np.array([reference_score(s, r) for s, r in zip(scores, reference)])
    return out


def gradnorm_scores(model, tokenizer, pairs: list[tuple[str, str]], prompt_format: str,
                    max_length: int | None = None, progress: bool = False) -> np.ndarray:
    """GradNorm (open-unlearning's ``mia/gradnorm.py``), one item at a time (batch size 1):
    the gradient of the item's mean token NLL over its answer tokens (the EOS prediction left
    out, as for Min-K) with respect to every trainable weight tensor; the score is the mean of
    the tensors' gradient L2 norms. Higher = less likely a member, like LOSS.

    Ours: the model runs in evaluation behaviour (no dropout; open-unlearning's code puts it in
    train mode) and the gradients come from ``torch.autograd.grad``, so none is left in
    ``.grad`` for a later step to pick up; a frozen model's weights take gradients for the
    attack only."""
    import torch
    params = [p for p in model.parameters() if p.is_floating_point()]
    if not params:
        raise ValueError("GradNorm needs floating-point weights: a 4-bit model has none to differentiate")
    # a frozen model (WHP's inference-time pair) has gradients too, for the time of the attack
    frozen = [p for p in params if not p.requires_grad]
    for p in frozen:
        p.requires_grad_(True)
    device = params[0].device
    was_training = model.training
    model.eval()
    scores = []
    items = pairs
    if progress:
        from tqdm.auto import tqdm
        items = tqdm(pairs, desc="GradNorm", leave=False)
    try:
        for question, answer in items:
            enc = encode_qa(tokenizer, question, answer, prompt_format, max_length)
            labels = list(enc.labels)
            if sum(label != IGNORE for label in labels) > 1:
                labels[-1] = IGNORE  # the EOS prediction
            ids = torch.tensor([enc.input_ids], device=device)
            target = torch.tensor(labels[1:], device=device)
            with torch.enable_grad():
                logits = model(input_ids=ids).logits[0, :-1].float()
                keep = target != IGNORE
                nll = -torch.log_softmax(logits[keep], -1).gather(-1, target[keep, None]).mean()
                grads = torch.autograd.grad(nll, params, allow_unused=True)
            norms = [g.float().norm(2) for g in grads if g is not None]
            scores.append(float(torch.stack(norms).mean()))
    finally:
        model.train(was_training)
        for p in frozen:
            p.requires_grad_(False)
    return np.array(scores)


# --- AUC, ROC, PrivLeak ---------------------------------------------------------------------
def _labelled(member_scores, nonmember_scores):
    m, n = np.asarray(member_scores, float), np.asarray(nonmember_scores, float)
    if len(m) == 0 or len(n) == 0:
        raise ValueError("an AUC needs at least one member (forget) and one non-member (holdout) score")
    return np.r_[np.zeros(len(m)), np.ones(len(n))], np.r_[m, n]


def auc(member_scores, nonmember_scores) -> float:
    """``roc_auc_score`` with members (forget) labelled 0 and non-members (holdout) 1."""
    labels, scores = _labelled(member_scores, nonmember_scores)
    return float(roc_auc_score(labels, scores))


def roc(member_scores, nonmember_scores) -> dict[str, list[float]]:
    """``roc_curve`` under the same labels: the non-member (holdout) rate called positive."""
    labels, scores = _labelled(member_scores, nonmember_scores)
    fpr, tpr, _ = roc_curve(labels, scores)
    return {"fpr": fpr.tolist(), "tpr": tpr.tolist()}


def privleak(auc_model: float, auc_retain: float | None) -> float:
    """``((1-AUC_model) - (1-AUC_retain)) / (1-AUC_retain) * 100`` from Min-K (k=0.4) AUCs.

    The retain model's AUC is required: evaluate the retain model on the same forget and
    holdout items (there is no 0.5 default).
    """
    if auc_retain is None or (isinstance(auc_retain, float) and math.isnan(auc_retain)):
        raise ValueError(
            "privleak needs the retain model's Min-K AUC on the same forget/holdout items "
            "(e.g. mia_suite(retain_model, ...)['auc']['min_k'] or "
            "evaluate_muse(retain_model, ...)['auc']); it is never assumed to be 0.5")
    if auc_retain >= 1.0:
        raise ValueError(f"the retain model's AUC is {auc_retain}: 1 - AUC_retain = 0, PrivLeak is undefined")
    return ((1.0 - auc_model) - (1.0 - auc_retain)) / (1.0 - auc_retain) * 100.0


# --- TOFU QA: forget vs holdout ------------------------------------------------------------
def holdout_split(forget_split: str) -> str:
    """``forget10`` -> ``holdout10``: the non-members matching the forget split."""
    if not forget_split.startswith("forget"):
        raise ValueError(f"not a forget split: {forget_split!r}")
    return "holdout" + forget_split.removeprefix("forget")


def answer_zlib_text(tokenizer, answer: str, prompt_format: str) -> str:
    """The answer as open-unlearning's zlib attack sees it: the answer tokens decoded."""
    ids = tokenizer(answer_text(answer, prompt_format), add_special_tokens=False)["input_ids"]
    return tokenizer.decode(ids, skip_special_tokens=True)


def mia_suite(model, tokenizer, profile, members=None, nonmembers=None, reference_model=None,
              k: float = K, batch_size: int | None = None, max_length: int | None = None,
              gradnorm: bool = True) -> dict:
    """Every MIA attack on TOFU QA: ``members`` (default: the profile's forget split) vs
    ``nonmembers`` (default: the matching ``holdoutXX``), rows with question/answer.

    Returns ``{"auc": {attack: AUC}, "scores": {attack: {"forget": [...], "holdout": [...]}},
    "roc": {attack: {"fpr", "tpr"}}, ...}``; ``reference`` is present when a
    ``reference_model`` (usually the retain model) is given, ``gradnorm`` unless
    ``gradnorm=False`` (it needs a backward pass per item: the slowest attack).
    """
    from ..data.tofu import load_tofu
    fmt = profile.prompt_format
    bs = batch_size or profile.eval_batch_size
    members = list(members if members is not None else load_tofu(profile, profile.forget_split))
    nonmembers = list(nonmembers if nonmembers is not None
                      else load_tofu(profile, holdout_split(profile.forget_split)))
    rows = members + nonmembers
    pairs = [(r["question"], r["answer"]) for r in rows]
    texts = [answer_zlib_text(tokenizer, r["answer"], fmt) for r in rows]
    scored = score_pairs(model, tokenizer, pairs, fmt, batch_size=bs, max_length=max_length)
    ref = (score_pairs(reference_model, tokenizer, pairs, fmt, batch_size=bs, max_length=max_length)
           if reference_model is not None else None)
    per_attack = attack_scores(scored, texts, k, ref, drop_eos_for_min_k=True)
    if gradnorm:  # one backward pass per item (batch size 1, as the attack is defined)
        per_attack["gradnorm"] = gradnorm_scores(model, tokenizer, pairs, fmt, max_length)
    return _summarise(per_attack, len(members), k,
                      forget_split=profile.forget_split, holdout_split=holdout_split(profile.forget_split))


def _summarise(per_attack: dict[str, np.ndarray], n_members: int, k: float, **info) -> dict:
    out = {"auc": {}, "scores": {}, "roc": {}, "k": k, "n_forget": n_members,
           "n_holdout": len(next(iter(per_attack.values()))) - n_members, **info}
    for name, s in per_attack.items():
        f, h = s[:n_members], s[n_members:]
        out["auc"][name] = auc(f, h)
        out["scores"][name] = {"forget": f.tolist(), "holdout": h.tolist()}
        out["roc"][name] = roc(f, h)
    return out
