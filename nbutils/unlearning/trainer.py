"""One unlearning trainer for every method, on transformers' ``Trainer``.

Because it *is* a ``Trainer``, ``accelerate launch`` with DDP, DeepSpeed ZeRO-3 or FSDP works
unchanged. What it adds:

- forget/retain pairing: every forget example gets a random retain partner, drawn from a
  generator seeded by (seed, process rank, index), so ranks do not all draw the same
  retain samples (a bug REFERENCE §5 records in published code);
- answer-only masks on every group (forget, retain, preferred), the KL term included;
- reference log-probabilities computed **once** before training (NPO, DPO family, AltPO);
  a reference model only for methods that need per-token reference outputs (KL, RMU,
  UNDIAL), which on LoRA runs is the same model with adapters disabled;
- per-part losses and forget/retain answer probabilities logged over steps;
- ``checkpoint-<step>`` folders with an ``unlearning.json`` metadata file;
- a loss that turns NaN or infinite stops the run with a clear message; the checkpoints
  written before it stay as they were.
"""

from __future__ import annotations

import copy
import json
import math
import os
import random
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from transformers import Trainer, TrainerCallback

from ..models.precision import autocast
from ..models.prompts import encode_qa
from ..models.training import checkpoint_problem, checkpoints_newest_first
from . import losses
from .base import UnlearningMethod


class NonFiniteLossError(RuntimeError):
    """The unlearning loss became NaN or infinite."""


def process_rank() -> int:
    return int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", 0)))


def encode_rows(tokenizer, rows, prompt_format: str, max_length: int, answer_key: str = "answer"):
    feats = []
    for row in rows:
        enc = encode_qa(tokenizer, row["question"], row[answer_key], prompt_format, max_length)
        feats.append({"input_ids": enc.input_ids, "labels": enc.labels})
    return feats


class UnlearningDataset(torch.utils.data.Dataset):
    """Item i: forget example i, a seeded random retain partner, and (optionally) the
    preferred answer to the same question, each with its cached reference log-prob."""

    def __init__(self, forget, retain, preferred=None, seed: int = 0, rank: int | None = None):
        if preferred is not None and len(preferred) != len(forget):
            raise ValueError("preferred answers must pair one-to-one with forget examples")
        self.forget, self.retain, self.preferred = forget, retain, preferred
        self.seed = seed
        self.rank = process_rank() if rank is None else rank

    def __len__(self):
        return len(self.forget)

    def retain_index(self, i: int) -> int:
        return random.Random(f"{self.seed}-{self.rank}-{i}").randrange(len(self.retain))

    def __getitem__(self, i):
        item = {"forget": self.forget[i], "retain": self.retain[self.retain_index(i)]}
        if self.preferred is not None:
            item["preferred"] = self.preferred[i]
        return item


@dataclass
class UnlearningCollator:
    """Right-pads each group on its own; labels are padded with -100 (never scored)."""

    pad_token_id: int

    def pad(self, feats):
        width = max(len(f["input_ids"]) for f in feats)
        ids = torch.full((len(feats), width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(feats), width), losses.IGNORE, dtype=torch.long)
        mask = torch.zeros((len(feats), width), dtype=torch.long)
        for i, f in enumerate(feats):
            n = len(f["input_ids"])
            ids[i, :n] = torch.tensor(f["input_ids"])
            labels[i, :n] = torch.tensor(f["labels"])
            mask[i, :n] = 1
        group = {"input_ids": ids, "labels": labels, "attention_mask": mask}
        if "ref_logprob" in feats[0]:
            group["ref_logprob"] = torch.tensor([f["ref_logprob"] for f in feats], dtype=torch.float32)
        return group

    def __call__(self, items):
        return {key: self.pad([it[key] for it in items]) for key in items[0]}


@torch.no_grad()
def sequence_logprobs(model, feats, pad_token_id: int, batch_size: int = 32) -> list[float]:
    """``S(a|q)`` of each feature under ``model`` (one pass, before training).

    Every probability the evaluation, WHP and the probing app report goes through
    :func:`nbutils.evaluation.scoring.score_encoded`; the trainer scores with the loss's own
    path instead (:meth:`UnlearningMethod.answer_logits` and :func:`losses.sequence_logprob`),
    so that a cached ``S_ref`` equals the first step's ``S_θ`` bit for bit (NPO and DPO start
    at exactly ``(2/β) log 2``)."""
    collate = UnlearningCollator(pad_token_id)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out: list[float] = []
    for start in range(0, len(feats), batch_size):
        g = {k: v.to(device) for k, v in collate.pad(feats[start:start + batch_size]).items()}
        s, _ = losses.sequence_logprob(*UnlearningMethod.answer_logits(model, g))
        out += s.float().cpu().tolist()
    model.train(was_training)
    return out


