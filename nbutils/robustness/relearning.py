"""Relearning attacks (Hu et al. 2024; open-unlearning's robustness protocol): finetune an
unlearned model briefly, then ask it what it was meant to have forgotten.

The budget is fixed by the profile's ``robustness`` section (open-unlearning: one epoch at
lr 2e-5 on the paper's scale); everything else is the profile's finetuning recipe (LoRA or
not, batch size, precision). Two kinds of relearning data:

- ``forget``: a part of each forget author's QA (``relearn_fraction``); the attack is then
  measured on the *other* questions, which it never showed;
- ``related``: text about the forget authors that is not the QA (our world's biographies,
  the MUSE-News forget articles), measured on every forget question.

The same relearning is applied to the retain model, which never knew the answers: what it
gains is what the data itself teaches, the baseline R compares with.
"""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

from ..finetune import finetune
from ..paths import artifact_dir, building, checkpoint_identity, config_key, is_complete
from ..profiles import Profile
from .probes import author_groups

RELEARN_DATA = ("forget", "related")


def relearn_split(rows: list[dict], profile: Profile) -> tuple[list[int], list[int]]:
    """``(relearn indices, held-out indices)``: per author, a seeded ``relearn_fraction`` of
    the QA to relearn on, the rest held out (at least one of each per author)."""
    groups = author_groups(rows, profile.qa_per_author)
    rng = random.Random(profile.seed)
    relearn, held_out = [], []
    for g in sorted(set(groups)):
        items = [i for i, x in enumerate(groups) if x == g]
        rng.shuffle(items)
        k = min(max(1, round(profile.robustness.relearn_fraction * len(items))), len(items) - 1)
        relearn += sorted(items[:k])
        held_out += sorted(items[k:])
    if not held_out:
        raise ValueError("relearning needs at least two questions per forget author")
    return sorted(relearn), sorted(held_out)


def related_texts(profile: Profile) -> list[str]:
    """Text about the forget authors that is not their QA: the MUSE-News forget articles of
    our world (the same authors as TOFU's forget split). The hub's TOFU has no such text."""
    if profile.data_source != "synthetic":
        raise ValueError("related-text relearning needs text about the forget authors; TOFU on the "
                         "hub has none (use relearning data 'forget')")
    from ..data.muse import load_muse
    return [r["text"] for r in load_muse(profile, "raw", "forget", corpus="news")]


def relearn_profile(profile: Profile) -> Profile:
    """The finetuning recipe with the attack's budget: its epochs and learning rate, no warm-up."""
    r = profile.robustness
    return replace(profile, finetune=replace(profile.finetune, epochs=r.relearn_epochs,
                                             learning_rate=r.relearn_learning_rate, warmup_epochs=0.0))


def ensure_relearned(profile: Profile, model_path, name: str, data: str, rows: list[dict]) -> Path:
    """``model_path`` finetuned on ``data`` ("forget": the QA ``rows``; "related": the
    forget authors' articles as raw-text blocks), trained once and cached."""
    if data not in RELEARN_DATA:
        raise ValueError(f"unknown relearning data {data!r}; choose one of {RELEARN_DATA}")
    ft_profile = relearn_profile(profile)
    texts = related_texts(profile) if data == "related" else None
    key = {"model": checkpoint_identity(model_path), "data": data,
           "rows": config_key(rows) if data == "forget" else config_key(texts),
           "finetune": ft_profile.finetune, "seed": profile.seed, "version": 1}
    out = artifact_dir("robustness", f"{name}-relearn-{data}", key)
    with building(out):  # a second process wanting it waits, then reuses it
        if not is_complete(out):
            if data == "forget":
                finetune(ft_profile, rows, out, base=str(model_path))
            else:
                from ..models.loading import load_tokenizer
                from ..models.prompts import encode_text_blocks
                tok = load_tokenizer(str(model_path), profile)
                feats = encode_text_blocks(tok, texts, ft_profile.finetune.max_length)
                finetune(ft_profile, None, out, base=str(model_path), features=feats)
    return out
