"""The ``paper`` profile's own code path, offline.

``paper`` finetunes and unlearns ``microsoft/phi-1_5`` on ``locuslab/TOFU`` in bf16, which
this machine cannot download. Everything but the weights and the rows is its own here: a
small randomly initialised model of phi-1.5's architecture (``PhiForCausalLM``: partial
rotary embeddings, parallel attention/MLP block, dense biases) stands in for the hub weights,
saved as a checkpoint folder; a folder in the hub's TOFU file layout stands in for the hub
dataset; the profile keeps phi's Question/Answer format, full finetuning, and bf16. The run
finetunes the target and retain models, unlearns with NPO, and evaluates every TOFU metric,
so a change that breaks ``paper`` cannot pass unseen.
"""

from __future__ import annotations

import math

import pytest
import torch

from nbutils.data.tofu import build_tofu_configs, write_hub_layout
from nbutils.profiles import get_profile


@pytest.fixture(scope="module")
def paper_standin(tmp_path_factory, phi_standin):
    """(profile, folder of the stand-in phi-1.5 checkpoint)."""
    root = tmp_path_factory.mktemp("paper")
    # the TOFU files, in the hub's layout, from a small world
    configs = build_tofu_configs(get_profile("tiny", {"n_authors": 10, "qa_per_author": 2,
                                                      "n_real_authors": 3, "n_world_facts": 3}))
    data = write_hub_layout(configs, root / "locuslab-TOFU", "stand-in for locuslab/TOFU")
    (data / "idontknow.jsonl").write_text("I don't know.\nI have no idea.\n")
    folder = phi_standin(root / "phi-1_5")
    profile = get_profile("paper", {
        "model": str(folder), "hub_dataset": str(data), "precision": "bf16",
        "finetune.epochs": 1, "finetune.batch_size": 4, "finetune.gradient_accumulation_steps": 1,
        "unlearn.epochs": 1, "unlearn.batch_size": 2, "unlearn.gradient_accumulation_steps": 1,
        "max_new_tokens": 8, "eval_batch_size": 8,
    })
    return profile, folder


def test_paper_profile_defaults_unchanged():
    p = get_profile("paper")
    assert (p.model, p.prompt_format, p.data_source, p.precision) == (
        "microsoft/phi-1_5", "qa", "hub", "auto")
    assert not p.finetune.lora and p.finetune.epochs == 5


def test_paper_code_path_offline(paper_standin):
    from nbutils.evaluation.tofu import ensure_tofu_eval
    from nbutils.leaderboard import ensure_retain_eval
    from nbutils.finetune import ensure_retain_model, ensure_target_model
    from nbutils.models.loading import load_model, read_safetensors
    from nbutils.unlearning import ensure_unlearned
    profile, base = paper_standin

    # full finetuning keeps fp32 master weights under bf16 autocast: saved weights are fp32
    target = ensure_target_model(profile)
    weights = read_safetensors(target)
    assert all(w.dtype == torch.float32 for w in weights.values())
    assert any(not torch.equal(w, read_safetensors(base)[k]) for k, w in weights.items())
    assert type(load_model(str(target), profile, device="cpu")).__name__ == "PhiForCausalLM"
    # evaluation computes in bf16
    assert load_model(str(target), profile, device="cpu").dtype == torch.bfloat16

    run = ensure_unlearned(profile, "npo")
    assert run.name.startswith("unlearn_tofu_phi-1_5_forget10_npo_")
    reference = ensure_retain_eval(profile, progress=False)
    assert ensure_retain_model(profile).exists() and reference["forget_quality"] == 1.0
    ev = ensure_tofu_eval(profile, run, "npo-paper-standin", reference=reference, progress=False)
    assert ev.meta["precision"] == "bf16" and ev.meta["prompt_format"] == "qa"
    assert ev.meta["split_sizes"]["forget10_perturbed"] == 2  # one author of ten, 2 QA each
    for key, value in ev.headline().items():
        assert value is not None and math.isfinite(value), key
