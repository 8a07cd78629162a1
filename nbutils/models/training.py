"""What every ``Trainer`` of the workbook shares, whichever model it trains (the tiny base,
finetuning, unlearning, WHP's reinforced and generic-label models)."""

from __future__ import annotations

import torch
from transformers import Trainer
from transformers.trainer_callback import PrinterCallback, ProgressCallback

from .precision import trainer_precision


def device_arguments(profile=None) -> dict:
    """``TrainingArguments`` keywords for this device: host memory is pinned only where a GPU
    copies from it (on a CPU, pinning only warns), and the profile's precision
    (:func:`~nbutils.models.precision.trainer_precision`) when a profile is given."""
    arguments = {"dataloader_pin_memory": torch.cuda.is_available()}
    if profile is not None:
        arguments.update(trainer_precision(profile))
    return arguments


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
