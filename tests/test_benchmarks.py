"""Smoke test of the benchmarks: they run, and the two NPO variants compute the same losses."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_npo_reference.py"
BENCH_CPU = BENCH.with_name("bench_cpu_training.py")


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_npo_reference_benchmark_equal_losses(micro_overrides):
    bench = _load(BENCH)
    result = bench.main(steps=3, warmup=1, batch_size=4, overrides=micro_overrides, verbose=False)
    assert len(result["cached_losses"]) == len(result["per_step_reference_losses"]) == 4
    assert result["losses_equal"] and result["max_abs_loss_diff"] <= 1e-5 * max(
        1.0, max(abs(x) for x in result["cached_losses"]))
    assert result["ratio"] > 0  # timings are noisy: no threshold here


@pytest.mark.slow  # loads the real SmolLM2 weights
def test_cpu_training_benchmark_measures_every_ratio(smollm2_cache):
    """The bf16 benchmark runs end to end on the real SmolLM2 (one small step, four questions)
    and reports every ratio it prints; no thresholds, timings are noisy."""
    result = _load(BENCH_CPU).main(steps=1, repeats=1, batch_size=2, questions=4, verbose=False)
    for key in ("matmul_ratio", "train_ratio", "eval_ratio", "scoring_ratio", "generation_ratio",
                "train_fraction_of_peak"):
        assert result[key] > 0, key
    assert result["auto_precision"] in ("bf16", "fp32")
