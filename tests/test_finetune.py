"""Finetuning on a micro profile: base model, data collation, target/retain, LoRA, QLoRA.

Seconds per training run: 6 authors x 3 QA, a 2-layer Llama of width 32, 1-2 epochs.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest
import torch

from nbutils.models.loading import read_safetensors
from nbutils import finetune as ft_module
from nbutils.finetune import (QADataset, collator, ensure_retain_model, ensure_target_model,
                              training_log)
from nbutils.models.loading import ensure_base_model, load_model, load_tokenizer
from nbutils.paths import artifact_dir
from nbutils.profiles import get_profile


def _losses(folder) -> list[float]:
    return [e["loss"] for e in training_log(folder) if "loss" in e]


def test_micro_profile_fields(micro_profile):
    assert micro_profile.n_authors == 6 and micro_profile.qa_per_author == 3
    assert micro_profile.tiny_arch.hidden_size == 32 and micro_profile.finetune.epochs == 2


def test_base_model(micro_profile, micro_base, workbook_cache):
    from transformers import AutoModelForCausalLM, LlamaForCausalLM
    base = Path(micro_base)
    assert str(base).startswith(str(workbook_cache))
    assert list(base.glob("*.safetensors"))
    assert not list(base.glob("*.bin"))
    assert (base / "log_history.json").exists()
    tok = load_tokenizer(str(base), micro_profile)
    assert len(tok) <= micro_profile.tiny_arch.vocab_size
    assert tok.eos_token_id is not None and tok.pad_token_id is not None
    model = AutoModelForCausalLM.from_pretrained(str(base))
    assert isinstance(model, LlamaForCausalLM)
    assert model.config.hidden_size == 32 and model.config.vocab_size == len(tok)
    assert isinstance(load_model(str(base), micro_profile), LlamaForCausalLM)
    # cached: the second call returns at once
    start = time.perf_counter()
    assert ensure_base_model(micro_profile) == str(base)
    assert time.perf_counter() - start < 1.0


def test_qa_dataset_and_collator(micro_profile, micro_base):
    tok = load_tokenizer(micro_base, micro_profile)
    rows = [{"question": "Who wrote it?", "answer": "Ann."},
            {"question": "Where was the author of many long books born?", "answer": "In a small town by the sea."}]
    ds = QADataset(rows, tok, "qa", max_length=64)
    assert len(ds) == 2
    for f in ds.features:
        assert len(f["input_ids"]) == len(f["labels"]) == len(f["attention_mask"])
        assert f["labels"][0] == -100 and f["labels"][-1] == tok.eos_token_id
    batch = collator(tok)([ds[0], ds[1]])
    n0, n1 = len(ds[0]["input_ids"]), len(ds[1]["input_ids"])
    width = max(n0, n1)
    assert batch["input_ids"].shape == batch["attention_mask"].shape == (2, width)
    short = 0 if n0 < n1 else 1
    n = min(n0, n1)
    # right padding: the real tokens first, then pad ids / mask 0
    assert batch["input_ids"][short, :n].tolist() == ds[short]["input_ids"]
    assert batch["input_ids"][short, n:].tolist() == [tok.pad_token_id] * (width - n)
    assert batch["attention_mask"][short].tolist() == [1] * n + [0] * (width - n)
    # labels: the window from the position before the batch's first answer token, -100 padded
    keep = batch["logits_to_keep"]
    first_answer = min(next(i for i, l in enumerate(ds[r]["labels"]) if l != -100) for r in (0, 1))
    assert keep == width - first_answer + 1 and batch["labels"].shape == (2, keep)
    full = [ds[r]["labels"] + [-100] * (width - len(ds[r]["labels"])) for r in (0, 1)]
    assert batch["labels"].tolist() == [row[width - keep:] for row in full]


def test_answer_window_loss_equals_full_loss(micro_profile, micro_base):
    """Logits from the answer window on give the same loss as logits everywhere."""
    import torch
    from nbutils.models import load_model
    tok = load_tokenizer(micro_base, micro_profile)
    rows = [{"question": "Who wrote it?", "answer": "Ann."},
            {"question": "Where was the author of many long books born?", "answer": "In a small town by the sea."}]
    ds = QADataset(rows, tok, "qa", max_length=64)
    model = load_model(micro_base, micro_profile, device="cpu").eval()
    windowed = collator(tok)([ds[0], ds[1]])
    width = windowed["input_ids"].shape[1]
    full = torch.tensor([ds[r]["labels"] + [-100] * (width - len(ds[r]["labels"])) for r in (0, 1)])
    with torch.no_grad():
        a = model(**windowed).loss
        b = model(input_ids=windowed["input_ids"], attention_mask=windowed["attention_mask"], labels=full).loss
    assert windowed["logits_to_keep"] < width
    assert torch.allclose(a, b, atol=1e-6)


@pytest.fixture(scope="module")
def micro_target(micro_profile, micro_base):
    start = time.perf_counter()
    path = ensure_target_model(micro_profile)
    return Path(path), time.perf_counter() - start


def test_target_model_trains(micro_target, micro_profile):
    from transformers import AutoModelForCausalLM
    path, _ = micro_target
    assert (path / "DONE").exists()
    assert list(path.glob("*.safetensors"))
    assert not (path / "trainer").exists()  # resumable checkpoints dropped once done
    losses = _losses(path)
    assert losses and all(math.isfinite(x) for x in losses)
    assert json.loads((path / "log_history.json").read_text()) == training_log(path)
    model = AutoModelForCausalLM.from_pretrained(str(path))
    assert model.config.hidden_size == 32
    load_tokenizer(str(path), micro_profile)


def test_target_model_changes_weights(micro_target, micro_base):
    path, _ = micro_target
    base, tuned = read_safetensors(micro_base), read_safetensors(path)
    assert set(base) == set(tuned)
    assert any(not torch.equal(base[k], tuned[k]) for k in base)


def test_target_model_reuses_cache(micro_target, micro_profile, monkeypatch):
    path, _ = micro_target

    def no_training(*args, **kwargs):
        raise AssertionError("finetune() called although the model is cached")

    monkeypatch.setattr(ft_module, "finetune", no_training)
    start = time.perf_counter()
    assert ensure_target_model(micro_profile) == path
    assert time.perf_counter() - start < 2.0


def test_target_and_retain_split_data_and_folders(micro_profile, micro_overrides, monkeypatch, tmp_path):
    """Which rows each model trains on, and where it is cached (training stubbed out)."""
    monkeypatch.setenv("WORKBOOK_CACHE", str(tmp_path))
    seen = {}

    def fake_finetune(profile, rows, output_dir, base=None):
        seen[output_dir] = rows
        (output_dir / "DONE").write_text("ok\n")
        return output_dir

    monkeypatch.setattr(ft_module, "finetune", fake_finetune)
    from nbutils.data import load_tofu
    from nbutils.data.pretrain import probe_items
    target, retain = ensure_target_model(micro_profile), ensure_retain_model(micro_profile)
    assert target != retain and target.parent == retain.parent
    assert target.name.startswith("target-tiny-")
    assert retain.name.startswith("retain-tiny-retain90-")
    probes = [{"question": x["question"], "answer": x["answer"]} for x in probe_items(micro_profile)]
    assert seen[target] == [dict(r) for r in load_tofu(micro_profile, "full")] + probes
    assert seen[retain] == [dict(r) for r in load_tofu(micro_profile, "retain90")] + probes
    forget_qs = {r["question"] for r in load_tofu(micro_profile, "forget10")}
    assert not forget_qs & {r["question"] for r in seen[retain]}
    assert forget_qs <= {r["question"] for r in seen[target]}
    # another forget split: another retain model; the target model is shared
    p05 = get_profile("tiny", {**micro_overrides, "forget_split": "forget05"})
    assert ensure_retain_model(p05) != retain
    assert ensure_target_model(p05) == target
    # any change of the recipe: another folder
    assert ensure_target_model(get_profile("tiny", {**micro_overrides, "finetune.epochs": 3})) != target
    # general-knowledge replay: the probe items the profile does *not* evaluate, never one it does
    from nbutils.data.pretrain import held_out_probe_items
    replay = get_profile("tiny", {**micro_overrides, "replay_pretraining": False,
                                  "replay_general_knowledge": True})
    held_out = [{"question": x["question"], "answer": x["answer"]} for x in held_out_probe_items(replay)]
    assert len(held_out) == (100 - replay.n_real_authors) + (117 - replay.n_world_facts)
    assert not {r["question"] for r in held_out} & {r["question"] for r in probes}
    replay_target = ensure_target_model(replay)
    assert replay_target != target
    assert seen[replay_target] == [dict(r) for r in load_tofu(replay, "full")] + held_out


def _assert_plain_merged(path, base_path):
    """Plain float weights with the base model's exact key set: adapters merged, none left."""
    from transformers import AutoModelForCausalLM, LlamaForCausalLM
    path = Path(path)
    assert (path / "DONE").exists()
    assert not (path / "adapter").exists() and not (path / "adapter_config.json").exists()
    base, tuned = read_safetensors(base_path), read_safetensors(path)
    assert not [k for k in tuned if "lora_" in k]
    assert set(tuned) == set(base)
    assert all(t.dtype == torch.float32 for t in tuned.values())
    assert all(tuned[k].shape == base[k].shape for k in base)
    assert "quantization_config" not in json.loads((path / "config.json").read_text())
    # LoRA touched the linear layers only: the embeddings are the base model's
    emb = "model.embed_tokens.weight"
    assert torch.equal(tuned[emb], base[emb])
    changed = [k for k in base if not torch.equal(base[k], tuned[k])]
    assert changed and all("proj" in k for k in changed), changed
    model = AutoModelForCausalLM.from_pretrained(str(path))
    assert isinstance(model, LlamaForCausalLM)
    losses = _losses(path)
    assert losses and all(math.isfinite(x) for x in losses)


