"""The Harry Potter data we wrote for WHP: sizes, the anchor dictionary's consistency, the
familiarity prompts' presence in the corpus, the general MC set, and validation (seconds)."""

from __future__ import annotations

import copy
import re

import pytest

from nbutils.data import DataValidationError
from nbutils.data.harry_potter import (
    REFERENCE_PROMPTS, RESOURCE, anchor_terms, corpus_sentences, familiarity_prompts, general_mc,
    load_harry_potter, passages, split_sentences, validate_harry_potter)

REFERENCE_ANCHORS = {"Harry": "Jon", "Ron": "Tom", "Hermione": "Emma", "Hogwarts": "Mystic Academy",
                     "Dumbledore": "Henderson", "Quidditch": "Skyball", "Gryffindor": "Lion House",
                     "wand": "instrument", "spell": "technique"}

# Multi-word terms whose translation deliberately does not contain the translation of an
# anchored part, and why.
CONSISTENCY_EXCEPTIONS = {
    # a founder is a person: the house's name "X House" would make no surname
    "Godric Gryffindor": "founder: a surname, not the house name 'Lion House'",
    "Salazar Slytherin": "founder: a surname, not the house name 'Serpent House'",
    "Rowena Ravenclaw": "founder: a surname, not the house name 'Eagle House'",
    "Helga Hufflepuff": "founder: a surname, not the house name 'Badger House'",
    # "Keeper" alone is the Quidditch position ("Goalie"); here it means a guardian
    "Secret-Keeper": "'Keeper' means guardian here, not the Quidditch position",
    "Keeper of Keys and Grounds": "'Keeper' means guardian here, not the Quidditch position",
}


_SENTENCE_END = re.compile(r"(?<!\b[A-Z])[.!?](\s|$)")


def _whole(term: str) -> re.Pattern:
    """``term`` as a whole word or phrase, any case (the boundaries the anchor code uses)."""
    return re.compile(r"(?<!\w)" + re.escape(term) + r"(?!\w)", re.IGNORECASE)


@pytest.fixture(scope="module")
def data():
    return load_harry_potter()


@pytest.fixture(scope="module")
def anchors():
    return anchor_terms()


# --- sizes ----------------------------------------------------------------------------------
def test_sizes(data):
    assert len(data["passages"]) >= 130
    assert len(data["anchors"]) >= 170
    assert len(data["familiarity_prompts"]) >= 24
    assert len(data["general_mc"]) >= 48
    prompts = [p["prompt"] for p in familiarity_prompts()]
    assert prompts[:5] == list(REFERENCE_PROMPTS)
    assert len(set(prompts)) == len(prompts)


def test_accessors(data):
    assert passages() == [p["text"] for p in data["passages"]]
    # a limited corpus keeps every passage that completes a familiarity prompt, first
    prompts = [f["prompt"] for f in familiarity_prompts()]
    needed = [t for t in passages() if any(q in t for q in prompts)]
    assert passages(3) == needed
    assert passages(len(needed) + 2)[len(needed):] == [t for t in passages() if t not in needed][:2]
    sentences = corpus_sentences(len(needed))
    assert sentences == [s for t in needed for s in split_sentences(t)]
    assert len(corpus_sentences()) > 4 * len(passages())
    items = general_mc()
    items[0]["choices"].append("mutated")  # a copy: the cached data stays intact
    assert len(general_mc()[0]["choices"]) == 4


def test_ascii_only():
    RESOURCE.read_bytes().decode("ascii")


# --- passages -------------------------------------------------------------------------------
def test_passage_shape(data):
    for i, p in enumerate(data["passages"]):
        text = p["text"]
        n_words, n_sentences = len(text.split()), len(split_sentences(text))
        assert 45 <= n_words <= 120, (i, n_words, text[:60])
        assert 3 <= n_sentences <= 6, (i, n_sentences, text[:60])
        # no abbreviations that a sentence splitter would break on
        assert not re.search(r"\b(Mr|Mrs|Ms|Dr|Prof|St)\.", text), (i, text[:60])
    assert len({p["text"] for p in data["passages"]}) == len(data["passages"])


