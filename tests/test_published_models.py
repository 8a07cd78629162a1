"""Published models, offline: revisions, exported trajectories, released models by repo id,
open-unlearning's log layout.

The session's hub cache is a temporary folder and the hub is off (``conftest.py``): every
repo below is written into the hub cache's layout and loaded back by repo id and revision
through the same ``from_pretrained`` call a hub repo takes.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import torch

from nbutils.models.hub import (cache_repo_folder, cached_refs, checkpoint_revisions,
                                write_cache_revision)
from nbutils.models.loading import load_model, read_safetensors
from nbutils.models.released import parse_release, release_overrides
from nbutils.profiles import get_profile

ALTPO_RELEASE = "open-unlearning/unlearn_tofu_Llama-3.2-1B-Instruct_forget10_AltPO_lr1e-05_beta0.5_alpha2_epoch5"

# Llama-3.2-Instruct's chat prompt as the tokenizer renders it (written for this test: the
# stand-in tokenizer has no Meta template): system header with the knowledge cut-off and the
# date, then each turn between header tokens and <|eot_id|>
LLAMA3_TEMPLATE = (
    "{{- bos_token }}"
    "{%- if date_string is not defined %}{%- set date_string = '26 Jul 2024' %}{%- endif %}"
    "{%- if messages[0]['role'] == 'system' %}{%- set system_message = messages[0]['content'] | trim %}"
    "{%- set messages = messages[1:] %}{%- else %}{%- set system_message = '' %}{%- endif %}"
    "{{- '<|start_header_id|>system<|end_header_id|>\\n\\n' }}"
    "{{- 'Cutting Knowledge Date: December 2023\\n' }}"
    "{{- 'Today Date: ' + date_string + '\\n\\n' }}"
    "{{- system_message + '<|eot_id|>' }}"
    "{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
)


# --- names -------------------------------------------------------------------------------------
def test_release_names_are_read_as_their_publishers_write_them():
    r = parse_release(ALTPO_RELEASE)
    assert (r.model, r.split, r.method, r.prompt_format) == ("Llama-3.2-1B-Instruct", "forget10", "AltPO", "llama3")
    assert r.hparams == {"lr": 1e-05, "beta": 0.5, "alpha": 2, "epoch": 5}
    assert r.retain_split == "retain90"
    full = parse_release("open-unlearning/tofu_Llama-2-7b-chat-hf_full")
    assert (full.split, full.method, full.prompt_format) == ("full", None, "llama2")
    retain = parse_release("open-unlearning/tofu_Llama-3.2-1B-Instruct_retain95")
    assert retain.forget_split == "forget05"
    phi = parse_release("locuslab/phi_grad_diff_1e-05_forget01")
    assert (phi.method, phi.split, phi.prompt_format, phi.tokenizer) == ("grad_diff", "forget01", "qa", "microsoft/phi-1_5")
    assert release_overrides(phi.repo_id)["tokenizer"] == "microsoft/phi-1_5"
    over = release_overrides(ALTPO_RELEASE)
    assert over == {"model": ALTPO_RELEASE, "prompt_format": "llama3", "forget_split": "forget10"}
    assert get_profile("paper", over).prompt_format == "llama3"
    with pytest.raises(ValueError, match="not a released-model name"):
        parse_release("someone/my-model")
    with pytest.raises(ValueError, match="unknown model family"):
        parse_release("open-unlearning/tofu_Mistral-7B_full")


def test_paper_generates_as_open_unlearning_and_small_profiles_say_they_cut():
    assert get_profile("paper").stop_at_newline is False  # no stop words, as theirs
    assert get_profile("tiny").stop_at_newline and get_profile("smol").stop_at_newline


# --- the hub cache layout -------------------------------------------------------------------------
def test_cache_revision_layout(tmp_path):
    (tmp_path / "a.json").write_text('{"x": 1}')
    (tmp_path / "b.txt").write_text("same")
    c1 = write_cache_revision("org/repo", "checkpoint-1", {"config.json": tmp_path / "a.json",
                                                            "notes.txt": tmp_path / "b.txt"})
    c2 = write_cache_revision("org/repo", "main", {"config.json": tmp_path / "a.json"})
    repo = cache_repo_folder("org/repo")
    assert re.fullmatch(r"[0-9a-f]{40}", c1) and c1 != c2
    assert (repo / "refs" / "checkpoint-1").read_text() == c1  # no trailing newline
    assert cached_refs("org/repo") == {"checkpoint-1": c1, "main": c2}
    # one blob per distinct content; snapshot files link to them
    assert len(list((repo / "blobs").iterdir())) == 2
    assert json.loads((repo / "snapshots" / c1 / "config.json").read_text()) == {"x": 1}
    from huggingface_hub import try_to_load_from_cache
    assert Path(try_to_load_from_cache("org/repo", "notes.txt", revision="checkpoint-1")).read_text() == "same"
    assert checkpoint_revisions("org/repo")[0].step == 1


# --- exporting our runs ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def target(micro_profile, micro_base):
    from nbutils.finetune import ensure_target_model
    return str(ensure_target_model(micro_profile))


@pytest.fixture(scope="module")
def run_profile(micro_overrides):
    return get_profile("tiny", {**micro_overrides, "unlearn.epochs": 2, "unlearn.batch_size": 4,
                                "unlearn.warmup_epochs": 0.0, "unlearn.probe_examples": 2,
                                "max_new_tokens": 4})


def test_export_then_load_revisions_by_repo_id_and_evaluate(target, run_profile):
    from transformers import AutoModelForCausalLM

    from nbutils.leaderboard import revision_trajectory, trajectory_plot
    from nbutils.evaluation.tofu import ensure_tofu_eval
    from nbutils.leaderboard import ensure_retain_eval
    from nbutils.publishing import export_run, remove_export
    from nbutils.unlearning import checkpoints, ensure_unlearned
    run = ensure_unlearned(run_profile, "graddiff", start=target, learning_rate=1e-2)
    steps = [int(c.name.split("-")[-1]) for c in checkpoints(run)]
    assert len(steps) == 2
    reference = ensure_retain_eval(run_profile, progress=False)
    final = ensure_tofu_eval(run_profile, run, "graddiff-export", reference=reference, progress=False)

    exported = export_run(run, run_profile, metrics=final.headline(), progress=False)
    repo_id = exported.repo_id
    assert repo_id.startswith("workbook-local/unlearn_tofu_tiny_forget10_graddiff_lr0.01")
    assert list(exported.revisions) == ["checkpoint-0", *(f"checkpoint-{s}" for s in steps), "main"]
    revs = checkpoint_revisions(repo_id)
    assert [r.step for r in revs] == [0, *steps]

    # the plain transformers call, by repo id and revision, with the hub off
    first = AutoModelForCausalLM.from_pretrained(repo_id, revision=f"checkpoint-{steps[0]}")
    expected = read_safetensors(run / f"checkpoint-{steps[0]}")
    assert all(torch.equal(first.state_dict()[k], v) for k, v in expected.items())
    start = load_model(repo_id, run_profile, revision="checkpoint-0", device="cpu")
    assert all(torch.equal(start.state_dict()[k], v) for k, v in read_safetensors(target).items())
    main = read_safetensors(Path(cache_repo_folder(repo_id)) / "snapshots" / exported.revisions["main"])
    assert all(torch.equal(main[k], v) for k, v in read_safetensors(run).items())

    # the model card states method, hyperparameters, split and the measured metrics
    card = exported.card
    assert "graddiff" in card and "forget10" in card and "| alpha |" in card
    assert f"{final['model_utility']:.4g}" in card

    # two revisions (start and final) evaluated by revision, plotted like our own runs
    df = revision_trajectory(run_profile, repo_id, reference, label="exported",
                             revisions=[revs[0], revs[-1]])
    assert list(df["step"]) == [0, steps[-1]]
    assert all(math.isfinite(v) for v in df["model utility"]) and all(v > 0 for v in df["forget quality"])
    # the final checkpoint is the run's final model: the same numbers as its own evaluation
    assert df["model utility"].iloc[-1] == pytest.approx(final["model_utility"], rel=1e-6)
    assert len(trajectory_plot(df).data) == 2
    remove_export(repo_id)
    assert not cache_repo_folder(repo_id).exists()


def test_lora_checkpoints_are_exported_as_complete_models(target, run_profile, micro_overrides):
    from transformers import AutoModelForCausalLM

    from nbutils.publishing import export_run
    from nbutils.unlearning import checkpoints, ensure_unlearned
    profile = get_profile("tiny", {**micro_overrides, "unlearn.epochs": 1, "unlearn.batch_size": 4,
                                   "unlearn.lora": True, "unlearn.probe_examples": 2})
    run = ensure_unlearned(profile, "npo", start=target, learning_rate=1e-2)
    ckpt = checkpoints(run)[-1]
    assert (ckpt / "adapter_config.json").exists()  # adapters only on disk
    exported = export_run(run, profile, repo_id="workbook-local/lora-run", progress=False)
    snapshot = cache_repo_folder("workbook-local/lora-run") / "snapshots" / exported.revisions[ckpt.name]
    assert not (snapshot / "adapter_config.json").exists()
    model = AutoModelForCausalLM.from_pretrained("workbook-local/lora-run", revision=ckpt.name)
    merged = read_safetensors(run)  # the run's final model: the same adapters merged
    assert all(torch.allclose(model.state_dict()[k], v, atol=1e-6) for k, v in merged.items())


def test_push_makes_a_branch_per_checkpoint(target, run_profile):
    from nbutils.publishing import export_run
    from nbutils.unlearning import ensure_unlearned
    run = ensure_unlearned(run_profile, "graddiff", start=target, learning_rate=1e-2)

    class FakeApi:  # records what huggingface_hub would be asked to do
        def __init__(self):
            self.calls = []

        def create_repo(self, repo_id, exist_ok):
            self.calls.append(("create_repo", repo_id))

        def create_branch(self, repo_id, branch, exist_ok):
            self.calls.append(("create_branch", branch))

        def upload_folder(self, repo_id, folder_path, revision, commit_message):
            files = sorted(p.name for p in Path(folder_path).iterdir())
            self.calls.append(("upload_folder", revision, files))

    api = FakeApi()
    out = export_run(run, run_profile, repo_id="me/graddiff-run", push=True, api=api, progress=False)
    branches = [c[1] for c in api.calls if c[0] == "create_branch"]
    uploads = {c[1]: c[2] for c in api.calls if c[0] == "upload_folder"}
    assert branches == [b for b in out.revisions if b != "main"] and "main" in uploads
    for files in uploads.values():
        assert "README.md" in files and "model.safetensors" in files and "config.json" in files
        assert not any(f.startswith(("optimizer", "trainer_state", "rng_state")) for f in files)
    assert not cache_repo_folder("me/graddiff-run").exists()  # nothing written locally


# --- released models by name -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def release_standin(tmp_path_factory, tiny_tokenizer):
    """A small Llama with a Llama-3-style chat template saved as the AltPO release in the hub
    cache, TOFU in the hub's layout, and open-unlearning's retain log in ``open-unlearning/eval``."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from nbutils.data.tofu import build_tofu_configs, write_hub_layout
    from nbutils.evaluation.published import retain_log_filename, write_open_unlearning_logs
    from nbutils.evaluation.tofu import evaluate_tofu
    root = tmp_path_factory.mktemp("release")
    configs = build_tofu_configs(get_profile("tiny", {"n_authors": 10, "qa_per_author": 2,
                                                      "n_real_authors": 3, "n_world_facts": 3}))
    data = write_hub_layout(configs, root / "locuslab-TOFU", "stand-in for locuslab/TOFU")
    tiny_tokenizer.save_pretrained(root / "tok")
    tok = AutoTokenizer.from_pretrained(root / "tok")
    tok.add_special_tokens({"additional_special_tokens": ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]})
    tok.chat_template = LLAMA3_TEMPLATE
    config = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    folder = root / "release"
    LlamaForCausalLM(config).save_pretrained(folder, safe_serialization=True)
    tok.save_pretrained(folder)
    files = {p.name: p for p in folder.iterdir() if p.is_file()}
    write_cache_revision(ALTPO_RELEASE, "main", files)
    profile = get_profile("paper", {**release_overrides(ALTPO_RELEASE), "hub_dataset": str(data),
                                    "max_new_tokens": 6, "eval_batch_size": 8})
    # the publisher's retain log: another model's evaluation in their layout, in their dataset
    torch.manual_seed(1)
    retain_model = LlamaForCausalLM(config)
    retain_ev = evaluate_tofu(retain_model, tok, profile, progress=False)
    logs = write_open_unlearning_logs(retain_ev, root / "saves", "tofu_Llama-3.2-1B-Instruct_retain90")
    write_cache_revision("open-unlearning/eval", "main",
                         {retain_log_filename("Llama-3.2-1B-Instruct", "retain90"): logs / "TOFU_EVAL.json"},
                         repo_type="dataset")
    return profile, retain_ev


