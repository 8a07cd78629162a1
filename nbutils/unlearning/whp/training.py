"""The two training stages of WHP on blocks of text, through transformers' ``Trainer``:
the reinforced model (ordinary next-token loss on the target text) and the unlearned model
(the same original text, but the generic labels as targets). LoRA is a profile switch; the
adapters are merged afterwards so every later step loads a plain checkpoint."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Callable

import torch
from transformers import DataCollatorForSeq2Seq, Trainer, TrainerCallback, TrainingArguments

from ...paths import mark_complete
from ...profiles import Profile
from .labels import GenericLabels


def lm_features(tokenizer, blocks, max_length: int) -> list[dict]:
    """Next-token prediction on every token of each block (the reinforced model's data)."""
    feats = []
    for b in blocks:
        ids = list(tokenizer(b, add_special_tokens=True)["input_ids"])[:max_length]
        feats.append({"input_ids": ids, "labels": list(ids), "attention_mask": [1] * len(ids)})
    return feats


def generic_label_features(labelled: list[GenericLabels], max_length: int) -> list[dict]:
    """The original tokens as input, the generic labels as targets (WHP part 3)."""
    return [{"input_ids": g.input_ids[:max_length], "labels": g.labels[:max_length],
             "attention_mask": [1] * len(g.input_ids[:max_length])} for g in labelled]


class ProgressProbe(TrainerCallback):
    """Measures ``probe(model)`` before training and every ``every`` optimiser steps (and at
    the end), so a notebook can plot familiarity and utility over the fine-tune."""

    def __init__(self, probe: Callable[[torch.nn.Module], dict], every: int):
        self.probe, self.every, self.history = probe, max(1, every), []

    def _measure(self, model, step: int, args):
        from ...models.precision import autocast
        was_training = model.training
        model.eval()
        with autocast(args.bf16, next(model.parameters()).device):  # as in a training step
            self.history.append({"step": step, **self.probe(model)})
        model.train(was_training)

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self._measure(model, 0, args)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step % self.every == 0 or state.global_step == state.max_steps:
            self._measure(model, state.global_step, args)


def train_blocks(profile: Profile, start: str, features: list[dict], out_dir: Path,
                 epochs: float, learning_rate: float, probe: Callable | None = None) -> Path:
    """Train ``start`` on ``features``; writes a merged checkpoint, ``log_history.json`` and
    (with ``probe``) ``whp_progress.json`` into ``out_dir``, then ``DONE``."""
    from ...finetune import FeatureDataset, apply_lora, save_finetuned
    from ...models.loading import load_model, load_tokenizer
    from ...models.training import device_arguments, quiet_logging
    cfg = profile.whp
    tokenizer = load_tokenizer(start, profile)
    model = load_model(start, profile, load_in_4bit=False, full_precision=not cfg.lora)
    if cfg.lora:
        model = apply_lora(model, profile, load_in_4bit=False)
    steps = max(1, math.ceil(len(features) / cfg.batch_size) * math.ceil(epochs))
    args = TrainingArguments(
        output_dir=str(out_dir / "trainer"), num_train_epochs=epochs,
        per_device_train_batch_size=cfg.batch_size, learning_rate=learning_rate,
        lr_scheduler_type="linear", warmup_steps=max(1, steps // 10), weight_decay=0.01,
        logging_steps=max(1, steps // 20), save_strategy="no", report_to=[], seed=profile.seed,
        dataloader_num_workers=0, remove_unused_columns=False,
        **device_arguments(profile))
    callbacks = []
    if probe is not None:
        callbacks.append(ProgressProbe(probe, max(1, steps // max(1, cfg.eval_points - 1))))
    trainer = Trainer(model=model, args=args, train_dataset=FeatureDataset(features),
                      data_collator=DataCollatorForSeq2Seq(tokenizer, padding=True,
                                                           label_pad_token_id=-100),
                      callbacks=callbacks)
    quiet_logging(trainer)
    trainer.train()
    if trainer.is_world_process_zero():
        save_finetuned(trainer.model, tokenizer, start, profile, out_dir, lora=cfg.lora,
                       load_in_4bit=False)
        (out_dir / "log_history.json").write_text(json.dumps(trainer.state.log_history, indent=1))
        if callbacks:
            (out_dir / "whp_progress.json").write_text(json.dumps(callbacks[0].history, indent=1))
        shutil.rmtree(out_dir / "trainer", ignore_errors=True)
        mark_complete(out_dir)  # last: an interrupted run is never mistaken for done
    trainer.accelerator.wait_for_everyone()
    return out_dir
