"""Fault injection (issue 14): a finetune killed with SIGKILL midway, then rerun, ends with
the weights of a run that was never interrupted; a killed unlearning run starts over cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from conftest import MICRO_OVERRIDES
from nbutils.models.loading import read_safetensors

pytestmark = pytest.mark.slow

OVERRIDES = {**MICRO_OVERRIDES, "finetune.epochs": 6}  # 12 steps, a checkpoint every 2


def _start(cache: Path, code: str) -> subprocess.Popen:
    env = {**os.environ, "WORKBOOK_CACHE": str(cache),
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")])}
    script = textwrap.dedent(f"""
        from nbutils.profiles import get_profile
        from nbutils.finetune import ensure_target_model
        from nbutils.unlearning import ensure_unlearned
        profile = get_profile("tiny", {OVERRIDES!r})
        {code}
    """)
    return subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


def _kill_when(proc: subprocess.Popen, ready, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read().decode()[-2000:]}"
        assert time.monotonic() < deadline, "the run never reached the point to kill it at"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def _finish(cache: Path, code: str) -> None:
    proc = _start(cache, code)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err.decode()[-3000:]


def _model_dir(cache: Path, prefix: str) -> Path:
    found = [d for d in (cache / prefix.split("/")[0]).glob(prefix.split("/")[1] + "*") if (d / "DONE").exists()]
    assert len(found) == 1, found
    return found[0]


def test_a_killed_finetune_resumes_to_the_uninterrupted_weights(tmp_path):
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    proc = _start(killed, "ensure_target_model(profile)")
    # kill once a checkpoint is complete (its trainer state is written last)
    _kill_when(proc, lambda: any((killed / "models").glob("target-tiny-*/trainer/checkpoint-*/trainer_state.json")))
    assert not any((killed / "models").glob("target-tiny-*/DONE"))
    _finish(killed, "ensure_target_model(profile)")
    _finish(clean, "ensure_target_model(profile)")
    resumed, uninterrupted = (read_safetensors(_model_dir(c, "models/target-tiny-")) for c in (killed, clean))
    assert resumed.keys() == uninterrupted.keys()
    assert all(torch.equal(resumed[k], uninterrupted[k]) for k in resumed)


def test_a_killed_unlearning_run_starts_over_to_the_uninterrupted_weights(tmp_path):
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    _finish(killed, "ensure_target_model(profile)")  # the target first, whole
    proc = _start(killed, "ensure_unlearned(profile, 'graddiff')")
    _kill_when(proc, lambda: any((killed / "unlearn").glob("*graddiff*/checkpoint-*/trainer_state.json")))
    _finish(killed, "ensure_unlearned(profile, 'graddiff')")
    _finish(clean, "ensure_unlearned(profile, 'graddiff')")
    after_kill, uninterrupted = (read_safetensors(_model_dir(c, "unlearn/")) for c in (killed, clean))
    assert all(torch.equal(after_kill[k], uninterrupted[k]) for k in after_kill)


def test_a_killed_evaluation_is_computed_again_to_the_same_numbers(tmp_path):
    """An evaluation writes its summary last: killed midway it leaves nothing that looks done."""
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    evaluate = ("from nbutils.evaluation.tofu import ensure_tofu_eval\n"
                "        ensure_tofu_eval(profile, ensure_target_model(profile), 'target', progress=False)")
    _finish(killed, "ensure_target_model(profile)")
    proc = _start(killed, evaluate)
    _kill_when(proc, lambda: any((killed / "eval").glob("target-*/cache_key.json")))
    assert not any((killed / "eval").glob("target-*/TOFU_SUMMARY.json"))
    _finish(killed, evaluate)
    _finish(clean, evaluate)
    summaries = [json.loads(next((c / "eval").glob("target-*/TOFU_SUMMARY.json")).read_text())
                 for c in (killed, clean)]
    assert summaries[0] == summaries[1]


def test_a_killed_export_is_redone_and_loads_by_revision(tmp_path):
    """An export writes each branch's ref last: killed midway, redone, every branch loads."""
    cache = tmp_path / "cache"
    _finish(cache, "ensure_unlearned(profile, 'graddiff')")
    # every copy made slow, so that the kill lands while the export is still writing
    export = ("import shutil, time\n"
              "        copy = shutil.copyfile\n"
              "        shutil.copyfile = lambda *a, **k: (time.sleep(0.2), copy(*a, **k))[1]\n"
              "        from nbutils.publishing import export_run\n"
              f"        export_run(ensure_unlearned(profile, 'graddiff'), profile, 'workbook/killed-export', "
              f"cache_dir={str(tmp_path / 'hub')!r}, progress=False)")
    proc = _start(cache, export)
    _kill_when(proc, lambda: any((tmp_path / "hub").rglob("blobs/*")))
    _finish(cache, export)
    from nbutils.models.hub import cached_refs
    refs = cached_refs("workbook/killed-export", tmp_path / "hub")
    assert "main" in refs and "checkpoint-0" in refs
    snapshot = tmp_path / "hub" / "models--workbook--killed-export" / "snapshots" / refs["main"]
    run = _model_dir(cache, "unlearn/")
    exported, original = read_safetensors(snapshot), read_safetensors(run)
    assert all(torch.equal(exported[k], original[k]) for k in original)


def test_a_copied_cache_is_reused_without_training_or_evaluating_again(tmp_path):
    """A workshop fills a cache once and copies it to every laptop (new folder, new file
    times): the base, the target and its evaluation are found, none is built again."""
    import shutil
    first, copy = tmp_path / "first", tmp_path / "laptop" / "cache"
    evaluate = ("from nbutils.evaluation.tofu import ensure_tofu_eval\n"
                "        ensure_tofu_eval(profile, ensure_target_model(profile), 'target', progress=False)")
    _finish(first, evaluate)
    shutil.copytree(first, copy, copy_function=shutil.copy)  # shutil.copy: fresh mtimes
    nothing_again = textwrap.dedent("""
        import nbutils.evaluation.tofu, nbutils.finetune, nbutils.models.tiny
        def built_again(*args, **kwargs):
            raise AssertionError("the copied cache was not reused")
        nbutils.models.tiny._pretrain = nbutils.finetune.finetune = built_again
        nbutils.evaluation.tofu.evaluate_tofu = built_again
    """).replace("\n", "\n        ")
    _finish(copy, nothing_again + "\n        " + evaluate)
