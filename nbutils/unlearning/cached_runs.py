"""Running an unlearning method: from a profile, a method name and hyperparameters to a
cached, checkpointed, named run.

``ensure_unlearned(profile, "npo", beta=0.1)`` trains once per configuration and returns the
run folder (final merged weights at its root, ``checkpoint-<step>`` folders with metadata,
``log_history.json``). The same run is reachable as a script for ``accelerate launch``:
``python -m nbutils.unlearning --profile tiny --method npo``.
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import asdict, replace
from pathlib import Path

import torch.distributed as dist
from transformers import TrainingArguments

from ..data.tofu import load_idk_pool
from ..finetune import apply_lora, save_finetuned
from ..models.loading import load_model, load_tokenizer
from ..models.precision import compute_dtype, resolve_precision
from ..models.training import device_arguments, quiet_logging
from ..paths import artifact_dir, building, is_complete, mark_complete
from ..profiles import Profile
from .base import UnlearningMethod, get_method
from .tasks import UnlearningTask, as_task
from .trainer import (CheckpointMetadata, UnlearnTrainer, UnlearningCollator, UnlearningContext,
                      UnlearningDataset, encode_rows, frozen_copy, method_metadata, sequence_logprobs)


def model_label(profile: Profile) -> str:
    return Path(profile.model).name.replace("/", "-")


def run_name(profile: Profile, method: UnlearningMethod, task: UnlearningTask = UnlearningTask()) -> str:
    """``unlearn_<task>_<model>_<split>_<method>_lr<lr>_beta<β>_alpha<α>_epoch<n>``
    (open-unlearning's pattern; ``task`` is ``tofu``, ``muse_news``, ...)."""
    c = method.config
    lr, epochs = schedule(profile, method)
    beta = getattr(c, "beta", None)
    split = profile.forget_split if task.name == "tofu" else "forget"
    return (f"unlearn_{task.label}_{model_label(profile)}_{split}_{method.name}"
            f"_lr{lr:g}_beta{beta if beta is not None else 'NA'}_alpha{c.alpha:g}_epoch{epochs:g}")


def schedule(profile: Profile, method: UnlearningMethod) -> tuple[float, float]:
    """``(learning rate, epochs)``: the method's published ones if it has them and the
    profile allows it, else the profile's."""
    u, c = profile.unlearn, method.config
    explicit = getattr(method, "explicit_hparams", frozenset())  # set by the caller or profile

    def pick(key, profile_value):
        value = getattr(c, key)
        if key in explicit or (u.method_schedule and value is not None):
            return value
        return profile_value
    return pick("learning_rate", u.learning_rate), pick("epochs", u.epochs)


def _with_ref(feats, values):
    return [{**f, "ref_logprob": v} for f, v in zip(feats, values)]


def unlearn(profile: Profile, method: UnlearningMethod, out_dir: Path, start: str | None = None,
            task: UnlearningTask | str = "tofu") -> Path:
    """Run ``method`` on the task's forget set (default: TOFU's, the profile's forget split),
    starting from ``start`` (default: the task's target model). Writes the final model into
    ``out_dir`` and returns it. ``profile`` is the task's own (:meth:`UnlearningTask.profile_for`)."""
    task = as_task(task)
    start = str(start or task.start_model(profile))
    task.check_applicable(method)
    built = method.unlearn(profile, start, out_dir, task)  # methods that are not a training loss
    if built is not None:
        return built
    u = profile.unlearn
    max_length = task.max_length(profile)
    tokenizer = load_tokenizer(start, profile)
    # trained weights in fp32 (bf16 autocast where the profile computes in bf16); the frozen
    # base of a LoRA run in the compute precision
    model = load_model(start, profile, load_in_4bit=u.load_in_4bit, full_precision=not u.lora)
    context = UnlearningContext(model, tokenizer, profile, profile.seed, load_idk_pool(profile))

    pref = None
    if task.is_muse:
        forget, retain = task.text_features(profile, tokenizer)
    else:
        forget_rows, retain_rows = task.qa_rows(profile)
        preferred = method.preferred_answers(forget_rows, context)
        if preferred is not None and isinstance(preferred[0], list):  # several per question: expand
            forget_rows = [r for r, alts in zip(forget_rows, preferred) for _ in alts]
            preferred = [a for alts in preferred for a in alts]
        forget = encode_rows(tokenizer, forget_rows, profile.prompt_format, max_length)
        retain = encode_rows(tokenizer, retain_rows, profile.prompt_format, max_length)
        if preferred is not None:
            pref_rows = [{"question": r["question"], "answer": a} for r, a in zip(forget_rows, preferred)]
            pref = encode_rows(tokenizer, pref_rows, profile.prompt_format, max_length)
    # reference log-probabilities: once, before training, with the starting model
    if "forget" in method.reference_logprobs:
        forget = _with_ref(forget, sequence_logprobs(model, forget, tokenizer.pad_token_id))
    if "preferred" in method.reference_logprobs and pref is not None:
        pref = _with_ref(pref, sequence_logprobs(model, pref, tokenizer.pad_token_id))

    if method.uses_reference_model and not u.lora:  # frozen: it computes in the profile's precision
        context.reference_model = frozen_copy(model).to(compute_dtype(profile))
    if u.lora:
        model = apply_lora(model, profile, load_in_4bit=u.load_in_4bit)
        context.model = model
    names = method.trainable_parameter_names(model)
    if names is not None:
        # on a LoRA run only adapters can train: the method's modules keep theirs, the rest freeze
        trainable = {n for n, p in model.named_parameters() if p.requires_grad}
        for n, p in model.named_parameters():
            p.requires_grad_(n in names and n in trainable)

    dataset = UnlearningDataset(forget, retain, pref, seed=profile.seed)
    collate = UnlearningCollator(tokenizer.pad_token_id)
    k = min(u.probe_examples, len(forget), len(retain))
    probe_groups = {"forget": collate.pad(forget[:k]), "retain": collate.pad(retain[:k])}
    lr, epochs = schedule(profile, method)
    steps_per_epoch = max(1, math.ceil(len(dataset) / (u.batch_size * u.gradient_accumulation_steps)))
    args = TrainingArguments(
        output_dir=str(out_dir), num_train_epochs=epochs, per_device_train_batch_size=u.batch_size,
        gradient_accumulation_steps=u.gradient_accumulation_steps, learning_rate=lr,
        weight_decay=u.weight_decay, lr_scheduler_type="linear",
        warmup_steps=int(round(u.warmup_epochs * steps_per_epoch)),
        logging_steps=1, save_strategy="steps", save_steps=u.save_steps or steps_per_epoch,
        save_only_model=True, **device_arguments(profile), report_to=[], seed=profile.seed,
        dataloader_num_workers=0, remove_unused_columns=False,
    )
    name = out_dir.name
    # processing_class: every checkpoint-<step> carries the tokenizer, so it loads on its own
    trainer = UnlearnTrainer(model=model, args=args, train_dataset=dataset, data_collator=collate,
                             processing_class=tokenizer,
                             method=method, context=context, probe_groups=probe_groups,
                             callbacks=[CheckpointMetadata(method_metadata(method, task.forget_label(profile), name, task))])
    quiet_logging(trainer)
    start_probs = {"step": 0, "epoch": 0.0, **trainer.answer_probabilities()}
    trainer.train()
    # multi-process runs: every process trains, the main process writes the files
    if trainer.is_deepspeed_enabled or trainer.is_fsdp_enabled:
        _save_sharded(trainer, tokenizer, start, profile, out_dir)
    elif trainer.is_world_process_zero():
        save_finetuned(trainer.model, tokenizer, start, profile, out_dir, lora=u.lora, load_in_4bit=u.load_in_4bit)
    if trainer.is_world_process_zero():
        (out_dir / "log_history.json").write_text(json.dumps([start_probs] + trainer.state.log_history, indent=1))
        (out_dir / "unlearning.json").write_text(json.dumps(
            {**method_metadata(method, task.forget_label(profile), name, task), "start": start,
             "steps": trainer.state.global_step}, indent=2, default=str))
    return out_dir


def _save_sharded(trainer, tokenizer, start: str, profile: Profile, out_dir: Path) -> None:
    """DeepSpeed ZeRO-3 / FSDP: every process takes part in gathering the full weights
    (``zero3_save_16bit_model`` / ``FULL_STATE_DICT``), the main one writes them; LoRA
    adapters are merged into the starting model loaded again in full precision."""
    lora = profile.unlearn.lora
    trainer.save_model(str(out_dir / "adapter" if lora else out_dir))
    if trainer.is_world_process_zero():
        if lora:
            from peft import PeftModel
            full = load_model(start, profile, load_in_4bit=False, full_precision=True)
            merged = PeftModel.from_pretrained(full, out_dir / "adapter").merge_and_unload()
            merged.save_pretrained(out_dir, safe_serialization=True)
            shutil.rmtree(out_dir / "adapter")
        (out_dir / "training_args.bin").unlink(missing_ok=True)
        tokenizer.save_pretrained(out_dir)


def method_for(profile: Profile, method_name: str, **hparams) -> UnlearningMethod:
    """The method with the profile's per-method hyperparameters, under ``hparams``."""
    merged = {**profile.unlearn.method_hparams.get(method_name.lower(), {}), **hparams}
    method = get_method(method_name, **merged)
    method.explicit_hparams = frozenset(merged)
    return method


def ensure_unlearned(profile: Profile, method_name: str, start: str | None = None,
                     task: UnlearningTask | str = "tofu", **hparams) -> Path:
    """The run of ``method_name`` with ``hparams`` on ``task`` (TOFU by default; see
    :mod:`nbutils.unlearning.tasks`), trained once and cached."""
    task = as_task(task)
    profile = task.profile_for(profile)
    method = method_for(profile, method_name, **hparams)
    task.check_applicable(method)  # before any model is built
    start = str(start or task.start_model(profile))
    # the run depends on its own method's hyperparameters (in "config"), not on the other
    # methods' entries of method_hparams: retuning one method retrains only that method
    key = {"start": start, "method": method.name, "config": asdict(method.config),
           "explicit": sorted(method.explicit_hparams),
           "unlearn": replace(profile.unlearn, method_hparams={}), "forget_split": profile.forget_split,
           "prompt_format": profile.prompt_format, "seed": profile.seed, "version": 2,
           "precision": resolve_precision(profile.precision)}
    if task.is_muse:  # (TOFU keys stay as they were: cached runs remain valid)
        key["task"] = task.data_key(profile)
    key |= {section: getattr(profile, section) for section in method.profile_sections}
    out = artifact_dir("unlearn", run_name(profile, method, task), key)
    with building(out):  # a second process wanting the same run waits, then reuses it
        if not is_complete(out):
            if _main_process():
                for old in out.glob("checkpoint-*"):  # an interrupted run starts over cleanly
                    shutil.rmtree(old)
            _wait_for_everyone()
            unlearn(profile, method, out, start, task)
            if _main_process():
                mark_complete(out)
    _wait_for_everyone()  # no process returns before the main one has written everything
    return out


def _main_process() -> bool:
    """True in a single-process run and on rank 0 of a multi-process one (any launcher)."""
    return not dist.is_initialized() or dist.get_rank() == 0


def _wait_for_everyone() -> None:
    if dist.is_initialized():
        dist.barrier()


def unlearning_log(run_dir: Path) -> list[dict]:
    return json.loads((Path(run_dir) / "log_history.json").read_text())


def checkpoints(run_dir: Path) -> list[Path]:
    """The run's ``checkpoint-<step>`` folders in step order."""
    return sorted(Path(run_dir).glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]))
