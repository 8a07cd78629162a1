"""One cache root for every artifact the workbook makes (data, checkpoints, eval logs).

Everything is keyed by the config that made it (see :func:`config_key`), so any notebook
can run alone and reruns reuse work instead of repeating it.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, is_dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def cache_root() -> Path:
    """Where artifacts live: ``$WORKBOOK_CACHE``, else ``.cache/`` in a source checkout,
    else ``~/.cache/unlearning-workbook``."""
    env = os.environ.get("WORKBOOK_CACHE")
    if env:
        root = Path(env).expanduser()
    elif (REPO_ROOT / "pyproject.toml").exists():
        root = REPO_ROOT / ".cache"
    else:
        root = Path.home() / ".cache" / "unlearning-workbook"
    root.mkdir(parents=True, exist_ok=True)
    return root


def config_key(config, length: int = 10) -> str:
    """A short stable hash of a (dataclass or JSON-able) config."""
    if is_dataclass(config):
        config = asdict(config)
    blob = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:length]


def artifact_dir(kind: str, name: str, config) -> Path:
    """``<cache>/<kind>/<name>-<hash of config>``; the config is written beside it."""
    path = cache_root() / kind / f"{name}-{config_key(config)}"
    path.mkdir(parents=True, exist_ok=True)
    cfg_file = path / "config.json"
    if not cfg_file.exists():
        payload = asdict(config) if is_dataclass(config) else config
        cfg_file.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str))
    return path


def checkpoint_identity(model_path) -> tuple[str, list | None]:
    """``(path, files)`` naming a checkpoint in a cache key: its resolved folder and its weight
    and config files' names, sizes and modification times (a retrained model is a new key);
    a hub id stays as given, with no files."""
    path = Path(model_path)
    if not path.exists():
        return str(model_path), None
    files = sorted((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in path.iterdir()
                   if f.suffix in (".safetensors", ".bin", ".json") and f.is_file())
    return str(path.resolve()), files


def unreadable_weights(folder) -> list[str]:
    """The ``*.safetensors`` files of ``folder`` that cannot be read whole (truncated by a
    killed write, or corrupted): safetensors checks that its header covers the file exactly."""
    from safetensors import safe_open
    broken = []
    for f in sorted(Path(folder).glob("*.safetensors")):
        try:
            with safe_open(str(f), "pt"):
                pass
        except Exception as error:  # noqa: BLE001 - any read failure means: do not use it
            broken.append(f"{f.name} ({type(error).__name__}: {error})")
    return broken


def is_complete(folder, marker: str = "DONE") -> bool:
    """Whether the artifact in ``folder`` was finished (its ``marker`` file, written last) and
    its weights still read whole. A marked artifact whose weights broke since is reported,
    unmarked and so rebuilt by its ``ensure_*`` function, never loaded."""
    folder = Path(folder)
    if not (folder / marker).exists():
        return False
    broken = unreadable_weights(folder)
    if broken:
        import warnings
        warnings.warn(f"{folder}: {', '.join(broken)}; the cached artifact is rebuilt", stacklevel=2)
        (folder / marker).unlink()
        return False
    return True
