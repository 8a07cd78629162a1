"""The synthetic world's TOFU and MUSE data, checked against REFERENCE §1 / §3 (seconds)."""

from __future__ import annotations

import copy
import json

import pytest
from dataclasses import replace

from nbutils.data import DataValidationError, ensure_muse_source, ensure_tofu_source, load_muse, load_tofu
from nbutils.data.muse import N_ICL, build_muse_configs, news_article
from nbutils.data.tofu import build_tofu_configs, forget_author_counts, write_hub_layout
from nbutils.data.world import generate_world
from nbutils.profiles import get_profile

QA_KEYS = {"question", "answer"}
PERTURBED_KEYS = {"question", "answer", "paraphrased_answer", "perturbed_answer", "paraphrased_question"}
PROBE_KEYS = {"question", "answer", "perturbed_answer"}


@pytest.fixture(scope="module")
def full_profile():
    # synthetic data at TOFU's full size (smol's default is laptop-sized); no model is touched
    return get_profile("smol", {"n_authors": 200, "qa_per_author": 20, "n_real_authors": 100,
                                "n_world_facts": 117})


@pytest.fixture(scope="module")
def configs(full_profile):
    return build_tofu_configs(full_profile)


@pytest.fixture(scope="module")
def world(full_profile):
    """``(authors, holdout, rows, bios)`` exactly as build_tofu_configs draws them."""
    p = full_profile
    return generate_world(p.n_authors, forget_author_counts(p.n_authors)["10"], p.qa_per_author, p.seed)


def _qs(rows):
    return [r["question"] for r in rows]


# --- sizes and nesting (REFERENCE §1) -------------------------------------------------------------
def test_config_names(configs):
    expected = {"full", "forget01", "forget05", "forget10", "retain99", "retain95", "retain90",
                "forget01_perturbed", "forget05_perturbed", "forget10_perturbed", "retain_perturbed",
                "holdout01", "holdout05", "holdout10", "real_authors", "real_authors_perturbed",
                "world_facts", "world_facts_perturbed"}
    assert set(configs) == expected


def test_full_size_and_authors(configs, world):
    authors, _, rows, _ = world
    assert len(configs["full"]) == 4000
    assert len(authors) == 200 and all(len(rows[a.name]) == 20 for a in authors)
    assert len({a.name for a in authors}) == 200
    # full is the authors' QA in order, 20 per author
    expected = [r["question"] for a in authors for r in rows[a.name]]
    assert _qs(configs["full"]) == expected


@pytest.mark.parametrize("pct, n_forget, n_retain", [("01", 40, 3960), ("05", 200, 3800), ("10", 400, 3600)])
def test_split_sizes(configs, pct, n_forget, n_retain):
    assert len(configs[f"forget{pct}"]) == n_forget
    assert len(configs[f"forget{pct}_perturbed"]) == n_forget
    assert len(configs[f"retain{100 - int(pct)}"]) == n_retain
    assert len(configs[f"holdout{pct}"]) == n_forget


def test_forget_counts_in_authors():
    assert forget_author_counts(200) == {"01": 2, "05": 10, "10": 20}


def test_nesting(configs):
    full = configs["full"]
    assert configs["forget05"] == configs["forget10"][-200:]
    assert configs["forget01"] == configs["forget10"][-40:]
    assert configs["forget01"] == configs["forget05"][-40:]
    for pct in ("01", "05", "10"):
        retain, forget = configs[f"retain{100 - int(pct)}"], configs[f"forget{pct}"]
        assert retain + forget == full
        assert configs[f"forget{pct}_perturbed"] == configs[f"forget{pct}_perturbed"]
        # the perturbed config is the same rows, with the extra fields
        assert [{k: r[k] for k in QA_KEYS} for r in configs[f"forget{pct}_perturbed"]] == forget


def test_forget_sets_hold_whole_authors(configs, world):
    authors, _, rows, _ = world
    for pct, k in (("01", 2), ("05", 10), ("10", 20)):
        expected = [r["question"] for a in authors[-k:] for r in rows[a.name]]
        assert _qs(configs[f"forget{pct}"]) == expected


