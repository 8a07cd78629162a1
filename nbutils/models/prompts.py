"""Prompt formats: how a question and its answer become one token sequence.

The answer part is tokenised on its own and appended to the prompt's tokens, so the
boundary between prompt (masked out of every loss) and answer is exact, never guessed from
a re-tokenised string. An EOS token closes every answer (REFERENCE: ``|a|`` counts it).
"""

from __future__ import annotations

from dataclasses import dataclass

SYSTEM_PROMPT = "You are a helpful assistant."
# formats that render the tokenizer's chat template; "llama3" is that template as
# open-unlearning calls it for its Llama-3.x models (configs/model/Llama-3.*.yaml): our system
# prompt and the date its template prints ("Today Date: ..."), pinned so prompts are the same
# whenever they are rendered
CHAT_FORMATS = ("chat", "llama3")
LLAMA3_DATE_STRING = "10 Apr 2025"
PROMPT_FORMATS = ("qa", "llama2", *CHAT_FORMATS)
# the label of a token no loss or score counts (prompt, padding): what torch's cross-entropy
# ignores by default
IGNORE = -100


@dataclass(frozen=True)
class EncodedQA:
    input_ids: list[int]
    labels: list[int]  # IGNORE on prompt tokens: only the answer (and its EOS) is scored
    prompt_length: int


def format_prompt(question: str, prompt_format: str, tokenizer=None) -> str:
    """The text the model sees before it answers."""
    if prompt_format == "qa":  # phi-1.5 / TOFU: "Question: {q}\nAnswer: {a}"
        return f"Question: {question}\nAnswer:"
    if prompt_format == "llama2":  # "[INST] {q} [/INST]{a}"
        return f"[INST] {question} [/INST]"
    if prompt_format in CHAT_FORMATS:
        if tokenizer is None or not getattr(tokenizer, "chat_template", None):
            raise ValueError(f"prompt_format {prompt_format!r} needs a tokenizer with a chat_template")
        messages = [{"role": "system", "content": SYSTEM_PROMPT},
                    {"role": "user", "content": question}]
        extra = {"date_string": LLAMA3_DATE_STRING} if prompt_format == "llama3" else {}
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, **extra)
    raise ValueError(f"unknown prompt_format {prompt_format!r}: use one of {PROMPT_FORMATS}")


def answer_text(answer: str, prompt_format: str) -> str:
    """The answer as it follows the prompt (the 'qa' format puts one space after 'Answer:')."""
    return " " + answer.strip() if prompt_format == "qa" else answer.strip()


def answer_window(labels) -> int:
    """How many positions, counted from the end of a right-padded batch, a loss on the
    answers needs logits for: from the position before the batch's first answer token on
    (position t predicts token t+1). Passed to the model as ``logits_to_keep``, it spares the
    LM head and the softmax over the vocabulary every prompt position, which no loss reads."""
    answer_columns = (labels != IGNORE).any(0).nonzero()
    first = int(answer_columns[0]) if len(answer_columns) else 1
    return labels.shape[1] - max(first - 1, 0)


def encode_prompt(tokenizer, question: str, prompt_format: str) -> list[int]:
    text = format_prompt(question, prompt_format, tokenizer)
    # chat templates already contain the BOS / special tokens they need
    add_special = prompt_format not in CHAT_FORMATS
    ids = tokenizer(text, add_special_tokens=add_special)["input_ids"]
    return list(ids)


def encode_qa(tokenizer, question: str, answer: str, prompt_format: str,
              max_length: int | None = None) -> EncodedQA:
    """Token ids of prompt + answer + EOS, with labels masking the prompt."""
    prompt_ids = encode_prompt(tokenizer, question, prompt_format)
    answer_ids = list(tokenizer(answer_text(answer, prompt_format), add_special_tokens=False)["input_ids"])
    answer_ids.append(tokenizer.eos_token_id)
    ids = prompt_ids + answer_ids
    labels = [IGNORE] * len(prompt_ids) + answer_ids
    if max_length is not None and len(prompt_ids) >= max_length:
        # truncating would leave no answer token to train or score: a NaN loss later
        raise ValueError(
            f"the prompt of question {question[:60]!r} is {len(prompt_ids)} tokens, which leaves "
            f"no room for the answer within max_length={max_length}; raise the profile's "
            f"finetune.max_length")
    if max_length is not None and len(ids) > max_length:
        ids, labels = ids[:max_length], labels[:max_length]
    return EncodedQA(ids, labels, len(prompt_ids))


def encode_text_blocks(tokenizer, texts, block_length: int) -> list[dict]:
    """Raw text as language-modelling blocks, as muse_bench trains on it: each text's tokens
    cut into blocks of at most ``block_length`` tokens, each block starting with the tokens
    the tokenizer puts before any text (BOS, where it has one); the loss is on every token.

    Returns features ``{input_ids, labels}`` (labels = input ids), the layout every
    finetuning and unlearning step reads, so raw text and QA answers train through the same
    code."""
    prefix = list(tokenizer("", add_special_tokens=True)["input_ids"])
    room = block_length - len(prefix)
    if room < 1:
        raise ValueError(f"block_length={block_length} leaves no room for text after {prefix}")
    feats = []
    for text in texts:
        ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
        for start in range(0, len(ids), room):
            block = prefix + ids[start:start + room]
            feats.append({"input_ids": block, "labels": list(block)})
    return feats