def test_llama3_prompt_is_open_unlearnings(release_standin):
    from nbutils.models.loading import load_tokenizer
    from nbutils.models.prompts import encode_prompt, format_prompt
    profile, _ = release_standin
    tok = load_tokenizer(ALTPO_RELEASE, profile)
    text = format_prompt("Who is X?", "llama3", tok)
    assert text.endswith("<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
                         "Today Date: 10 Apr 2025\n\nYou are a helpful assistant.<|eot_id|>"
                         "<|start_header_id|>user<|end_header_id|>\n\nWho is X?<|eot_id|>"
                         "<|start_header_id|>assistant<|end_header_id|>\n\n")
    ids = encode_prompt(tok, "Who is X?", "llama3")
    assert ids.count(tok.bos_token_id) == 1  # the template's own BOS, no second one
    assert tok.convert_tokens_to_ids("<|eot_id|>") in ids


def test_released_model_evaluated_by_repo_id_against_the_published_retain_log(release_standin, tmp_path):
    from nbutils.leaderboard import summary_table
    from nbutils.evaluation.published import evaluate_release, write_open_unlearning_logs
    from nbutils.evaluation.tofu_logs import TofuEval
    from nbutils.evaluation.tofu_metrics import forget_quality
    profile, retain_ev = release_standin
    ev = evaluate_release(profile, ALTPO_RELEASE, progress=False)
    assert ev.meta["prompt_format"] == "llama3" and ev.meta["stop_at_newline"] is False
    expected_fq = forget_quality(ev.forget_truth_ratios, retain_ev.forget_truth_ratios)
    assert ev["forget_quality"] == pytest.approx(expected_fq)
    assert "open-unlearning--eval" in ev.meta["reference"] or "tofu_Llama-3.2-1B-Instruct_retain90" in ev.meta["reference"]
    folder = write_open_unlearning_logs(ev, tmp_path / "saves" / "eval", ALTPO_RELEASE.split("/")[-1])
    back = TofuEval.load(folder)
    assert back.logs == json.loads(json.dumps(ev.logs))
    assert json.loads((folder / "TOFU_SUMMARY.json").read_text()) == pytest.approx(
        {k: v for k, v in ev.summary.items()}, nan_ok=True)
    assert summary_table({"AltPO": folder}).loc["AltPO", "forget_quality"] == pytest.approx(expected_fq)