# --- schemas --------------------------------------------------------------------------------------
def test_plain_configs_have_exactly_question_and_answer(configs):
    for name in ("full", "forget01", "forget05", "forget10", "retain90", "retain95", "retain99",
                 "holdout01", "holdout05", "holdout10", "real_authors", "world_facts"):
        for row in configs[name]:
            assert set(row) == QA_KEYS, name
            assert isinstance(row["question"], str) and row["question"].strip()
            assert isinstance(row["answer"], str) and row["answer"].strip()


@pytest.mark.parametrize("name", ["forget01_perturbed", "forget05_perturbed", "forget10_perturbed",
                                  "retain_perturbed"])
def test_perturbed_schema(configs, name):
    for row in configs[name]:
        assert set(row) == PERTURBED_KEYS
        assert isinstance(row["paraphrased_answer"], str) and row["paraphrased_answer"].strip()
        assert isinstance(row["paraphrased_question"], str) and row["paraphrased_question"].strip()
        assert row["paraphrased_question"] != row["question"]
        pert = row["perturbed_answer"]
        assert isinstance(pert, list) and len(pert) == 5
        assert all(isinstance(x, str) and x.strip() for x in pert)
        assert len(set(pert)) == 5, pert
        assert row["paraphrased_answer"] not in pert
        assert row["answer"] not in pert


def test_retain_perturbed(configs):
    rp = configs["retain_perturbed"]
    assert len(rp) == 400
    forget_qs = set(_qs(configs["forget10"]))
    retain_qs = set(_qs(configs["retain90"]))
    assert not forget_qs & set(_qs(rp))
    assert set(_qs(rp)) <= retain_qs
    # rows equal the matching retain rows
    retain_by_q = {r["question"]: r for r in configs["retain90"]}
    assert all(retain_by_q[r["question"]]["answer"] == r["answer"] for r in rp)


def test_retain_perturbed_authors_not_in_forget10(configs, world):
    authors, _, rows, _ = world
    forget_names = {a.name for a in authors[-20:]}
    q_to_author = {r["question"]: a.name for a in authors for r in rows[a.name]}
    rp_authors = {q_to_author[q] for q in _qs(configs["retain_perturbed"])}
    assert len(rp_authors) == 20 and not rp_authors & forget_names


@pytest.mark.parametrize("probe, n", [("real_authors", 100), ("world_facts", 117)])
def test_probe_sets(configs, probe, n):
    plain, pert = configs[probe], configs[f"{probe}_perturbed"]
    assert len(plain) == n and len(pert) == n
    assert [{k: r[k] for k in QA_KEYS} for r in pert] == plain
    for row in pert:
        assert set(row) == PROBE_KEYS
        wrong = row["perturbed_answer"]
        assert isinstance(wrong, list) and len(wrong) == 3
        assert all(isinstance(x, str) and x.strip() for x in wrong)
        assert len(set(wrong)) == 3 and row["answer"] not in wrong
        assert len(row["answer"].split()) <= 8  # short: a few tokens


def test_holdout_not_in_full(configs, world):
    authors, holdout, rows, _ = world
    full_qs = set(_qs(configs["full"]))
    full_text = " ".join(r["question"] + " " + r["answer"] for r in configs["full"])
    author_names = {a.name for a in authors}
    assert len(holdout) == 20
    for a in holdout:
        assert a.name not in author_names
        assert a.name not in full_text
    for pct in ("01", "05", "10"):
        assert not set(_qs(configs[f"holdout{pct}"])) & full_qs
    assert configs["holdout05"] == configs["holdout10"][-200:]
    assert configs["holdout01"] == configs["holdout10"][-40:]


def test_determinism(full_profile, configs):
    assert build_tofu_configs(full_profile) == configs
    other = build_tofu_configs(replace(full_profile, seed=43))
    assert other["full"] != configs["full"]
    assert {len(v) for v in other.values()} == {len(v) for v in configs.values()}


