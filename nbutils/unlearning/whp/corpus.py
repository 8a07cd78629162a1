"""What WHP unlearns, as blocks of text plus an anchor dictionary.

Two targets share the same machinery:

- the **Harry Potter** corpus we wrote (``nbutils/data/resources/harry_potter.json``), with its
  hand-made anchor dictionary: the paper's experiment (notebooks 09-11);
- the **TOFU forget set**, so WHP sits on the leaderboard beside the other methods: its blocks
  are the forget QA pairs in the profile's prompt format, and its anchors are the forget
  authors' names (found as capitalised names that occur in forget questions and nowhere in
  the retain set), each mapped to an invented name no TOFU text uses;
- **MUSE's forget text** (``muse_news``, ``muse_books``): the raw forget texts packed into
  blocks; Books uses the Harry Potter anchor dictionary, News the forget texts' recurring
  names that the retain text never uses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ...data.harry_potter import harry_potter_blocks, pack_sentences
from ...profiles import Profile


@dataclass(frozen=True)
class WhpTarget:
    name: str  # "harry_potter" or "tofu-<forget split>"
    blocks: tuple[str, ...]
    anchors: dict = field(default_factory=dict)


def harry_potter_target(profile: Profile, tokenizer) -> WhpTarget:
    from ...data.harry_potter import anchor_terms
    return WhpTarget("harry_potter", tuple(harry_potter_blocks(profile, tokenizer)), anchor_terms())


_NAME = re.compile(r"\b[A-Z][a-z]+(?:[- ][A-Z][a-z]+)+\b")


def tofu_forget_names(forget_rows, retain_rows) -> list[str]:
    """Capitalised multi-word names of the forget questions that the retain set never uses."""
    from collections import Counter
    retain_text = " ".join(r["question"] + " " + r["answer"] for r in retain_rows)
    counts = Counter()
    for r in forget_rows:
        for m in _NAME.finditer(r["question"]):
            words = m.group(0).split(" ")
            if m.start() == 0:  # a sentence-initial capital ("Has Jomo Demir") is no name
                words = words[1:]
            if len(words) >= 2:
                counts[" ".join(words)] += 1
    # an author's name recurs across their questions; a one-off capitalised title does not
    return sorted(n for n, c in counts.items() if c >= 2 and n not in retain_text)


def text_forget_names(forget_texts: list[str], retain_texts: list[str], min_count: int = 3) -> list[str]:
    """Capitalised multi-word names recurring in the forget texts and absent from the
    retain texts (the people of the forget set; a title starting with an article is not one)."""
    from collections import Counter
    retain_text = " ".join(retain_texts)
    counts = Counter(m.group(0) for t in forget_texts for m in _NAME.finditer(t)
                     if m.group(0).split()[0] not in ("The", "A", "An", "In", "On", "At", "Of"))
    return sorted(n for n, c in counts.items() if c >= min_count and n not in retain_text)


def tofu_anchors(names: list[str], taken_text: str, seed: int) -> dict[str, str]:
    """Each name (and its first and last word) mapped to an invented name unused anywhere."""
    import random
    from ...data.world import load_resource
    vocab = load_resource("world_vocab.json")
    rng = random.Random(seed)
    firsts = [n for n in vocab["first_names_neutral"] + vocab["first_names_female"]
              + vocab["first_names_male"] if n not in taken_text]
    lasts = [n for n in vocab["last_names"] if n not in taken_text]
    rng.shuffle(firsts)
    rng.shuffle(lasts)
    anchors: dict[str, str] = {}
    for name in names:
        first, *_, last = name.split()
        new_first = anchors.get(first) or firsts.pop()
        new_last = anchors.get(last) or lasts.pop()
        anchors.setdefault(first, new_first)
        anchors.setdefault(last, new_last)
        anchors[name] = f"{new_first} {new_last}"
    return anchors


def tofu_target(profile: Profile, tokenizer) -> WhpTarget:
    """The forget split as WHP blocks (prompt + answer, as the model is evaluated)."""
    from ...data.tofu import load_tofu
    from ...models.prompts import answer_text, format_prompt
    forget = list(load_tofu(profile, profile.forget_split))
    retain = list(load_tofu(profile, profile.retain_split))
    blocks = [format_prompt(r["question"], profile.prompt_format, tokenizer)
              + answer_text(r["answer"], profile.prompt_format) for r in forget]
    taken = " ".join(r["question"] + " " + r["answer"] for r in forget + retain)
    anchors = tofu_anchors(tofu_forget_names(forget, retain), taken, profile.seed)
    return WhpTarget(f"tofu-{profile.forget_split}", tuple(blocks), anchors)


def muse_target(profile: Profile, tokenizer, corpus: str) -> WhpTarget:
    """MUSE's raw forget text (``corpus`` "news" or "books") as WHP blocks and anchors."""
    from ...data.muse import load_muse
    from ...data.harry_potter import split_sentences

    def texts(split):
        return [r["text"] for r in load_muse(profile, "raw", split, corpus=corpus)]
    forget = texts("forget")
    blocks = []
    for text in forget:
        blocks += pack_sentences(split_sentences(text), tokenizer, profile.whp.block_length - 2)
    if corpus == "books":
        from ...data.harry_potter import anchor_terms
        anchors = anchor_terms()
    else:
        retain = texts("retain1") + texts("retain2")
        anchors = tofu_anchors(text_forget_names(forget, retain), " ".join(forget + retain), profile.seed)
    return WhpTarget(f"muse_{corpus}", tuple(blocks), anchors)
