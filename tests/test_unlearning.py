"""The unlearning registry, trainer and runs, on the micro profile (seconds per run).

Every run starts from the micro profile's finetuned target (3 forget, 15 retain examples,
a 2-layer Llama of width 32), passed explicitly as ``start=``.
"""

from __future__ import annotations

import copy
import inspect
import json
import math
import types
import re
import sys
from dataclasses import FrozenInstanceError, fields, is_dataclass
from pathlib import Path

import pytest
import torch

from nbutils.models.prompts import answer_window

from nbutils.models.loading import read_safetensors
from nbutils.data.tofu import load_tofu
from nbutils.finetune import ensure_target_model
from nbutils.models.loading import load_model, load_tokenizer
from nbutils.profiles import get_profile
from nbutils.unlearning import (METHOD_REGISTRY, NonFiniteLossError, UnlearningMethod, checkpoints,
                                ensure_unlearned, get_method, run_name, unlearning_log)
from nbutils.unlearning import losses
from nbutils.unlearning import cached_runs as run_module
from nbutils.unlearning.base import MethodConfig
from nbutils.unlearning.trainer import (UnlearningCollator, UnlearningContext, UnlearningDataset,
                                        encode_rows, frozen_copy, sequence_logprobs)

ALL_METHODS = ["gradascent", "graddiff", "graddiff_kl", "npo", "simnpo", "idkdpo", "idknll",
               "altpo", "rmu", "undial", "task_vector", "wga", "satimp", "ceu", "pdu"]

# one epoch over the 3 forget examples, no warm-up (so the first step already moves weights),
# a 4-token generation budget (AltPO's alternates)
RUN_OVERRIDES = {"unlearn.epochs": 1, "unlearn.batch_size": 2, "unlearn.warmup_epochs": 0.0,
                 "unlearn.probe_examples": 2, "max_new_tokens": 4}


@pytest.fixture(scope="session")
def run_profile(micro_overrides):
    """``run_profile(**overrides)``: the micro profile set up for short unlearning runs."""
    def make(**over):
        return get_profile("tiny", {**micro_overrides, **RUN_OVERRIDES, **over})
    return make


@pytest.fixture(scope="module")
def start(micro_profile, micro_base):
    """The micro profile's finetuned target model: every run's starting point."""
    return str(ensure_target_model(micro_profile))


# --- registry ---------------------------------------------------------------------------------
def test_every_reference_method_is_registered():
    get_method("npo")  # imports the methods package
    assert set(ALL_METHODS) <= set(METHOD_REGISTRY)
    for name in ALL_METHODS:
        cls = METHOD_REGISTRY[name]
        assert issubclass(cls, UnlearningMethod) and cls.name == name
        assert is_dataclass(cls.config_cls) and issubclass(cls.config_cls, MethodConfig)
        m = get_method(name)
        assert type(m) is cls and type(m.config) is cls.config_cls
        # typed: every field annotated, frozen
        assert all(f.type for f in fields(m.config))
        with pytest.raises(FrozenInstanceError):
            m.config.alpha = 123.0
        # documented: the method's module says what it is, and which paper
        doc = inspect.getdoc(sys.modules[cls.__module__]) or ""
        assert len(doc) > 80, name
        assert cls.paper, name
    assert get_method("NPO").name == "npo"  # case-insensitive


@pytest.mark.parametrize("name, expected", [
    ("gradascent", {"alpha": 0.0, "retain_loss": "none"}),
    ("graddiff", {"gamma": 1.0, "alpha": 1.0, "retain_loss": "nll"}),
    ("graddiff_kl", {"gamma": 1.0, "alpha": 1.0, "retain_loss": "kl"}),
    ("npo", {"beta": 0.1, "alpha": 1.0, "retain_loss": "nll"}),
    ("simnpo", {"beta": 4.5, "gamma": 0.125, "alpha": 1.0, "delta": 0.0}),
    ("idkdpo", {"beta": 0.1}),
    ("idknll", {"retain_loss": "nll"}),
    ("altpo", {"beta": 0.5, "alpha": 2.0, "n_alternates": 5, "temperature": 1.0, "epochs": 2.0}),
    ("rmu", {"steering_coeff": 2.0}),
    ("undial", {"beta": 10.0, "learning_rate": 1e-4, "alpha": 0.0}),
    ("task_vector", {"scale": 5.0}),
])
def test_published_defaults(name, expected):
    config = get_method(name).config
    for key, value in expected.items():
        assert getattr(config, key) == value, (name, key)