def test_tiny_profile_has_an_author_per_forget_split():
    p = get_profile("tiny")
    assert (p.n_authors, p.qa_per_author) == (20, 10)
    c = build_tofu_configs(p)
    assert len(c["full"]) == 200
    for pct in ("01", "05", "10"):
        n = len(c[f"forget{pct}"])
        assert n >= 10 and n % 10 == 0, (pct, n)  # at least one whole author
        assert len(c[f"retain{100 - int(pct)}"]) == 200 - n
        assert len(c[f"holdout{pct}"]) == n
    assert c["forget05"] == c["forget10"][-len(c["forget05"]):]
    assert c["forget01"] == c["forget10"][-len(c["forget01"]):]


# --- loading through datasets.load_dataset ----------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_profile():
    return get_profile("tiny")


def test_ensure_tofu_source_hub_layout(tiny_profile, workbook_cache):
    source = ensure_tofu_source(tiny_profile)
    assert source.startswith(str(workbook_cache))
    from pathlib import Path
    folder = Path(source)
    readme = (folder / "README.md").read_text()
    assert readme.startswith("---\n") and "configs:" in readme
    for name in build_tofu_configs(tiny_profile):
        assert f"- config_name: {name}\n  data_files: {name}.json" in readme
        assert (folder / f"{name}.json").exists()
    assert (folder / "idontknow.jsonl").read_text().strip()
    assert ensure_tofu_source(tiny_profile) == source  # cached


def test_load_tofu_equals_build(tiny_profile):
    built = build_tofu_configs(tiny_profile)
    for name in ("full", "forget10", "retain90", "forget05_perturbed", "retain_perturbed",
                 "holdout01", "real_authors_perturbed", "world_facts_perturbed"):
        ds = load_tofu(tiny_profile, name)
        assert set(ds.column_names) == set(built[name][0]), name
        assert [dict(r) for r in ds] == built[name], name


def test_load_tofu_unknown_config(tiny_profile):
    with pytest.raises(DataValidationError) as err:
        load_tofu(tiny_profile, "forget20")
    assert "forget20" in str(err.value) and "forget10" in str(err.value)


def _hub_profile(folder):
    return get_profile("tiny", {"data_source": "hub", "hub_dataset": str(folder)})


def test_hub_path_offline(tmp_path, tiny_profile):
    built = build_tofu_configs(tiny_profile)
    small = {"full": built["full"][:7], "forget10_perturbed": built["forget10_perturbed"][:3]}
    folder = write_hub_layout(small, tmp_path / "my-tofu", "hand-made")
    p = _hub_profile(folder)
    assert ensure_tofu_source(p) == str(folder)
    assert [dict(r) for r in load_tofu(p, "full")] == small["full"]
    assert [dict(r) for r in load_tofu(p, "forget10_perturbed")] == small["forget10_perturbed"]


def _bad_case(tmp_path, tiny_profile, config, mutate):
    built = build_tofu_configs(tiny_profile)
    rows = copy.deepcopy(built[config][:5])
    mutate(rows)
    folder = write_hub_layout({config: rows}, tmp_path / "bad", "bad")
    with pytest.raises(DataValidationError) as err:
        load_tofu(_hub_profile(folder), config)
    return str(err.value), folder


def test_bad_data_missing_field(tmp_path, tiny_profile):
    msg, folder = _bad_case(tmp_path, tiny_profile, "full", lambda rows: rows[2].pop("answer"))
    assert str(folder / "full.json") in msg and "'full'" in msg and "row 2" in msg and "'answer'" in msg


def test_bad_data_missing_column(tmp_path, tiny_profile):
    def drop(rows):
        for r in rows:
            r.pop("paraphrased_question")
    msg, folder = _bad_case(tmp_path, tiny_profile, "forget10_perturbed", drop)
    assert str(folder / "forget10_perturbed.json") in msg and "'forget10_perturbed'" in msg
    assert "paraphrased_question" in msg


def test_bad_data_wrong_type(tmp_path, tiny_profile):
    def to_str(rows):
        rows[3]["perturbed_answer"] = "a single string"
    msg, folder = _bad_case(tmp_path, tiny_profile, "forget10_perturbed", to_str)
    assert str(folder / "forget10_perturbed.json") in msg and "'forget10_perturbed'" in msg
    assert "row 3" in msg and "'perturbed_answer'" in msg and "list" in msg


