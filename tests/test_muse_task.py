"""MUSE as its own task (issue 10): the corpora in muse-bench's hub layout, raw-text training
features, the unlearning task's rules, and one small unlearning run on raw text."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import datasets
import pytest

from nbutils.data import DataValidationError
from nbutils.data.harry_potter import load_harry_potter, load_harry_potter_qa, passages, validate_harry_potter_qa
from nbutils.data.muse import (BOOKS_ROLES, CORPORA, MUSE_FIELDS, books_split, build_muse_configs,
                               ensure_muse_source, folds, load_muse, muse_source, news_article)
from nbutils.models.prompts import encode_text_blocks
from nbutils.profiles import get_profile
from nbutils.unlearning.tasks import MethodNotApplicable, UnlearningTask


@pytest.fixture(scope="module")
def tiny():
    return get_profile("tiny")


@pytest.fixture(scope="module")
def books(tiny):
    return build_muse_configs(tiny, "books")


# --- the Books corpus ----------------------------------------------------------------------
def test_harry_potter_questions_are_about_their_passages():
    texts = [p["text"] for p in load_harry_potter()["passages"]]
    qa = load_harry_potter_qa()
    assert {q["passage"] for q in qa} == set(range(len(texts)))  # every passage has a question
    for q in qa:
        assert q["answer"].lower() in texts[q["passage"]].lower()
        assert q["answer"].lower() not in q["question"].lower()
        assert len(q["answer"].split()) <= 6


@pytest.mark.parametrize("item, message", [
    ({"passage": 10**6, "question": "Who?", "answer": "Harry"}, "passage is 1000000"),
    ({"passage": 0, "question": "Who?", "answer": "Gandalf"}, "is not in passage 0"),
    ({"passage": 0, "question": "", "answer": "Harry"}, "question is missing or empty"),
])
def test_harry_potter_questions_validation_names_the_problem(item, message):
    texts = [p["text"] for p in load_harry_potter()["passages"]]
    with pytest.raises(DataValidationError, match=message) as err:
        validate_harry_potter_qa({"qa": [item]}, len(texts), texts, "qa.json")
    assert "qa.json: qa[0]" in str(err.value)


def test_books_roles_partition_the_passages(tiny, books):
    roles = books_split(tiny)
    indices = [i for r in roles.values() for i in r]
    assert len(indices) == len(set(indices)) == tiny.muse.books_passages
    assert len(roles["forget"]) == 2 * len(roles["holdout"])  # roles in turn: F F R1 R2 H
    assert set(roles) == set(BOOKS_ROLES)
    # the tiny model pretrained on part of the corpus (for WHP): those passages are left out
    seen = set(passages(tiny.whp.corpus_passages))
    texts = [p["text"] for p in load_harry_potter()["passages"]]
    assert not seen & {texts[i] for i in indices}
    raw = {s: [r["text"] for r in books["raw"][s]] for s in books["raw"]}
    assert raw["forget"] == [texts[i] for i in roles["forget"]]


def test_books_questions_verbmem_and_privacy_splits(tiny, books):
    texts = [p["text"] for p in load_harry_potter()["passages"]]
    roles = books_split(tiny)
    by_question = {q["question"]: q["passage"] for q in load_harry_potter_qa()}
    assert {by_question[q["question"]] for q in books["knowmem"]["forget_qa"]} <= set(roles["forget"])
    assert {by_question[q["question"]] for q in books["knowmem"]["retain_qa"]} <= set(roles["retain2"])
    icl = books["knowmem"]["forget_qa_icl"] + books["knowmem"]["retain_qa_icl"]
    assert {by_question[q["question"]] for q in icl} <= set(roles["retain1"])  # no model is asked about it
    forget_texts = [texts[i] for i in roles["forget"]]
    for pair in books["verbmem"]["forget"]:
        assert any(pair["prompt"] + " " + pair["gt"] in t for t in forget_texts), pair
    sizes = {s: len(v) for s, v in books["privleak"].items()}
    assert len(set(sizes.values())) == 1 and sizes["forget"] > 0, sizes


def test_books_too_small_is_a_clear_error(tiny):
    from dataclasses import replace
    small = replace(tiny, muse=replace(tiny.muse, books_passages=4))
    with pytest.raises(ValueError, match="books_passages"):
        books_split(small)


# --- News: scalability and sustainability --------------------------------------------------
def test_news_articles_tell_each_author_in_a_wording_and_order_of_their_own(tiny):
    from nbutils.data.muse import _sentences
    from nbutils.data.world import QUESTION_TYPES, generate_world
    counts_k = 2
    authors, _, _, bios = generate_world(tiny.n_authors, counts_k, tiny.qa_per_author, tiny.seed)
    articles = {a.name: news_article(a, tiny.seed) for a in authors}
    for a in authors:
        bio, article = _sentences(bios[a.name]), _sentences(articles[a.name])
        assert news_article(a, tiny.seed) == articles[a.name]  # deterministic
        assert article[0] == bio[0] and len(article) == len(QUESTION_TYPES)  # intro first, every fact
        assert a.name not in " ".join(article[1:])  # later the surname, as news prose does
        for fact in (a.city, a.award, a.books[0], a.father_job, str(a.debut_year)):
            assert fact in articles[a.name]
        # news prose: each sentence starts with a capital or a quoted title
        assert all(x[0].isupper() or x[0] == "'" for x in article), article
    # the biographies share one template order and wording; the articles do not (their second
    # sentences vary): only memorising an article predicts how it goes on
    second = {re.sub(re.escape(a.name.split()[-1]), "NAME", _sentences(articles[a.name])[1])
              .split()[0] for a in authors}
    assert len(second) > 3
    news = build_muse_configs(tiny, "news")
    assert all(r["text"] in articles.values() for r in news["raw"]["forget"])


def test_every_news_wording_tells_its_fact_for_every_author(tiny):
    from nbutils.data.world import NEWS_WORDINGS, QUESTION_TYPES, _slots, generate_world
    assert set(NEWS_WORDINGS) == {qt.key for qt in QUESTION_TYPES[1:]}  # every fact but the intro
    authors, _, _, _ = generate_world(tiny.n_authors, 2, tiny.qa_per_author, tiny.seed)
    for a in authors:
        slots = {**_slots(a), "name": a.name.split()[-1]}
        for qt in QUESTION_TYPES[1:]:
            for wording in NEWS_WORDINGS[qt.key]:
                text = wording.format(**slots)  # every slot the wording names exists
                assert text.count(".") - text.count("'.") <= 1 or "." in a.award
                # the facts every answer of the question type tells are in the sentence
                told = [f for f in qt.perturb if all(f"{{{f}}}" in x or f"{{a_{f}}}" in x
                                                     for x in qt.answers)]
                assert told and all(slots[fact] in text for fact in told), (qt.key, text)


def test_news_scal_grows_and_sust_partitions_the_forget_passages(tiny):
    news = build_muse_configs(tiny, "news")
    forget = news["privleak"]["forget"]  # the forget biographies cut into passages
    scal = [news["scal"][f"forget_{k}"] for k in range(1, 5)]
    sust = [news["sust"][f"forget_{k}"] for k in range(1, 5)]
    assert [len(s) for s in scal] == sorted(len(s) for s in scal) and scal[-1] == forget
    for small, big in zip(scal, scal[1:]):
        assert big[:len(small)] == small
    assert [x for part in sust for x in part] == forget and all(sust)
    # KnowMem_r asks about retain2, which no unlearning run trains on (the retain set is retain1)
    retain2 = " ".join(r["text"] for r in news["raw"]["retain2"])
    names = {q["answer"] for q in news["knowmem"]["retain_qa"] if "full name" in q["question"]}
    assert names and all(n in retain2 for n in names)


def test_folds_need_enough_items():
    parts = folds(list(range(9)))
    assert [x for part in parts for x in part] == list(range(9))
    assert len(parts) == 4 and max(map(len, parts)) - min(map(len, parts)) <= 1
    with pytest.raises(DataValidationError, match="at least 4"):
        folds([1, 2, 3])


# --- hub layout, offline -------------------------------------------------------------------
@pytest.mark.parametrize("corpus", CORPORA)
def test_hub_layout_loads_through_load_dataset(tiny, corpus, tmp_path):
    """Our folder is what `muse-bench/MUSE-<Corpus>` looks like: the same load_dataset call
    reads it, also from a copy that is named like the hub repo."""
    source = Path(ensure_muse_source(tiny, corpus))
    built = build_muse_configs(tiny, corpus)
    readme = (source / "README.md").read_text()
    repo = tmp_path / f"MUSE-{corpus.title()}"
    shutil.copytree(source, repo)
    for config, splits in built.items():
        assert f"- config_name: {config}" in readme
        for split, rows in splits.items():
            assert [dict(r) for r in load_muse(tiny, config, split, corpus=corpus)] == rows
            direct = datasets.load_dataset(str(repo), config, split=split,
                                           cache_dir=str(tmp_path / "hf"))
            assert [dict(r) for r in direct] == rows
            assert set(direct.column_names) == set(MUSE_FIELDS[config])


def test_hub_profiles_read_the_muse_bench_repos(tiny):
    from dataclasses import replace
    hub = replace(tiny, data_source="hub")
    assert muse_source(hub, "news") == "muse-bench/MUSE-News"
    assert muse_source(hub, "books") == "muse-bench/MUSE-Books"
    with pytest.raises(ValueError, match="unknown MUSE corpus"):
        muse_source(tiny, "papers")


# --- raw text as training features ---------------------------------------------------------
class _Tokenizer:
    """Whitespace 'tokenizer' with a BOS, as Llama's adds one."""

    def __call__(self, text, add_special_tokens=True):
        ids = [len(w) for w in text.split()]
        return {"input_ids": ([1] if add_special_tokens else []) + ids}


