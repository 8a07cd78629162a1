"""Evaluating released models by name, against the publisher's own retain logs.

open-unlearning publishes the TOFU evaluation of its retain models in the hub dataset
``open-unlearning/eval`` (``tofu_<model>_<retainNN>/TOFU_EVAL.json``): the per-item forget
truth ratios its forget quality compares with. :func:`published_retain_log` fetches one (or
reads it from the hub cache when offline), :func:`evaluate_release` evaluates a released model
by repo id (and revision) with the profile :func:`release_profile` builds from its name, and
:func:`write_open_unlearning_logs` writes the result where open-unlearning writes its own
(``saves/eval/<task name>/TOFU_EVAL.json`` and ``TOFU_SUMMARY.json``).
"""

from __future__ import annotations

from pathlib import Path

from ..models.hub import hub_offline
from ..models.released import parse_release, release_overrides
from ..profiles import Profile, get_profile
from .tofu import ensure_tofu_eval
from .tofu_logs import EVAL_FILE, TofuEval

OPEN_UNLEARNING_EVAL = "open-unlearning/eval"


def retain_log_filename(model: str, retain_split: str) -> str:
    return f"tofu_{model}_{retain_split}/{EVAL_FILE}"


def published_retain_log(model: str, retain_split: str, cache_dir=None) -> Path:
    """The path of open-unlearning's ``TOFU_EVAL.json`` for its ``model`` retain model on
    ``retain_split`` (e.g. "Llama-3.2-1B-Instruct", "retain90"), downloaded once."""
    from huggingface_hub import hf_hub_download
    filename = retain_log_filename(model, retain_split)
    try:
        return Path(hf_hub_download(OPEN_UNLEARNING_EVAL, filename, repo_type="dataset",
                                    cache_dir=cache_dir, local_files_only=hub_offline()))
    except Exception as error:  # noqa: BLE001 - one message for every way this fails
        raise FileNotFoundError(
            f"open-unlearning's retain log {OPEN_UNLEARNING_EVAL}/{filename} is not available "
            f"({type(error).__name__}: {error}). Online, check the model name; offline, download it "
            f"first (huggingface_hub.hf_hub_download({OPEN_UNLEARNING_EVAL!r}, {filename!r}, "
            f"repo_type='dataset')) or pass the reference yourself.") from error


def release_profile(repo_id: str, base: str = "paper", overrides: dict | None = None) -> Profile:
    """``base`` with the released model, its prompt format and its forget split."""
    return get_profile(base, {**release_overrides(repo_id), **(overrides or {})})


def evaluate_release(profile: Profile, repo_id: str, revision: str | None = None,
                     reference=None, progress: bool = True) -> TofuEval:
    """The TOFU evaluation of a released model, by repo id (cached). ``reference``: the
    forget-quality reference; default, open-unlearning's published retain log for the
    release's model and split (:func:`published_retain_log`)."""
    if reference is None:
        release = parse_release(repo_id)
        reference = published_retain_log(release.model, release.retain_split)
    name = repo_id.split("/")[-1] + (f"-{revision}" if revision else "")
    return ensure_tofu_eval(profile, repo_id, name, reference=reference, progress=progress,
                            revision=revision)


def write_open_unlearning_logs(ev: TofuEval, save_dir, task_name: str) -> Path:
    """``<save_dir>/<task_name>/TOFU_EVAL.json`` and ``TOFU_SUMMARY.json``, as open-unlearning
    writes them (its ``saves/eval`` layout), forget quality included (and our
    ``TOFU_META.json`` beside them, which their tools ignore)."""
    return ev.save(Path(save_dir) / task_name)
