"""Publishing an unlearning run the way the field publishes its trajectories.

:func:`export_run` turns a run folder (its final model and its ``checkpoint-<step>`` folders)
into one repo with a branch per checkpoint, as the phi-1.5 grad_diff TOFU trajectory is
stored: ``checkpoint-0`` is the model the run started from, ``checkpoint-<step>`` each saved
step, ``main`` the final model. Every branch carries a model card stating the method, its
hyperparameters, the forget split and the measured metrics.

- ``push=False`` (default) writes the repo into the local hub cache's layout
  (:func:`nbutils.models.hub.write_cache_revision`): ``from_pretrained(repo_id,
  revision="checkpoint-<step>")`` then loads it with the hub switched off, and
  :func:`nbutils.leaderboard.revision_trajectory` walks it like a published repo;
- ``push=True`` uploads the same folders through ``huggingface_hub`` (a branch each).

LoRA runs save adapters at their checkpoints; they are merged into the starting model here,
so every branch is a complete model that loads on its own.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .paths import KEY_FILE
from .models.hub import EXPORT_MARKER, cache_repo_folder, push_revision, write_cache_revision
from .profiles import Profile

# files of a checkpoint folder that belong to the model (the rest is trainer state)
MODEL_FILE_SUFFIXES = (".safetensors", ".json", ".txt", ".model", ".jinja")
NOT_MODEL_FILES = {"trainer_state.json", "log_history.json", "adapter_config.json",
                   "adapter_model.safetensors", KEY_FILE}
DEFAULT_ORG = "workbook-local"  # exported repos exist on this machine only, unless pushed


@dataclass
class ExportedRun:
    repo_id: str
    revisions: dict[str, str] = field(default_factory=dict)  # branch -> commit (or "pushed")
    card: str = ""


def default_repo_id(run_dir: Path, org: str = DEFAULT_ORG) -> str:
    """``<org>/<run name>``: the run folder's open-unlearning-style name, without its cache hash."""
    name = Path(run_dir).name.rsplit("-", 1)[0]
    return f"{org}/{name}"[:96]


def model_files(folder: Path) -> dict[str, Path]:
    """The files of ``folder`` that make up a loadable model (weights, configs, tokenizer)."""
    files = {p.name: p for p in Path(folder).iterdir()
             if p.is_file() and p.suffix in MODEL_FILE_SUFFIXES and p.name not in NOT_MODEL_FILES}
    if not any(name.endswith(".safetensors") for name in files):
        raise FileNotFoundError(f"{folder}: no *.safetensors weights to export")
    return files


def complete_checkpoint(checkpoint: Path, start: str, profile: Profile, staging: Path) -> Path:
    """``checkpoint`` as a complete model folder: itself, or (a LoRA checkpoint, adapters
    only) its adapters merged into the starting model, written under ``staging``."""
    if not (checkpoint / "adapter_config.json").exists():
        return checkpoint
    from peft import PeftModel

    from .models.loading import load_model, load_tokenizer
    full = load_model(start, profile, load_in_4bit=False, full_precision=True, device="cpu")
    merged = PeftModel.from_pretrained(full, checkpoint).merge_and_unload()
    out = staging / checkpoint.name
    merged.save_pretrained(out, safe_serialization=True)
    load_tokenizer(start, profile).save_pretrained(out)
    if (checkpoint / "unlearning.json").exists():
        shutil.copyfile(checkpoint / "unlearning.json", out / "unlearning.json")
    return out