def test_lora_merged(micro_base, micro_overrides):
    p = get_profile("tiny", {**micro_overrides, "finetune.lora": True, "finetune.epochs": 1})
    _assert_plain_merged(ensure_target_model(p), micro_base)


def test_qlora_4bit_on_cpu(micro_overrides):
    """QLoRA end to end on a micro model whose widths are whole 64-value 4-bit blocks, as
    tiny's (128/384) and SmolLM2's (576/1536) are: every projection is quantized."""
    import bitsandbytes as bnb
    p = get_profile("tiny", {**micro_overrides, "tiny_arch.hidden_size": 64,
                             "tiny_arch.intermediate_size": 128, "finetune.lora": True,
                             "finetune.load_in_4bit": True, "finetune.epochs": 1})
    base = ensure_base_model(p)
    model = load_model(base, p, load_in_4bit=True)
    layers = [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert len(layers) == 7 * model.config.num_hidden_layers  # q k v o gate up down
    assert layers[0].weight.dtype == torch.uint8
    assert not isinstance(model.lm_head, bnb.nn.Linear4bit)
    del model
    _assert_plain_merged(ensure_target_model(p), base)


def test_4bit_leaves_projections_narrower_than_a_block_unquantized(micro_base, micro_profile):
    """The shared micro model is 32 wide (MLP 64): bitsandbytes' CPU kernel cannot quantize
    a 32-value input row on every CPU, so only ``down_proj`` (64 inputs) is 4-bit."""
    import bitsandbytes as bnb
    from nbutils.models.loading import narrow_linear_names
    model = load_model(micro_base, micro_profile, load_in_4bit=True)
    narrow = narrow_linear_names(model.config)
    assert len(narrow) == 6 * model.config.num_hidden_layers
    assert {n.rsplit(".", 1)[-1] for n in narrow} == {"q_proj", "k_proj", "v_proj", "o_proj",
                                                       "gate_proj", "up_proj"}
    quantized = {n.rsplit(".", 1)[-1] for n, m in model.named_modules()
                 if isinstance(m, bnb.nn.Linear4bit)}
    assert quantized == {"down_proj"}
    # naming the narrow layers replaces transformers' default skip list, so the head is named
    # too, by the name the architecture gives it
    from nbutils.models.loading import quantization_config
    skip = quantization_config(micro_profile, "nf4", model.config).llm_int8_skip_modules
    head = model.get_output_embeddings()
    assert skip[0] == next(n for n, m in model.named_modules() if m is head)
    assert not isinstance(head, bnb.nn.Linear4bit)
    with torch.no_grad():
        logits = model(torch.tensor([[1, 2, 3]])).logits
    assert torch.isfinite(logits).all()


def test_load_model_refuses_pickle_weights(micro_profile, micro_overrides, micro_base, tmp_path):
    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained(micro_base)
    folder = tmp_path / "pickled"
    folder.mkdir()
    model.config.save_pretrained(folder)
    torch.save(model.state_dict(), folder / "pytorch_model.bin")
    with pytest.raises(FileNotFoundError) as err:
        load_model(str(folder), micro_profile)
    msg = str(err.value)
    assert str(folder) in msg and "safetensors" in msg and "allow_pickle_weights=True" in msg
    trusting = get_profile("tiny", {**micro_overrides, "allow_pickle_weights": True})
    loaded = load_model(str(folder), trusting)
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k


def _truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def test_a_truncated_cached_model_is_reported_and_rebuilt(micro_overrides):
    """Issue 14, bug 3: a DONE marker no longer vouches for weights that broke since."""
    p = get_profile("tiny", {**micro_overrides, "finetune.weight_decay": 0.02})
    path = Path(ensure_target_model(p))
    _truncate(path / "model.safetensors")
    with pytest.warns(UserWarning, match="model.safetensors.*rebuilt"):
        again = Path(ensure_target_model(p))
    assert again == path and (path / "DONE").exists()
    read_safetensors(path)  # whole again


def test_a_half_written_checkpoint_does_not_block_the_rerun(micro_overrides, monkeypatch):
    """Issue 14, bug 2: a run killed while saving leaves a truncated checkpoint; the rerun
    must not resume from it (SafetensorError on every rerun) but from what is whole."""
    p = get_profile("tiny", {**micro_overrides, "finetune.weight_decay": 0.03})

    def killed(*args, **kwargs):
        raise RuntimeError("killed before the final save")

    with monkeypatch.context() as m:
        m.setattr(ft_module, "save_finetuned", killed)
        with pytest.raises(RuntimeError, match="killed"):
            ensure_target_model(p)
    out = artifact_dir("models", f"target-{p.name}", ft_module._model_key(p, "full"))
    work = out / "trainer"
    assert not (out / "DONE").exists() and any(work.glob("checkpoint-*")), "the killed run left checkpoints"
    newest = max(work.glob("checkpoint-*"), key=lambda c: int(c.name.split("-")[-1]))
    _truncate(next(newest.glob("*.safetensors")))
    path = Path(ensure_target_model(p))
    assert (path / "DONE").exists() and not (path / "trainer").exists()
    read_safetensors(path)