def test_text_blocks_have_bos_and_every_token_labelled():
    feats = encode_text_blocks(_Tokenizer(), ["a bb ccc dddd eeeee ffffff", "x"], block_length=4)
    assert [f["input_ids"] for f in feats] == [[1, 1, 2, 3], [1, 4, 5, 6], [1, 1]]
    assert all(f["labels"] == f["input_ids"] for f in feats)
    with pytest.raises(ValueError, match="no room"):
        encode_text_blocks(_Tokenizer(), ["a"], block_length=1)


# --- the task's rules -------------------------------------------------------------------------
def test_task_names_and_forget_sets():
    assert UnlearningTask().label == "tofu"
    assert UnlearningTask("muse_news", "scal/forget_2").label == "muse_news_scal_forget_2"
    assert UnlearningTask("muse_books").corpus == "books"
    with pytest.raises(ValueError, match="unknown unlearning task"):
        UnlearningTask("muse_papers")
    with pytest.raises(ValueError, match="for MUSE tasks"):
        UnlearningTask("tofu", "scal/forget_1")
    with pytest.raises(ValueError, match="scal/forget_<k>"):
        UnlearningTask("muse_news", "retain1")


def test_task_profile_uses_the_muse_schedule(tiny):
    p = UnlearningTask("muse_news").profile_for(tiny)
    assert p.unlearn.learning_rate == tiny.muse.unlearn_learning_rate
    assert p.unlearn.epochs == tiny.muse.unlearn_epochs
    assert p.unlearn.method_hparams == tiny.muse.method_hparams
    assert UnlearningTask().profile_for(tiny) is tiny


