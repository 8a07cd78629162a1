"""The multi-process path for real: two CPU processes (gloo DDP) run one unlearning job.

``accelerate launch --cpu --num_processes 2`` starts a *single* process in accelerate 1.x
(``--cpu`` picks the simple launcher; multi-CPU there needs mpirun), so the test launches
with ``--multi_gpu --num_processes 2`` and ``ACCELERATE_USE_CPU=true``: torch elastic starts
two processes and accelerate/Trainer give them a gloo process group on the CPU.
"""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_npo_run(tmp_path, micro_overrides):
    overrides = {**micro_overrides, "unlearn.epochs": 1, "unlearn.batch_size": 2}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "--main_process_port", str(_free_port()),
           "-m", "nbutils.unlearning", "--profile", "tiny", "--method", "npo"]
    for key, value in overrides.items():
        cmd += ["--override", f"{key}={value}"]
    env = {**os.environ, "WORKBOOK_CACHE": str(tmp_path / "cache"), "ACCELERATE_USE_CPU": "true",
           "CUDA_VISIBLE_DEVICES": "", "WORKBOOK_DEBUG_PAIRS": "1", "OMP_NUM_THREADS": "1",
           "HF_DATASETS_CACHE": str(tmp_path / "cache" / "hf-datasets")}
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]

    run_dir = Path([l for l in proc.stdout.splitlines() if "/unlearn/" in l][-1].strip())
    assert run_dir.is_dir() and run_dir.is_relative_to(tmp_path)
    for name in ("DONE", "model.safetensors", "config.json", "tokenizer.json", "log_history.json",
                 "unlearning.json"):
        assert (run_dir / name).exists(), name

    from nbutils.unlearning import checkpoints
    ckpts = checkpoints(run_dir)
    assert ckpts and all((c / "unlearning.json").exists() for c in ckpts)
    assert json.loads((ckpts[-1] / "unlearning.json").read_text())["method"] == "npo"

    pairs = [json.loads((run_dir / f"pairs-rank{r}.json").read_text()) for r in (0, 1)]
    for r, p in enumerate(pairs):
        # the launcher's rank, accelerate's process index and the dataset's rank agree
        assert p["rank"] == p["process_rank"] == p["process_index"] == r and p["num_processes"] == 2
    assert pairs[0]["retain_index"] != pairs[1]["retain_index"]  # per-rank retain partners

    # real data parallelism: each optimiser step consumed batch_size x 2 forget examples
    steps = json.loads((run_dir / "unlearning.json").read_text())["steps"]
    assert steps == math.ceil(pairs[0]["n_forget"] / (2 * 2))
