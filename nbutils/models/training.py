"""What every ``Trainer`` of the workbook shares, whichever model it trains (the tiny base,
finetuning, unlearning, WHP's reinforced and generic-label models)."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
from transformers import Trainer
from transformers.trainer_callback import PrinterCallback, ProgressCallback

from ..paths import unreadable_weights
from .precision import trainer_precision


def device_arguments(profile=None) -> dict:
    """``TrainingArguments`` keywords for this device: host memory is pinned only where a GPU
    copies from it (on a CPU, pinning only warns), and the profile's precision
    (:func:`~nbutils.models.precision.trainer_precision`) when a profile is given."""
    arguments = {"dataloader_pin_memory": torch.cuda.is_available()}
    if profile is not None:
        arguments.update(trainer_precision(profile))
    return arguments


def checkpointing_arguments(enabled: bool) -> dict:
    """``TrainingArguments`` keywords for activation checkpointing: none when it is off, and
    the name the installed transformers knows when on (v5 renamed ``gradient_checkpointing``
    to ``activation_checkpointing`` and warns on the old name)."""
    if not enabled:
        return {}
    import dataclasses
    from transformers import TrainingArguments
    names = {f.name for f in dataclasses.fields(TrainingArguments)}
    return {"activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing": True}


class QuietProgress(ProgressCallback):
    """The progress bar without a printed dict per logging step (the logs are kept in
    ``log_history`` and plotted by the notebooks)."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        return control


def quiet_logging(trainer: Trainer) -> Trainer:
    """One progress bar, no printed log lines: what a notebook cell should show while it trains."""
    trainer.remove_callback(PrinterCallback)
    if trainer.pop_callback(ProgressCallback) is not None:
        trainer.add_callback(QuietProgress)
    return trainer


def checkpoints_newest_first(work_dir) -> list[Path]:
    """The ``checkpoint-<step>`` folders under ``work_dir``, newest (highest step) first."""
    found = Path(work_dir).glob("checkpoint-*") if Path(work_dir).exists() else []
    return sorted((p for p in found if p.name.split("-")[-1].isdigit()),
                  key=lambda p: int(p.name.split("-")[-1]), reverse=True)


def checkpoint_problem(folder, finite: bool = False) -> str | None:
    """Why a Trainer checkpoint cannot be resumed or trusted, or ``None``: its trainer state
    is written after the weights, so a killed save lacks it; a weight file must read whole;
    with ``finite``, every weight must be a finite number (a diverged step saves NaNs)."""
    folder = Path(folder)
    if not (folder / "trainer_state.json").exists():
        return "no trainer_state.json (the save was interrupted)"
    broken = unreadable_weights(folder)
    if broken:
        return ", ".join(broken)
    if finite:
        from safetensors import safe_open
        for f in sorted(folder.glob("*.safetensors")):
            with safe_open(str(f), "pt") as handle:
                for name in handle.keys():
                    if not torch.isfinite(handle.get_tensor(name)).all():
                        return f"{f.name}: tensor {name} holds NaN or inf"
    return None


def resumable_checkpoint(work_dir, finite: bool = False) -> Path | None:
    """The newest checkpoint under ``work_dir`` a run can resume from (see
    :func:`checkpoint_problem`). Newer, broken ones are reported and removed: left in place,
    the Trainer's checkpoint rotation would trip over them."""
    for folder in checkpoints_newest_first(work_dir):
        problem = checkpoint_problem(folder, finite)
        if problem is None:
            return folder
        print(f"{folder} cannot be resumed: {problem}; removed")
        shutil.rmtree(folder, ignore_errors=True)
    return None
