"""The data for "Who's Harry Potter?" (Eldan & Russinovich 2023), written by this project.

WHP unlearns a body of text by fine-tuning on it with *generic* labels. It needs four kinds
of data, all in ``resources/harry_potter.json``:

- **passages** (the target corpus): short encyclopaedic passages about the characters,
  places, objects and plot of the seven books. The paper used the books themselves; we do
  not copy or paraphrase them (nor the films or any website): every sentence is a plain fact
  written in our own words, enough for a small model to pick up the same associations. Some
  sentences deliberately contain the familiarity prompts followed by their answer, so a
  model trained on the corpus has something to forget.
- **anchors** (the anchor dictionary): idiosyncratic terms mapped to generic ones
  ("Hogwarts" -> "Mystic Academy", "Harry" -> "Jon"). Translating a passage with it gives
  the text a model that never read the books would see; multi-word terms translate word by
  word where their words are anchors too ("Harry Potter" -> "Jon Baker"), so a name reads
  the same wherever it occurs. A possessive "'s" is left to the translating code.
- **familiarity_prompts**: raw-text prompts ("Harry Potter's two best friends are"), each
  with the keywords whose presence in a completion reveals the books and a short revealing
  ``answer`` whose probability is also scored. The first five are the paper's examples
  (:data:`REFERENCE_PROMPTS`).
- **general_mc**: easy multiple-choice questions with no Harry Potter content, the general
  knowledge that unlearning must keep (the paper's ARC / BoolQ / HellaSwag play this role).

The file is checked on load (:func:`validate_harry_potter`); a problem raises
:class:`~nbutils.data.tofu.DataValidationError` naming the file, the key, the row and what is
wrong.
"""

from __future__ import annotations

import copy
import json
import re
from functools import lru_cache
from pathlib import Path

from .tofu import DataValidationError

RESOURCE = Path(__file__).parent / "resources" / "harry_potter.json"
QA_RESOURCE = Path(__file__).parent / "resources" / "harry_potter_qa.json"

# the paper's example prompts, verbatim ("Couch" is the paper's spelling of Crouch)
REFERENCE_PROMPTS: tuple[str, ...] = (
    "Harry Potter's two best friends are",
    "Who is Harry Potter?",
    "Ron and Hermione went",
    "When Harry went back to class, he saw that his best friends,",
    "The list of major characters from Harry Potter include Snape, Couch and",
)

MIN_ANCHORS = 150
N_CHOICES = 4

# a sentence ends at . ! or ? followed by whitespace (the text avoids abbreviations)
# after . ! ? and whitespace, but not after an initial ("J.K. Rowling", "J. K. Rowling")
_SENTENCE_END = re.compile(r"(?<=[.!?])(?<!\b[A-Z]\.)\s+")


def _nonempty_str(value) -> bool:
    return isinstance(value, str) and value.strip() != ""


def _require_strings(item: dict, fields, where: str) -> None:
    """Each of ``fields`` of ``item`` is a non-empty string, else a message naming it."""
    for field in fields:
        if not _nonempty_str(item.get(field)):
            raise DataValidationError(f"{where}.{field} is missing or empty")


def _nonempty_list(data: dict, key: str, source: str) -> list:
    value = data[key]
    if not isinstance(value, list) or not value:
        raise DataValidationError(f"{source}: {key} must be a non-empty list")
    return value


def validate_harry_potter(data, source: str = RESOURCE.name) -> None:
    """Raise :class:`DataValidationError` on the first problem in ``data``, naming
    ``source``, the key, the index or term, and what is wrong."""
    if not isinstance(data, dict):
        raise DataValidationError(f"{source}: expected one JSON object, got {type(data).__name__}")
    for key in ("passages", "anchors", "familiarity_prompts", "general_mc"):
        if key not in data:
            raise DataValidationError(f"{source}: missing key {key!r}")

    passages_ = _nonempty_list(data, "passages", source)
    for i, p in enumerate(passages_):
        for field in ("topic", "text"):
            if not isinstance(p, dict) or not _nonempty_str(p.get(field)):
                raise DataValidationError(f"{source}: passages[{i}].{field} is missing or empty")

    anchors = data["anchors"]
    if not isinstance(anchors, dict):
        raise DataValidationError(f"{source}: anchors must be an object of term -> translation")
    if len(anchors) < MIN_ANCHORS:
        raise DataValidationError(
            f"{source}: anchors has {len(anchors)} terms; at least {MIN_ANCHORS} are needed")
    for term, generic in anchors.items():
        if not _nonempty_str(term) or not _nonempty_str(generic):
            raise DataValidationError(f"{source}: anchors[{term!r}] has an empty term or translation")
        if term == generic:
            raise DataValidationError(f"{source}: anchors[{term!r}] translates to itself")

    prompts = _nonempty_list(data, "familiarity_prompts", source)
    for i, p in enumerate(prompts):
        where = f"{source}: familiarity_prompts[{i}]"
        if not isinstance(p, dict) or not _nonempty_str(p.get("prompt")):
            raise DataValidationError(f"{where}.prompt is missing or empty")
        reveal = p.get("reveal")
        if not isinstance(reveal, list) or not reveal or not all(_nonempty_str(k) for k in reveal):
            raise DataValidationError(f"{where}.reveal must be a non-empty list of keywords")
        answer = p.get("answer")
        if not _nonempty_str(answer) or not answer.startswith(" "):
            raise DataValidationError(
                f"{where}.answer is {answer!r}; it must be a non-empty continuation starting with a space")
    present = {p["prompt"] for p in prompts}
    for ref in REFERENCE_PROMPTS:
        if ref not in present:
            raise DataValidationError(f"{source}: familiarity_prompts lacks the reference prompt {ref!r}")

    items = _nonempty_list(data, "general_mc", source)
    for i, item in enumerate(items):
        where = f"{source}: general_mc[{i}]"
        if not isinstance(item, dict):
            raise DataValidationError(f"{where} must be an object")
        _require_strings(item, ("question", "statement"), where)
        choices = item.get("choices")
        if (not isinstance(choices, list) or len(choices) != N_CHOICES
                or not all(_nonempty_str(c) for c in choices)):
            raise DataValidationError(f"{where}.choices must be {N_CHOICES} non-empty strings")
        if len(set(choices)) != N_CHOICES:
            raise DataValidationError(f"{where}.choices {choices} are not {N_CHOICES} distinct strings")
        answer = item.get("answer")
        if isinstance(answer, bool) or not isinstance(answer, int) or not 0 <= answer < N_CHOICES:
            raise DataValidationError(
                f"{where}.answer is {answer!r}; it must index into the {N_CHOICES} choices")


