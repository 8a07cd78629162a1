"""What bf16 buys on this CPU: matmul throughput, SmolLM2 LoRA training and evaluation,
each in fp32 and in the profile's ``auto`` precision, measured in one run.

    python benchmarks/bench_cpu_training.py                 # about 3 minutes on 2 cores
    python benchmarks/bench_cpu_training.py --steps 8 --threads 0

1. **matmul**: a 512x1536x1536 matrix product in fp32 and in bf16, TFLOP/s: the hardware's
   ceiling for everything below (2x on AVX512-BF16, about 6x on AMX).
2. **training**: the ``smol`` profile's finetuning step (SmolLM2-135M-Instruct, LoRA r=8 on every
   linear layer, batch 8 of real TOFU-format questions and answers in the chat template, AdamW),
   built by the package's own ``load_model`` + ``apply_lora`` with ``precision="fp32"`` and
   with ``precision="auto"`` (on a bf16-capable CPU: bf16 frozen base, fp32 adapters, bf16
   autocast, as the Trainer runs it). Tokens per second, and the fraction of the measured bf16
   matmul peak the training step reaches (FLOPs: 2N forward + 2N input-gradient backward per
   token for N frozen weights in matmuls, LM head included).
3. **evaluation**: the TOFU evaluation's own calls on the forget split, fp32 against ``auto``:
   scoring (answer, paraphrase and perturbed answers, ``score_split``) and batched greedy
   generation of the same questions (``generate_split``). Tokens per second: scored tokens
   plus generated tokens over the wall time, and each part's ratio on its own (scoring is
   matmul-bound; generation of one token at a time reads every weight per token and is
   bound by memory and per-step overhead, which bf16 halves at best).

The two precisions alternate within each measurement (``--repeats`` rounds, best time kept),
so a load that comes and goes hits both alike. Keep the machine otherwise idle: torch's
threads collapse when processes share the cores. ``--threads 0`` keeps torch's default.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import torch


def matmul_tflops(dtype: torch.dtype, n: int = 512, k: int = 1536, m: int = 1536,
                  reps: int = 30) -> float:
    a, b = torch.randn(n, k, dtype=dtype), torch.randn(k, m, dtype=dtype)
    for _ in range(5):
        a @ b
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n * k * m * reps / (time.perf_counter() - t) / 1e12


def matmul_flops_per_token(model) -> int:
    """2 x the weights every token multiplies through (decoder linears and the LM head;
    the embedding lookup is no matmul)."""
    n = 0
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and "lora_" not in name:
            n += module.in_features * module.out_features
    return 2 * n


class TrainingStep:
    """One LoRA optimiser step of the ``smol`` finetuning recipe at a given precision."""

    def __init__(self, profile, base: str, batches):
        from nbutils.finetune import apply_lora
        from nbutils.models.loading import load_model
        from nbutils.models.precision import trainer_precision
        self.autocast = trainer_precision(profile, "cpu")["bf16"]
        self.model = apply_lora(load_model(base, profile, device="cpu"), profile)
        self.model.train()
        self.optimizer = torch.optim.AdamW([p for p in self.model.parameters() if p.requires_grad], lr=1e-4)
        self.batches = batches
        self.tokens = sum(int(b["attention_mask"].sum()) for b in batches)

    def run(self) -> float:
        """Seconds for one step over every batch."""
        t = time.perf_counter()
        for b in self.batches:  # the finetuning collator's batches: the Trainer's forward + loss
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.autocast):
                loss = self.model(**b).loss
            loss.backward()
            self.optimizer.step()
            self.optimizer.zero_grad()
        return time.perf_counter() - t


def evaluation_pass(model, tokenizer, profile, rows) -> dict[str, tuple[float, int]]:
    """``{"scoring": (seconds, tokens), "generation": (seconds, tokens)}`` of the forget split,
    by the calls the TOFU evaluation makes (``score_split``: no Min-K%++ statistics;
    ``generate_split``: length-grouped greedy answers)."""
    from nbutils.evaluation.tofu import generate_split, score_split
    from nbutils.evaluation.tofu_logs import TofuSplit
    t = time.perf_counter()
    scores = score_split(model, tokenizer, rows, TofuSplit("forget", ""), profile.prompt_format,
                         profile.eval_batch_size)
    scoring = time.perf_counter() - t
    scored = sum(s.n for s in scores.answer + scores.paraphrased + [x for w in scores.perturbed for x in w])
    t = time.perf_counter()
    answers = generate_split(model, tokenizer, [r["question"] for r in rows], profile.prompt_format,
                             profile.max_new_tokens, profile.eval_batch_size,
                             stop_at_newline=profile.stop_at_newline)
    generation = time.perf_counter() - t
    generated = sum(len(tokenizer(a, add_special_tokens=False)["input_ids"]) + 1 for a in answers)
    return {"scoring": (scoring, scored), "generation": (generation, generated)}


def main(steps: int = 4, repeats: int = 2, threads: int = 0, batch_size: int = 8,
         questions: int = 0, verbose: bool = True) -> dict:
    from nbutils.evaluation.tofu import tofu_rows
    from nbutils.finetune import QADataset, collator
    from nbutils.models.loading import ensure_base_model, load_model, load_tokenizer
    from nbutils.models.precision import cpu_has_fast_bf16, resolve_precision
    from nbutils.profiles import get_profile

    if threads:
        torch.set_num_threads(threads)
    say = print if verbose else (lambda *a, **k: None)
    smol = get_profile("smol")
    precisions = {"fp32": replace(smol, precision="fp32"), "auto": replace(smol, precision="auto")}
    auto = resolve_precision("auto", "cpu")
    say(f"torch {torch.__version__}, {torch.get_num_threads()} threads; CPU bf16 matrix "
        f"instructions: {cpu_has_fast_bf16()} -> auto = {auto}")

    result = {"auto_precision": auto, "threads": torch.get_num_threads()}
    # 1. the hardware's ceiling
    mm = {name: max(matmul_tflops(dtype) for _ in range(repeats))
          for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16))}
    result["matmul_tflops"] = mm
    result["matmul_ratio"] = mm["bf16"] / mm["fp32"]
    say(f"matmul 512x1536x1536: fp32 {mm['fp32']:.3f} TFLOP/s, bf16 {mm['bf16']:.3f} TFLOP/s "
        f"({result['matmul_ratio']:.2f}x)")

    # 2. LoRA training on real batches of the smol recipe
    base = ensure_base_model(smol)
    tokenizer = load_tokenizer(base, smol)
    rows = tofu_rows(smol, "full")[:batch_size * steps]
    data = QADataset(rows, tokenizer, smol.prompt_format, smol.finetune.max_length)
    collate = collator(tokenizer)
    batches = [collate([data[i] for i in range(s, s + batch_size)])
               for s in range(0, batch_size * steps, batch_size)]
    runs = {name: TrainingStep(p, base, batches) for name, p in precisions.items()}
    for r in runs.values():  # warm-up: allocator, oneDNN kernels
        r.batches, full = r.batches[:1], r.batches
        r.run()
        r.batches = full
    best = {name: float("inf") for name in runs}
    for _ in range(repeats):
        for name, r in runs.items():
            best[name] = min(best[name], r.run())
    tokens = runs["fp32"].tokens
    train = {name: tokens / s for name, s in best.items()}
    flops = matmul_flops_per_token(runs["auto"].model) * 2  # forward + input-gradient backward
    result["train_tokens_per_s"] = train
    result["train_ratio"] = train["auto"] / train["fp32"]
    result["train_fraction_of_peak"] = flops * train["auto"] / (mm[auto] * 1e12)
    say(f"LoRA training ({len(batches)} batches of {batch_size}, {tokens} tokens): fp32 "
        f"{train['fp32']:.0f} tok/s, auto {train['auto']:.0f} tok/s ({result['train_ratio']:.2f}x); "
        f"{100 * result['train_fraction_of_peak']:.0f}% of the {auto} matmul peak")
    del runs

    # 3. evaluation: scoring + greedy generation
    eval_rows = tofu_rows(smol, f"{smol.forget_split}_perturbed")[:questions or None]
    models = {name: load_model(base, p, device="cpu").eval() for name, p in precisions.items()}
    for m in models.values():
        evaluation_pass(m, tokenizer, smol, eval_rows[:4])
    parts = ("scoring", "generation")
    best = {(name, part): float("inf") for name in models for part in parts}
    tokens = {}  # each precision's own counts: greedy answers may differ by a few tokens
    for _ in range(repeats):
        for name, m in models.items():
            for part, (seconds, n) in evaluation_pass(m, tokenizer, smol, eval_rows).items():
                best[name, part] = min(best[name, part], seconds)
                tokens[name, part] = n
    rate = {key: tokens[key] / best[key] for key in best}
    evaluate = {name: sum(tokens[name, part] for part in parts) / sum(best[name, part] for part in parts)
                for name in models}
    result["eval_tokens_per_s"] = evaluate
    result["eval_ratio"] = evaluate["auto"] / evaluate["fp32"]
    for part in parts:
        result[f"{part}_ratio"] = rate["auto", part] / rate["fp32", part]
    say(f"evaluation ({len(eval_rows)} forget questions: scoring {tokens['auto', 'scoring']} tokens + "
        f"generation {tokens['auto', 'generation']}): fp32 {evaluate['fp32']:.0f} tok/s, auto "
        f"{evaluate['auto']:.0f} tok/s ({result['eval_ratio']:.2f}x; scoring "
        f"{result['scoring_ratio']:.2f}x, generation {result['generation_ratio']:.2f}x)")
    say(f"speedups of auto over fp32: matmul {result['matmul_ratio']:.2f}x, training "
        f"{result['train_ratio']:.2f}x, evaluation {result['eval_ratio']:.2f}x")
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=4, help="training batches per timed round")
    parser.add_argument("--repeats", type=int, default=2, help="rounds; the best is kept")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--questions", type=int, default=0,
                        help="forget questions to evaluate (0: all of the profile's forget split)")
    a = parser.parse_args()
    main(steps=a.steps, repeats=a.repeats, threads=a.threads, batch_size=a.batch_size,
         questions=a.questions)