def model_card(repo_id: str, run_meta: dict, profile: Profile, branch: str, step: int | None,
               metrics: dict | None, branches: list[str]) -> str:
    """The README of every branch: what was unlearned how, and what it measured."""
    from huggingface_hub import ModelCard, ModelCardData
    method = run_meta.get("method", "?")
    data = ModelCardData(library_name="transformers",
                         tags=["unlearning", "tofu", str(method), "unlearning-workbook"])
    hparams = run_meta.get("hyperparameters") or {}
    lines = [f"# {repo_id}", "",
             f"An unlearning run exported by the unlearning workbook: **{method}** on TOFU "
             f"`{run_meta.get('split', profile.forget_split)}` (profile `{profile.name}`, "
             f"model `{profile.model}`, prompt format `{profile.prompt_format}`).", "",
             f"This branch: `{branch}`" + (f" (step {step})." if step is not None else "."),
             "Every checkpoint is a branch, as the field publishes trajectories: load one with",
             "", "```python",
             "from transformers import AutoModelForCausalLM",
             f'model = AutoModelForCausalLM.from_pretrained("{repo_id}", revision="{branches[-1]}")',
             "```", "", "Branches: " + ", ".join(f"`{b}`" for b in branches) + ".", "",
             "## Hyperparameters", "", "| name | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in sorted(hparams.items())]
    lines += [f"| {k} | {run_meta[k]} |" for k in ("run_name", "task", "split", "steps", "paper")
              if k in run_meta]
    if metrics:
        lines += ["", "## Measured (TOFU, the workbook's evaluation; forget quality against its "
                  "retain model)", "", "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |"
                  for k, v in metrics.items()]
    return str(ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(lines) + "\n"))


def export_run(run_dir, profile: Profile, repo_id: str | None = None, *, metrics: dict | None = None,
               push: bool = False, cache_dir=None, api=None, include_start: bool = True,
               progress: bool = True) -> ExportedRun:
    """Export the unlearning run in ``run_dir`` as one repo, a branch per checkpoint.

    ``metrics``: the numbers the model card states for the final model (e.g.
    ``TofuEval.headline()``); ``push``: upload through ``huggingface_hub`` (``api``: an
    ``HfApi``) instead of writing the local hub cache (``cache_dir``: default the user's
    hub cache, where ``from_pretrained`` looks)."""
    from tqdm.auto import tqdm

    from .unlearning import checkpoints
    run_dir = Path(run_dir)
    meta_file = run_dir / "unlearning.json"
    if not meta_file.exists():
        raise FileNotFoundError(f"{run_dir}: no unlearning.json; export_run takes an unlearning "
                                f"run folder (nbutils.unlearning.ensure_unlearned)")
    run_meta = json.loads(meta_file.read_text())
    repo_id = repo_id or default_repo_id(run_dir)
    start = run_meta.get("start")
    revisions: list[tuple[str, int | None, Path]] = []
    if include_start and start and Path(start).is_dir():
        revisions.append(("checkpoint-0", 0, Path(start)))
    for ckpt in checkpoints(run_dir):
        revisions.append((ckpt.name, int(ckpt.name.split("-")[-1]), ckpt))
    revisions.append(("main", run_meta.get("steps"), run_dir))
    branches = [name for name, _, _ in revisions]
    out = ExportedRun(repo_id)
    with tempfile.TemporaryDirectory(prefix="export-") as tmp:
        staging = Path(tmp)
        for branch, step, folder in tqdm(revisions, desc=f"exporting {repo_id}", disable=not progress):
            folder = complete_checkpoint(folder, start, profile, staging)
            card = model_card(repo_id, run_meta, profile, branch, step,
                              metrics if branch == "main" else None, branches)
            card_file = staging / f"README-{branch}.md"
            card_file.write_text(card)
            files = {**model_files(folder), "README.md": card_file}
            if push:
                upload = staging / f"upload-{branch}"
                upload.mkdir()
                for name, src in files.items():
                    shutil.copyfile(src, upload / name)
                push_revision(repo_id, branch, upload, api=api,
                              message=f"{run_meta.get('method', 'unlearning')} {branch}")
                out.revisions[branch] = "pushed"
            else:
                out.revisions[branch] = write_cache_revision(repo_id, branch, files, cache_dir)
            if branch == "main":
                out.card = card
    return out


def remove_export(repo_id: str, cache_dir=None) -> None:
    """Delete a repo this workbook exported into the local hub cache (never anything else)."""
    folder = cache_repo_folder(repo_id, cache_dir)
    if not (folder / EXPORT_MARKER).exists():
        raise ValueError(f"{folder} was not written by the workbook's export; not deleting it")
    shutil.rmtree(folder)