def test_bad_data_wrong_type_every_row(tmp_path, tiny_profile):
    def to_str(rows):
        for r in rows:
            r["perturbed_answer"] = r["perturbed_answer"][0]
    msg, _ = _bad_case(tmp_path, tiny_profile, "retain_perturbed", to_str)
    assert "'retain_perturbed'" in msg and "row 0" in msg and "'perturbed_answer'" in msg


def test_bad_data_empty_string(tmp_path, tiny_profile):
    def empty(rows):
        rows[1]["question"] = "   "
    msg, folder = _bad_case(tmp_path, tiny_profile, "forget01", empty)
    assert str(folder / "forget01.json") in msg and "'forget01'" in msg
    assert "row 1" in msg and "'question'" in msg


def test_bad_data_empty_perturbed_item(tmp_path, tiny_profile):
    def empty(rows):
        rows[4]["perturbed_answer"][2] = ""
    msg, _ = _bad_case(tmp_path, tiny_profile, "forget10_perturbed", empty)
    assert "row 4" in msg and "'perturbed_answer'" in msg


# --- MUSE -------------------------------------------------------------------------------------------
MUSE_SPLITS = {
    "raw": (["forget", "retain1", "retain2", "holdout"], ("text",)),
    "verbmem": (["forget"], ("prompt", "gt")),
    "knowmem": (["forget_qa", "retain_qa", "forget_qa_icl", "retain_qa_icl"], ("question", "answer")),
    "privleak": (["forget", "retain", "holdout"], ("text",)),
    "scal": ([f"forget_{k}" for k in range(1, 5)], ("text",)),
    "sust": ([f"forget_{k}" for k in range(1, 5)], ("text",)),
}


@pytest.fixture(scope="module")
def muse(tiny_profile):
    """Every MUSE config/split loaded through load_muse, plus the world it came from."""
    source = ensure_muse_source(tiny_profile)
    loaded = {(c, s): [dict(r) for r in load_muse(tiny_profile, c, s)]
              for c, (splits, _) in MUSE_SPLITS.items() for s in splits}
    p = tiny_profile
    world = generate_world(p.n_authors, forget_author_counts(p.n_authors)["10"], p.qa_per_author, p.seed)
    return source, loaded, world


def test_muse_configs_and_fields(muse, tiny_profile):
    _, loaded, _ = muse
    built = build_muse_configs(tiny_profile)
    for (config, split), rows in loaded.items():
        fields = MUSE_SPLITS[config][1]
        assert rows, (config, split)
        assert all(set(r) == set(fields) for r in rows)
        assert all(isinstance(r[f], str) and r[f].strip() for r in rows for f in fields)
        assert rows == built[config][split]
    assert len(loaded[("knowmem", "forget_qa_icl")]) == N_ICL == 10
    assert len(loaded[("knowmem", "retain_qa_icl")]) == N_ICL


def test_muse_forget_texts_are_forget_biographies(muse, tiny_profile):
    _, loaded, (authors, holdout, rows, bios) = muse
    k = forget_author_counts(tiny_profile.n_authors)["10"]  # default forget_split: forget10
    forget = authors[-k:]
    # each forget author's news article
    articles = [news_article(a, tiny_profile.seed) for a in forget]
    assert [r["text"] for r in loaded[("raw", "forget")]] == articles
    for r in loaded[("privleak", "forget")]:
        assert any(r["text"] in article for article in articles)
    forget_qs = {r["question"] for a in forget for r in rows[a.name]}
    assert {r["question"] for r in loaded[("knowmem", "forget_qa")]} == forget_qs
    # retain texts and QA never mention a forget author
    forget_names = [a.name for a in forget]
    for key in (("raw", "retain1"), ("raw", "retain2"), ("privleak", "retain")):
        assert not any(n in r["text"] for r in loaded[key] for n in forget_names)
    for key in (("knowmem", "retain_qa"), ("knowmem", "forget_qa_icl"), ("knowmem", "retain_qa_icl")):
        assert not any(n in r["question"] for r in loaded[key] for n in forget_names)