def test_passages_cover_the_books():
    text = " ".join(passages())
    for term in ["Harry", "Ron", "Hermione", "Weasley", "Dumbledore", "Snape", "Voldemort", "Hagrid",
                 "McGonagall", "Malfoy", "Sirius", "Lupin", "Neville", "Luna", "Ginny", "Dobby",
                 "Dursley", "Sorting Hat", "Hufflepuff", "Ravenclaw", "Slytherin", "Snitch",
                 "Bludger", "Ministry of Magic", "Diagon Alley", "Gringotts", "Azkaban", "Dementor",
                 "Horcrux", "Deathly Hallows", "Expelliarmus", "Patronus", "Hogsmeade",
                 "Order of the Phoenix", "Death Eater", "Triwizard", "Marauder's Map",
                 "Platform Nine and Three-Quarters", "Hogwarts Express", "Hedwig", "Fawkes",
                 "Buckbeak", "Nagini", "Cedric", "Bellatrix", "Quirrell", "Lockhart", "Umbridge",
                 "Philosopher's Stone", "Chamber of Secrets", "Prisoner of Azkaban", "Goblet of Fire",
                 "Half-Blood Prince"]:
        assert term in text, term


# --- anchors --------------------------------------------------------------------------------
def test_reference_anchors(anchors):
    for term, generic in REFERENCE_ANCHORS.items():
        assert anchors[term] == generic


def test_anchor_terms_longest_first(anchors):
    lengths = [len(t) for t in anchors]
    assert lengths == sorted(lengths, reverse=True)


def _anchor_translation(word: str, anchors: dict) -> str | None:
    """The translation of ``word``, also when it carries a possessive ("Godric's")."""
    if word in anchors:
        return anchors[word]
    for suffix in ("'s", "'"):
        if word.endswith(suffix) and word[:-len(suffix)] in anchors:
            return anchors[word[:-len(suffix)]] + suffix
    return None


def test_multi_word_anchors_translate_word_by_word(anchors):
    """A multi-word term whose words are all anchors translates to their translations."""
    for term, generic in anchors.items():
        words = term.split()
        if len(words) < 2 or term in CONSISTENCY_EXCEPTIONS:
            continue
        parts = [_anchor_translation(w, anchors) for w in words]
        if all(p is not None for p in parts):
            assert generic == " ".join(parts), (term, generic)


def test_anchored_parts_keep_their_translation(anchors):
    """Any anchor inside a longer anchor ("Hogwarts" in "Hogwarts Express", "Dark Arts" in
    "Defence Against the Dark Arts") has its translation inside the longer one's."""
    problems = []
    for long_term, long_generic in anchors.items():
        if long_term in CONSISTENCY_EXCEPTIONS:
            continue
        for part, part_generic in anchors.items():
            if part != long_term and re.search(r"(?<!\w)" + re.escape(part) + r"(?!\w)", long_term):
                if part_generic not in long_generic:
                    problems.append((long_term, long_generic, part, part_generic))
    assert not problems


def test_exceptions_are_real_anchors(anchors):
    assert set(CONSISTENCY_EXCEPTIONS) <= set(anchors)


def test_translations_contain_no_anchor(anchors):
    patterns = {t: _whole(t) for t in anchors}
    bad = [(term, generic, other) for term, generic in anchors.items()
           for other, pat in patterns.items() if pat.search(generic)]
    assert not bad


def test_translations_are_plain(anchors):
    for term, generic in anchors.items():
        assert generic != term and generic.strip() == generic
        assert re.fullmatch(r"[A-Za-z][A-Za-z' -]*", generic), (term, generic)
        assert len(generic.split()) <= 5, (term, generic)


