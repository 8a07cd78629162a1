"""Reaching the Hugging Face hub, or saying at once why not.

Without a network the hub libraries retry for half a minute and end in a ``ConnectionError``
traceback that names neither the repo nor a way forward. Every hub download of the workbook
(TOFU and MUSE datasets, model weights) first asks :func:`require_hub`, which answers within
seconds: a local copy, or a reachable hub, or an error that says what to do.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

WAYS_FORWARD = (
    "Ways forward: (1) an offline profile: --profile tiny or --profile smol (PROFILE in a "
    "notebook), which build their data and models here; (2) a local copy: point the profile "
    "at a folder in the same layout (e.g. OVERRIDES={{'{field}': '/path/to/copy'}}); (3) a "
    "pre-filled hub cache: on a connected machine run `huggingface-cli download {repo_type_flag}"
    "{repo_id}`, copy its hub cache here (HF_HOME) and set HF_HUB_OFFLINE=1.")


class HubUnavailable(ConnectionError):
    """The hub cannot be reached and the repo is not in the local hub cache."""


def cached_copy(repo_id: str, repo_type: str = "model") -> bool:
    """Whether the local hub cache holds a snapshot of ``repo_id``."""
    from huggingface_hub import constants
    from huggingface_hub.file_download import repo_folder_name
    snapshots = Path(constants.HF_HUB_CACHE) / repo_folder_name(repo_id=repo_id, repo_type=repo_type) / "snapshots"
    return snapshots.is_dir() and any(snapshots.iterdir())


@lru_cache(maxsize=None)
def reachable(endpoint: str, timeout: float = 3.0) -> bool:
    """Whether ``endpoint`` answers within ``timeout`` seconds (asked once per process)."""
    from huggingface_hub import get_session
    try:
        get_session().head(endpoint, timeout=timeout, allow_redirects=False)
        return True
    except Exception:  # noqa: BLE001 - any failure to connect means: not reachable
        return False


def require_hub(repo_id: str, repo_type: str = "model", field: str = "model") -> None:
    """Return when ``repo_id`` can be had (a folder, a cached copy, or a reachable hub);
    otherwise raise :class:`HubUnavailable` naming it and the ways forward. ``field`` is the
    profile field that names it (``model``, ``hub_dataset``), for the message."""
    from huggingface_hub import constants, is_offline_mode
    if Path(repo_id).exists() or cached_copy(repo_id, repo_type):
        return
    kind = "dataset" if repo_type == "dataset" else "model"
    ways = WAYS_FORWARD.format(field=field, repo_id=repo_id,
                               repo_type_flag="--repo-type dataset " if repo_type == "dataset" else "")
    if is_offline_mode():
        raise HubUnavailable(f"the {kind} {repo_id!r} is not in the local hub cache "
                             f"({constants.HF_HUB_CACHE}) and the hub is switched off (HF_HUB_OFFLINE). {ways}")
    if os.environ.get("WORKBOOK_HUB_CHECK", "1") != "0" and not reachable(constants.ENDPOINT):
        raise HubUnavailable(f"cannot reach {constants.ENDPOINT} to download the {kind} {repo_id!r}, "
                             f"and the local hub cache ({constants.HF_HUB_CACHE}) has no copy. {ways}")
