"""MIA attacks, AUC / PrivLeak conventions and MUSE's VerbMem / KnowMem / PrivLeak."""

from __future__ import annotations

import math
import zlib

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from nbutils.evaluation import mia, muse
from nbutils.evaluation.scoring import TokenScores


def _ts(logprobs, mu=None, sigma=None):
    lp = np.asarray(logprobs, dtype=np.float64)
    return TokenScores(logprobs=lp, correct=np.zeros(len(lp), bool),
                       mu=np.asarray(mu if mu is not None else np.zeros(len(lp))),
                       sigma=np.asarray(sigma if sigma is not None else np.ones(len(lp))))


# --- per-item scores, by hand -----------------------------------------------------------------
def test_loss_and_zlib_by_hand():
    ts = _ts([-1.0, -2.0, -3.0, -6.0])
    assert mia.loss_score(ts) == pytest.approx(3.0)
    text = "Jomo Demir was born in Dakar."
    assert mia.zlib_score(ts, text) == pytest.approx(3.0 / len(zlib.compress(text.encode())))


def test_min_k_by_hand():
    # n = 5, k = 0.4 -> floor(2.0) = 2 lowest: -5, -4 -> score 4.5
    ts = _ts([-1.0, -5.0, -0.5, -4.0, -2.0])
    assert mia.min_k_score(ts) == pytest.approx(4.5)
    # n = 4 -> floor(1.6) = 1 lowest
    assert mia.min_k_score(_ts([-1.0, -3.0, -2.0, -0.1])) == pytest.approx(3.0)
    # n = 1 (and n = 2, floor(0.8) = 0) -> max(1, .) = 1 token
    assert mia.min_k_score(_ts([-0.7])) == pytest.approx(0.7)
    assert mia.min_k_score(_ts([-0.7, -0.2])) == pytest.approx(0.7)
    assert mia.min_k_score(ts, k=1.0) == pytest.approx(2.5)


def test_min_k_plus_plus_by_hand():
    lp = [-1.0, -4.0, -2.0, -3.0, -0.5]
    mu = [-1.0, -1.0, -3.0, -1.0, -0.5]
    sigma = [1.0, 2.0, 0.5, 4.0, 1.0]
    # z = [0, -1.5, 2, -0.5, 0]; lowest 2: -1.5, -0.5 -> 1.0
    assert mia.min_k_plus_plus_score(_ts(lp, mu, sigma)) == pytest.approx(1.0)


def test_reference_score_and_drop_last():
    a, b = _ts([-1.0, -3.0]), _ts([-0.5, -0.5])
    assert mia.reference_score(a, b) == pytest.approx(2.0 - 0.5)
    d = mia.drop_last_token(_ts([-1.0, -2.0, -9.0]))
    assert d.n == 2 and list(d.logprobs) == [-1.0, -2.0]
    assert mia.drop_last_token(_ts([-9.0])).n == 1  # never empty


def test_attack_scores_open_unlearning_token_conventions():
    # LOSS includes the EOS token, Min-K / Min-K++ drop it (open-unlearning's tokenwise_logprobs)
    items = [_ts([-1.0, -2.0, -3.0, -8.0, -4.0, -9.0])]
    s = mia.attack_scores(items, ["x"], drop_eos_for_min_k=True)
    assert s["loss"][0] == pytest.approx(27.0 / 6)
    assert s["min_k"][0] == pytest.approx(6.0)  # n = 5 after dropping -9 -> lowest 2: -8, -4
    s_all = mia.attack_scores(items, ["x"])
    assert s_all["min_k"][0] == pytest.approx(8.5)  # n = 6 -> lowest 2: -9, -8


# --- AUC, ROC, PrivLeak --------------------------------------------------------------------
def test_auc_matches_sklearn_with_forget_label_zero():
    rng = np.random.default_rng(0)
    f, h = rng.normal(0, 1, 30), rng.normal(0.5, 1, 25)
    expected = roc_auc_score([0] * 30 + [1] * 25, np.r_[f, h])
    assert mia.auc(f, h) == pytest.approx(expected)
    # perfectly separated: members (forget) score lower = "more likely a member" -> AUC 1
    assert mia.auc([0.1, 0.2, 0.3], [0.8, 0.9]) == 1.0
    assert mia.auc([0.8, 0.9], [0.1, 0.2, 0.3]) == 0.0
    r = mia.roc([0.1, 0.2], [0.8, 0.9])
    assert r["fpr"][0] == 0.0 and r["tpr"][-1] == 1.0
    with pytest.raises(ValueError):
        mia.auc([], [0.1])


