"""The full TOFU evaluation: shared, length-bucketed scoring + batched generation against
the one-item-at-a-time implementation.

    python benchmarks/bench_tofu_eval.py                 # tiny profile's target model, 1 thread
    python benchmarks/bench_tofu_eval.py --repeats 5 --threads 0   # torch's default threads

Both paths evaluate the same model (the ``tiny`` profile's finetuned target model, trained
once and cached by ``ensure_target_model``) on every split: the forget split, retain,
real authors and world facts. The fast path (:func:`nbutils.evaluation.tofu.evaluate_tofu`)
scores each split's answers, paraphrased and perturbed answers in one length-bucketed pass
and generates answers in batches with a KV cache; the naive one
(:mod:`nbutils.evaluation.naive`) runs one forward pass per (question, answer) pair and one
``generate`` call per question. The script checks that every aggregate and every per-item
value agree (to 1e-4; generated texts exactly) and prints both times and their ratio.

Timings are noisy on a shared machine: the paths run alternately for ``--repeats`` rounds
(the first also warms torch up), the best wall and CPU (process) time of each is reported,
and both use one torch thread by default (``--threads``), as oversubscribed cores would
otherwise dominate. Data loading is outside the timings (both read the same cached rows).
"""

from __future__ import annotations

import argparse
import time

import torch


def compare_logs(a: dict, b: dict, tol: float = 1e-4, path: str = "") -> list[str]:
    """Every difference between two nested logs: numbers beyond ``tol``, anything else unequal."""
    diffs = []
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            diffs.append(f"{path}: keys differ: {sorted(set(a) ^ set(b))}")
        for k in sorted(set(a) & set(b), key=str):
            diffs += compare_logs(a[k], b[k], tol, f"{path}/{k}")
    elif isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if len(a) != len(b):
            diffs.append(f"{path}: lengths {len(a)} != {len(b)}")
        for i, (x, y) in enumerate(zip(a, b)):
            diffs += compare_logs(x, y, tol, f"{path}[{i}]")
    elif isinstance(a, (int, float)) and isinstance(b, (int, float)) \
            and not isinstance(a, bool) and not isinstance(b, bool):
        if abs(a - b) > tol:
            diffs.append(f"{path}: {a!r} != {b!r}")
    elif a != b:
        diffs.append(f"{path}: {a!r} != {b!r}")
    return diffs


def max_abs_diff(a, b) -> float:
    if isinstance(a, dict):
        return max([max_abs_diff(a[k], b[k]) for k in a if k in b] or [0.0])
    if isinstance(a, (list, tuple)):
        return max([max_abs_diff(x, y) for x, y in zip(a, b)] or [0.0])
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return abs(a - b)
    return 0.0


def load_tofu_rows(profile) -> None:
    """Both paths read rows through ``tofu_rows`` (loaded once per process)."""
    from nbutils.evaluation.tofu import tofu_rows, tofu_splits
    for split in tofu_splits(profile):
        tofu_rows(profile, split.config)


def main(profile_name: str = "tiny", overrides: dict | None = None, threads: int = 1,
         model_path: str | None = None, repeats: int = 3, verbose: bool = True) -> dict:
    """Time both paths ``repeats`` times, alternately (best of each is reported)."""
    from nbutils.evaluation.naive import naive_evaluate_tofu
    from nbutils.evaluation.tofu import evaluate_tofu
    from nbutils.finetune import ensure_target_model
    from nbutils.models.loading import load_model, load_tokenizer
    from nbutils.profiles import get_profile

    if threads:
        torch.set_num_threads(threads)  # the same for both paths
    profile = get_profile(profile_name, overrides)
    path = str(model_path or ensure_target_model(profile))
    model = load_model(path, profile, load_in_4bit=False)
    tokenizer = load_tokenizer(path, profile)
    model.eval()

    load_tofu_rows(profile)  # build / load the data once, outside both timings

    def timed(fn):
        wall, cpu = time.perf_counter(), time.process_time()
        out = fn()
        return out, time.perf_counter() - wall, time.process_time() - cpu

    # alternate the two paths; the first round also warms torch up (lazy initialisation)
    fast_times, naive_times = [], []
    for _ in range(max(1, repeats)):
        fast, *t = timed(lambda: evaluate_tofu(model, tokenizer, profile, progress=False))
        fast_times.append(t)
        # a reference for forget quality: the model's own truth ratios (FQ = 1.0), so the
        # forget-quality code runs in both paths without training a retain model here
        reference = fast.forget_truth_ratios
        naive, *t = timed(lambda: naive_evaluate_tofu(model, tokenizer, profile, reference=reference))
        naive_times.append(t)
    fast = fast.with_reference(reference)
    fast_s, fast_cpu = (min(t[k] for t in fast_times) for k in (0, 1))
    naive_s, naive_cpu = (min(t[k] for t in naive_times) for k in (0, 1))

    diffs = compare_logs(fast.logs, naive.logs, tol=1e-4)
    result = {"fast_s": fast_s, "naive_s": naive_s, "ratio": naive_s / fast_s,
              "fast_cpu_s": fast_cpu, "naive_cpu_s": naive_cpu, "cpu_ratio": naive_cpu / fast_cpu,
              "round_ratios": [n[0] / f[0] for f, n in zip(fast_times, naive_times)],
              "equal": not diffs, "differences": diffs,
              "max_abs_diff": max_abs_diff(fast.logs, naive.logs),
              "fast_seconds_by_stage": fast.meta.get("seconds"),
              "split_sizes": fast.meta.get("split_sizes"), "summary": fast.summary}
    if verbose:
        sizes = fast.meta.get("split_sizes", {})
        print(f"model: {path}")
        print(f"splits: {sizes}; torch threads: {torch.get_num_threads()}; best of {repeats} rounds")
        print(f"fast  (shared scoring pass + batched generation): {fast_s:7.2f} s wall, "
              f"{fast_cpu:7.2f} s CPU  (stages, wall: {fast.meta.get('seconds')})")
        print(f"naive (one pair / one question at a time):        {naive_s:7.2f} s wall, "
              f"{naive_cpu:7.2f} s CPU")
        print(f"speed-up: {result['ratio']:.1f}x wall, {result['cpu_ratio']:.1f}x CPU time")
        print(f"every aggregate and per-item value equal to 1e-4: {result['equal']} "
              f"(max abs difference {result['max_abs_diff']:.2e})")
        for d in diffs[:20]:
            print("  ", d)
        print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in fast.headline().items()})
    return result


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="tiny")
    ap.add_argument("--model", default=None, help="checkpoint to evaluate (default: the profile's target model)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads for both paths (0: torch's default)")
    ap.add_argument("--repeats", type=int, default=3, help="timed rounds of each path (best is reported)")
    args = ap.parse_args()
    out = main(args.profile, threads=args.threads, model_path=args.model, repeats=args.repeats)
    raise SystemExit(0 if out["equal"] else 1)