def test_method_hyperparameters_and_unknown_names():
    assert get_method("npo", beta=0.25).config.beta == 0.25
    with pytest.raises(ValueError, match=r"unknown hyperparameter\(s\) \['betaa'\]; npo has \["):
        get_method("npo", betaa=0.25)
    with pytest.raises(KeyError) as err:
        get_method("no_such_method")
    msg = str(err.value)
    assert "no_such_method" in msg
    for name in ALL_METHODS:
        assert name in msg


def test_what_each_method_needs():
    """Sequence log-probs of the reference are cached (no reference model) for NPO and the
    DPO family; only per-token references (KL, RMU, UNDIAL) need a reference model."""
    needs_model = {n for n in ALL_METHODS if get_method(n).uses_reference_model}
    assert needs_model == {"graddiff_kl", "rmu", "undial"}
    assert get_method("npo").reference_logprobs == ("forget",)
    assert set(get_method("idkdpo").reference_logprobs) == {"forget", "preferred"}
    assert set(get_method("altpo").reference_logprobs) == {"forget", "preferred"}
    assert get_method("simnpo").reference_logprobs == ()


# --- forget/retain pairing ---------------------------------------------------------------------
def test_retain_partners_deterministic_and_rank_dependent(monkeypatch):
    forget = [{"f": i} for i in range(40)]
    retain = [{"r": j} for j in range(100)]

    def partners(**kw):
        ds = UnlearningDataset(forget, retain, **kw)
        return [ds[i]["retain"]["r"] for i in range(len(ds))]

    a = partners(seed=0, rank=0)
    assert a == partners(seed=0, rank=0)  # deterministic
    # for (seed, rank, index): the order of access does not matter
    ds = UnlearningDataset(forget, retain, seed=0, rank=0)
    assert [ds[i]["retain"]["r"] for i in reversed(range(40))] == a[::-1]
    assert all(ds[i]["forget"] == forget[i] for i in range(40))
    assert len(set(a)) > 20  # random partners, not one retain example for all
    b = partners(seed=0, rank=1)
    assert b != a  # ranks draw different retain samples
    assert sum(x == y for x, y in zip(a, b)) < 10
    assert partners(seed=1, rank=0) != a
    # the rank comes from the launcher's environment by default
    monkeypatch.setenv("RANK", "1")
    assert UnlearningDataset(forget, retain, seed=0).rank == 1
    assert partners(seed=0) == b
    monkeypatch.delenv("RANK")
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    assert partners(seed=0) == a
    # preferred answers travel with their forget example
    pref = [{"p": i} for i in range(40)]
    ds = UnlearningDataset(forget, retain, pref, seed=0, rank=0)
    assert ds[7]["preferred"] == {"p": 7} and ds[7]["retain"]["r"] == a[7]
    with pytest.raises(ValueError):
        UnlearningDataset(forget, retain, pref[:3])


