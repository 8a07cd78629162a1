"""Robustness attacks (notebook 15): scores by hand, probes, the logit lens against the
scoring path, bitsandbytes reloads, relearning, and every attack on a micro model end to end."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nbutils.robustness.fluency import repetition_rate
from nbutils.robustness.probes import author_groups, in_context_question
from nbutils.robustness.scores import (knowledge_kept, knowledge_returned, quantization_score,
                                       relearning_score, robustness_score)


def test_relearning_score_by_hand():
    # retain 0.1 -> 0.3 (+0.2), unlearned 0.1 -> 0.5 (+0.4): R = 0.2 / 0.4
    assert relearning_score(0.1, 0.3, 0.1, 0.5) == pytest.approx(0.5)
    assert relearning_score(0.1, 0.6, 0.1, 0.3) == 1.0  # relearns slower than a model that never knew
    assert relearning_score(0.1, 0.3, 0.2, 0.2) == 1.0  # nothing comes back
    assert relearning_score(0.3, 0.2, 0.1, 0.5) == 0.0  # the retain model lost, the unlearned gained


def test_quantization_and_robustness_scores_by_hand():
    assert quantization_score(0.2, 0.8) == pytest.approx(0.25)  # 4x the knowledge after quantizing
    assert quantization_score(0.2, 0.1) == 1.0
    assert robustness_score(0.5, 0.25) == pytest.approx(2 / (1 / 0.5 + 1 / 0.25))
    assert robustness_score(0.0, 0.7) == 0.0
    assert knowledge_kept(0.21, 1.0) == pytest.approx(0.21)
    assert knowledge_returned(0.2, 0.6, 1.0) == pytest.approx(0.5)
    assert math.isnan(knowledge_returned(0.9, 0.95, 0.9))


def test_repetition_rate():
    assert repetition_rate("the cat sat on the mat") == 0.0
    assert repetition_rate("cooo cooo cooo cooo cooo") == pytest.approx(2 / 3)
    assert repetition_rate("a b") == 0.0


def test_in_context_question_shows_other_pairs_of_the_same_author():
    rows = [{"question": f"q{i}", "answer": f"a{i}"} for i in range(6)]
    groups = author_groups(rows, 3)
    assert groups == [0, 0, 0, 1, 1, 1]
    text = in_context_question(rows, 1, groups, 2)
    assert text.endswith("Q: q1") and "a2" in text and "a0" in text and "a1" not in text
    assert "a3" not in in_context_question(rows, 0, groups, 5)


def test_relearn_split_is_per_author_and_disjoint(micro_profile):
    from nbutils.robustness.relearning import relearn_split
    rows = [{"question": f"q{i}", "answer": f"a{i}"} for i in range(9)]
    train, held = relearn_split(rows, micro_profile)  # 3 QA per author
    assert not set(train) & set(held) and sorted(train + held) == list(range(9))
    for author in range(3):
        mine = set(range(3 * author, 3 * author + 3))
        assert mine & set(train) and mine & set(held)
    assert relearn_split(rows, micro_profile) == (train, held)  # seeded


# --- on a micro model -----------------------------------------------------------------------
ATTACK_OVERRIDES = {"robustness.relearn_learning_rate": 3e-3, "robustness.relearn_epochs": 2.0,
                    "robustness.in_context_examples": 2}


@pytest.fixture(scope="module")
def attack_profile(micro_overrides, workbook_cache):
    from nbutils.profiles import get_profile
    return get_profile("tiny", {**micro_overrides, **ATTACK_OVERRIDES})


@pytest.fixture(scope="module")
def micro_models(attack_profile):
    from nbutils.finetune import ensure_retain_model, ensure_target_model
    from nbutils.unlearning import ensure_unlearned
    return {"target": ensure_target_model(attack_profile), "retain": ensure_retain_model(attack_profile),
            "gradascent": ensure_unlearned(attack_profile, "gradascent")}


def test_logit_lens_last_layer_is_the_models_own_probability(attack_profile, micro_models):
    from nbutils.models.loading import load_model, load_tokenizer
    from nbutils.robustness.attacks import forget_rows
    from nbutils.robustness.logit_lens import layer_answer_probs
    from nbutils.robustness.probes import knowledge
    path = str(micro_models["target"])
    model, tok = load_model(path, attack_profile), load_tokenizer(path, attack_profile)
    rows = forget_rows(attack_profile)
    lens = layer_answer_probs(model, tok, rows, attack_profile.prompt_format, batch_size=4)
    assert lens.shape == (len(rows), attack_profile.tiny_arch.num_hidden_layers + 1)
    plain = knowledge(model, tok, rows, attack_profile, "plain", generate=False)
    np.testing.assert_allclose(lens[:, -1], plain["probs"], rtol=1e-4)
    assert np.all((lens > 0) & (lens <= 1))


def test_probes_change_only_the_prompt(attack_profile, micro_models):
    from nbutils.models.loading import load_tokenizer
    from nbutils.robustness.attacks import forget_rows
    from nbutils.robustness.probes import probe_prompts
    tok = load_tokenizer(str(micro_models["target"]), attack_profile)
    rows = forget_rows(attack_profile)
    plain = probe_prompts(tok, rows, "plain", attack_profile)
    prefill = probe_prompts(tok, rows, "prefill", attack_profile)
    assert all(p[:len(q)] == q and len(p) > len(q) for p, q in zip(prefill, plain))
    assert tok.decode(prefill[0][len(plain[0]):]).strip() == attack_profile.robustness.prefill
    para = probe_prompts(tok, rows, "paraphrase", attack_profile)
    assert para != plain
    shots = [tok.decode(p) for p in probe_prompts(tok, rows, "in_context", attack_profile)]
    assert rows[1]["answer"] in shots[0] and shots[0].count("Q:") == 3


@pytest.mark.parametrize("scheme,module", [("int8", "Linear8bitLt"), ("nf4", "Linear4bit"), ("fp4", "Linear4bit")])
def test_quantized_reload(attack_profile, micro_models, scheme, module):
    from nbutils.models.loading import load_model, load_tokenizer
    from nbutils.robustness.attacks import _quiet_bitsandbytes, forget_rows
    from nbutils.robustness.probes import knowledge
    _quiet_bitsandbytes()
    path = str(micro_models["gradascent"])
    model = load_model(path, attack_profile, quantization=scheme)
    layers = [type(m).__name__ for m in model.modules()]
    assert module in layers
    if scheme != "int8":
        quant = model.config.quantization_config
        assert (quant["bnb_4bit_quant_type"] if isinstance(quant, dict) else quant.bnb_4bit_quant_type) == scheme
    rows = forget_rows(attack_profile)
    out = knowledge(model, load_tokenizer(path, attack_profile), rows, attack_profile, "plain")
    assert 0 < out["prob"] <= 1 and len(out["generations"]) == len(rows)


def test_relearning_teaches_the_rows_it_shows(attack_profile, micro_models):
    from nbutils.models.loading import load_model, load_tokenizer
    from nbutils.robustness.attacks import forget_rows
    from nbutils.robustness.probes import knowledge
    from nbutils.robustness.relearning import ensure_relearned, relearn_split
    rows = forget_rows(attack_profile)
    train, _ = relearn_split(rows, attack_profile)
    shown = [rows[i] for i in train]
    path = micro_models["gradascent"]
    relearned = ensure_relearned(attack_profile, path, "ga-test", "forget", shown)
    tok = load_tokenizer(str(path), attack_profile)
    before = knowledge(load_model(str(path), attack_profile), tok, shown, attack_profile, generate=False)
    after = knowledge(load_model(str(relearned), attack_profile), tok, shown, attack_profile, generate=False)
    assert after["prob"] > before["prob"]
    assert ensure_relearned(attack_profile, path, "ga-test", "forget", shown) == relearned  # cached


def test_every_attack_end_to_end_and_cached(attack_profile, micro_models):
    import time
    from nbutils.robustness.attacks import (attack_heatmap_frame, ensure_model_attacks,
                                            logit_lens_frame, robustness_frame)
    results = ensure_model_attacks(attack_profile, micro_models)
    df = robustness_frame(results)
    assert list(df.index) == ["target", "retain", "gradascent"]
    for col in ("R", "Q", "robustness", "kept"):
        assert df[col].notna().all(), col
    assert df[["R", "Q", "robustness"]].apply(lambda c: c.between(0, 1)).all().all()
    assert df.loc["target", "kept"] == pytest.approx(1.0)
    assert df.loc["retain", "R"] == pytest.approx(1.0)  # the retain model against itself
    heat = attack_heatmap_frame(results)
    assert {"none", "paraphrase", "prefill", "in_context", "int8", "nf4", "fp4",
            "relearn forget", "relearn related"} <= set(heat.columns)
    lens = logit_lens_frame(results)
    assert set(lens.model) == set(micro_models)
    # the measurements are cached; the relearned checkpoints behind them are deleted
    from nbutils.paths import cache_root
    for name in micro_models:
        assert not list((cache_root() / "robustness").glob(f"{name}-relearn-*")), name
    t0 = time.perf_counter()
    again = ensure_model_attacks(attack_profile, micro_models)
    assert robustness_frame(again).equals(df)
    assert time.perf_counter() - t0 < 5