def test_privleak_formula():
    assert mia.privleak(0.62, 0.62) == 0.0  # the retain model: exactly 0
    # a memorising model: its forget items score low, AUC (forget = 0) near 1 -> about -100
    # (in MUSE's own convention, 1 - AUC, that is the "AUC near 0" of a memorising model)
    assert mia.privleak(1.0, 0.5) == pytest.approx(-100.0)
    assert mia.privleak(mia.auc([0.1, 0.2], [0.8, 0.9]), 0.5) == pytest.approx(-100.0)
    assert mia.privleak(0.0, 0.5) == pytest.approx(100.0)  # over-unlearning: > 0
    assert mia.privleak(0.7, 0.6) == pytest.approx(((0.3) - (0.4)) / 0.4 * 100)
    with pytest.raises(ValueError, match="retain model"):
        mia.privleak(0.7, None)
    with pytest.raises(ValueError):
        mia.privleak(0.7, 1.0)


def test_holdout_split_matches_forget_split():
    assert mia.holdout_split("forget10") == "holdout10"
    assert mia.holdout_split("forget01") == "holdout01"


# --- MUSE prompts, stops, references -------------------------------------------------------
def test_knowmem_prompt_exactly_as_reference():
    icl = [{"question": f"Q{i}?", "answer": f"A{i}"} for i in range(10)]
    p = muse.knowmem_prompt(icl, "Who?")
    expected = "".join(f"Question: Q{i}?\nAnswer: A{i}\n\n" for i in range(10)) + "Question: Who?\nAnswer: "
    assert p == expected
    assert p.count("Question: ") == 11 and p.endswith("\nAnswer: ")


def test_knowmem_stop_strings():
    assert muse.KNOWMEM_STOPS == ("\n\n", "\nQuestion", "Question:")
    assert muse.cut_at_stops("Jomo Demir\n\nQuestion: x") == "Jomo Demir"
    assert muse.cut_at_stops("Dakar\nQuestion what") == "Dakar"
    assert muse.cut_at_stops("1955 Question: next") == "1955 "
    assert muse.cut_at_stops("one line\nsecond line") == "one line\nsecond line"  # single \n kept


def test_verbmem_reference_cut_to_128_tokens(tiny_tokenizer):
    gt = " ".join(["Jomo Demir wrote 'The Southern Sky' in Dakar in 1986."] * 60)
    ids = tiny_tokenizer(gt, add_special_tokens=True)["input_ids"]
    assert len(ids) > 200
    ref = muse.verbmem_reference(tiny_tokenizer, gt)
    assert ref == tiny_tokenizer.decode(ids[:128], skip_special_tokens=True)
    assert muse.VERBMEM_TOKENS == 128 and muse.KNOWMEM_TOKENS == 32
    assert gt.startswith(ref[:50]) and len(ref) < len(gt)
    short = "A short text."
    assert muse.verbmem_reference(tiny_tokenizer, short).strip() == short


# --- end to end on the micro models --------------------------------------------------------
@pytest.fixture(scope="module")
def micro_models(micro_profile, micro_base):
    from nbutils.finetune import ensure_retain_model, ensure_target_model
    from nbutils.models.loading import load_model_and_tokenizer
    target, tok = load_model_and_tokenizer(str(ensure_target_model(micro_profile)), micro_profile)
    retain, _ = load_model_and_tokenizer(str(ensure_retain_model(micro_profile)), micro_profile)
    return target, retain, tok


