"""The probing functions and the widget app, called directly (no browser): the app's
Generate callback is a plain method."""

from __future__ import annotations

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from nbutils.evaluation.whp import clean_completion, mc_accuracy, reveals
from nbutils.probing import (ProbeApp, Sampling, answer_token_probabilities, generations_html,
                             next_token_figure, next_tokens, probability_strip, probe)


@pytest.fixture(scope="module")
def lm(tiny_tokenizer):
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tiny_tokenizer), hidden_size=32, intermediate_size=64,
                      num_hidden_layers=1, num_attention_heads=4, num_key_value_heads=4,
                      pad_token_id=tiny_tokenizer.pad_token_id, eos_token_id=tiny_tokenizer.eos_token_id)
    return LlamaForCausalLM(cfg).eval(), tiny_tokenizer


def test_reveals_matches_whole_words_any_case():
    assert reveals("they were ron and HERMIONE", ["hermione"])
    assert not reveals("a ronin walked", ["ron"])
    assert clean_completion(" first part\n\nsecond") == "first part"


def test_next_tokens_and_answer_probabilities_agree_with_the_model(lm):
    model, tok = lm
    df = next_tokens(model, tok, "What is the", k=5)
    assert len(df) == 5 and df["probability"].is_monotonic_decreasing
    ids = tok("What is the")["input_ids"]
    probs = torch.softmax(model(input_ids=torch.tensor([ids])).logits[0, -1], -1)
    assert abs(df["probability"].iloc[0] - probs.max().item()) < 1e-5
    strip = answer_token_probabilities(model, tok, "What is the", " name of")
    answer_ids = tok(" name of", add_special_tokens=False)["input_ids"]
    assert len(strip) == len(answer_ids)
    assert abs(strip["probability"].iloc[0] - probs[answer_ids[0]].item()) < 1e-5


def test_probe_result_and_figures(lm):
    model, tok = lm
    result = probe({"A": lm, "B": lm}, "Who is the author?", sampling=Sampling(max_new_tokens=5))
    assert set(result.generations) == {"A", "B"} and result.generations["A"] == result.generations["B"]
    assert result.answer == result.generations["A"]  # no answer given: A's generation is scored
    assert len(next_token_figure(result).data) == 2
    assert probability_strip(result).data[0].type == "heatmap"
    assert "Who is the author?" in generations_html(result)
    sampled = probe({"A": lm}, "Who is the author?", sampling=Sampling(max_new_tokens=5, do_sample=True, seed=3))
    again = probe({"A": lm}, "Who is the author?", sampling=Sampling(max_new_tokens=5, do_sample=True, seed=3))
    assert sampled.generations == again.generations  # a seed makes sampling repeatable
    with pytest.raises(ValueError, match="prompt"):
        probe({"A": lm}, "   ")


def test_probe_app_callback_updates_the_views(lm):
    presets = [{"prompt": "Who is the author?", "answer": " The author"}]
    app = ProbeApp({"baseline": "a", "other": "b"}, lambda path: lm, presets, unlearned="other")
    assert app.prompt.value == presets[0]["prompt"] and "probe-generate" in app.button._dom_classes
    app.max_new_tokens.value = 4
    result = app.run()
    assert result is not None and app.status.value == "done"
    assert app.answer_a.value and app.answer_b.value and len(app.charts.outputs) == 2
    # real plotly bundles (JupyterLab and Voila render the mimetype), not empty display data
    assert all("application/vnd.plotly.v1+json" in o["data"] for o in app.charts.outputs)
    app.prompt.value = ""
    assert app.run() is None and "error" in app.status.value  # shown, not raised


def test_mc_accuracy_picks_the_highest_scoring_choice(lm):
    """Expected picks from an independent computation: one unpadded forward pass per choice,
    the choice tokens' log-probabilities summed by hand (their closing EOS left out)."""
    from nbutils.models.prompts import encode_qa
    model, tok = lm
    questions = {"Pick one?": ["alpha", "beta", "gamma", "delta"], "And now?": ["red", "green", "blue"]}
    expected = []
    for question, choices in questions.items():
        totals = []
        for choice in choices:
            enc = encode_qa(tok, question, choice, "qa")
            with torch.no_grad():
                logp = torch.log_softmax(model(torch.tensor([enc.input_ids])).logits[0].float(), -1)
            answer = range(enc.prompt_length, len(enc.input_ids) - 1)  # EOS excluded
            totals.append(sum(logp[t - 1, enc.input_ids[t]].item() for t in answer))
        expected.append(max(range(len(choices)), key=totals.__getitem__))
    # the first item's key is the expected pick, the second's is not: accuracy exactly 1/2
    items = [{"question": q, "choices": c, "answer": a}
             for (q, c), a in zip(questions.items(), (expected[0], (expected[1] + 1) % 3))]
    result = mc_accuracy(model, tok, items, "qa", batch_size=3)
    assert result["picks"] == expected
    assert result["correct"] == [True, False] and result["mc_accuracy"] == 0.5


def test_probe_catalogue_offers_runs_that_share_a_name(tmp_path, monkeypatch):
    """Two finished runs of one method at different settings have the same readable name
    (only their key hash differs): both are offered, neither hides the other."""
    import nbutils.models.loading as loading
    from nbutils.paths import MARKER
    from nbutils.probing import probe_catalogue
    from nbutils.profiles import get_profile
    monkeypatch.setenv("WORKBOOK_CACHE", str(tmp_path))
    monkeypatch.setattr(loading, "ensure_base_model", lambda profile: tmp_path / "base")
    runs = [tmp_path / "unlearn" / f"unlearn_tofu_tiny_forget10_npo_lr1e-05-{key}" for key in ("aaaa", "bbbb")]
    half_trained = tmp_path / "unlearn" / "unlearn_tofu_tiny_forget10_npo_lr1e-05-cccc"
    for folder in (*runs, half_trained):
        folder.mkdir(parents=True)
        (folder / "model.safetensors").write_bytes(b"")
    for folder in runs:
        (folder / MARKER).write_text("{}")
    offered = probe_catalogue(get_profile("tiny"))
    assert sorted(v for v in offered.values() if "unlearn" in v) == [str(r) for r in runs]
    assert len(offered) == 3  # the baseline and the two finished runs