# --- open-unlearning's logs through our leaderboard --------------------------------------------------
def test_open_unlearning_log_round_trips_through_the_leaderboard(tmp_path):
    from nbutils.leaderboard import summary_table
    from nbutils.evaluation.published import write_open_unlearning_logs
    from nbutils.evaluation.tofu_logs import TofuEval, load_reference
    source = Path(__file__).parent / "data" / "open_unlearning_TOFU_EVAL.json"
    theirs = json.loads(source.read_text())
    ev = TofuEval.load(source)
    row = summary_table({"released": ev}).loc["released"]
    for key, entry in theirs.items():
        assert key in row.index, key
        assert row[key] == pytest.approx(entry["agg_value"]), key
    # the per-item truth ratios are usable as a forget-quality reference
    assert list(load_reference(source)) == [theirs["forget_truth_ratio"]["value_by_index"][k]["score"]
                                            for k in sorted(theirs["forget_truth_ratio"]["value_by_index"], key=int)]
    folder = write_open_unlearning_logs(ev, tmp_path, "unlearn_tofu_Llama-3.2-1B-Instruct_forget10_AltPO")
    assert json.loads((folder / "TOFU_EVAL.json").read_text()) == theirs
    assert json.loads((folder / "TOFU_SUMMARY.json").read_text()) == {k: v["agg_value"] for k, v in theirs.items()}


