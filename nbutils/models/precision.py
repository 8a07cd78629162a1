"""Which number format the workbook computes in: the profile's ``precision``.

``precision`` is ``"auto"``, ``"fp32"`` or ``"bf16"``. ``auto`` means bf16 where the hardware
runs it fast, fp32 elsewhere:

- CUDA: bf16 where the GPU supports it (Ampere and later);
- CPU: bf16 where the processor has bf16 matrix instructions (Intel AMX, AVX512-BF16 on
  Intel and AMD, the Arm ``bf16`` extension). There a bf16 matmul runs 2x (AVX512-BF16) to 6x
  (AMX) faster than fp32; without them bf16 is emulated and *slower*, so fp32 stays the path;
- Apple MPS and anything else: fp32.

What bf16 means for each kind of work (the one place this is decided):

- **inference** (scoring, generation, generic labels, frozen reference models): the weights
  themselves are held in bf16; log-softmax and everything after it run in fp32;
- **frozen base weights of LoRA runs**: bf16 too; the adapters stay fp32 (peft's default) and
  are merged into the *fp32* checkpoint afterwards, so no saved model is ever rounded;
- **weights that are trained** (full finetuning / unlearning) stay fp32 master weights under
  bf16 autocast (the Trainer's ``bf16=True``): an Adam update at lr 1e-5 is smaller than half a
  bf16 step of a typical weight and would round away in pure bf16.
"""

from __future__ import annotations

import functools
import platform
from pathlib import Path

import torch

PRECISIONS = ("auto", "fp32", "bf16")
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}

# /proc/cpuinfo flags of bf16 matrix/dot-product instructions (x86: AMX tiles, AVX512-BF16;
# Arm: the BF16 extension, listed as "bf16" in Features)
_FAST_BF16_FLAGS = {"amx_bf16", "avx512_bf16", "bf16"}


@functools.lru_cache(maxsize=1)
def cpu_has_fast_bf16() -> bool:
    """True when the CPU has bf16 matrix instructions (read from ``/proc/cpuinfo``; other
    systems answer False, which keeps them on fp32)."""
    cpuinfo = Path("/proc/cpuinfo")
    if platform.system() != "Linux" or not cpuinfo.exists():
        return False
    for line in cpuinfo.read_text(errors="ignore").splitlines():
        key = line.split(":", 1)[0].strip().lower()
        if key in ("flags", "features"):
            return bool(_FAST_BF16_FLAGS & set(line.split(":", 1)[1].split()))
    return False


def resolve_precision(precision: str, device: torch.device | str | None = None) -> str:
    """``"fp32"`` or ``"bf16"`` for a profile's ``precision`` on ``device`` (default: the
    workbook's device)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision != "auto":
        return precision
    if device is None:
        from .loading import get_device
        device = get_device()
    kind = torch.device(device).type
    if kind == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    if kind == "cpu":
        return "bf16" if cpu_has_fast_bf16() else "fp32"
    return "fp32"


def compute_dtype(profile, device=None) -> torch.dtype:
    """The dtype inference and frozen weights of ``profile`` run in."""
    return DTYPES[resolve_precision(profile.precision, device)]


def trainer_precision(profile, device=None) -> dict:
    """``TrainingArguments`` keywords for the profile's precision: bf16 autocast over the
    fp32 master weights where it computes in bf16 (on a CPU the Trainer asks for ``use_cpu``
    before it allows bf16)."""
    if resolve_precision(profile.precision, device) != "bf16":
        return {"bf16": False}
    if device is None:
        from .loading import get_device
        device = get_device()
    return {"bf16": True, **({"use_cpu": True} if torch.device(device).type == "cpu" else {})}


def autocast(enabled: bool, device) -> torch.autocast:
    """bf16 autocast on ``device`` (what the Trainer wraps its steps in), for work on a model
    in training that runs outside a step: logged probabilities, probes between steps."""
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=enabled)


def model_precision(model) -> str:
    """The precision a loaded model computes in, as recorded in evaluation logs: ``"bf16"``
    or ``"fp32"`` from its floating-point weights (a 4-bit model: its compute dtype)."""
    quant = getattr(getattr(model, "config", None), "quantization_config", None)
    if quant is not None and getattr(quant, "bnb_4bit_compute_dtype", None) is not None:
        dtype = quant.bnb_4bit_compute_dtype
        dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
    else:
        dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
    return {torch.bfloat16: "bf16", torch.float32: "fp32", torch.float16: "fp16"}.get(dtype, str(dtype))