@pytest.mark.parametrize("method", ["idknll", "idkdpo", "altpo"])
def test_question_methods_refuse_raw_text_before_building_anything(method, tiny, workbook_cache):
    from nbutils.unlearning import ensure_unlearned
    before = set((workbook_cache / "models").glob("*")) if (workbook_cache / "models").exists() else set()
    with pytest.raises(MethodNotApplicable, match="does not apply to muse_news"):
        ensure_unlearned(tiny, method, task="muse_news")
    after = set((workbook_cache / "models").glob("*")) if (workbook_cache / "models").exists() else set()
    assert after == before  # no target model was trained to find that out


# --- one run on raw text, end to end (micro size) ------------------------------------------
MUSE_MICRO = {"muse.books_passages": 10, "muse.block_length": 32, "muse.finetune_epochs": 3.0,
              "muse.finetune_learning_rate": 3e-3, "muse.unlearn_epochs": 2.0,
              "muse.unlearn_learning_rate": 1e-3, "muse.verbmem_tokens": 8, "muse.knowmem_tokens": 4}


@pytest.fixture(scope="module")
def micro_muse(micro_overrides):
    return get_profile("tiny", {**micro_overrides, **MUSE_MICRO})


def test_npo_unlearns_raw_text_and_is_evaluated(micro_muse, micro_base):
    from nbutils.muse_task import muse_evals, muse_table
    from nbutils.finetune import ensure_muse_model
    from nbutils.unlearning import ensure_unlearned
    target = ensure_muse_model(micro_muse, "news", "target")
    retrain = ensure_muse_model(micro_muse, "news", "retrain")
    run = ensure_unlearned(micro_muse, "npo", task="muse_news")
    assert run.name.startswith("unlearn_muse_news_tiny_forget_npo_")
    meta = json.loads((run / "unlearning.json").read_text())
    assert meta["task"] == "muse_news" and meta["start"] == str(target)
    log = json.loads((run / "log_history.json").read_text())
    losses = [e["forget_loss"] for e in log if "forget_loss" in e]
    assert losses and all(x == x for x in losses)
    # every label of a text block is a token: the reference S_ref covered whole blocks
    evals = muse_evals(micro_muse, "news", {"target": target, "retrain": retrain, "npo": run})
    table = muse_table(evals)
    assert list(table.index) == ["Origin", "Retrain", "npo"]
    assert table.loc["Retrain", "PrivLeak"] == 0.0
    assert evals["npo"]["settings"]["corpus"] == "news"
    # a second call is served from the cache
    again = muse_evals(micro_muse, "news", {"target": target, "retrain": retrain, "npo": run})
    assert again["npo"]["VerbMem_f"] == evals["npo"]["VerbMem_f"]


