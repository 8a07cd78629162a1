"""Anchored terms: translate a block into generic terms, then line its tokens up with the
original's (WHP part 2).

The baseline model is run on the *translation* ("Jon went back to Mystic Academy"), where it
has no idiosyncratic knowledge to draw on; its next-token predictions there are what a model
that never read the books would say. To use them as labels for the *original* text, each
original token position needs its counterpart in the translation: ``difflib`` matches the
two token-id sequences, unchanged stretches map one to one, and a replaced term maps its
last token to the translated term's last token (both predict what follows the term).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class Replacement:
    """One anchored term found in the original text, and where its translation landed."""

    term: str
    generic: str
    start: int  # character span in the original
    end: int
    new_start: int  # character span in the translation
    new_end: int


@lru_cache(maxsize=8)
def _pattern(terms: tuple[str, ...]) -> re.Pattern:
    # longest first, so "Harry Potter" wins over "Harry"; whole words only, so "Ron" never
    # matches inside "Ronald" and "Harry's" still translates to "Jon's"
    ordered = sorted(terms, key=len, reverse=True)
    return re.compile(r"(?<![\w])(" + "|".join(re.escape(t) for t in ordered) + r")(?![\w])")


def translate(text: str, anchors: dict[str, str]) -> tuple[str, list[Replacement]]:
    """``text`` with every anchored term replaced by its generic translation."""
    if not anchors:
        return text, []
    out, reps, last = [], [], 0
    offset = 0
    for m in _pattern(tuple(anchors)).finditer(text):
        generic = anchors[m.group(1)]
        out.append(text[last:m.start()])
        new_start = m.start() + offset
        out.append(generic)
        reps.append(Replacement(m.group(1), generic, m.start(), m.end(), new_start,
                                new_start + len(generic)))
        offset += len(generic) - (m.end() - m.start())
        last = m.end()
    out.append(text[last:])
    return "".join(out), reps


def align_tokens(original_ids: list[int], translated_ids: list[int]) -> list[int | None]:
    """For each original position, the translated position whose next-token prediction
    stands in for it (``None``: no counterpart, e.g. the first tokens of a replaced term)."""
    mapping: list[int | None] = [None] * len(original_ids)
    matcher = difflib.SequenceMatcher(None, original_ids, translated_ids, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            for k in range(i2 - i1):
                mapping[i1 + k] = j1 + k
        elif tag == "replace":
            mapping[i2 - 1] = j2 - 1
    return mapping