def test_collator_right_pads_and_stacks_reference_logprobs():
    pad = 0
    items = [
        {"forget": {"input_ids": [5, 6, 7, 8], "labels": [-100, -100, 7, 8], "ref_logprob": -1.5},
         "retain": {"input_ids": [9, 10], "labels": [-100, 10]}},
        {"forget": {"input_ids": [11, 12], "labels": [-100, 12], "ref_logprob": -0.25},
         "retain": {"input_ids": [13, 14, 15], "labels": [-100, 14, 15]}},
    ]
    batch = UnlearningCollator(pad)(items)
    assert set(batch) == {"forget", "retain"}
    f, r = batch["forget"], batch["retain"]
    assert f["input_ids"].tolist() == [[5, 6, 7, 8], [11, 12, pad, pad]]
    assert f["labels"].tolist() == [[-100, -100, 7, 8], [-100, 12, -100, -100]]
    assert f["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 0, 0]]
    assert f["ref_logprob"].dtype == torch.float32 and f["ref_logprob"].tolist() == [-1.5, -0.25]
    # each group is padded on its own
    assert r["input_ids"].tolist() == [[9, 10, pad], [13, 14, 15]]
    assert r["labels"].tolist() == [[-100, 10, -100], [-100, 14, 15]]
    assert r["attention_mask"].tolist() == [[1, 1, 0], [1, 1, 1]]
    assert "ref_logprob" not in r


# --- cached reference log-probabilities ----------------------------------------------------------
def test_cached_reference_logprobs_equal_a_per_step_reference_forward(micro_profile, start):
    """``sequence_logprobs`` once before training == S from a reference forward at each step,
    so NPO with the cached S_ref has the same loss as NPO recomputing it."""
    tok = load_tokenizer(start, micro_profile)
    model = load_model(start, micro_profile)
    rows = list(load_tofu(micro_profile, "forget10")) + list(load_tofu(micro_profile, "retain90"))[:5]
    feats = encode_rows(tok, rows, micro_profile.prompt_format, micro_profile.finetune.max_length)
    cached = sequence_logprobs(model, feats, tok.pad_token_id, batch_size=3)
    assert len(cached) == len(feats) and all(math.isfinite(x) and x < 0 for x in cached)
    with_ref = [{**f, "ref_logprob": v} for f, v in zip(feats, cached)]

    reference = frozen_copy(model)
    policy = copy.deepcopy(model).train()
    with torch.no_grad():
        g = torch.Generator().manual_seed(0)
        for p in policy.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    npo = get_method("npo")
    collate = UnlearningCollator(tok.pad_token_id)
    order = [4, 0, 7, 2, 6, 1, 5, 3]  # other batches, other padding widths than the cache's
    for start_i in range(0, len(order), 2):
        group = collate.pad([with_ref[i] for i in order[start_i:start_i + 2]])
        with torch.no_grad():
            logits = reference(input_ids=group["input_ids"], attention_mask=group["attention_mask"]).logits
        s_step, _ = losses.sequence_logprob(logits, group["labels"])
        assert torch.allclose(group["ref_logprob"], s_step, atol=1e-4, rtol=1e-5)
        s_theta, _ = npo.sequence_scores(policy, group)
        recomputed = losses.npo_loss(s_theta, s_step, npo.config.beta)
        cached_loss = npo.forget_loss(policy, {"forget": group}, None)
        assert torch.allclose(cached_loss, recomputed, atol=1e-4, rtol=1e-5)
        assert abs(float(cached_loss.detach()) - 20 * math.log(2)) > 1e-3  # the policy differs from ref
    model.train()
    assert sequence_logprobs(model, feats[:2], tok.pad_token_id) == pytest.approx(cached[:2], abs=1e-4)
    assert model.training  # the model's mode is restored


# --- a cached, checkpointed, named run -----------------------------------------------------------
def test_npo_run_checkpoints_log_and_cache(start, run_profile, monkeypatch):
    profile = run_profile(**{"unlearn.save_steps": 1})
    out = ensure_unlearned(profile, "npo", start=start)
    method = run_module.method_for(profile, "npo")
    name = run_name(profile, method)
    lr = run_module.schedule(profile, method)[0]  # the tiny profile's own NPO learning rate
    assert name == f"unlearn_tofu_tiny_forget10_npo_lr{lr:g}_beta0.1_alpha1_epoch1"
    assert re.fullmatch(r"unlearn_tofu_tiny_forget10_npo_lr[0-9.e-]+_beta[0-9.]+_alpha[0-9.]+_epoch[0-9.]+"
                        r"-[0-9a-f]{10}", out.name)
    assert out.name.startswith(name + "-")
    assert (out / "DONE").exists() and (out / "model.safetensors").exists()

    cps = checkpoints(out)
    assert [c.name for c in cps] == ["checkpoint-1", "checkpoint-2"]  # 3 examples, batch 2
    for c in cps:
        meta = json.loads((c / "unlearning.json").read_text())
        assert meta["method"] == "npo" and meta["split"] == "forget10"
        assert meta["step"] == int(c.name.split("-")[1])
        assert meta["hyperparameters"]["beta"] == 0.1 and meta["hyperparameters"]["alpha"] == 1.0
        assert meta["hyperparameters"]["learning_rate"] == lr  # the tiny profile's NPO lr
        assert list(c.glob("*.safetensors"))
    final = json.loads((out / "unlearning.json").read_text())
    assert final["method"] == "npo" and final["start"] == start and final["steps"] == 2

    log = unlearning_log(out)
    assert log[0]["step"] == 0 and {"forget_answer_prob", "retain_answer_prob"} <= set(log[0])
    train = [e for e in log if "loss" in e]
    assert [e["step"] for e in train] == [1, 2]
    for e in train:
        for key in ("forget_loss", "retain_loss", "forget_answer_prob", "retain_answer_prob"):
            assert math.isfinite(e[key]), key
        assert e["loss"] == pytest.approx(e["forget_loss"] + e["retain_loss"], rel=1e-4)
    # first step: θ = reference, so the NPO loss is exactly (2/β) log 2
    assert train[0]["forget_loss"] == pytest.approx(20 * math.log(2), rel=1e-5)
    assert train[1]["forget_loss"] < train[0]["forget_loss"]  # S_θ dropped below S_ref
    assert 0 < train[-1]["forget_answer_prob"] < log[0]["forget_answer_prob"]

    # the second call reuses the cached run
    def no_training(*a, **k):
        raise AssertionError("unlearn() called although the run is cached")
    monkeypatch.setattr(run_module, "unlearn", no_training)
    assert ensure_unlearned(profile, "npo", start=start) == out
    # other hyperparameters: another run
    assert run_name(profile, run_module.method_for(profile, "npo", beta=0.5)).endswith(
        "_beta0.5_alpha1_epoch1")
    half = run_profile(**{"unlearn.epochs": 0.5})  # fractional epochs are a valid override
    assert run_name(half, run_module.method_for(half, "npo")).endswith("_epoch0.5")


# --- NaN guard -----------------------------------------------------------------------------------
def test_nonfinite_loss_stops_with_last_good_checkpoint(start, run_profile, monkeypatch):
    from nbutils.unlearning.methods.graddiff import GradDiff, GradDiffConfig

    class NaNAtThirdStep(GradDiff):
        name = "nan_at_third_step_test"
        config_cls = GradDiffConfig
        calls = 0

        def forget_loss(self, model, batch, context):
            type(self).calls += 1
            loss = super().forget_loss(model, batch, context)
            return loss * float("nan") if type(self).calls == 3 else loss

    get_method("npo")
    monkeypatch.setitem(METHOD_REGISTRY, NaNAtThirdStep.name, NaNAtThirdStep)
    profile = run_profile(**{"unlearn.batch_size": 1, "unlearn.save_steps": 1})  # 3 steps
    with pytest.raises(NonFiniteLossError) as err:
        ensure_unlearned(profile, NaNAtThirdStep.name, start=start)
    msg = str(err.value)
    assert "nan" in msg.lower()
    assert "step 3" in msg
    assert "checkpoint-2" in msg
    out = Path(re.search(r"Last good checkpoint: (\S+)", msg).group(1)).parent
    assert not (out / "DONE").exists()
    cps = checkpoints(out)
    assert [c.name for c in cps] == ["checkpoint-1", "checkpoint-2"]
    from transformers import AutoModelForCausalLM
    for c in cps:
        assert json.loads((c / "unlearning.json").read_text())["step"] == int(c.name.split("-")[1])
        model = AutoModelForCausalLM.from_pretrained(str(c))
        assert all(torch.isfinite(p).all() for p in model.parameters())


def test_a_diverged_step_that_saved_nan_weights_is_not_named_good(start, run_profile, monkeypatch):
    """Issue 14, bug 1: step 2's loss is finite but its gradient is not, so checkpoint-2 holds
    NaN weights before step 3's loss shows it; the error must name checkpoint-1."""
    from nbutils.unlearning.methods.graddiff import GradDiff, GradDiffConfig

    class NaNGradient(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x.clone()

        @staticmethod
        def backward(ctx, grad):
            return grad * float("nan")

    class DivergesAtSecondStep(GradDiff):
        name = "diverges_at_second_step_test"
        config_cls = GradDiffConfig
        calls = 0

        def forget_loss(self, model, batch, context):
            type(self).calls += 1
            loss = super().forget_loss(model, batch, context)
            return NaNGradient.apply(loss) if type(self).calls == 2 else loss

    get_method("npo")
    monkeypatch.setitem(METHOD_REGISTRY, DivergesAtSecondStep.name, DivergesAtSecondStep)
    profile = run_profile(**{"unlearn.batch_size": 1, "unlearn.save_steps": 1})  # 3 steps
    with pytest.raises(NonFiniteLossError) as err:
        ensure_unlearned(profile, DivergesAtSecondStep.name, start=start)
    msg = str(err.value)
    assert "step 3" in msg and "checkpoint-1" in msg, msg
    named = Path(re.search(r"Last good checkpoint: (\S+)", msg).group(1))
    from transformers import AutoModelForCausalLM
    assert all(torch.isfinite(p).all() for p in AutoModelForCausalLM.from_pretrained(str(named)).parameters())
    nan_ckpt = named.parent / "checkpoint-2"  # the diverged step's save, still there to inspect
    assert not all(torch.isfinite(p).all() for p in AutoModelForCausalLM.from_pretrained(str(nan_ckpt)).parameters())


# --- LoRA: the disabled-adapter base is the reference ---------------------------------------------
@pytest.mark.parametrize("method_name", ["undial", "graddiff_kl"])
def test_lora_run_uses_disabled_adapters_as_reference(start, micro_profile, run_profile, monkeypatch,
                                                      method_name):
    from peft import PeftModel
    seen = []
    original = UnlearningContext.reference_logits

    def spy(self, group):
        ref = original(self, group)
        with torch.no_grad():
            current = self.model(input_ids=group["input_ids"], attention_mask=group["attention_mask"]).logits
        seen.append({"reference_model": self.reference_model, "is_peft": isinstance(self.model, PeftModel),
                     "group": {k: v.clone() for k, v in group.items()}, "ref": ref.clone(),
                     "current": current.clone()})
        return ref

    monkeypatch.setattr(UnlearningContext, "reference_logits", spy)
    profile = run_profile(**{"unlearn.lora": True})
    out = ensure_unlearned(profile, method_name, start=start, learning_rate=1e-2)
    assert len(seen) == 2  # one reference forward per step (2 steps)
    assert all(s["reference_model"] is None and s["is_peft"] for s in seen)  # no second model
    start_model = load_model(start, micro_profile).eval()
    for s in seen:
        g = s["group"]
        with torch.no_grad():
            expected = start_model(input_ids=g["input_ids"], attention_mask=g["attention_mask"]).logits
        # the reference's logits cover the group's answer window (the end of the sequence)
        keep = s["ref"].shape[1]
        assert keep == answer_window(g["labels"]) and keep < expected.shape[1]
        assert torch.allclose(s["ref"], expected[:, -keep:], atol=1e-5)
    # after the first update the adapted model differs from its reference
    assert not torch.allclose(seen[-1]["current"][:, -keep:], seen[-1]["ref"], atol=1e-4)

    # the saved model: merged plain weights with the starting model's exact keys
    assert not (out / "adapter_config.json").exists() and not (out / "adapter").exists()
    base, tuned = read_safetensors(start), read_safetensors(out)
    assert set(tuned) == set(base) and not [k for k in tuned if "lora_" in k]
    assert all(t.dtype == torch.float32 and t.shape == base[k].shape for k, t in tuned.items())
    changed = [k for k in base if not torch.equal(base[k], tuned[k])]
    assert changed and all("proj" in k for k in changed), changed
    assert torch.equal(tuned["model.embed_tokens.weight"], base["model.embed_tokens.weight"])


# --- every method, one short run ------------------------------------------------------------------
@pytest.mark.parametrize("method_name", ALL_METHODS)
def test_every_method_runs(start, run_profile, method_name):
    profile = run_profile(**{"unlearn.batch_size": 4})  # 3 forget examples: one step
    hparams = {"n_alternates": 2} if method_name == "altpo" else {}
    out = ensure_unlearned(profile, method_name, start=start, **hparams)
    assert (out / "DONE").exists()
    meta = json.loads((out / "unlearning.json").read_text())
    assert meta["method"] == method_name
    log = unlearning_log(out)
    train = [e for e in log if "loss" in e]
    assert train and all(math.isfinite(e["loss"]) for e in train)
    if method_name != "task_vector":
        assert all(math.isfinite(e["forget_loss"]) and math.isfinite(e["retain_loss"]) for e in train)
        expected_steps = 2 if method_name == "altpo" else 1  # AltPO: 3 questions x 2 alternates
        assert meta["steps"] == expected_steps
    base, tuned = read_safetensors(start), read_safetensors(out)
    assert set(tuned) == set(base)
    assert any(not torch.equal(base[k], tuned[k]) for k in base)  # the weights moved


def test_pdu_dual_variable_follows_the_retain_constraint_after_warm_up():
    """λ keeps its start value during warm-up, then rises while the retain loss exceeds ε and
    falls back (never below 0) while it holds; each step's loss uses the λ before its update."""
    pdu = get_method("pdu", alpha=1.0, retain_epsilon=0.3, dual_step_size=5.0, dual_warmup_epochs=1.0)
    retain_values = iter([0.9, 0.9, 0.8, 0.1, 0.1, 0.1, 0.1, 0.1])
    pdu.forget_loss = lambda model, batch, context: torch.tensor(2.0)
    pdu.retain_loss = lambda model, batch, context: torch.tensor(next(retain_values))
    context = types.SimpleNamespace(epoch=0.0)
    seen = []
    for epoch in (0.5, 0.9, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5):  # warm-up ends at epoch 1
        context.epoch = epoch
        total, parts = pdu.loss(None, {}, context)
        seen.append((round(parts["dual_multiplier"], 6), round(float(total), 6)))
    lambdas = [lam for lam, _ in seen] + [round(pdu.multiplier, 6)]
    assert lambdas == [1.0, 1.0, 1.0, 3.5, 2.5, 1.5, 0.5, 0.0, 0.0]
    assert seen[2][1] == pytest.approx(2.0 + 1.0 * (0.8 - 0.3))  # the loss used λ before the step


# --- the command line checks what it is given before it builds anything (issue 14, bug 6) ----
@pytest.mark.parametrize("argv, expected", [
    (["--method", "bogus"], "available: ["),
    (["--method", "npo", "--hparam", "beta=abc"], "beta='abc' must be float"),
    (["--method", "npo", "--hparam", "betta=0.1"], "npo has ['alpha', 'beta'"),
    (["--method", "npo", "--hparam", "beta=0"], "beta must be positive"),
    (["--method", "npo", "--override", "unlearn.epochs=0"], "unlearn.epochs must be positive"),
    (["--method", "idkdpo", "--task", "muse_news"], "does not apply to muse_news"),
])
def test_cli_refuses_bad_input_before_building_anything(argv, expected, tmp_path, monkeypatch, capsys):
    from nbutils.unlearning.__main__ import main
    monkeypatch.setenv("WORKBOOK_CACHE", str(tmp_path))
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    assert expected in capsys.readouterr().err
    assert not any((tmp_path / kind).exists() for kind in ("data", "models", "unlearn")), "built something first"


def test_method_configs_check_their_ranges():
    with pytest.raises(ValueError, match="alpha .* must not be negative"):
        get_method("graddiff", alpha=-1.0)
    with pytest.raises(ValueError, match="n_alternates=2.5 must be int"):
        get_method("altpo", n_alternates=2.5)
    assert get_method("rmu").config.retain_loss == "activations"  # a method's own retain loss is valid


def test_probe_probabilities_are_logged_about_twenty_times_a_run_and_at_its_end():
    from types import SimpleNamespace
    from nbutils.unlearning.trainer import PROBE_POINTS, UnlearnTrainer

    def due_steps(max_steps):
        return [s for s in range(1, max_steps + 1) if UnlearnTrainer.probe_due(
            SimpleNamespace(state=SimpleNamespace(global_step=s, max_steps=max_steps)))]
    assert due_steps(12) == list(range(1, 13))  # a short run: every step
    assert due_steps(PROBE_POINTS) == list(range(1, PROBE_POINTS + 1))
    long = due_steps(300)  # smol's largest MUSE-News scalability run
    assert long == list(range(15, 301, 15)) and len(long) == PROBE_POINTS
    odd = due_steps(61)
    assert odd[-1] == 61 and len(odd) <= PROBE_POINTS + 1
