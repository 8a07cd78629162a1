"""What the GradNorm attack costs next to the other membership-inference attacks.

    python benchmarks/bench_mia.py                  # the tiny profile's target model
    python benchmarks/bench_mia.py --profile smol   # SmolLM2 (its finetuned target, cached)

LOSS, zlib, Min-K and Min-K++ all read one batched scoring pass (forward only) over the
forget and holdout QA; GradNorm needs one forward *and* backward pass per item, at batch size
1, as the attack is defined (REFERENCE §2). Both run on the same model and rows, alternately
for ``--repeats`` rounds (the first warms torch up); the best wall time of each is reported,
with their ratio. Timings are noisy on a shared machine: keep it otherwise idle.
"""

from __future__ import annotations

import argparse
import time


def main(profile_name: str = "tiny", overrides: dict | None = None, repeats: int = 2,
         verbose: bool = True) -> dict:
    from nbutils.data.tofu import load_tofu
    from nbutils.evaluation.mia import attack_scores, answer_zlib_text, gradnorm_scores, holdout_split
    from nbutils.evaluation.scoring import score_pairs
    from nbutils.finetune import ensure_target_model
    from nbutils.models.loading import load_model_and_tokenizer
    from nbutils.profiles import get_profile
    profile = get_profile(profile_name, overrides or {})
    model, tokenizer = load_model_and_tokenizer(str(ensure_target_model(profile)), profile)
    rows = list(load_tofu(profile, profile.forget_split)) + \
        list(load_tofu(profile, holdout_split(profile.forget_split)))
    pairs = [(r["question"], r["answer"]) for r in rows]
    texts = [answer_zlib_text(tokenizer, r["answer"], profile.prompt_format) for r in rows]

    def scoring_attacks():
        scored = score_pairs(model, tokenizer, pairs, profile.prompt_format, batch_size=profile.eval_batch_size)
        return attack_scores(scored, texts, 0.4, None, drop_eos_for_min_k=True)

    def gradnorm():
        return gradnorm_scores(model, tokenizer, pairs, profile.prompt_format)

    best = {"scoring attacks": float("inf"), "gradnorm": float("inf")}
    for _ in range(repeats):
        for name, fn in (("scoring attacks", scoring_attacks), ("gradnorm", gradnorm)):
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    result = {"profile": profile.name, "items": len(pairs), **{f"{k} s": round(v, 3) for k, v in best.items()},
              "gradnorm / scoring": round(best["gradnorm"] / best["scoring attacks"], 1),
              "gradnorm ms per item": round(1000 * best["gradnorm"] / len(pairs), 1)}
    if verbose:
        for key, value in result.items():
            print(f"{key:>22}: {value}")
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="tiny")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    main(args.profile, repeats=args.repeats)