def test_mia_suite_end_to_end(micro_profile, micro_models):
    from nbutils.data.tofu import load_tofu
    target, retain, tok = micro_models
    res = mia.mia_suite(target, tok, micro_profile, reference_model=retain)
    n_f = len(load_tofu(micro_profile, micro_profile.forget_split))
    n_h = len(load_tofu(micro_profile, "holdout" + micro_profile.forget_split[-2:]))
    assert res["n_forget"] == n_f and res["n_holdout"] == n_h
    assert set(res["auc"]) == {"loss", "zlib", "min_k", "min_k_plus_plus", "reference", "gradnorm"}
    for name, a in res["auc"].items():
        assert 0.0 <= a <= 1.0
        s = res["scores"][name]
        assert len(s["forget"]) == n_f and len(s["holdout"]) == n_h
        assert a == pytest.approx(mia.auc(s["forget"], s["holdout"]))
        assert res["roc"][name]["fpr"][0] == 0.0 and res["roc"][name]["tpr"][-1] == 1.0
    ret = mia.mia_suite(retain, tok, micro_profile)
    assert "reference" not in ret["auc"]
    if ret["auc"]["min_k"] < 1.0:
        assert mia.privleak(ret["auc"]["min_k"], ret["auc"]["min_k"]) == 0.0
    if ret["auc"]["min_k"] < 1.0:
        assert math.isfinite(mia.privleak(res["auc"]["min_k"], ret["auc"]["min_k"]))


def test_gradnorm_against_a_hand_backward_and_leaves_no_gradients(micro_profile, micro_models):
    """Issue 15: the mean over weight tensors of each tensor's gradient norm, of one item's
    mean answer-token NLL (EOS prediction left out), in evaluation behaviour, no .grad left."""
    import torch
    from nbutils.data.tofu import load_tofu
    from nbutils.models.prompts import encode_qa
    target, _, tok = micro_models
    rows = list(load_tofu(micro_profile, micro_profile.forget_split))[:2]
    pairs = [(r["question"], r["answer"]) for r in rows]
    target.train()  # the attack must switch to evaluation behaviour and back
    scores = mia.gradnorm_scores(target, tok, pairs, micro_profile.prompt_format)
    assert target.training and all(p.grad is None for p in target.parameters())
    target.eval()
    for (q, a), score in zip(pairs, scores):
        enc = encode_qa(tok, q, a, micro_profile.prompt_format)
        answer = [t for t in range(1, len(enc.input_ids)) if enc.labels[t] != -100][:-1]  # no EOS
        logits = target(input_ids=torch.tensor([enc.input_ids])).logits[0].float()
        nll = -sum(torch.log_softmax(logits[t - 1], -1)[enc.input_ids[t]] for t in answer) / len(answer)
        nll.backward()
        hand = torch.stack([p.grad.norm() for p in target.parameters() if p.grad is not None]).mean()
        target.zero_grad(set_to_none=True)
        assert score == pytest.approx(float(hand), rel=1e-4)


def test_gradnorm_on_a_frozen_model_leaves_it_frozen(micro_profile, micro_models):
    """WHP's inference-time model freezes its two models; the attack differentiates it anyway
    and gives the same scores as the unfrozen model, then leaves it frozen."""
    from nbutils.data.tofu import load_tofu
    target, _, tok = micro_models
    pairs = [(r["question"], r["answer"]) for r in list(load_tofu(micro_profile, micro_profile.forget_split))[:2]]
    unfrozen = mia.gradnorm_scores(target, tok, pairs, micro_profile.prompt_format)
    for p in target.parameters():
        p.requires_grad_(False)
    try:
        frozen = mia.gradnorm_scores(target, tok, pairs, micro_profile.prompt_format)
        assert not any(p.requires_grad for p in target.parameters())
    finally:
        for p in target.parameters():
            p.requires_grad_(True)
    assert frozen.tolist() == pytest.approx(unfrozen.tolist(), rel=1e-6)


def test_evaluate_muse_end_to_end(micro_profile, micro_models):
    from nbutils.data.muse import load_muse
    target, retain, tok = micro_models
    r = muse.evaluate_muse(retain, tok, micro_profile, verbmem_tokens=8, knowmem_tokens=6)
    assert r["PrivLeak"] is None  # no retain AUC given: no guess
    t = muse.evaluate_muse(target, tok, micro_profile, retain_auc=r["auc"], verbmem_tokens=8,
                           knowmem_tokens=6)
    for key in ("VerbMem_f", "KnowMem_f", "KnowMem_r"):
        assert 0.0 <= t[key] <= 100.0
    if r["auc"] < 1.0:
        assert t["PrivLeak"] == pytest.approx(mia.privleak(t["auc"], r["auc"]))
    items = t["items"]
    assert len(items["verbmem_f"]) == len(load_muse(micro_profile, "verbmem", "forget"))
    assert len(items["knowmem_f"]) == len(load_muse(micro_profile, "knowmem", "forget_qa"))
    assert len(items["knowmem_r"]) == len(load_muse(micro_profile, "knowmem", "retain_qa"))
    assert t["VerbMem_f"] == pytest.approx(100 * np.mean([x["rougeL_f1"] for x in items["verbmem_f"]]))
    for x in items["knowmem_f"]:
        assert not any(s in x["output"] for s in muse.KNOWMEM_STOPS)
    assert len(items["privleak"]["forget"]) == len(load_muse(micro_profile, "privleak", "forget"))
    assert t["auc"] == pytest.approx(mia.auc(items["privleak"]["forget"], items["privleak"]["holdout"]))
    # the VerbMem reference is cut to the generation budget
    assert all(len(tok(x["gt"], add_special_tokens=False)["input_ids"]) <= 8 + 2 for x in items["verbmem_f"])


