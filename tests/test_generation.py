"""Batched greedy generation (left padding, stopping) and ROUGE as TOFU/MUSE compute it."""

from __future__ import annotations

import copy

import pytest
import torch
from rouge_score import rouge_scorer
from transformers import AutoConfig, LlamaConfig, LlamaForCausalLM

from nbutils.evaluation.generation import StopOnNewline, generate_answers, newline_token_ids
from nbutils.evaluation.rouge import rouge_l_f1, rouge_l_recall
from nbutils.models.loading import load_model, load_tokenizer

QUESTIONS = [
    "Who wrote the novel 'War and Peace'?",
    "Hi?",
    "Where was the author of many long and celebrated books born, and in which year?",
    "What is the capital city of Japan?",
    "Which writer was born on 24 February 1939 in Perth, Australia?",
]


@pytest.fixture(scope="module")
def tokenizer(micro_profile, micro_base):
    return load_tokenizer(micro_base, micro_profile)


def _batch_equals_single(model, tok, questions, **kw):
    batch = generate_answers(model, tok, questions, "qa", batch_size=len(questions), **kw)
    single = [generate_answers(model, tok, [q], "qa", **kw)[0] for q in questions]
    assert batch == single
    # and in batches of two (other padding widths)
    assert generate_answers(model, tok, questions, "qa", batch_size=2, **kw) == single
    return single


def test_batch_equals_one_at_a_time_base_model(micro_profile, micro_base, tokenizer):
    model = load_model(micro_base, micro_profile)
    answers = _batch_equals_single(model, tokenizer, QUESTIONS, max_new_tokens=12)
    assert len(answers) == len(QUESTIONS) and all(isinstance(a, str) for a in answers)


def test_batch_equals_one_at_a_time_varied_outputs(micro_base, tokenizer):
    """The micro base model answers every prompt alike; random weights with a large init
    make the greedy answer depend on the prompt, so left padding really is exercised."""
    config = AutoConfig.from_pretrained(micro_base)
    config.initializer_range = 0.5
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).eval()
    answers = _batch_equals_single(model, tokenizer, QUESTIONS, max_new_tokens=16)
    assert len(set(answers)) >= 3, answers
    assert all("\n" not in a for a in answers)
    raw = generate_answers(model, tokenizer, QUESTIONS, "qa", max_new_tokens=16, stop_at_newline=False)
    # random weights emit stray bytes of multi-byte characters; cut at another token they
    # decode differently, so only rows of whole characters are compared
    whole = [(r, a) for r, a in zip(raw, answers) if "\ufffd" not in r + a]
    assert all(r.split("\n")[0].strip() == a for r, a in whole)


# --- stopping, with a model whose next token is scripted -----------------------------------------
class ScriptedLlama(LlamaForCausalLM):
    """Greedy next token = ``script[last input token]`` (EOS when unscripted)."""

    script: dict[int, int] = {}
    calls = 0

    def forward(self, *args, **kwargs):
        out = super().forward(*args, **kwargs)
        last = kwargs["input_ids"][:, -1].tolist()
        logits = torch.full_like(out.logits, -1e4)
        for row, tok in enumerate(last):
            logits[row, -1, self.script.get(tok, self.config.eos_token_id)] = 0.0
        out.logits = logits
        type(self).calls += 1
        return out


@pytest.fixture
def scripted(tokenizer):
    tok = copy.deepcopy(tokenizer)
    # the prompt is the question itself, so each row's last prompt token can differ
    tok.chat_template = "{% for m in messages %}{% if m['role'] == 'user' %}{{ m['content'] }}{% endif %}{% endfor %}"
    ids = {c: tok.convert_tokens_to_ids(c) for c in "QZABCDE"}
    ids["\n"] = tok.convert_tokens_to_ids("Ċ")  # byte-level BPE's newline
    assert tok.unk_token_id not in ids.values() and len(set(ids.values())) == len(ids)
    assert ids["\n"] in newline_token_ids(tok)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=16, intermediate_size=32,
                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
                         pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                         eos_token_id=tok.eos_token_id)
    torch.manual_seed(0)
    model = ScriptedLlama(config).eval()
    ScriptedLlama.calls = 0
    i = ids
    ScriptedLlama.script = {
        i["Q"]: i["A"], i["A"]: i["\n"], i["\n"]: i["B"], i["B"]: tok.eos_token_id,  # Q -> "A\nB"
        i["Z"]: i["C"], i["C"]: i["D"], i["D"]: i["E"], i["E"]: tok.eos_token_id,     # Z -> "CDE"
    }
    return model, tok


