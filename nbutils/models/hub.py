"""Models on the Hugging Face hub by repo id and *revision*, online or from the local hub cache.

The field publishes training trajectories as branches of one repo: the phi-1.5 TOFU model
unlearned with grad_diff keeps each checkpoint on a branch ``checkpoint-<step>`` (its finetuned
start is ``checkpoint-625``), loaded with ``from_pretrained(repo_id, revision="checkpoint-X")``.
This module lists such revisions and writes our own runs in the same form:

- **online** through ``huggingface_hub`` (a branch per checkpoint, see :func:`push_revision`);
- **offline** straight into the hub cache's layout (:func:`write_cache_revision`), so the very
  same ``from_pretrained(repo_id, revision=...)`` call loads them with the hub switched off.

The cache layout, as ``huggingface_hub`` reads it: ``<cache>/models--<org>--<name>/`` holds
``blobs/<sha256>`` (file contents), ``snapshots/<commit>/<file>`` (links to the blobs) and
``refs/<branch>`` (the branch's 40-hex commit, no trailing newline).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

CHECKPOINT_BRANCH = re.compile(r"^checkpoint-(\d+)$")
# a file in a repo's cache folder marking a repo this workbook wrote (it exists nowhere else,
# so loading it never asks the hub); huggingface_hub's cache scanner ignores such files
EXPORT_MARKER = "WORKBOOK_EXPORT"


@dataclass(frozen=True)
class Revision:
    """One checkpoint of a trajectory: a hub branch or a local ``checkpoint-<step>`` folder."""

    source: str  # repo id, or the run folder
    name: str  # "checkpoint-625": the revision load_model takes for either kind of source
    step: int


def hub_offline() -> bool:
    """Whether the hub is switched off (``HF_HUB_OFFLINE=1``), as huggingface_hub sees it."""
    from huggingface_hub import is_offline_mode
    return bool(is_offline_mode())


def hub_cache_dir(cache_dir=None) -> Path:
    """The hub cache in use: ``cache_dir``, else the one ``from_pretrained`` reads
    (``$HF_HUB_CACHE``, by default ``~/.cache/huggingface/hub``)."""
    if cache_dir is not None:
        return Path(cache_dir)
    from huggingface_hub import constants
    return Path(constants.HF_HUB_CACHE)


def cache_repo_folder(repo_id: str, cache_dir=None, repo_type: str = "model") -> Path:
    from huggingface_hub.file_download import repo_folder_name
    return hub_cache_dir(cache_dir) / repo_folder_name(repo_id=repo_id, repo_type=repo_type)


def is_repo_id(name: str) -> bool:
    """``org/name`` that is not a folder on this machine."""
    return not Path(name).exists() and re.fullmatch(r"[\w.-]+/[\w.-]+", name) is not None


def cached_refs(repo_id: str, cache_dir=None, repo_type: str = "model") -> dict[str, str]:
    """Branch -> commit of the revisions of ``repo_id`` held in the hub cache."""
    refs = cache_repo_folder(repo_id, cache_dir, repo_type) / "refs"
    if not refs.is_dir():
        return {}
    return {str(p.relative_to(refs)): p.read_text().strip() for p in refs.rglob("*") if p.is_file()}


def is_local_export(repo_id: str, cache_dir=None) -> bool:
    """Whether ``repo_id`` is a repo this workbook wrote into the hub cache."""
    return is_repo_id(repo_id) and (cache_repo_folder(repo_id, cache_dir) / EXPORT_MARKER).exists()


def resolve_commit(repo_id: str, revision: str | None = None, cache_dir=None) -> str | None:
    """The commit a branch points at in the hub cache (``None`` where it is not cached)."""
    revision = revision or "main"
    if re.fullmatch(r"[0-9a-f]{40}", revision):
        return revision
    return cached_refs(repo_id, cache_dir).get(revision)


def checkpoint_step(name: str) -> int | None:
    m = CHECKPOINT_BRANCH.match(name)
    return int(m.group(1)) if m else None


def checkpoint_revisions(source: str, cache_dir=None) -> list[Revision]:
    """The ``checkpoint-<step>`` revisions of ``source``, in step order: the subfolders of a
    run folder, the branches of a repo in the local hub cache (offline, or a repo this
    workbook exported), else the repo's branches on the hub."""
    path = Path(source)
    if path.is_dir():
        names = [p.name for p in path.iterdir() if p.is_dir()]
    elif hub_offline() or is_local_export(source, cache_dir):
        names = list(cached_refs(source, cache_dir))
        if not names:
            raise FileNotFoundError(
                f"{source}: no revisions in the hub cache {hub_cache_dir(cache_dir)} and the hub is "
                f"offline; download the repo's branches first or unset HF_HUB_OFFLINE")
    else:
        from huggingface_hub import HfApi
        names = [b.name for b in HfApi().list_repo_refs(source).branches]
    revisions = [Revision(source, n, checkpoint_step(n)) for n in names if checkpoint_step(n) is not None]
    if not revisions:
        raise ValueError(f"{source}: no checkpoint-<step> revisions (found {sorted(names)})")
    return sorted(revisions, key=lambda r: r.step)


# --- writing ----------------------------------------------------------------------------
def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_cache_revision(repo_id: str, branch: str, files: dict[str, Path], cache_dir=None,
                         message: str = "", repo_type: str = "model") -> str:
    """Write ``files`` (name in the repo -> file here) as branch ``branch`` of ``repo_id`` in
    the hub cache's layout; the commit hash it now points at.

    Contents go to ``blobs/<sha256>`` once (checkpoints share their config and tokenizer
    files), each snapshot file links to its blob, and the ref is written last, so a reader
    never sees a branch whose files are still being copied. The commit id is a hash of the
    branch's file names and contents (and ``message``): the same files give the same commit."""
    repo = cache_repo_folder(repo_id, cache_dir, repo_type)
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    manifest = hashlib.sha1(f"{branch}\n{message}\n".encode())
    digests = {}
    for name in sorted(files):
        digests[name] = _sha256(Path(files[name]))
        manifest.update(f"{name} {digests[name]}\n".encode())
    commit = manifest.hexdigest()
    snapshot = repo / "snapshots" / commit
    for name, digest in digests.items():
        blob = repo / "blobs" / digest
        if not blob.exists():
            tmp = blob.with_name(blob.name + f".tmp{os.getpid()}")
            shutil.copyfile(files[name], tmp)
            os.replace(tmp, blob)
        link = snapshot / name
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            link.unlink()
        try:
            link.symlink_to(os.path.relpath(blob, link.parent))
        except OSError:  # no symlinks (some Windows setups): a copy, as huggingface_hub does
            shutil.copyfile(blob, link)
    ref = repo / "refs" / branch
    ref.parent.mkdir(parents=True, exist_ok=True)
    tmp = ref.with_name(ref.name + f".tmp{os.getpid()}")
    tmp.write_text(commit)  # no trailing newline, as huggingface_hub writes refs
    os.replace(tmp, ref)
    (repo / EXPORT_MARKER).write_text("written by the unlearning workbook (nbutils.publishing)\n")
    return commit


def push_revision(repo_id: str, branch: str, folder: Path, api=None, message: str = "") -> None:
    """Upload ``folder`` as branch ``branch`` of ``repo_id`` on the hub (created if missing)."""
    from huggingface_hub import HfApi
    api = api or HfApi()
    api.create_repo(repo_id, exist_ok=True)
    if branch != "main":
        api.create_branch(repo_id, branch=branch, exist_ok=True)
    api.upload_folder(repo_id=repo_id, folder_path=str(folder), revision=branch,
                      commit_message=message or f"{branch}")
