"""WHP end to end, cached by config: reinforced model -> generic labels -> fine-tune, and
the inference-time variant. ``target`` is ``"harry_potter"`` (our corpus, starting from the
profile's base model), ``"tofu"`` (the forget split, starting from the target model) or
``"muse_news"`` / ``"muse_books"`` (MUSE's forget text, starting from the MUSE target)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Callable

from ...models.precision import resolve_precision
from ...paths import artifact_dir, building, config_key, is_complete, mark_complete
from ...profiles import Profile
from .corpus import WhpTarget, harry_potter_target, muse_target, tofu_target
from ...models.whp_inference import WHPInferenceModel
from .labels import GenericLabels, generic_labels
from .training import generic_label_features, lm_features, train_blocks

TARGETS = ("harry_potter", "tofu", "muse_news", "muse_books")


def default_start(profile: Profile, target: str) -> str:
    """The model WHP starts from: the base model (it read the books) or the TOFU target."""
    if target == "harry_potter":
        from ...models.loading import ensure_base_model
        return str(ensure_base_model(profile))
    if target == "tofu":
        from ...finetune import ensure_target_model
        return str(ensure_target_model(profile))
    if target in ("muse_news", "muse_books"):
        from ...finetune import ensure_muse_model
        return str(ensure_muse_model(profile, target.removeprefix("muse_"), "target"))
    raise ValueError(f"unknown WHP target {target!r}; choose one of {TARGETS}")


def load_target(profile: Profile, target: str, start: str) -> WhpTarget:
    from ...models.loading import load_tokenizer
    if target not in TARGETS:
        raise ValueError(f"unknown WHP target {target!r}; choose one of {TARGETS}")
    tokenizer = load_tokenizer(start, profile)
    if target.startswith("muse_"):
        return muse_target(profile, tokenizer, target.removeprefix("muse_"))
    return (harry_potter_target if target == "harry_potter" else tofu_target)(profile, tokenizer)


def _key(profile: Profile, start: str, target: WhpTarget, **extra) -> dict:
    return {"start": start, "target": target.name, "blocks": config_key(list(target.blocks)),
            "anchors": config_key(target.anchors), "whp": profile.whp,
            "lora": (profile.finetune.lora_r, profile.finetune.lora_alpha, profile.finetune.lora_dropout),
            "seed": profile.seed, "version": 1,
            "precision": resolve_precision(profile.precision), **extra}


def ensure_reinforced_model(profile: Profile, target: str = "harry_potter", start: str | None = None) -> Path:
    """WHP part 1: the baseline trained further on the target text (LoRA where the profile
    says so), trained once per config."""
    start = start or default_start(profile, target)
    tgt = load_target(profile, target, start)
    out = artifact_dir("whp", f"reinforced-{tgt.name}-{profile.name}", _key(profile, start, tgt))
    with building(out):  # a second process wanting it waits, then reuses it
        if not is_complete(out):
            from ...models.loading import load_tokenizer
            feats = lm_features(load_tokenizer(start, profile), tgt.blocks, profile.whp.block_length)
            train_blocks(profile, start, feats, out, profile.whp.reinforce_epochs,
                         profile.whp.reinforce_learning_rate)
    return out


def compute_generic_labels(profile: Profile, target: str, start: str, reinforced,
                           blocks: list[str] | None = None, progress: bool = False) -> list[GenericLabels]:
    """WHP part 2 on the target's blocks (or the given ``blocks``)."""
    from ...models.loading import load_model, load_tokenizer
    tgt = load_target(profile, target, start)
    tokenizer = load_tokenizer(start, profile)
    base = load_model(start, profile, load_in_4bit=False)
    reinf = load_model(str(reinforced), profile, load_in_4bit=False)
    return generic_labels(base, reinf, tokenizer, list(blocks if blocks is not None else tgt.blocks),
                          tgt.anchors, profile.whp.alpha, profile.whp.consistency_margin,
                          batch_size=max(1, profile.eval_batch_size // 4), progress=progress)


def build_whp_model(profile: Profile, target: str, start: str, out_dir: Path,
                    probe: Callable | None = None, progress: bool = False) -> Path:
    """WHP parts 1-3 into ``out_dir``: reinforced model, generic labels, fine-tune on them.

    ``probe(profile, tokenizer)``, when given, returns the measurement (``model -> dict``)
    taken during the fine-tune and kept in ``whp_progress.json``: the evaluation layer's
    familiarity probe, passed in from above (see :mod:`nbutils.whp_experiment`)."""
    from ...models.loading import load_tokenizer
    reinforced = ensure_reinforced_model(profile, target, start)
    labelled = compute_generic_labels(profile, target, start, reinforced, progress=progress)
    tokenizer = load_tokenizer(start, profile)
    feats = generic_label_features(labelled, profile.whp.block_length)
    fn = probe(profile, tokenizer) if probe is not None else None
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "generic_labels.json").write_text(json.dumps(
        {"blocks": len(labelled), "positions": sum(sum(t != -100 for t in g.targets) for g in labelled),
         "changed": sum(g.changed for g in labelled)}, indent=1))
    train_blocks(profile, start, feats, out_dir, profile.whp.finetune_epochs,
                 profile.whp.finetune_learning_rate, probe=fn)
    (out_dir / "unlearning.json").write_text(json.dumps(
        {"method": "whp", "target": target, "start": start, "reinforced": str(reinforced),
         "hyperparameters": asdict(profile.whp)}, indent=2))
    return out_dir


def ensure_whp_model(profile: Profile, target: str = "harry_potter", start: str | None = None,
                     progress: bool = False, probe: Callable | None = None) -> Path:
    """The WHP-unlearned model of ``target``, trained once per config (``probe``: see
    :func:`build_whp_model`; the first build decides whether its progress was measured)."""
    start = start or default_start(profile, target)
    tgt = load_target(profile, target, start)
    out = artifact_dir("whp", f"whp-{tgt.name}-{profile.name}", _key(profile, start, tgt))
    with building(out):  # a second process wanting it waits, then reuses it
        if not is_complete(out):
            build_whp_model(profile, target, start, out, probe=probe, progress=progress)
    return out


def write_whp_inference(profile: Profile, target: str, start: str, out_dir: Path) -> Path:
    """The inference-time variant: a folder naming the two models and alpha (MUSE: 1)."""
    from ...models.loading import load_tokenizer
    reinforced = ensure_reinforced_model(profile, target, start)
    WHPInferenceModel.save_spec(out_dir, start, reinforced, profile.whp.inference_alpha)
    load_tokenizer(start, profile).save_pretrained(out_dir)
    (out_dir / "unlearning.json").write_text(json.dumps(
        {"method": "whp_inference", "target": target, "start": start,
         "reinforced": str(reinforced), "alpha": profile.whp.inference_alpha}, indent=2))
    return out_dir


def ensure_whp_inference(profile: Profile, target: str = "harry_potter", start: str | None = None) -> Path:
    start = start or default_start(profile, target)
    tgt = load_target(profile, target, start)
    out = artifact_dir("whp", f"whp-inference-{tgt.name}-{profile.name}", _key(profile, start, tgt))
    with building(out):
        if not is_complete(out):
            write_whp_inference(profile, target, start, out)
            mark_complete(out)
    return out


def whp_progress(run_dir) -> list[dict]:
    """Familiarity / answer probability / MC accuracy measured over the fine-tune."""
    path = Path(run_dir) / "whp_progress.json"
    return json.loads(path.read_text()) if path.exists() else []


