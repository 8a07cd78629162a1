"""One cache root for every artifact the workbook makes (data, checkpoints, eval logs).

Everything is keyed by the config that made it (see :func:`config_key`), so any notebook
can run alone and reruns reuse work instead of repeating it.
"""

from __future__ import annotations

import hashlib
import json
import os
from contextlib import contextmanager
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


CACHE_TOKEN = "<cache>"  # stands for the cache root inside keys, so a moved cache keeps its keys


def config_key(config, length: int = 10) -> str:
    """A short stable hash of a (dataclass or JSON-able) config.

    Paths inside the cache root (a base model, the target a run started from) are hashed
    relative to it: a cache copied to another machine or folder (a workshop's pre-filled
    cache) keeps every key, instead of retraining from the first model on."""
    if is_dataclass(config):
        config = asdict(config)
    blob = json.dumps(config, sort_keys=True, default=str)
    cache = cache_root()
    for root in {str(cache), str(cache.resolve())}:
        blob = blob.replace(json.dumps(root + os.sep)[1:-1], CACHE_TOKEN + "/")
    return hashlib.sha256(blob.encode()).hexdigest()[:length]


# the config an artifact's folder is named by, written beside it (not ``config.json``: a
# model saved into the folder writes its own, which replaced this record and was left out
# of the folder's manifest)
KEY_FILE = "cache_key.json"


def artifact_dir(kind: str, name: str, config) -> Path:
    """``<cache>/<kind>/<name>-<hash of config>``; the config is written beside it."""
    path = cache_root() / kind / f"{name}-{config_key(config)}"
    path.mkdir(parents=True, exist_ok=True)
    cfg_file = path / KEY_FILE
    if not cfg_file.exists():
        payload = asdict(config) if is_dataclass(config) else config
        cfg_file.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str))
    return path


def checkpoint_identity(model_path) -> tuple[str, list | dict | None]:
    """``(path, files)`` naming a checkpoint in a cache key. A finished artifact of the cache
    is named by the content digest its ``DONE`` manifest recorded (so a copied or moved cache
    keeps its keys, and a retrained model with other weights is a new key); any other folder
    by its weight and config files' names, sizes and modification times; a hub id stays as
    given, with no files."""
    path = Path(model_path)
    if not path.exists():
        return str(model_path), None
    digest = _manifest(path).get("digest")
    if digest:
        return str(path.resolve()), {"digest": digest}
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


MARKER = "DONE"  # written last, as a manifest: {"files": {path: bytes}, "key", "digest"}
_UNLISTED = {MARKER, KEY_FILE, ".lock"}  # the key file, the lock, and itself


def _listed_files(folder: Path, recursive: bool) -> list[Path]:
    """The files a manifest covers: the top level (a model's weights and configs; a run's
    intermediate ``checkpoint-*`` folders are its own, resumable business), or every file
    below ``folder`` (a data folder's configs)."""
    found = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(f for f in found if f.is_file() and f.name not in _UNLISTED and ".tmp" not in f.name)


def mark_complete(folder, recursive: bool = False) -> None:
    """Declare the artifact in ``folder`` finished: its ``DONE`` manifest lists its files (see
    :func:`_listed_files`) with their sizes, the folder's config key, and a digest of the
    files' contents (which names the artifact in the keys of what is built from it, see
    :func:`checkpoint_identity`). Written last, and atomically: a crash leaves no manifest."""
    folder = Path(folder)
    files, digest = {}, hashlib.sha256()
    for f in _listed_files(folder, recursive):
        name = f.relative_to(folder).as_posix()
        files[name] = f.stat().st_size
        digest.update(f"{name}:{files[name]}\n".encode())
        with open(f, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 24), b""):
                digest.update(chunk)
    write_json(folder / MARKER, {"files": files, "key": folder.name.rsplit("-", 1)[-1],
                                 "digest": digest.hexdigest()})


def _manifest(folder: Path) -> dict:
    """``folder``'s ``DONE`` manifest, or ``{}`` (none, or the workbook's older ``ok``)."""
    try:
        manifest = json.loads((Path(folder) / MARKER).read_text())
    except (OSError, ValueError):
        return {}
    return manifest if isinstance(manifest, dict) else {}


def completeness_problem(folder) -> str | None:
    """Why the artifact in ``folder`` cannot be used, or ``None``: no manifest (never
    finished), a listed file missing or of another size than written, or a weight file that
    does not read whole. (A manifest of the workbook before manifests, ``ok``, vouches for
    the weights alone.)"""
    folder = Path(folder)
    if not (folder / MARKER).exists():
        return "not finished"
    manifest = _manifest(folder)
    if manifest:
        for name, size in manifest.get("files", {}).items():
            f = folder / name
            if not f.is_file():
                return f"{name} is missing"
            if f.stat().st_size != size:
                return f"{name} has {f.stat().st_size} bytes, {size} were written"
    broken = unreadable_weights(folder)
    return ", ".join(broken) if broken else None


def is_complete(folder) -> bool:
    """Whether the artifact in ``folder`` was finished and is still whole (see
    :func:`completeness_problem`). A finished artifact that broke since (a truncated or
    deleted file) is reported, unmarked and so rebuilt by its ``ensure_*`` function, never
    loaded."""
    folder = Path(folder)
    problem = completeness_problem(folder)
    if problem is None:
        return True
    if problem != "not finished":
        import warnings
        warnings.warn(f"{folder}: {problem}; the cached artifact is rebuilt", stacklevel=2)
        (folder / MARKER).unlink()
    return False


@contextmanager
def building(folder):
    """Hold ``folder``'s build lock: a second process that wants the same artifact (two
    notebooks of a workshop at once) waits here, then finds it complete and reuses it.
    Under a multi-process launch (``WORLD_SIZE`` > 1) every rank builds together, so no lock."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        yield
        return
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; a single process is always safe
        yield
        return
    Path(folder).mkdir(parents=True, exist_ok=True)
    with open(Path(folder) / ".lock", "a") as handle:  # "a": never touch the file's mtime
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def write_json(path, payload, **dumps) -> None:
    """Write ``payload`` as JSON in one step: a temporary file renamed into place, so a killed
    write leaves the old file or none, never half of one."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(payload, **{"indent": 1, **dumps}))
    os.replace(tmp, path)


def read_cached_json(path):
    """A cached JSON result, or ``None`` when there is none or it cannot be read (then it is
    reported, and the caller computes it again)."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError as error:
        import warnings
        warnings.warn(f"{path}: cannot be read ({error}); it is computed again", stacklevel=2)
        return None