# --- notebook 14 on paper's own path, offline ------------------------------------------------------
@pytest.mark.slow
def test_notebook_studies_published_repos_on_the_paper_path(release_standin, phi_standin, tmp_path):
    """Notebook 14 as ``paper`` runs it: the phi-1.5 grad_diff trajectory walked by hub
    revision (weights only, tokenizer from microsoft/phi-1_5, no retain log published: the
    profile's own retain model is the reference) and the AltPO release by repo id against
    open-unlearning's retain log. Stand-ins for every hub repo live in the hub cache: a
    phi-architecture model unlearned with graddiff and exported as locuslab's repo (then
    unmarked as ours, so it loads exactly as a downloaded repo does), the tokenizer repo, and
    the release of :func:`release_standin`."""
    from nbutils.models.hub import EXPORT_MARKER
    from nbutils.publishing import export_run
    from nbutils.headless import run_notebooks
    from nbutils.unlearning import ensure_unlearned
    release_profile_, _ = release_standin
    phi = phi_standin(tmp_path / "phi-1_5")
    write_cache_revision("microsoft/phi-1_5", "main",
                         {p.name: p for p in phi.iterdir() if p.name.startswith(("tokenizer", "special"))})
    overrides = {"model": str(phi), "hub_dataset": release_profile_.hub_dataset, "max_new_tokens": 6,
                 "eval_batch_size": 8, "finetune.epochs": 1, "finetune.batch_size": 4,
                 "finetune.gradient_accumulation_steps": 1, "unlearn.epochs": 3,
                 "unlearn.batch_size": 2, "unlearn.gradient_accumulation_steps": 1,
                 "unlearn.warmup_epochs": 0.0, "trajectory_points": 3}
    trajectory = "locuslab/phi_grad_diff_1e-05_forget01"
    profile = get_profile("paper", {**overrides, "forget_split": "forget01"})
    run = ensure_unlearned(profile, "graddiff", start=str(phi), learning_rate=5e-3)
    export_run(run, profile, repo_id=trajectory, progress=False)
    (cache_repo_folder(trajectory) / EXPORT_MARKER).unlink()  # now it is "a downloaded repo"
    result = run_notebooks(profile="paper", only=["14"], out_dir=tmp_path / "run",
                           parameters={"OVERRIDES": overrides, "PUBLISHED_TRAJECTORY": trajectory,
                                       "RELEASED_MODEL": ALTPO_RELEASE})
    assert result.ok, [(n.name, n.error) for n in result.notebooks]
    s = result.summaries()["14_published_models"]
    assert s["profile"] == "paper" and s["repo"] == trajectory and s["steps"][0] == 0
    assert s["released"] == ALTPO_RELEASE and math.isfinite(s["released_forget_quality"])
