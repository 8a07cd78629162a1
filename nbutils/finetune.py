"""Finetuning the target model (all of TOFU) and the retain model (the retain split only).

Training goes through transformers' ``Trainer``, so ``accelerate launch`` with DDP,
DeepSpeed or FSDP works unchanged on a cluster. The loss is on answer tokens only (the
prompt is masked with -100). Full, LoRA and 4-bit QLoRA runs are switches of the profile;
LoRA adapters are merged into full-precision weights afterwards, as in TOFU's LoRA recipe,
so every later notebook loads a plain checkpoint.

``ensure_target_model`` / ``ensure_retain_model`` cache by config: rerunning a notebook,
or running any later notebook alone, reuses the trained model. An interrupted run resumes
from its last epoch checkpoint.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import torch
from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments

from .data.tofu import check_splits, ensure_tofu_source, load_tofu, synthetic_data_key
from .models.loading import ensure_base_model, load_model, load_tokenizer
from .models.precision import resolve_precision
from .models.prompts import answer_window, encode_qa
from .models.training import checkpointing_arguments, device_arguments, quiet_logging, resumable_checkpoint
from .paths import artifact_dir, building, is_complete, mark_complete
from .profiles import Profile, for_corpus


class FeatureDataset(torch.utils.data.Dataset):
    """Already tokenised ``{input_ids, labels}`` features (QA pairs, raw-text blocks, WHP's
    generic labels), each given an all-ones attention mask."""

    def __init__(self, features):
        self.features = [{**f, "attention_mask": [1] * len(f["input_ids"])} for f in features]

    def __len__(self):
        return len(self.features)

    def __getitem__(self, i):
        return self.features[i]


class QADataset(FeatureDataset):
    """Question/answer rows tokenised once: input ids, answer-only labels, attention mask."""

    def __init__(self, rows, tokenizer, prompt_format: str, max_length: int):
        encoded = (encode_qa(tokenizer, r["question"], r["answer"], prompt_format, max_length) for r in rows)
        super().__init__([{"input_ids": e.input_ids, "labels": e.labels} for e in encoded])


class AnswerWindowCollator:
    """Right-pads ids with the pad token and labels with -100 (never scored), and asks the
    model for logits only from the position before the batch's first answer token on
    (``logits_to_keep``, labels cut to match): the LM head and the loss's softmax over the
    vocabulary (49k columns on SmolLM2) skip the prompt, which no loss reads."""

    def __init__(self, tokenizer):
        self.pad = DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100)

    def __call__(self, features):
        batch = self.pad(features)
        keep = answer_window(batch["labels"])
        batch["labels"] = batch["labels"][:, -keep:]
        batch["logits_to_keep"] = keep  # the model's own loss shifts within the window
        return batch


def collator(tokenizer):
    return AnswerWindowCollator(tokenizer)


def apply_lora(model, profile: Profile, load_in_4bit: bool | None = None):
    """Wrap ``model`` with LoRA adapters on every linear layer but the LM head (the
    profile's r / alpha / dropout); 4-bit bases are prepared for k-bit training first."""
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    ft = profile.finetune
    if ft.load_in_4bit if load_in_4bit is None else load_in_4bit:
        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=ft.gradient_checkpointing)
    config = LoraConfig(r=ft.lora_r, lora_alpha=ft.lora_alpha, lora_dropout=ft.lora_dropout,
                        target_modules="all-linear", task_type="CAUSAL_LM")
    bf16_base = model.get_input_embeddings().weight.dtype == torch.bfloat16
    model = get_peft_model(model, config)  # adapters in fp32 (peft's default)
    if bf16_base and not (ft.load_in_4bit if load_in_4bit is None else load_in_4bit):
        # a bf16 base trains under bf16 autocast: peft would otherwise cast every adapter's
        # input to the adapters' fp32 (7 activation copies per layer) for autocast to cast it
        # back; measured 1.15x faster per SmolLM2 step without. Used outside a training step,
        # such a model needs bf16 autocast (nbutils.models.precision.autocast).
        for module in model.modules():
            if hasattr(module, "cast_input_dtype_enabled"):
                module.cast_input_dtype_enabled = False
    return model


