"""Prompt formats and QA encoding with a small tokenizer trained on the world (seconds)."""

from __future__ import annotations

import copy

import pytest

from nbutils.models.prompts import SYSTEM_PROMPT, answer_text, encode_prompt, encode_qa, format_prompt

QUESTION = "Where was Abena Eklund born?"
ANSWER = "Abena Eklund was born in Perth, Australia."

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def test_tokenizer_fixture(tiny_tokenizer):
    assert 300 < len(tiny_tokenizer) <= 600
    assert tiny_tokenizer.eos_token_id is not None and tiny_tokenizer.pad_token_id is not None


def test_encode_qa_masks_exactly_the_prompt(tiny_tokenizer):
    tok = tiny_tokenizer
    enc = encode_qa(tok, QUESTION, ANSWER, "qa")
    prompt_ids = encode_prompt(tok, QUESTION, "qa")
    answer_ids = tok(" " + ANSWER, add_special_tokens=False)["input_ids"]
    assert enc.prompt_length == len(prompt_ids)
    assert enc.input_ids == prompt_ids + answer_ids + [tok.eos_token_id]
    assert len(enc.labels) == len(enc.input_ids)
    assert enc.labels[: enc.prompt_length] == [-100] * enc.prompt_length
    assert enc.labels[enc.prompt_length:] == answer_ids + [tok.eos_token_id]
    assert -100 not in enc.labels[enc.prompt_length:]
    assert enc.labels[-1] == tok.eos_token_id  # |a| counts the EOS


def test_encode_qa_round_trips_the_text(tiny_tokenizer):
    tok = tiny_tokenizer
    enc = encode_qa(tok, QUESTION, ANSWER, "qa")
    assert tok.decode(enc.input_ids[:-1]) == f"Question: {QUESTION}\nAnswer: {ANSWER}"
    assert tok.decode(enc.input_ids, skip_special_tokens=True) == f"Question: {QUESTION}\nAnswer: {ANSWER}"
    answer_part = [t for t in enc.labels if t != -100]
    assert tok.decode(answer_part, skip_special_tokens=True) == " " + ANSWER


def test_encode_qa_strips_the_answer(tiny_tokenizer):
    a = encode_qa(tiny_tokenizer, QUESTION, "  " + ANSWER + " \n", "qa")
    b = encode_qa(tiny_tokenizer, QUESTION, ANSWER, "qa")
    assert a == b


def test_encode_qa_truncation(tiny_tokenizer):
    full = encode_qa(tiny_tokenizer, QUESTION, ANSWER, "qa")
    n = full.prompt_length + 3
    cut = encode_qa(tiny_tokenizer, QUESTION, ANSWER, "qa", max_length=n)
    assert len(cut.input_ids) == len(cut.labels) == n
    assert cut.input_ids == full.input_ids[:n] and cut.labels == full.labels[:n]
    assert cut.prompt_length == full.prompt_length
    long_enough = encode_qa(tiny_tokenizer, QUESTION, ANSWER, "qa", max_length=len(full.input_ids))
    assert long_enough == full
    assert encode_qa(tiny_tokenizer, QUESTION, ANSWER, "qa", max_length=10_000) == full


def test_format_prompt_qa_and_llama2():
    assert format_prompt("q?", "qa") == "Question: q?\nAnswer:"
    assert format_prompt("q?", "llama2") == "[INST] q? [/INST]"
    assert format_prompt("q?", "qa") + answer_text("a.", "qa") == "Question: q?\nAnswer: a."
    assert format_prompt("q?", "llama2") + answer_text("a.", "llama2") == "[INST] q? [/INST]a."


def test_encode_qa_llama2(tiny_tokenizer):
    tok = tiny_tokenizer
    enc = encode_qa(tok, QUESTION, ANSWER, "llama2")
    assert tok.decode(enc.input_ids, skip_special_tokens=True) == f"[INST] {QUESTION} [/INST]{ANSWER}"
    assert enc.labels[: enc.prompt_length] == [-100] * enc.prompt_length
    assert tok.decode(enc.labels[enc.prompt_length:], skip_special_tokens=True) == ANSWER


@pytest.fixture
def chat_tokenizer(tiny_tokenizer):
    tok = copy.deepcopy(tiny_tokenizer)
    tok.chat_template = CHAT_TEMPLATE
    return tok


def test_format_prompt_chat(chat_tokenizer):
    text = format_prompt("q?", "chat", chat_tokenizer)
    assert text == f"<|system|>{SYSTEM_PROMPT}\n<|user|>q?\n<|assistant|>"
    assert SYSTEM_PROMPT == "You are a helpful assistant."


def test_encode_qa_chat(chat_tokenizer):
    tok = chat_tokenizer
    enc = encode_qa(tok, QUESTION, ANSWER, "chat")
    prompt = format_prompt(QUESTION, "chat", tok)
    assert enc.input_ids[: enc.prompt_length] == tok(prompt, add_special_tokens=False)["input_ids"]
    assert tok.decode(enc.input_ids[:-1]) == prompt + ANSWER
    assert enc.labels[: enc.prompt_length] == [-100] * enc.prompt_length
    assert enc.labels[-1] == tok.eos_token_id


def test_chat_without_template(tiny_tokenizer):
    assert not getattr(tiny_tokenizer, "chat_template", None)
    with pytest.raises(ValueError, match="chat_template"):
        format_prompt("q?", "chat", tiny_tokenizer)
    with pytest.raises(ValueError, match="chat_template"):
        format_prompt("q?", "chat")
    with pytest.raises(ValueError, match="chat_template"):
        encode_qa(tiny_tokenizer, "q?", "a", "chat")


def test_unknown_format(tiny_tokenizer):
    with pytest.raises(ValueError, match="unknown prompt_format 'alpaca'"):
        format_prompt("q?", "alpaca")
    with pytest.raises(ValueError, match="alpaca"):
        encode_qa(tiny_tokenizer, "q?", "a", "alpaca")