def test_sustainability_chains_runs(micro_muse, micro_base):
    from nbutils.unlearning import ensure_unlearned
    first = ensure_unlearned(micro_muse, "gradascent", task=UnlearningTask("muse_news", "sust/forget_1"))
    second = ensure_unlearned(micro_muse, "gradascent", start=str(first),
                              task=UnlearningTask("muse_news", "sust/forget_2"))
    assert json.loads((second / "unlearning.json").read_text())["start"] == str(first)
    assert "sust_forget_2" in second.name


@pytest.mark.parametrize("method", ["wga", "satimp", "ceu", "pdu"])
def test_the_newer_objectives_unlearn_raw_text_too(method, micro_muse, micro_base):
    """Issue 15: WGA, SatImp, CE-U and PDU run on the MUSE task (every label of a text block
    is a token to forget) and get their row of the MUSE table."""
    from nbutils.finetune import ensure_muse_model
    from nbutils.muse_task import MUSE_METHODS, muse_evals, muse_table
    from nbutils.unlearning import ensure_unlearned
    assert method in MUSE_METHODS
    target = ensure_muse_model(micro_muse, "news", "target")
    retrain = ensure_muse_model(micro_muse, "news", "retrain")
    run = ensure_unlearned(micro_muse, method, task="muse_news")
    log = json.loads((run / "log_history.json").read_text())
    assert [e for e in log if "forget_loss" in e] and all(e["forget_loss"] == e["forget_loss"] for e in log if "forget_loss" in e)
    table = muse_table(muse_evals(micro_muse, "news", {"target": target, "retrain": retrain, method: run}))
    assert list(table.index) == ["Origin", "Retrain", method]
    assert 0 <= table.loc[method, "VerbMem_f"] <= 100