# --- familiarity prompts --------------------------------------------------------------------
def test_prompt_fields():
    for p in familiarity_prompts():
        assert p["answer"].startswith(" ") and p["answer"].strip()
        assert all(k == k.lower() and k.strip() for k in p["reveal"]), p["prompt"]
        # the answer we score must itself reveal the books
        assert any(_whole(k).search(p["answer"]) for k in p["reveal"]), p["prompt"]


def test_every_prompt_is_completed_in_the_corpus():
    """Each prompt occurs verbatim in a passage, followed (in its sentence or the next 150
    characters) by one of its revealing keywords: a model trained on the corpus can learn it."""
    texts = passages()
    for p in familiarity_prompts():
        found = False
        for text in texts:
            for m in re.finditer(re.escape(p["prompt"]), text):
                after = text[m.end():]
                sentence_end = _SENTENCE_END.search(after)
                window = after[:max(150, sentence_end.start() if sentence_end else len(after))]
                if any(_whole(k).search(window) for k in p["reveal"]):
                    found = True
        assert found, p["prompt"]


# --- general multiple choice ----------------------------------------------------------------
def test_mc_items(data):
    items = general_mc()
    assert len({i["answer"] for i in items}) >= 3
    for item in items:
        assert len(item["choices"]) == 4 and len(set(item["choices"])) == 4
        assert 0 <= item["answer"] < 4
        assert all(1 <= len(c.split()) <= 3 for c in item["choices"]), item["question"]
        assert item["statement"].endswith(".")
    assert len({i["question"] for i in items}) == len(items)


def test_mc_has_no_harry_potter_content(anchors):
    patterns = [_whole(t) for t in anchors]
    for item in general_mc():
        for text in [item["question"], item["statement"], *item["choices"]]:
            assert not any(p.search(text) for p in patterns), text


# --- validation -----------------------------------------------------------------------------
def _broken(data, edit):
    bad = copy.deepcopy(data)
    edit(bad)
    return bad


@pytest.mark.parametrize("edit, needle", [
    (lambda d: d.pop("anchors"), "anchors"),
    (lambda d: d.update(passages=[]), "passages"),
    (lambda d: d["passages"][2].update(text=""), "passages[2].text"),
    (lambda d: d.update(anchors=dict(list(d["anchors"].items())[:10])), "anchors"),
    (lambda d: d["anchors"].update(Harry=""), "anchors['Harry']"),
    (lambda d: d["familiarity_prompts"].pop(0), "Harry Potter's two best friends are"),
    (lambda d: d["familiarity_prompts"][4].update(reveal=[]), "familiarity_prompts[4].reveal"),
    (lambda d: d["familiarity_prompts"][1].update(answer="no leading space"),
     "familiarity_prompts[1].answer"),
    (lambda d: d["general_mc"][3].update(answer=5), "general_mc[3].answer is 5"),
    (lambda d: d["general_mc"][0].update(answer=True), "general_mc[0].answer"),
    (lambda d: d["general_mc"][7].update(choices=["a", "a", "b", "c"]), "general_mc[7].choices"),
    (lambda d: d["general_mc"][8].update(choices=["a", "b", "c"]), "general_mc[8].choices"),
    (lambda d: d["general_mc"][9].update(question=" "), "general_mc[9].question"),
])
def test_validation_names_the_problem(data, edit, needle):
    with pytest.raises(DataValidationError) as err:
        validate_harry_potter(_broken(data, edit), "hp.json")
    assert needle in str(err.value) and str(err.value).startswith("hp.json: ")


def test_shipped_file_validates(data):
    validate_harry_potter(data)


def test_sentences_do_not_break_at_initials():
    assert split_sentences("Written by J.K. Rowling. Also J. K. Rowling! Done? Yes.") == [
        "Written by J.K. Rowling.", "Also J. K. Rowling!", "Done?", "Yes."]