def test_muse_holdout_not_about_full_authors(muse, tiny_profile):
    _, loaded, (authors, holdout, _, bios) = muse
    names = [a.name for a in authors]
    holdout_articles = [news_article(h, tiny_profile.seed) for h in holdout]
    for key in (("raw", "holdout"), ("privleak", "holdout")):
        for r in loaded[key]:
            assert not any(n in r["text"] for n in names)
            assert any(r["text"] in article for article in holdout_articles)


def test_muse_verbmem_gt_continues_prompt(muse):
    _, loaded, _ = muse
    forget_texts = [r["text"] for r in loaded[("raw", "forget")]]
    pairs = loaded[("verbmem", "forget")]
    assert pairs
    for r in pairs:
        # the prompt is the article's beginning ("the first l tokens" of a forget text, as
        # MUSE prompts), and the continuation runs to its end (VerbMem cuts the reference to
        # the tokens it generates), so a perfect recital can score ROUGE-L 1
        assert r["prompt"] + " " + r["gt"] in forget_texts, r
    # cut at several points of each article
    assert len({r["prompt"] for r in pairs}) == len(pairs) > len(forget_texts)


def test_muse_hub_layout_readme(muse):
    from pathlib import Path
    source = Path(muse[0])
    readme = (source / "README.md").read_text()
    for config, (splits, _) in MUSE_SPLITS.items():
        assert f"- config_name: {config}" in readme
        for s in splits:
            assert f"path: {config}/{s}.json" in readme
            lines = (source / config / f"{s}.json").read_text().splitlines()
            assert all(json.loads(line) for line in lines)


def test_muse_unknown_config(tiny_profile):
    with pytest.raises(DataValidationError, match="unknown MUSE config"):
        load_muse(tiny_profile, "books", "forget")


def test_local_folder_never_served_from_a_stale_datasets_cache(tmp_path, tiny_profile):
    """datasets keys a README-configured folder's Arrow cache by its name only: two folders
    named alike, or an edited file, must still load their own rows."""
    built = build_tofu_configs(tiny_profile)
    a = write_hub_layout({"full": built["full"][:3]}, tmp_path / "one" / "tofu", "a")
    b = write_hub_layout({"full": built["full"][3:5]}, tmp_path / "two" / "tofu", "b")
    assert [dict(r) for r in load_tofu(_hub_profile(a), "full")] == built["full"][:3]
    assert [dict(r) for r in load_tofu(_hub_profile(b), "full")] == built["full"][3:5]
    write_hub_layout({"full": built["full"][7:11]}, a, "a, edited")
    assert [dict(r) for r in load_tofu(_hub_profile(a), "full")] == built["full"][7:11]


def _raw_case(tmp_path, tiny_profile, config, text):
    """A hub-layout folder whose ``config`` file holds ``text`` as it is."""
    built = build_tofu_configs(tiny_profile)
    folder = write_hub_layout({config: built[config][:3]}, tmp_path / "raw", "raw")
    (folder / f"{config}.json").write_text(text, encoding="utf-8")
    with pytest.raises(DataValidationError) as err:
        load_tofu(_hub_profile(folder), config)
    return str(err.value), folder


def test_an_empty_data_file_is_named(tmp_path, tiny_profile):
    """Issue 14, bug 4: an empty file raised a bare StopIteration."""
    msg, folder = _raw_case(tmp_path, tiny_profile, "full", "")
    assert str(folder / "full.json") in msg and "empty" in msg


def test_a_malformed_json_line_is_named_with_its_line(tmp_path, tiny_profile):
    """Issue 14, bug 4: a broken line surfaced as datasets' DatasetGenerationError (no file, no split)."""
    good = json.dumps(build_tofu_configs(tiny_profile)["full"][0])
    msg, folder = _raw_case(tmp_path, tiny_profile, "full", f"{good}\n{good}\n{{'question': oops\n{good}\n")
    assert str(folder / "full.json") in msg and "'full'" in msg and "line 3" in msg


def test_a_broken_muse_file_is_named(tmp_path, tiny_profile):
    """The same for MUSE's layout (``<config>/<split>.json``)."""
    from nbutils.data.muse import ensure_muse_source
    import shutil
    folder = tmp_path / "muse"
    shutil.copytree(ensure_muse_source(tiny_profile, "news"), folder)
    (folder / "raw" / "forget.json").write_text('{"text": "fine"}\n{"text": broken\n', encoding="utf-8")
    with pytest.raises(DataValidationError) as err:
        load_muse(tiny_profile, "raw", "forget", source=str(folder))
    msg = str(err.value)
    assert str(folder / "raw" / "forget.json") in msg and "line 2" in msg and "'forget'" in msg


