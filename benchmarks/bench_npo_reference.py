"""NPO with cached reference log-probs against a per-step reference forward.

``S_ref(a|q)`` is the frozen starting model's score of a forget answer: it never changes
during training, so ``nbutils`` computes it once, before training, and reads it from the
batch. The straightforward alternative keeps a frozen copy of the model and runs it on every
forget batch inside the loss. Both give the same loss at every step; this script measures
what the cache saves per optimiser step, on the same model, batches and optimiser:

    python benchmarks/bench_npo_reference.py              # 5 warm-up + 30 timed steps
    python benchmarks/bench_npo_reference.py --steps 100 --batch-size 16

The model is the ``tiny`` profile's Llama architecture, freshly initialised (timing and
loss equality do not need a trained model); the data are the profile's forget/retain rows.
Nothing is written to the workbook cache.
"""

from __future__ import annotations

import argparse
import copy
import time

import torch

from nbutils.data.tofu import build_tofu_configs
from nbutils.models.tiny import build_tiny_model, tokenizer_corpus, train_tokenizer
from nbutils.profiles import get_profile
from nbutils.unlearning import losses
from nbutils.unlearning.trainer import (UnlearningCollator, UnlearningDataset, encode_rows, frozen_copy,
                                        sequence_logprobs)


def make_batches(profile, batch_size: int, n_batches: int):
    """Tokenizer, model and ``n_batches`` forget/retain batches (forget rows carry S_ref)."""
    tokenizer = train_tokenizer(tokenizer_corpus(profile), profile.tiny_arch.vocab_size)
    model = build_tiny_model(profile, tokenizer)
    configs = build_tofu_configs(profile)
    max_length = profile.finetune.max_length
    forget = encode_rows(tokenizer, configs[profile.forget_split], profile.prompt_format, max_length)
    retain = encode_rows(tokenizer, configs[profile.retain_split], profile.prompt_format, max_length)
    # the package's way: S_ref once, before training, with the starting model
    t0 = time.perf_counter()
    refs = sequence_logprobs(model, forget, tokenizer.pad_token_id)
    precompute_s = time.perf_counter() - t0
    forget = [{**f, "ref_logprob": r} for f, r in zip(forget, refs)]
    dataset = UnlearningDataset(forget, retain, seed=profile.seed, rank=0)
    collate = UnlearningCollator(tokenizer.pad_token_id)
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(profile.seed)).tolist()
    batches = []
    for b in range(n_batches):
        idx = [order[(b * batch_size + j) % len(order)] for j in range(batch_size)]
        batches.append(collate([dataset[i] for i in idx]))
    return model, batches, precompute_s, len(forget)


def scores(model, group):
    logits = model(input_ids=group["input_ids"], attention_mask=group["attention_mask"]).logits
    return losses.sequence_logprob(logits, group["labels"])[0]


class NPORun:
    """One manual NPO loop (``L = L_npo + α·NLL_retain``, AdamW) on its own model.
    ``reference``: a frozen model scoring S_ref on every step; None: S_ref read from the batch."""

    def __init__(self, model, beta: float, alpha: float, lr: float, reference=None):
        self.model, self.beta, self.alpha, self.reference = model, beta, alpha, reference
        self.opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
        self.losses, self.seconds = [], []
        model.train()

    def step(self, batch) -> None:
        t0 = time.perf_counter()
        forget, retain = batch["forget"], batch["retain"]
        s_theta = scores(self.model, forget)
        if self.reference is None:
            s_ref = forget["ref_logprob"]
        else:
            with torch.no_grad():
                s_ref = scores(self.reference, forget)
        retain_logits = self.model(input_ids=retain["input_ids"], attention_mask=retain["attention_mask"]).logits
        loss = losses.npo_loss(s_theta, s_ref, self.beta) + self.alpha * losses.nll(retain_logits, retain["labels"])
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.seconds.append(time.perf_counter() - t0)
        self.losses.append(loss.item())


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def main(steps: int = 30, warmup: int = 5, batch_size: int = 8, profile: str = "tiny",
         overrides: dict | None = None, beta: float = 0.1, alpha: float = 1.0, lr: float = 2e-4,
         threads: int | None = 1, tol: float = 1e-5, verbose: bool = True) -> dict:
    """Run both loops on the same batches; returns median seconds per step, their ratio and
    the largest per-step loss difference. ``threads``: torch threads (None: torch's default;
    1 is the steadiest on a shared machine, where spare threads oversubscribe the cores)."""
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        return _run(steps, warmup, batch_size, get_profile(profile, overrides), beta, alpha, lr, tol, verbose)
    finally:
        torch.set_num_threads(previous)


def _run(steps, warmup, batch_size, prof, beta, alpha, lr, tol, verbose) -> dict:
    torch.manual_seed(prof.seed)
    model, batches, precompute_s, n_forget = make_batches(prof, batch_size, warmup + steps)
    start = copy.deepcopy(model.state_dict())

    per_step_model = copy.deepcopy(model)
    per_step_model.load_state_dict(start)
    cached = NPORun(model, beta, alpha, lr)
    # the frozen starting model, kept for the whole run
    per_step = NPORun(per_step_model, beta, alpha, lr, reference=frozen_copy(per_step_model))
    for batch in batches:  # step by step, alternately: both see the same machine load
        cached.step(batch)
        per_step.step(batch)
    cached_losses, ref_losses = cached.losses, per_step.losses
    cached_s, ref_s = median(cached.seconds[warmup:]), median(per_step.seconds[warmup:])

    diff = max(abs(a - b) for a, b in zip(cached_losses, ref_losses))
    # relative to the loss (NPO's starts at (2/beta) log 2 ~ 14): the cached S_ref is scored over
    # the answer window, the per-step one over the whole sequence, so float32 rounds differently
    tol = tol * max(1.0, max(abs(x) for x in cached_losses))
    result = {
        "steps": steps, "warmup": warmup, "batch_size": batch_size, "n_forget": n_forget,
        "parameters": sum(p.numel() for p in model.parameters()),
        "cached_s_per_step": cached_s, "per_step_reference_s_per_step": ref_s, "ratio": ref_s / cached_s,
        "precompute_s": precompute_s, "max_abs_loss_diff": diff, "losses_equal": diff <= tol,
        "cached_losses": cached_losses, "per_step_reference_losses": ref_losses,
    }
    if verbose:
        print(f"NPO, {prof.name} profile model ({result['parameters'] / 1e6:.2f}M parameters), "
              f"batch {batch_size}, {steps} timed steps after {warmup} warm-up, "
              f"{torch.get_num_threads()} thread(s), median time per step")
        print(f"  cached S_ref (nbutils)        : {1e3 * cached_s:8.2f} ms/step"
              f"  (+ {1e3 * precompute_s:.1f} ms once, S_ref of {n_forget} forget answers)")
        print(f"  per-step reference forward    : {1e3 * ref_s:8.2f} ms/step"
              f"  (+ a frozen model copy: {4 * result['parameters'] / 2**20:.1f} MiB in float32)")
        print(f"  ratio (per-step / cached)     : {result['ratio']:8.2f}x")
        print(f"  losses equal (max |diff| {diff:.2e} <= {tol:g}): {result['losses_equal']}")
    assert result["losses_equal"], f"losses differ by {diff:.3e} (> {tol:g})"
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--profile", default="tiny")
    parser.add_argument("--threads", type=int, default=1, help="torch threads; 0: torch's default")
    a = parser.parse_args()
    main(a.steps, a.warmup, a.batch_size, a.profile, threads=a.threads or None)
