"""TOFU metrics: hand-computed values on tiny inputs, then the whole evaluation on a micro
model (fast path == one-item-at-a-time path, open-unlearning's JSON layout, references)."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest
import scipy.stats
from rouge_score import rouge_scorer

from nbutils.evaluation.memorisation import (answer_correct, exact_memorisation,
                                             extraction_strength, memorisation_scores)
from nbutils.evaluation.rouge import rouge_l_recall
from nbutils.evaluation.scoring import TokenScores
from nbutils.evaluation.tofu_logs import EVAL_FILE, SUMMARY_FILE, TofuEval, load_reference, rouge_entries
from nbutils.evaluation.tofu_metrics import (MODEL_UTILITY_KEYS, forget_quality, model_utility,
                                             normalised_answer_prob, truth_ratio, truth_ratio_score)

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_tofu_eval.py"


def _load_bench():
    spec = importlib.util.spec_from_file_location(BENCH.stem, BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _ts(correct, logprobs=None) -> TokenScores:
    correct = np.asarray(correct, dtype=bool)
    lp = np.zeros(len(correct)) if logprobs is None else np.asarray(logprobs, dtype=float)
    return TokenScores(logprobs=lp, correct=correct, mu=None, sigma=None)


# --- truth ratio ------------------------------------------------------------------------------
def test_truth_ratio_is_wrong_over_correct_with_a_log_space_mean():
    # P̃(correct) = 0.5, P̃(wrong) = 0.1 and 0.4: geometric mean sqrt(0.04) = 0.2
    r = truth_ratio(math.log(0.5), [math.log(0.1), math.log(0.4)])
    assert r == pytest.approx(0.2 / 0.5, rel=1e-8)
    assert r != pytest.approx(0.25 / 0.5)  # not the arithmetic mean of the wrong answers
    # direction: wrong answers likelier than the correct one give R > 1
    assert truth_ratio(math.log(0.1), [math.log(0.3)] * 3) == pytest.approx(3.0, rel=1e-8)
    assert truth_ratio(math.log(0.3), [math.log(0.1)]) == pytest.approx(1 / 3, rel=1e-8)


def test_truth_ratio_scores():
    ratios = [0.5, 2.0, 1.0, 0.25]
    # forget: min(R, 1/R) -> 0.5, 0.5, 1, 0.25
    assert truth_ratio_score(ratios, forget=True) == pytest.approx((0.5 + 0.5 + 1 + 0.25) / 4)
    # retain / real authors / world facts: max(0, 1 - R) -> 0.5, 0, 0, 0.75
    assert truth_ratio_score(ratios, forget=False) == pytest.approx((0.5 + 0 + 0 + 0.75) / 4)


def test_real_author_probability_is_normalised_over_all_options():
    assert normalised_answer_prob(0.6, [0.1, 0.2, 0.1]) == pytest.approx(0.6, rel=1e-8)
    assert normalised_answer_prob(0.2, [0.2, 0.2, 0.2]) == pytest.approx(0.25, rel=1e-8)
    assert normalised_answer_prob(0.0, [0.0, 0.0]) == 0.0  # the 1e-10 guard: no 0/0


# --- memorisation -----------------------------------------------------------------------------
@pytest.mark.parametrize("correct, em, es", [
    ([1, 1, 0, 1, 1], 0.8, 0.4),     # smallest k with y_hat[k:] == y[k:] is 3: 1 - 3/5
    ([1, 1, 1, 1], 1.0, 1.0),        # everything right: k = 0
    ([0, 1, 1, 1], 0.75, 0.75),      # k = 1
    # last token wrong: only the empty suffix matches, and open-unlearning's loop stops at
    # k = |y| - 1, reporting 1/|y| (published numbers use that)
    ([1, 1, 1, 0], 0.75, 0.25),
    ([0, 0, 0, 0, 0], 0.0, 0.2),
    ([0, 0, 0, 1], 0.25, 0.25),      # the last token alone: k = |y| - 1 as well
])
def test_exact_memorisation_and_extraction_strength(correct, em, es):
    assert exact_memorisation(correct) == pytest.approx(em)
    assert extraction_strength(correct) == pytest.approx(es)


def test_memorisation_excludes_eos():
    # answer tokens [right, wrong, right, right] + EOS (wrong): EOS does not count
    scores = _ts([1, 0, 1, 1, 0])
    assert answer_correct(scores).tolist() == [True, False, True, True]
    em, es = memorisation_scores([scores, _ts([1, 1, 1])])
    assert em == pytest.approx([0.75, 1.0]) and es == pytest.approx([0.5, 1.0])
    assert exact_memorisation([]) is None and extraction_strength([]) is None


# --- ROUGE, forget quality, model utility ---------------------------------------------------------
def test_rouge_matches_rouge_score():
    refs = ["The author was born in Paris in 1950.", "She writes mystery novels.", "Blue"]
    gens = ["The author was born in Paris.", "He wrote mysteries and novels.", ""]
    scorer = rouge_scorer.RougeScorer(["rouge1", "rougeL"], use_stemmer=True)
    entries = rouge_entries(["q1", "q2", "q3"], refs, gens)
    for ref, gen, e in zip(refs, gens, entries):
        s = scorer.score(ref, gen)
        assert e["rougeL_recall"] == s["rougeL"].recall
        assert e["rouge1_recall"] == s["rouge1"].recall
        assert e["rougeL_f1"] == s["rougeL"].fmeasure
        assert e["generation"] == gen and e["ground_truth"] == ref
    assert [e["rougeL_recall"] for e in entries] == rouge_l_recall(refs, gens)
    assert entries[0]["rougeL_recall"] == pytest.approx(6 / 8)  # LCS: 6 of the 8 reference words
    # stemming: "writes"/"wrote" differ, "novels"/"novel" match after Porter stemming
    assert rouge_entries(["q"], ["novels"], ["novel"])[0]["rougeL_recall"] == 1.0


@pytest.mark.parametrize("n", [3, 10, 40])
def test_forget_quality_floor_and_identity(n):
    low, high = np.linspace(0.1, 0.5, n), np.linspace(1.5, 3.0, n)
    assert forget_quality(low, high) == pytest.approx(2 / math.comb(2 * n, n), rel=1e-9)
    assert forget_quality(high, low) == pytest.approx(2 / math.comb(2 * n, n), rel=1e-9)
    assert forget_quality(low, low) == 1.0


def test_forget_quality_floor_matches_reference_values():
    # REFERENCE §2: 1.86e-23 for n = 40, 1.94e-119 for n = 200
    assert 2 / math.comb(80, 40) == pytest.approx(1.86e-23, rel=1e-2)
    assert forget_quality(np.arange(200), np.arange(200) + 1000) == pytest.approx(1.94e-119, rel=1e-2)


def test_model_utility_is_the_harmonic_mean_of_nine():
    values = {k: 0.1 * (i + 1) for i, k in enumerate(MODEL_UTILITY_KEYS)}
    expected = 9 / sum(1 / v for v in values.values())
    assert model_utility(values) == pytest.approx(expected)
    assert model_utility(list(values.values())) == pytest.approx(scipy.stats.hmean(list(values.values())))
    assert model_utility({**values, "ra_Q_A_ROUGE": 0.0}) == 0.0
    with pytest.raises(KeyError):
        model_utility({k: 0.5 for k in MODEL_UTILITY_KEYS[:8]})
    with pytest.raises(ValueError):
        model_utility([0.5] * 8)


# --- references and files -----------------------------------------------------------------------
def _fake_logs(ratios):
    logs = {"forget_quality": {"agg_value": None}, "model_utility": {"agg_value": 0.5},
            "forget_truth_ratio": {"agg_value": truth_ratio_score(ratios, True),
                                   "value_by_index": {str(i): {"score": r} for i, r in enumerate(ratios)}}}
    return logs


def test_load_reference_accepts_logs_paths_and_values(tmp_path):
    ratios = [0.4, 0.9, 1.3]
    ev = TofuEval(_fake_logs(ratios))
    folder = ev.save(tmp_path / "run")
    assert json.loads((folder / SUMMARY_FILE).read_text()) == ev.summary
    for ref in (folder, folder / EVAL_FILE, str(folder / EVAL_FILE), ev, ev.logs, ratios):
        assert load_reference(ref).tolist() == pytest.approx(ratios)
    # an open-unlearning log: string indices, entries {"score": ...}, indices out of order
    ou = {"forget_truth_ratio": {"agg_value": 0.5, "value_by_index": {
        "2": {"score": 1.3}, "0": {"score": 0.4}, "1": {"score": 0.9}}}}
    assert load_reference(ou).tolist() == pytest.approx(ratios)
    with pytest.raises(ValueError, match="TOFU_SUMMARY"):
        load_reference({"forget_truth_ratio": 0.5})
    with pytest.raises(FileNotFoundError):
        load_reference(tmp_path / "missing.json")
    # forget quality against a reference; a reference of another split size is refused
    assert ev.with_reference(ratios)["forget_quality"] == 1.0
    with pytest.raises(ValueError, match="same forget split"):
        ev.with_reference([0.1, 0.2])
    assert TofuEval.load(folder).logs == ev.logs


# --- on a micro model -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def micro_target(micro_profile, micro_base):
    from nbutils.finetune import ensure_target_model
    from nbutils.models.loading import load_model, load_tokenizer
    path = str(ensure_target_model(micro_profile))
    return path, load_model(path, micro_profile), load_tokenizer(path, micro_profile)


def test_score_pairs_sharing_prompts_equals_full_sequences(micro_profile, micro_target):
    from nbutils.evaluation.scoring import encode_pair, score_encoded, score_pairs
    from nbutils.models.prompts import encode_prompt
    _, model, tok = micro_target
    pairs = [("Who wrote the book?", "A writer."), ("Who wrote the book?", "Someone else entirely."),
             ("Where was she born?", "In a small town by the sea."), ("Who wrote the book?", "X"),
             ("Where was she born?", "Paris.")]
    shared = score_pairs(model, tok, pairs, "qa", batch_size=2)
    full = score_encoded(model, [encode_pair(tok, encode_prompt(tok, q, "qa"), a, "qa") for q, a in pairs],
                         tok.pad_token_id, batch_size=2)
    for s, f in zip(shared, full):
        assert s.n == f.n
        np.testing.assert_allclose(s.logprobs, f.logprobs, atol=1e-5)
        np.testing.assert_allclose(s.mu, f.mu, atol=1e-5)
        # sigma = sqrt(E[log p^2] - mu^2) cancels in float32 on a near-uniform micro model:
        # 1e-6 differences in the logits become ~1e-5 in sigma
        np.testing.assert_allclose(s.sigma, f.sigma, atol=1e-4)
        assert (s.correct == f.correct).all()
    bare = score_pairs(model, tok, pairs, "qa", batch_size=2, stats=False)
    assert bare[0].mu is None and bare[0].sigma is None
    np.testing.assert_allclose(bare[1].logprobs, shared[1].logprobs, atol=1e-6)


def test_fast_evaluation_equals_naive_and_writes_open_unlearning_layout(micro_profile, micro_target, tmp_path):
    from nbutils.evaluation.naive import naive_evaluate_tofu
    from nbutils.evaluation.tofu import evaluate_tofu, tofu_rows, tofu_splits
    bench = _load_bench()
    _, model, tok = micro_target
    fast = evaluate_tofu(model, tok, micro_profile, progress=False)
    assert fast["forget_quality"] is None  # no reference: left empty, as open-unlearning does
    reference = fast.forget_truth_ratios * 1.5
    fast = fast.with_reference(reference)
    naive = naive_evaluate_tofu(model, tok, micro_profile, reference=reference)
    assert bench.compare_logs(fast.logs, naive.logs, tol=1e-4) == []
    assert fast["forget_quality"] == pytest.approx(
        scipy.stats.ks_2samp(fast.forget_truth_ratios, reference).pvalue)

    # the metrics, by open-unlearning's names
    expected = {"forget_quality", "model_utility", "extraction_strength", "exact_memorization",
                "retain_extraction_strength", "forget_truth_ratio", "retain_Truth_Ratio",
                "ra_Truth_Ratio", "wf_Truth_Ratio", "ra_Q_A_Prob_normalised", "wf_Q_A_Prob_normalised"}
    for p in ("forget", "retain", "ra", "wf"):
        expected |= {f"{p}_Q_A_Prob", f"{p}_Q_A_PERT_Prob", f"{p}_Q_A_ROUGE"}
    expected |= {"forget_Q_A_PARA_Prob", "retain_Q_A_PARA_Prob"}
    assert set(fast.logs) == expected
    assert fast["model_utility"] == pytest.approx(scipy.stats.hmean([fast[k] for k in MODEL_UTILITY_KEYS]))

    folder = fast.save(tmp_path / "eval")
    logs = json.loads((folder / EVAL_FILE).read_text())
    summary = json.loads((folder / SUMMARY_FILE).read_text())
    assert summary == {k: v["agg_value"] for k, v in logs.items()}
    assert set(logs["model_utility"]) == {"agg_value"} and set(logs["forget_quality"]) == {"agg_value"}
    splits = {s.prefix: tofu_rows(micro_profile, s.config) for s in tofu_splits(micro_profile)}
    for p, rows in splits.items():
        n = len(rows)
        prob = logs[f"{p}_Q_A_Prob"]["value_by_index"]
        assert list(prob) == [str(i) for i in range(n)]
        assert set(prob["0"]) == {"prob", "avg_loss"}
        assert prob["0"]["prob"] == pytest.approx(math.exp(-prob["0"]["avg_loss"]))
        pert = logs[f"{p}_Q_A_PERT_Prob"]["value_by_index"]
        assert [len(pert[str(i)]["prob"]) for i in range(n)] == [len(r["perturbed_answer"]) for r in rows]
        rouge = logs[f"{p}_Q_A_ROUGE"]["value_by_index"]
        assert {"rougeL_recall", "rouge1_recall", "rougeL_f1", "generation", "ground_truth",
                "input"} <= set(rouge["0"])
        assert rouge["0"]["ground_truth"] == rows[0]["answer"]
        tr = fast.logs["forget_truth_ratio" if p == "forget" else f"{p}_Truth_Ratio"]
        assert set(tr["value_by_index"]["0"]) == {"score"}
        # hand-recomputed from the per-item probabilities
        correct = (logs[f"{p}_Q_A_PARA_Prob"] if p in ("forget", "retain") else logs[f"{p}_Q_A_Prob"])
        r0 = math.exp(-np.mean(pert["0"]["avg_loss"])) / (correct["value_by_index"]["0"]["prob"] + 1e-10)
        assert tr["value_by_index"]["0"]["score"] == pytest.approx(r0, rel=1e-9)
    norm = logs["ra_Q_A_Prob_normalised"]["value_by_index"]["0"]["prob"]
    a, w = logs["ra_Q_A_Prob"]["value_by_index"]["0"]["prob"], logs["ra_Q_A_PERT_Prob"]["value_by_index"]["0"]["prob"]
    assert norm == pytest.approx(a / (a + sum(w)))
    assert set(logs["exact_memorization"]["value_by_index"]["0"]) == {"score"}
    # round trip: a saved log is a reference
    assert load_reference(folder / EVAL_FILE).tolist() == pytest.approx(fast.forget_truth_ratios.tolist())
    assert TofuEval.load(folder).summary == fast.summary


def test_retain_model_against_itself_and_cached_evaluations(micro_profile, micro_target):
    import time

    from nbutils.evaluation.tofu import ensure_tofu_eval
    from nbutils.leaderboard import ensure_retain_eval
    retain = ensure_retain_eval(micro_profile, progress=False)
    assert retain["forget_quality"] == 1.0
    start = time.perf_counter()
    again = ensure_retain_eval(micro_profile, progress=False)  # cached
    assert time.perf_counter() - start < 5.0
    assert again.logs == retain.logs
    path, _, _ = micro_target
    target = ensure_tofu_eval(micro_profile, path, "target", reference=retain, progress=False)
    assert 0.0 < target["forget_quality"] <= 1.0
    n = len(target.forget_truth_ratios)
    assert target["forget_quality"] >= 2 / math.comb(2 * n, n) - 1e-15
    assert ensure_tofu_eval(micro_profile, path, "target", progress=False)["forget_quality"] is None


@pytest.mark.parametrize("damage", ["delete", "truncate"])
def test_a_damaged_cached_evaluation_is_computed_again(micro_profile, micro_target, damage):
    """Issue 14: a cached evaluation missing its TOFU_EVAL.json raised FileNotFoundError."""
    from nbutils.evaluation.tofu import artifact_dir_for_eval, ensure_tofu_eval
    path, _, _ = micro_target
    first = ensure_tofu_eval(micro_profile, path, "damaged", progress=False)
    log = artifact_dir_for_eval(micro_profile, path, "damaged") / EVAL_FILE
    if damage == "delete":
        log.unlink()
    else:
        log.write_text(log.read_text()[:100])
    with pytest.warns(UserWarning, match="TOFU_EVAL.json (is missing|has 100 bytes).*rebuilt"):
        again = ensure_tofu_eval(micro_profile, path, "damaged", progress=False)
    assert again.summary == first.summary and log.exists()


def test_benchmark_runs_and_agrees(micro_overrides):
    bench = _load_bench()
    result = bench.main(overrides=micro_overrides, repeats=1, verbose=False)
    assert result["equal"] and result["max_abs_diff"] <= 1e-4
    assert result["ratio"] > 0  # timings are noisy: no threshold here