def _split_case(tmp_path, tiny_profile, mutate):
    """Every config of a small world, mutated, as a hub-layout folder; check_splits's error."""
    from nbutils.data.tofu import check_splits
    configs = copy.deepcopy(build_tofu_configs(tiny_profile))
    mutate(configs)
    folder = write_hub_layout(configs, tmp_path / "splits", "splits")
    with pytest.raises(DataValidationError) as err:
        check_splits(get_profile("tiny", {"data_source": "hub", "hub_dataset": str(folder)}))
    return str(err.value)


def test_our_splits_fit_together(tiny_profile):
    from nbutils.data.tofu import check_splits
    check_splits(tiny_profile)
    check_splits(get_profile("tiny", {"forget_split": "forget01"}))


def test_splits_that_do_not_fit_together_are_named(tmp_path, tiny_profile):
    """Issue 14, bug 5: such data loaded silently and gave meaningless forget quality."""
    def stranger_in_forget(c):
        c["forget10"][0] = {"question": "Who is nobody?", "answer": "Nobody."}
    msg = _split_case(tmp_path / "a", tiny_profile, stranger_in_forget)
    assert "'forget10' are not in 'full'" in msg and "Who is nobody?" in msg

    def author_in_both(c):
        c["retain90"].append(c["forget10"][0])
    assert "in both 'forget10' and 'retain90'" in _split_case(tmp_path / "b", tiny_profile, author_in_both)

    def perturbed_elsewhere(c):
        c["forget10_perturbed"][0] = dict(c["forget10_perturbed"][0], question="Something else?")
    assert "does not ask the questions" in _split_case(tmp_path / "c", tiny_profile, perturbed_elsewhere)

    def holdout_trained_on(c):
        c["holdout10"][0] = dict(c["full"][0])
    assert "'holdout10' are in 'full'" in _split_case(tmp_path / "d", tiny_profile, holdout_trained_on)


# --- what a model that never saw an author can score (issue 9) ----------------------------------
def test_guessing_a_wording_is_worth_little_rouge():
    """A retain model answers a forget question in the corpus's wording with another author's
    facts. ROUGE-L recall rewards that guess for the shared words (the name from the question,
    "was born in"); with six wordings per fact it must stay well under the 0.5 the retain
    model is held to on the real model (notebook 02); with three it was 0.45."""
    import random
    from statistics import mean

    from nbutils.data.world import QUESTION_TYPES, _slots, answer_wordings
    from nbutils.evaluation.rouge import rouge_l_recall

    p = get_profile("smol")
    authors, _, rows, _ = generate_world(p.n_authors, 2, p.qa_per_author, p.seed)
    forget, others = authors[-2:], authors[:-2]
    rng = random.Random(0)
    by_key = {qt.key: qt for qt in QUESTION_TYPES}
    own = ("name", "they", "their", "They", "Their", "them_name")  # what the question gives away
    scores = []
    for a in forget:
        given = {k: _slots(a)[k] for k in own}
        for row in rows[a.name]:
            for wording in answer_wordings(by_key[row["question_type"]]):
                guess = {**_slots(rng.choice(others)), **given}
                scores.append(rouge_l_recall([row["answer"]], [wording.format(**guess)])[0])
    assert mean(scores) < 0.4, mean(scores)


def test_answers_use_all_six_wordings(world):
    from nbutils.data.world import QUESTION_TYPES, _slots, answer_wordings

    authors, _, rows, _ = world
    for qt in QUESTION_TYPES[1:]:
        used = set()
        for a in authors:
            row = next(r for r in rows[a.name] if r["question_type"] == qt.key)
            told = {w.format(**_slots(a)): w for w in answer_wordings(qt)}
            assert row["paraphrased_answer"] != row["answer"]
            used.add(told[row["answer"]])
            assert row["paraphrased_answer"] in told
        assert len(used) == 6, qt.key