def training_arguments(profile: Profile, output_dir: Path, n_examples: int, **extra):
    """TOFU's recipe: warm-up epoch(s), then linear decay; effective batch = bs x accum."""
    ft = profile.finetune
    steps_per_epoch = max(1, math.ceil(n_examples / (ft.batch_size * ft.gradient_accumulation_steps)))
    kwargs = dict(
        output_dir=str(output_dir), num_train_epochs=ft.epochs,
        per_device_train_batch_size=ft.batch_size,
        gradient_accumulation_steps=ft.gradient_accumulation_steps,
        learning_rate=ft.learning_rate, weight_decay=ft.weight_decay,
        lr_scheduler_type="linear", warmup_steps=int(round(ft.warmup_epochs * steps_per_epoch)),
        # checkpoints to resume from: every epoch, but no more than ~5 per run
        logging_steps=max(1, steps_per_epoch // 2), save_strategy="steps",
        save_steps=max(steps_per_epoch, int(steps_per_epoch * ft.epochs) // 5), save_total_limit=1,
        **device_arguments(profile), **checkpointing_arguments(ft.gradient_checkpointing and not ft.load_in_4bit),
        report_to=[], seed=profile.seed, dataloader_num_workers=0, remove_unused_columns=False,
        # batches of similar length: little padding (the Trainer's length-grouped sampler)
        train_sampling_strategy="group_by_length",
    )
    kwargs.update(extra)
    return TrainingArguments(**kwargs)


def finetune(profile: Profile, rows, output_dir: Path, base: str | None = None,
             features: list[dict] | None = None) -> Path:
    """Finetune ``base`` (default: the profile's base model) on QA ``rows``, or on tokenised
    ``features`` (raw-text blocks: see :func:`~nbutils.models.prompts.encode_text_blocks`);
    returns the folder of the merged checkpoint (safetensors + tokenizer + ``log_history.json``)."""
    base = base or ensure_base_model(profile)
    ft = profile.finetune
    tokenizer = load_tokenizer(base, profile)
    # trained weights in fp32 (bf16 autocast where the profile computes in bf16); the frozen
    # base of a LoRA run in the compute precision
    model = load_model(base, profile, load_in_4bit=ft.load_in_4bit, full_precision=not ft.lora)
    if ft.lora:
        model = apply_lora(model, profile)
    dataset = (QADataset(rows, tokenizer, profile.prompt_format, ft.max_length) if features is None
               else FeatureDataset(features))
    work = output_dir / "trainer"
    args = training_arguments(profile, work, len(dataset))
    trainer = Trainer(model=model, args=args, train_dataset=dataset,
                      data_collator=collator(tokenizer), processing_class=tokenizer)
    quiet_logging(trainer)
    # the newest whole and finite checkpoint of an interrupted run (a broken one is removed)
    resume = resumable_checkpoint(work, finite=True)
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    if trainer.is_world_process_zero():  # multi-process runs: every process trains, one writes
        save_finetuned(trainer.model, tokenizer, base, profile, output_dir)
        (output_dir / "log_history.json").write_text(json.dumps(trainer.state.log_history, indent=1))
        # weights are in place: drop the resumable checkpoints, then mark done (last)
        shutil.rmtree(work, ignore_errors=True)
        mark_complete(output_dir)
    trainer.accelerator.wait_for_everyone()
    return output_dir


def save_finetuned(model, tokenizer, base: str, profile: Profile, output_dir: Path,
                   lora: bool | None = None, load_in_4bit: bool | None = None) -> None:
    """Save plain float32 weights; LoRA adapters are merged first.

    A 4-bit (QLoRA) or bf16 base cannot hold merged weights without rounding them, so its
    adapters are saved, then merged into the base loaded again in float32.
    """
    lora = profile.finetune.lora if lora is None else lora
    load_in_4bit = profile.finetune.load_in_4bit if load_in_4bit is None else load_in_4bit
    if lora:
        base_dtype = next(p.dtype for n, p in model.named_parameters() if "lora_" not in n)
        if load_in_4bit or base_dtype != torch.float32:
            from peft import PeftModel
            adapter_dir = output_dir / "adapter"
            model.save_pretrained(adapter_dir)
            full = load_model(base, profile, load_in_4bit=False, full_precision=True)
            model = PeftModel.from_pretrained(full, adapter_dir).merge_and_unload()
            shutil.rmtree(adapter_dir)
        else:
            model = model.merge_and_unload()
    model.save_pretrained(output_dir, safe_serialization=True)
    tokenizer.save_pretrained(output_dir)


def _model_key(profile: Profile, split: str) -> dict:
    return {"base": profile.model, "base_path": ensure_base_model(profile), "tiny_arch": profile.tiny_arch if profile.model == "tiny" else None,
            "pretrain": profile.pretrain if profile.model == "tiny" else None,
            "data": ensure_tofu_source(profile) if profile.data_source == "hub" else
            synthetic_data_key(profile),
            "split": split, "prompt_format": profile.prompt_format,
            "replay_pretraining": profile.replay_pretraining,
            # only when on, so the keys of models trained before the switch existed stay valid
            **({"replay_general_knowledge": True} if profile.replay_general_knowledge else {}),
            "finetune": profile.finetune, "seed": profile.seed, "version": 1,
            "precision": resolve_precision(profile.precision)}


def ensure_finetuned(profile: Profile, split: str, name: str) -> Path:
    """The model finetuned on TOFU ``split``, trained once and cached by config."""
    out = artifact_dir("models", name, _model_key(profile, split))
    with building(out):  # a second process wanting it waits, then reuses it
        if not is_complete(out):
            check_splits(profile)  # before training on data whose splits do not fit together
            rows = list(load_tofu(profile, split))
            if profile.replay_pretraining:
                from .data.pretrain import probe_items
                rows += [{"question": x["question"], "answer": x["answer"]} for x in probe_items(profile)]
            if profile.replay_general_knowledge:
                from .data.pretrain import held_out_probe_items
                rows += [{"question": x["question"], "answer": x["answer"]} for x in held_out_probe_items(profile)]
            finetune(profile, rows, out)
    return out


def ensure_target_model(profile: Profile) -> Path:
    """The target model: finetuned on all of TOFU (``full``), forget authors included."""
    return ensure_finetuned(profile, "full", f"target-{profile.name}")


def ensure_retain_model(profile: Profile) -> Path:
    """The retain ("oracle") model: the same recipe on the retain split only."""
    return ensure_finetuned(profile, profile.retain_split, f"retain-{profile.name}-{profile.retain_split}")


# --- MUSE: models trained on raw text --------------------------------------------------
MUSE_TRAINING_SPLITS = {"target": ("forget", "retain1", "retain2"), "retrain": ("retain1", "retain2")}


def muse_finetune_profile(profile: Profile) -> Profile:
    """The profile whose finetune section trains MUSE's models: the same recipe (LoRA or
    not, weight decay) with the ``muse`` section's epochs, learning rate, batch size and
    block length, and every weight trained where ``muse.full_finetune`` says so."""
    from dataclasses import replace
    m = profile.muse
    return replace(profile, replay_pretraining=False, finetune=replace(
        profile.finetune, epochs=m.finetune_epochs, learning_rate=m.finetune_learning_rate,
        batch_size=m.finetune_batch_size or profile.finetune.batch_size,
        max_length=m.block_length, lora=profile.finetune.lora and not m.full_finetune))


def muse_training_features(profile: Profile, corpus: str, splits, tokenizer) -> list[dict]:
    """The ``raw`` texts of ``splits`` as language-modelling blocks (loss on every token)."""
    from .data.muse import load_muse
    from .models.prompts import encode_text_blocks
    texts = [r["text"] for split in splits for r in load_muse(profile, "raw", split, corpus=corpus)]
    return encode_text_blocks(tokenizer, texts, profile.muse.block_length)


def ensure_muse_model(profile: Profile, corpus: str = "news", role: str = "target") -> Path:
    """MUSE's ``target`` ("Origin": the base model finetuned on forget + retain text) or
    ``retrain`` model (retain text only) for ``corpus`` ("news" or "books"), trained once
    and cached by config."""
    from .data.muse import muse_data_key
    if role not in MUSE_TRAINING_SPLITS:
        raise ValueError(f"MUSE model role must be one of {sorted(MUSE_TRAINING_SPLITS)}, got {role!r}")
    profile = for_corpus(profile, corpus)
    base = ensure_base_model(profile)
    ft_profile = muse_finetune_profile(profile)
    key = {"base": profile.model, "base_path": base, "data": muse_data_key(profile, corpus),
           "splits": MUSE_TRAINING_SPLITS[role], "finetune": ft_profile.finetune,
           "block_length": profile.muse.block_length, "seed": profile.seed, "version": 1,
           "tiny_arch": profile.tiny_arch if profile.model == "tiny" else None,
           "pretrain": profile.pretrain if profile.model == "tiny" else None,
           "precision": resolve_precision(profile.precision)}
    out = artifact_dir("models", f"muse-{corpus}-{role}-{profile.name}", key)
    with building(out):
        if not is_complete(out):
            feats = muse_training_features(profile, corpus, MUSE_TRAINING_SPLITS[role],
                                           load_tokenizer(base, profile))
            finetune(ft_profile, None, out, features=feats)
    return out


def training_log(path: Path) -> list[dict]:
    """The Trainer's log history saved beside a finetuned checkpoint."""
    return json.loads((Path(path) / "log_history.json").read_text())