def test_stops_at_newline(scripted):
    model, tok = scripted
    assert generate_answers(model, tok, ["Q"], "chat", max_new_tokens=50) == ["A"]
    assert ScriptedLlama.calls == 2  # "A", then the newline: generation stops there


def test_stops_at_eos_without_newline_stop(scripted):
    model, tok = scripted
    assert generate_answers(model, tok, ["Q"], "chat", max_new_tokens=50, stop_at_newline=False) == ["A\nB"]
    assert ScriptedLlama.calls == 4  # A, newline, B, EOS: nothing after EOS


def test_rows_stop_independently_in_a_batch(scripted):
    model, tok = scripted
    assert generate_answers(model, tok, ["Q", "Z", "Q"], "chat", max_new_tokens=50) == ["A", "CDE", "A"]
    assert ScriptedLlama.calls == 4  # the batch runs until its last row ends (Z: C, D, E, EOS)
    assert generate_answers(model, tok, ["Z", "Q"], "chat", max_new_tokens=50, batch_size=1) == ["CDE", "A"]


def test_max_new_tokens_caps(scripted):
    model, tok = scripted
    ScriptedLlama.script = {**ScriptedLlama.script, tok.convert_tokens_to_ids("C"): tok.convert_tokens_to_ids("C")}
    assert generate_answers(model, tok, ["Z"], "chat", max_new_tokens=7) == ["C" * 7]


def test_stop_on_newline_criterion(tokenizer):
    nl = tokenizer.convert_tokens_to_ids("Ċ")
    a = tokenizer.convert_tokens_to_ids("A")
    stop = StopOnNewline(tokenizer, prompt_length=2)
    ids = torch.tensor([[nl, a, a], [a, a, nl], [a, nl, a]])  # newline in the prompt does not count
    assert stop(ids, None).tolist() == [False, True, False]
    assert stop(ids[:, :2], None).tolist() == [False, False, False]


# --- ROUGE --------------------------------------------------------------------------------------
PAIRS = [  # (reference, generated)
    ("The cat sat on the mat.", "The cat sat."),
    ("Abena Eklund was born in Perth, Australia.", "Abena Eklund is a native of Perth, a city in Australia."),
    ("She keeps running and writing stories", "she runs and wrote a story"),
    ("An entirely different sentence", "nothing shared here"),
    ("Jane Austen", ""),
    ("The books explore migration and displacement.", "The books explore migration and displacement."),
]


def test_rouge_l_recall_matches_rouge_score():
    scorer = rouge_scorer.RougeScorer(["rouge1", "rougeL"], use_stemmer=True)
    refs, preds = zip(*PAIRS)
    ours = rouge_l_recall(list(refs), list(preds))
    assert ours == [scorer.score(r, p)["rougeL"].recall for r, p in PAIRS]
    assert ours[0] == pytest.approx(3 / 6)  # LCS "the cat sat" over 6 reference tokens
    assert ours[3] == 0.0 and ours[4] == 0.0 and ours[5] == 1.0


def test_rouge_l_f1_matches_rouge_score():
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    refs, preds = zip(*PAIRS)
    ours = rouge_l_f1(list(refs), list(preds))
    assert ours == [scorer.score(r, p)["rougeL"].fmeasure for r, p in PAIRS]
    assert ours[0] == pytest.approx(2 * 0.5 * 1.0 / 1.5)  # P = 3/3, R = 3/6


def test_stemmer_only_in_recall():
    ref, pred = "running dogs", "run dog"
    assert rouge_l_recall([ref], [pred]) == [1.0]  # Porter stemmer: run, dog
    assert rouge_l_f1([ref], [pred]) == [0.0]      # no stemmer: nothing in common
    # argument order matters for recall: score(reference, generated)
    assert rouge_l_recall(["a b c d"], ["a b"]) == [0.5]
    assert rouge_l_recall(["a b"], ["a b c d"]) == [1.0]
