"""The one-line setup call that opens every notebook."""

from __future__ import annotations

import logging
import os
import platform
import random
import sys
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from .models.loading import get_device
from .profiles import Profile, get_profile


@dataclass
class Session:
    profile: Profile
    device: torch.device
    seed: int

    def __repr__(self) -> str:
        return f"Session(profile={self.profile.name!r}, device={self.device}, seed={self.seed})"


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def setup_notebook(profile: str = "tiny", overrides: dict | None = None, seed: int | None = None,
                   verbose: bool = True) -> Session:
    """Resolve the profile, seed everything, quiet the libraries, set the plot theme and
    print the versions a bug report needs."""
    prof = get_profile(profile, overrides)
    seed = prof.seed if seed is None else seed
    seed_everything(seed)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message=".*TypedStorage.*")
    # bitsandbytes (imported by peft and transformers) warns on every import on CPUs with
    # AVX512-BF16 that the optional `kernels` package, a fused 4-bit kernel fetched from the
    # hub, is missing; its own CPU path runs instead, so there is nothing for a student to do
    for name in ("transformers", "datasets", "accelerate", "peft", "bitsandbytes"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        import transformers, datasets
        transformers.utils.logging.set_verbosity_error()
        # "Loading weights" / "Writing model shards" bars for models that load in a blink
        transformers.utils.logging.disable_progress_bar()
        datasets.utils.logging.set_verbosity_error()
        datasets.disable_progress_bars()
    except Exception:  # logging niceties must never stop a notebook
        pass
    # plotly's notebook renderers import nbformat -> jsonschema, which builds a grammar for
    # an optional IRI format check (``rfc3987_syntax``, pulled in by Jupyter's extras) at
    # import: 2.5 s of every notebook's start, for a check nothing in a kernel makes.
    # Marking the module absent makes jsonschema skip that format, as it does where the
    # package is not installed.
    if "jsonschema" not in sys.modules:
        sys.modules.setdefault("rfc3987_syntax", None)
    import plotly.io as pio
    pio.templates.default = "plotly_white"
    # JupyterLab renders the mimetype; the HTML copies of headless runs need the embedded
    # plotly.js ("notebook", offline-safe, unlike "notebook_connected" which needs a CDN)
    pio.renderers.default = "plotly_mimetype+notebook"
    device = get_device()
    if verbose:
        import transformers
        print(f"profile {prof.name} | device {device} | seed {seed} | python "
              f"{platform.python_version()} | torch {torch.__version__} | transformers "
              f"{transformers.__version__}")
    return Session(prof, device, seed)
