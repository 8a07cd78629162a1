"""The cache keys everything else depends on: a key must change when what made an artifact
changes, and must not when nothing did (or a rerun would retrain, or reuse a stale model)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from nbutils.paths import artifact_dir, cache_root, checkpoint_identity, config_key


@dataclass(frozen=True)
class Recipe:
    learning_rate: float = 1e-3
    epochs: int = 5


def test_cache_root_is_the_environment_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBOOK_CACHE", str(tmp_path / "cache"))
    assert cache_root() == tmp_path / "cache" and (tmp_path / "cache").is_dir()


def test_config_key_is_stable_and_sensitive():
    assert config_key({"a": 1, "b": [1, 2]}) == config_key({"b": [1, 2], "a": 1})  # key order
    assert config_key(Recipe()) == config_key({"learning_rate": 1e-3, "epochs": 5})  # dataclass = its fields
    assert config_key(Recipe()) != config_key(Recipe(learning_rate=2e-3))
    assert config_key(Recipe()) != config_key(Recipe(epochs=4))
    assert len(config_key(Recipe())) == 10 and len(config_key(Recipe(), length=16)) == 16
    # hashed, not Python's per-process hash(): the same key in every process and session
    assert config_key({"a": 1}) == "f9d86028c6"


def test_artifact_dir_names_the_config_and_keeps_the_first_config_file(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBOOK_CACHE", str(tmp_path))
    folder = artifact_dir("models", "target-tiny", Recipe())
    assert folder == tmp_path / "models" / f"target-tiny-{config_key(Recipe())}"
    assert json.loads((folder / "cache_key.json").read_text()) == {"epochs": 5, "learning_rate": 1e-3}
    assert artifact_dir("models", "target-tiny", Recipe()) == folder  # same config, same folder
    assert artifact_dir("models", "target-tiny", Recipe(epochs=1)) != folder


def test_checkpoint_identity_changes_when_the_weights_do(tmp_path):
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "model.safetensors").write_bytes(b"0" * 10)
    (ckpt / "config.json").write_text("{}")
    (ckpt / "notes.txt").write_text("not part of the model")
    path, files = checkpoint_identity(ckpt)
    assert path == str(ckpt.resolve()) and [f[0] for f in files] == ["config.json", "model.safetensors"]
    assert checkpoint_identity(ckpt) == (path, files)  # nothing changed
    (ckpt / "notes.txt").write_text("edited")
    assert checkpoint_identity(ckpt) == (path, files)  # not a weight or config file
    (ckpt / "model.safetensors").write_bytes(b"1" * 12)  # retrained: other size
    assert checkpoint_identity(ckpt)[1] != files
    stat = (ckpt / "model.safetensors").stat()
    files = checkpoint_identity(ckpt)[1]
    os.utime(ckpt / "model.safetensors", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # same size, rewritten
    assert checkpoint_identity(ckpt)[1] != files


def test_a_hub_id_is_its_own_identity():
    assert checkpoint_identity("open-unlearning/some-model") == ("open-unlearning/some-model", None)


def _finished_artifact(tmp_path):
    from nbutils.paths import mark_complete
    folder = tmp_path / "models" / "target-tiny-0123456789"
    folder.mkdir(parents=True)
    (folder / "cache_key.json").write_text("{}")  # the key record: not the artifact's own
    (folder / "config.json").write_text("{}")  # a model's config: part of it
    (folder / "log_history.json").write_text('[{"loss": 1.0}]')
    (folder / "tokenizer.json").write_text('{"vocab": {}}')
    mark_complete(folder)
    return folder


def test_the_manifest_catches_a_damaged_file_and_the_artifact_is_rebuilt(tmp_path):
    """Issue 14: a finished artifact lists its files and sizes; any that changed is reported."""
    import pytest
    from nbutils.paths import completeness_problem, is_complete
    folder = _finished_artifact(tmp_path)
    manifest = json.loads((folder / "DONE").read_text())
    assert manifest["files"] == {"config.json": 2, "log_history.json": 15, "tokenizer.json": 13}
    assert manifest["key"] == "0123456789" and len(manifest["digest"]) == 64
    assert completeness_problem(folder) is None and is_complete(folder)
    (folder / "tokenizer.json").write_text('{"voc')  # cut short
    assert completeness_problem(folder) == "tokenizer.json has 5 bytes, 13 were written"
    with pytest.warns(UserWarning, match="rebuilt"):
        assert not is_complete(folder)
    assert not (folder / "DONE").exists()  # unmarked: its ensure_* function builds it again
    folder = _finished_artifact(tmp_path / "again")
    (folder / "log_history.json").unlink()
    assert completeness_problem(folder) == "log_history.json is missing"


def test_an_unfinished_artifact_is_not_complete_and_not_reported(tmp_path, recwarn):
    from nbutils.paths import is_complete
    (tmp_path / "half").mkdir()
    assert not is_complete(tmp_path / "half") and not recwarn.list


def test_a_second_builder_waits_and_then_reuses(tmp_path):
    """Two notebooks asking for the same artifact at once: one builds, the other waits for
    the lock and finds the artifact complete (threads stand in for processes: flock locks
    each open file, so they exclude each other the same way)."""
    import threading
    import time as clock
    from nbutils.paths import building, is_complete, mark_complete
    folder = tmp_path / "unlearn" / "run-abc"
    folder.mkdir(parents=True)
    builds = []

    def ensure():
        with building(folder):
            if not is_complete(folder):
                builds.append(threading.current_thread().name)
                clock.sleep(0.5)
                (folder / "model.txt").write_text("weights")
                mark_complete(folder)

    workers = [threading.Thread(target=ensure, name=f"w{i}") for i in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert len(builds) == 1 and is_complete(folder)


def test_json_results_are_written_whole_and_a_broken_one_is_recomputed(tmp_path):
    import pytest
    from nbutils.paths import read_cached_json, write_json
    path = tmp_path / "RESULT.json"
    assert read_cached_json(path) is None
    write_json(path, {"auc": 0.5})
    assert read_cached_json(path) == {"auc": 0.5} and not list(tmp_path.glob(".*tmp*"))
    path.write_text('{"auc": 0.')  # a write cut short by a kill (before write_json existed)
    with pytest.warns(UserWarning, match="computed again"):
        assert read_cached_json(path) is None


def test_a_moved_or_copied_cache_keeps_every_key(tmp_path, monkeypatch):
    """A workshop copies a filled cache to each laptop: paths inside the cache are keyed
    relative to it, and a finished checkpoint by its content digest, not by where it lies or
    when its files were written (a copy has new modification times)."""
    import shutil
    first, copy = tmp_path / "first", tmp_path / "elsewhere" / "copy"
    monkeypatch.setenv("WORKBOOK_CACHE", str(first))
    model = _finished_artifact(first)
    key = {"start": str(model), "model": checkpoint_identity(model), "lr": 1e-3}
    key_there = config_key(key)
    shutil.copytree(first, copy, copy_function=shutil.copy)  # shutil.copy: fresh mtimes
    monkeypatch.setenv("WORKBOOK_CACHE", str(copy))
    moved = copy / model.relative_to(first)
    assert config_key({"start": str(moved), "model": checkpoint_identity(moved), "lr": 1e-3}) == key_there
    # a path outside the cache is still itself
    assert config_key({"start": "/elsewhere/model"}) != config_key({"start": str(copy / "elsewhere/model")})


def test_a_retrained_checkpoint_in_the_cache_is_a_new_key(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBOOK_CACHE", str(tmp_path))
    from nbutils.paths import mark_complete
    model = _finished_artifact(tmp_path)
    before = checkpoint_identity(model)
    (model / "log_history.json").write_text('[{"loss": 2.0}]')  # same size, other content
    mark_complete(model)
    assert checkpoint_identity(model) != before


def test_a_data_folder_missing_a_file_is_written_again(tmp_path, monkeypatch):
    """The generated TOFU folder carries a manifest of all its files, sub-folders included."""
    import pytest
    from nbutils.data.tofu import ensure_tofu_source
    from nbutils.profiles import get_profile
    monkeypatch.setenv("WORKBOOK_CACHE", str(tmp_path))
    profile = get_profile("tiny", {"n_authors": 4, "qa_per_author": 2})
    folder = ensure_tofu_source(profile)
    forget = next(p for p in sorted(Path(folder).rglob("*.json*")) if "forget" in str(p))
    rows = forget.read_text()
    forget.unlink()  # a kill before the last file, or a user's rm
    with pytest.warns(UserWarning, match="missing"):
        assert ensure_tofu_source(profile) == folder
    assert forget.read_text() == rows
