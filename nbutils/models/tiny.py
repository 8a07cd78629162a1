"""The ``tiny`` profile's model: a small Llama created from scratch, on our own tokenizer.

Two steps, each cached by its config:
1. a byte-level BPE tokenizer trained with the ``tokenizers`` library on the project's own
   corpus (the fictitious world, the probe facts, the refusal strings);
2. a few epochs of "pretraining" on a general mix (real-author and world-fact probes, as
   statements and as QA), so the model speaks the QA format and knows some true facts
   before it ever sees a fictitious author; that is what makes model utility meaningful.
   The mix includes our Harry Potter corpus: the tiny model "reads the books", so Who's
   Harry Potter has something to unlearn.
"""

from __future__ import annotations

import math

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (DataCollatorForLanguageModeling, LlamaConfig, LlamaForCausalLM,
                          PreTrainedTokenizerFast, Trainer, TrainingArguments)

from ..data.world import WORLD_VERSION
from ..paths import artifact_dir, building, is_complete, mark_complete
from ..profiles import Profile
from .prompts import encode_qa
from .training import device_arguments

SPECIAL_TOKENS = {"pad_token": "<|pad|>", "bos_token": "<|bos|>", "eos_token": "<|eos|>",
                  "unk_token": "<|unk|>"}


def tokenizer_corpus(profile: Profile) -> list[str]:
    """Every text the tokenizer should handle well: the world, its holdout, the probes."""
    from ..data.pretrain import tokenizer_texts
    return tokenizer_texts(profile)


def train_tokenizer(texts: list[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """Byte-level BPE (GPT-2 style: any string encodes, nothing is ever unknown)."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS.values()),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, **SPECIAL_TOKENS)
    fast.padding_side = "right"
    return fast


def build_tiny_model(profile: Profile, tokenizer) -> LlamaForCausalLM:
    arch = profile.tiny_arch
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=arch.hidden_size,
        intermediate_size=arch.intermediate_size, num_hidden_layers=arch.num_hidden_layers,
        num_attention_heads=arch.num_attention_heads,
        num_key_value_heads=arch.num_key_value_heads,
        max_position_embeddings=arch.max_position_embeddings,
        tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(profile.seed)
    return LlamaForCausalLM(config)


class _Examples(torch.utils.data.Dataset):
    def __init__(self, features):
        self.features = features

    def __len__(self):
        return len(self.features)

    def __getitem__(self, i):
        return self.features[i]


def ensure_tiny_base(profile: Profile):
    """Path of the pretrained tiny base model (tokenizer included); trained once."""
    from ..data.pretrain import harry_potter_key
    key = {"arch": profile.tiny_arch, "pretrain": profile.pretrain, "seed": profile.seed,
           "n_authors": profile.n_authors, "qa_per_author": profile.qa_per_author,
           "n_real_authors": profile.n_real_authors, "n_world_facts": profile.n_world_facts,
           "prompt_format": profile.prompt_format, "world": WORLD_VERSION,
           "harry_potter": harry_potter_key(profile), "version": 2}
    out = artifact_dir("models", "tiny-base", key)
    with building(out):  # a second process wanting it waits, then reuses it
        if not is_complete(out):  # never finished, or broken since (reported): trained again
            _pretrain(profile, out)
    return out


def _pretrain(profile: Profile, out) -> None:
    from ..data.pretrain import pretraining_examples
    tokenizer = train_tokenizer(tokenizer_corpus(profile), profile.tiny_arch.vocab_size)
    model = build_tiny_model(profile, tokenizer)
    pre = profile.pretrain
    features = []
    for ex in pretraining_examples(profile, tokenizer):
        if "question" in ex:  # QA: full-sequence loss, so the format itself is learnt
            enc = encode_qa(tokenizer, ex["question"], ex["answer"], profile.prompt_format,
                            pre.max_length)
            ids = enc.input_ids
        else:
            bos = [tokenizer.bos_token_id] if ex.get("bos", True) else []
            ids = bos + tokenizer(ex["text"], add_special_tokens=False)[
                "input_ids"][: pre.max_length - 2] + [tokenizer.eos_token_id]
        features.append({"input_ids": ids})
    steps_per_epoch = math.ceil(len(features) / pre.batch_size)
    args = TrainingArguments(
        output_dir=str(out / "trainer"), num_train_epochs=pre.epochs,
        per_device_train_batch_size=pre.batch_size, learning_rate=pre.learning_rate,
        lr_scheduler_type="cosine", warmup_steps=steps_per_epoch, weight_decay=0.01,
        logging_steps=max(1, steps_per_epoch), save_strategy="no", report_to=[],
        seed=profile.seed, use_cpu=not torch.cuda.is_available(), dataloader_num_workers=0,
        **device_arguments(),
    )
    trainer = Trainer(model=model, args=args, train_dataset=_Examples(features),
                      data_collator=DataCollatorForLanguageModeling(tokenizer, mlm=False))
    trainer.train()
    if trainer.is_world_process_zero():  # multi-process runs: every process trains, one writes
        _save_then_mark(model, tokenizer, out, trainer.state.log_history)
    trainer.accelerator.wait_for_everyone()


def _save_then_mark(model, tokenizer, out, log_history):
    """The manifest lands last, so an interrupted save never leaves a model that looks done."""
    import json
    tokenizer.save_pretrained(out)
    (out / "log_history.json").write_text(json.dumps(log_history, indent=1))
    model.save_pretrained(out, safe_serialization=True)
    mark_complete(out)