@dataclass
class UnlearningContext:
    """What a method may ask of the run besides the batch."""

    model: torch.nn.Module
    tokenizer: object
    profile: object
    seed: int
    idk_pool: list[str] = field(default_factory=list)
    reference_model: torch.nn.Module | None = None  # None on LoRA runs: adapters disabled
    epoch: float = 0.0  # epochs completed so far (the Trainer's state.epoch), for schedules

    def _reference(self):
        """The frozen starting model, and a context that makes ``self.model`` be it."""
        if self.reference_model is not None:
            return self.reference_model, nullcontext()
        return self.model, self.model.disable_adapter()

    @torch.no_grad()
    def reference_logits(self, group) -> torch.Tensor:
        """The frozen model's logits over the group's answer window (as the method's own)."""
        model, ctx = self._reference()
        with ctx:
            return UnlearningMethod.answer_logits(model, group)[0]

    @torch.no_grad()
    def reference_hidden(self, group, layer: int) -> torch.Tensor:
        model, ctx = self._reference()
        with ctx:
            out = model(input_ids=group["input_ids"], attention_mask=group["attention_mask"],
                        output_hidden_states=True, logits_to_keep=1)
        return out.hidden_states[layer + 1]


def frozen_copy(model) -> torch.nn.Module:
    ref = copy.deepcopy(model).eval()
    for p in ref.parameters():
        p.requires_grad_(False)
    return ref


class CheckpointMetadata(TrainerCallback):
    """Writes ``unlearning.json`` (method, hyperparameters, split, step) into each checkpoint."""

    def __init__(self, metadata: dict):
        self.metadata = metadata

    def on_save(self, args, state, control, **kwargs):
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if folder.exists() and state.is_world_process_zero:
            meta = {**self.metadata, "step": state.global_step, "epoch": state.epoch}
            (folder / "unlearning.json").write_text(json.dumps(meta, indent=2, default=str))
        return control


# how many times a run logs its probe answers' probabilities (every step where it has fewer)
PROBE_POINTS = 20


class UnlearnTrainer(Trainer):
    """``Trainer`` whose loss is the unlearning method's ``γ·L_forget + α·L_retain``."""

    def __init__(self, *args, method: UnlearningMethod, context: UnlearningContext,
                 probe_groups: dict | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.method = method
        self.context = context
        self.probe_groups = probe_groups or {}
        self._parts: dict[str, list[float]] = {}

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        self.context.epoch = self.state.epoch or 0.0
        loss, parts = self.method.loss(model, inputs, self.context)
        if not torch.isfinite(loss):  # global_step counts the optimiser steps already done
            # the step that diverged may have saved its NaN weights before this loss showed it
            good = next((c for c in checkpoints_newest_first(self.args.output_dir)
                         if checkpoint_problem(c, finite=True) is None), None)
            raise NonFiniteLossError(
                f"{self.method.name}: the loss became {loss.item()} at step {self.state.global_step + 1} "
                f"(parts {parts}). Lower the learning rate or check the batch. Last good checkpoint: "
                f"{good or 'none (the starting model is unchanged)'}")
        for k, v in parts.items():
            self._parts.setdefault(k, []).append(v)
        return (loss, None) if return_outputs else loss

    @torch.no_grad()
    def answer_probabilities(self) -> dict[str, float]:
        """Mean ``P̃(a|q) = exp(S/|a|)`` of the probe forget/retain answers, right now."""
        model = self.model
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        with autocast(self.args.bf16, device):  # as in a training step
            out = self._answer_probabilities(model, device)
        model.train(was_training)
        return out

    def _answer_probabilities(self, model, device) -> dict[str, float]:
        out = {}
        for name, g in self.probe_groups.items():
            g = {k: v.to(device) for k, v in g.items()}
            s, n = losses.sequence_logprob(*UnlearningMethod.answer_logits(model, g))
            out[f"{name}_answer_prob"] = torch.exp(s / n.clamp(min=1)).mean().item()
        return out

    def probe_due(self) -> bool:
        """Whether this step's log gets the probe probabilities: about :data:`PROBE_POINTS`
        times a run, the last step included. On every step of a long run they would cost
        more than the training: a probe reads up to ``probe_examples`` forget and as many
        retain examples, where a step trains on one batch (on smol's MUSE-News scalability
        runs, 8 passages and 8 articles against one of each)."""
        step, last = self.state.global_step, self.state.max_steps
        every = max(1, math.ceil(last / PROBE_POINTS))
        return step % every == 0 or step >= last

    def log(self, logs: dict, *args, **kwargs):
        if "loss" in logs:  # a training log: add the parts and, when due, the probe probabilities
            for k, v in self._parts.items():
                logs[k] = sum(v) / len(v)
            self._parts = {}
            if self.probe_due():
                logs.update(self.answer_probabilities())
        super().log(logs, *args, **kwargs)


def method_metadata(method: UnlearningMethod, split: str, run_name: str, task=None) -> dict:
    return {"method": method.name, "hyperparameters": asdict(method.config), "split": split,
            "task": getattr(task, "name", "tofu"), "run_name": run_name, "paper": method.paper}