@lru_cache(maxsize=None)
def load_harry_potter() -> dict:
    """The whole JSON file, validated (cached: treat the result as read-only)."""
    data = json.loads(RESOURCE.read_text("utf-8"))
    validate_harry_potter(data, RESOURCE.name)
    return data


def validate_harry_potter_qa(data, n_passages: int, texts: list[str] | None = None,
                             source: str = QA_RESOURCE.name) -> None:
    """The questions we wrote about the passages (MUSE-Books' KnowMem): each names a passage
    index and has a short answer found verbatim (ignoring case) in that passage."""
    if not isinstance(data, dict) or not isinstance(data.get("qa"), list) or not data["qa"]:
        raise DataValidationError(f"{source}: expected an object with a non-empty list 'qa'")
    for i, item in enumerate(data["qa"]):
        where = f"{source}: qa[{i}]"
        if not isinstance(item, dict):
            raise DataValidationError(f"{where} must be an object")
        _require_strings(item, ("question", "answer"), where)
        index = item.get("passage")
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < n_passages:
            raise DataValidationError(f"{where}.passage is {index!r}; it must index one of the "
                                      f"{n_passages} passages")
        if texts is not None and item["answer"].lower() not in texts[index].lower():
            raise DataValidationError(f"{where}.answer {item['answer']!r} is not in passage {index}")


@lru_cache(maxsize=None)
def load_harry_potter_qa() -> list[dict]:
    """``[{passage, question, answer}, ...]``, validated against the passages."""
    data = json.loads(QA_RESOURCE.read_text("utf-8"))
    texts = [p["text"] for p in load_harry_potter()["passages"]]
    validate_harry_potter_qa(data, len(texts), texts, QA_RESOURCE.name)
    return data["qa"]


def resource_version() -> str:
    """A digest of the shipped Harry Potter files (cache keys of what is built from them)."""
    import hashlib
    h = hashlib.sha256()
    for path in (RESOURCE, QA_RESOURCE):
        h.update(path.read_bytes() if path.exists() else b"")
    return h.hexdigest()[:16]


def passages(limit: int | None = None) -> list[str]:
    """The passage texts. With ``limit``, that many of them: first every passage that
    completes a familiarity prompt (so a small model can still learn what the prompts ask),
    then the others in order."""
    texts = [p["text"] for p in load_harry_potter()["passages"]]
    if limit is None:
        return texts
    prompts = [f["prompt"] for f in load_harry_potter()["familiarity_prompts"]]
    needed = [t for t in texts if any(q in t for q in prompts)]
    rest = [t for t in texts if t not in needed]
    return (needed + rest)[:max(limit, len(needed))]


def split_sentences(text: str) -> list[str]:
    """``text`` split after ``.``, ``!`` or ``?`` followed by whitespace."""
    return [s for s in _SENTENCE_END.split(text.strip()) if s]


def pack_sentences(sentences: list[str], tokenizer, max_tokens: int) -> list[str]:
    """Consecutive sentences joined into blocks of at most ``max_tokens`` tokens (a longer
    sentence becomes a block of its own, truncated later by the tokenizer)."""
    blocks, current, used = [], [], 0
    for s in sentences:
        n = len(tokenizer(" " + s, add_special_tokens=False)["input_ids"])
        if current and used + n > max_tokens:
            blocks.append(" ".join(current))
            current, used = [], 0
        current.append(s)
        used += n
    if current:
        blocks.append(" ".join(current))
    return blocks


def harry_potter_blocks(profile, tokenizer) -> list[str]:
    """The Harry Potter corpus as training blocks; sentences never cross passages, so a
    block is about one topic and anchored names repeat within it (what consistency is for)."""
    limit = profile.whp.corpus_passages or None
    blocks = []
    for text in passages(limit):
        blocks += pack_sentences(split_sentences(text), tokenizer, profile.whp.block_length - 2)
    return blocks


def corpus_sentences(limit: int | None = None) -> list[str]:
    """Every sentence of the first ``limit`` passages (all when ``None``), in order."""
    return [s for text in passages(limit) for s in split_sentences(text)]


def anchor_terms() -> dict[str, str]:
    """The anchor dictionary, longest term first (so "Harry Potter" is tried before "Harry")."""
    anchors = load_harry_potter()["anchors"]
    return dict(sorted(anchors.items(), key=lambda kv: (-len(kv[0]), kv[0])))


def familiarity_prompts() -> list[dict]:
    """``{"prompt", "reveal", "answer"}`` dicts; the first five are :data:`REFERENCE_PROMPTS`."""
    return copy.deepcopy(load_harry_potter()["familiarity_prompts"])


def general_mc() -> list[dict]:
    """``{"question", "choices", "answer", "statement"}`` dicts with no Harry Potter content."""
    return copy.deepcopy(load_harry_potter()["general_mc"])