def test_generate_continuations_batch_equals_single(micro_profile, micro_models):
    from nbutils.evaluation.generation import generate_continuations
    target, _, tok = micro_models
    prompts = ["Jomo Demir is the author who", "Question: Who?\nAnswer: ", "The"]
    batch = generate_continuations(target, tok, prompts, max_new_tokens=6, batch_size=3)
    single = [generate_continuations(target, tok, [p], max_new_tokens=6)[0] for p in prompts]
    assert batch == single and len(batch) == 3


def test_stop_strings_only_save_time(micro_profile, micro_models):
    from nbutils.evaluation.generation import generate_continuations
    target, _, tok = micro_models
    icl = [{"question": "Where was Jomo Demir born?", "answer": "Dakar"}] * 10
    prompts = [muse.knowmem_prompt(icl, q) for q in ("Who?", "When was Jomo Demir born?")]
    full = generate_continuations(target, tok, prompts, max_new_tokens=12)
    early = generate_continuations(target, tok, prompts, max_new_tokens=12,
                                   stop_strings=muse.KNOWMEM_STOPS)
    assert [muse.cut_at_stops(o) for o in early] == [muse.cut_at_stops(o) for o in full]


def test_knowmem_sets_batched_together_equal_separate(micro_profile, micro_models):
    from nbutils.data.muse import load_muse
    target, _, tok = micro_models
    f = (load_muse(micro_profile, "knowmem", "forget_qa"), load_muse(micro_profile, "knowmem", "forget_qa_icl"))
    r = (load_muse(micro_profile, "knowmem", "retain_qa"), load_muse(micro_profile, "knowmem", "retain_qa_icl"))
    together = muse._knowmem_many(target, tok, [f, r], 6, 64)
    assert together[0] == muse.knowmem(target, tok, *f, max_new_tokens=6)
    assert together[1] == muse.knowmem(target, tok, *r, max_new_tokens=6)


def test_the_gradnorm_cost_benchmark_runs(micro_overrides, micro_models):
    """``benchmarks/bench_mia.py``: GradNorm's time beside the scoring attacks' (no threshold:
    timings are noisy; the ratio is read from a run on an idle machine)."""
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_mia.py"
    spec = importlib.util.spec_from_file_location(path.stem, path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    result = bench.main("tiny", micro_overrides, repeats=1, verbose=False)
    assert result["items"] > 0 and result["gradnorm / scoring"] > 0


def test_prompts_longer_than_the_model_are_cut_from_the_left():
    from types import SimpleNamespace
    from nbutils.evaluation.generation import fit_context
    model = SimpleNamespace(config=SimpleNamespace(max_position_embeddings=10))
    assert fit_context([1, 5, 6, 7], model, 6, bos_token_id=1) == [1, 5, 6, 7]  # fits: unchanged
    # 12 prompt tokens + 6 new in 10 positions: BOS and the 3 latest tokens
    assert fit_context([1, *range(20, 31)], model, 6, bos_token_id=1) == [1, 28, 29, 30]
    assert fit_context(list(range(20, 32)), model, 6, bos_token_id=None) == [28, 29, 30, 31]
    with pytest.raises(ValueError, match="generate fewer tokens"):
        fit_context([1, 2, 3], model, 9, bos_token_id=1)
    # a model trained on blocks of 3 tokens: the prompt keeps BOS and its 2 latest tokens
    assert fit_context([1, 5, 6, 7], model, 2, bos_token_id=1, max_prompt_tokens=3) == [1, 6, 7]
