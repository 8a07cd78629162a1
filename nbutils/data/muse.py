"""MUSE's two corpora, ours and the hub's, in one layout (REFERENCE §3).

MUSE (``muse-bench/MUSE-News`` / ``MUSE-Books``) works on raw text rather than QA. We build
both corpora offline, in the hub repos' layout (one JSON-lines file per config and split, a
README ``configs:`` header), so :func:`load_muse` is the same ``load_dataset`` call for ours
and for the hub's (``paper`` profiles, ``data_source="hub"``):

- **News** from the fictitious world: news stories about the profile's forget-split authors
  (their facts, each story in a wording and an order of its own:
  :func:`~nbutils.data.world.news_article`) are the forget text, those about other authors
  retain and holdout text;
- **Books** from our Harry Potter passages (:mod:`nbutils.data.harry_potter`), every fifth
  passage's role in turn: forget, forget, retain1, retain2, holdout; KnowMem asks the
  questions we wrote about them (``resources/harry_potter_qa.json``).

Configs and splits, as on the hub:

- ``raw``: ``forget``, ``retain1``, ``retain2``, ``holdout`` texts (field ``text``): the MUSE
  target is trained on forget + retain1 + retain2, the retrain model on retain1 + retain2;
- ``verbmem``: ``forget`` pairs ``{prompt, gt}``: the start of a forget text and its true
  continuation (verbatim memorisation);
- ``knowmem``: ``forget_qa`` / ``retain_qa`` (about retain2) with short answers, and
  ``*_icl`` few-shot examples from text no model is trained on or asked to forget;
- ``privleak``: ``forget`` / ``retain`` / ``holdout`` texts for membership inference;
- News only: ``scal`` ``forget_1..4`` (growing forget sets: the first k quarters of the
  forget passages) and ``sust`` ``forget_1..4`` (the quarters themselves, to be unlearnt one
  after another): MUSE's scalability and sustainability criteria.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import datasets

from ..hub_access import require_hub
from ..paths import artifact_dir, building, is_complete, mark_complete
from ..profiles import Profile
from .tofu import DataValidationError, forget_author_counts, json_lines_problem, local_load_kwargs
from .world import WORLD_VERSION, generate_world, news_article

MUSE_FIELDS = {"raw": ("text",), "verbmem": ("prompt", "gt"), "knowmem": ("question", "answer"),
               "privleak": ("text",), "scal": ("text",), "sust": ("text",)}
N_ICL = 10  # MUSE's few-shot prompt uses 10 examples
CORPORA = ("news", "books")
HUB_SOURCES = {"news": "muse-bench/MUSE-News", "books": "muse-bench/MUSE-Books"}
N_FOLDS = 4  # scal/forget_1..4 and sust/forget_1..4


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]


def _chunks(text: str, size: int = 4) -> list[str]:
    """A biography cut into passages of ``size`` sentences (more samples for MIA)."""
    s = _sentences(text)
    return [" ".join(s[i:i + size]) for i in range(0, len(s), size)]


def verbmem_pair(text: str, gt_sentences: int | None = 5) -> dict | None:
    """A prompt of two sentences and the start of a third, and its true continuation (up to
    ``gt_sentences`` more sentences; None: the rest of ``text``); the prompt stops
    mid-sentence, as MUSE's book excerpts do, so a model that memorised the text has
    something to continue rather than a natural stop."""
    s = _sentences(text)
    if len(s) < 3:
        return None
    third = s[2].split()
    cut = min(6, max(1, len(third) // 2))
    rest = s[3:] if gt_sentences is None else s[3:3 + gt_sentences]
    gt = " ".join([" ".join(third[cut:])] + rest).strip()
    return {"prompt": " ".join(s[:2] + third[:cut]), "gt": gt} if gt else None


def folds(items: list, n: int = N_FOLDS) -> list[list]:
    """``items`` cut into ``n`` contiguous parts of (nearly) equal size."""
    if len(items) < n:
        raise DataValidationError(
            f"MUSE's scal/sust configs need at least {n} forget passages, got {len(items)}; "
            f"use a larger forget split or world")
    bounds = [round(i * len(items) / n) for i in range(n + 1)]
    return [items[bounds[i]:bounds[i + 1]] for i in range(n)]


def build_muse_configs(profile: Profile, corpus: str = "news") -> dict[str, dict[str, list[dict]]]:
    """Every config/split of our MUSE ``corpus`` ("news" or "books") for this profile."""
    if corpus == "books":
        return build_books_configs(profile)
    if corpus != "news":
        raise ValueError(f"unknown MUSE corpus {corpus!r}; choose one of {CORPORA}")
    counts = forget_author_counts(profile.n_authors)
    authors, holdout, rows, _ = generate_world(
        profile.n_authors, counts["10"], profile.qa_per_author, profile.seed)
    k = counts[profile.forget_split.removeprefix("forget")]
    forget, retain = authors[-k:], authors[:-k]
    rng = random.Random(profile.seed)
    icl_authors, retain_eval = retain[: max(1, len(retain) // 4)], retain[max(1, len(retain) // 4):]
    half = len(retain_eval) // 2
    articles = {a.name: news_article(a, profile.seed) for a in [*authors, *holdout]}

    def texts(group):
        return [{"text": articles[a.name]} for a in group]

    def passages(group):
        return [{"text": c} for a in group for c in _chunks(articles[a.name])]

    def qa(group):
        return [{"question": r["question"], "answer": r["short_answer"]}
                for a in group for r in rows[a.name]]

    verbmem = []
    for a in forget:  # each article cut at points two sentences apart
        s = _sentences(articles[a.name])
        for i in range(0, max(1, len(s) - 4), 2):
            # MUSE prompts with "the first l tokens" of a forget text: the prompt is the
            # article up to the cut, not a window starting mid-article (the articles share
            # their sentence templates, so a window's few sentences do not say where in which
            # article it is: smol's Origin continued 5 of 16 windows with another author's
            # facts). The continuation runs to the article's end, and VerbMem cuts it to the
            # tokens it generates (as MUSE's 128): a shorter reference would cap a model that
            # recites the article perfectly well below ROUGE-L 1
            pair = verbmem_pair(" ".join(s[i:]), gt_sentences=None)
            if pair:
                verbmem.append({"prompt": " ".join([*s[:i], pair["prompt"]]), "gt": pair["gt"]})
    retain_qa = qa(retain_eval[half:])  # KnowMem_r asks about retain2, as muse-bench does
    rng.shuffle(retain_qa)
    icl = qa(icl_authors)
    rng.shuffle(icl)
    return {
        "raw": {"forget": texts(forget), "retain1": texts(retain_eval[:half]),
                "retain2": texts(retain_eval[half:]), "holdout": texts(holdout[-k:])},
        "verbmem": {"forget": verbmem},
        "knowmem": {"forget_qa": qa(forget), "retain_qa": retain_qa[: len(qa(forget))],
                    "forget_qa_icl": icl[:N_ICL], "retain_qa_icl": icl[N_ICL:2 * N_ICL] or icl[:N_ICL]},
        "privleak": {"forget": passages(forget), "retain": passages(retain_eval[: len(forget)]),
                     "holdout": passages(holdout[-k:])},
        **scal_sust(passages(forget)),
    }


def scal_sust(forget_passages: list[dict]) -> dict[str, dict[str, list[dict]]]:
    parts = folds(forget_passages)
    return {"scal": {f"forget_{i + 1}": [x for part in parts[:i + 1] for x in part] for i in range(N_FOLDS)},
            "sust": {f"forget_{i + 1}": part for i, part in enumerate(parts)}}


BOOKS_ROLES = ("forget", "forget", "retain1", "retain2", "holdout")  # passage i -> BOOKS_ROLES[i % 5]


def books_split(profile: Profile) -> dict[str, list[int]]:
    """Passage indices of each role in the Books corpus (``muse.books_passages`` of them).

    The from-scratch ``tiny`` model read part of our Harry Potter corpus in its pretraining
    (for WHP); those passages are left out of its Books corpus, so its retrain model has
    never seen the forget text, as MUSE's ICLM-7B had never read the books. SmolLM2 *has*
    read the real books: notebook 12 shows what that does to its retrain model."""
    from .harry_potter import load_harry_potter, passages
    texts = [p["text"] for p in load_harry_potter()["passages"]]
    candidates = list(range(len(texts)))
    if profile.model == "tiny":
        seen = set(passages(profile.whp.corpus_passages or None))
        candidates = [i for i in candidates if texts[i] not in seen]
    n = min(profile.muse.books_passages or len(candidates), len(candidates))
    if n < 2 * len(BOOKS_ROLES):
        raise ValueError(f"muse.books_passages: the Books corpus has {n} passages available and "
                         f"needs at least {2 * len(BOOKS_ROLES)} (two of each role)")
    roles: dict[str, list[int]] = {r: [] for r in BOOKS_ROLES}
    for k, i in enumerate(candidates[:n]):
        roles[BOOKS_ROLES[k % len(BOOKS_ROLES)]].append(i)
    return roles


def build_books_configs(profile: Profile) -> dict[str, dict[str, list[dict]]]:
    """MUSE-Books from our Harry Potter passages and the questions we wrote about them."""
    from .harry_potter import load_harry_potter, load_harry_potter_qa
    texts = [p["text"] for p in load_harry_potter()["passages"]]
    qa_by_passage: dict[int, list[dict]] = {}
    for item in load_harry_potter_qa():
        qa_by_passage.setdefault(item["passage"], []).append(
            {"question": item["question"], "answer": item["answer"]})
    roles = books_split(profile)

    def raw(role):
        return [{"text": texts[i]} for i in roles[role]]

    def qa(role):
        return [x for i in roles[role] for x in qa_by_passage.get(i, [])]

    n_mia = min(len(roles["forget"]), len(roles["retain2"]), len(roles["holdout"]))
    icl = qa("retain1")  # text no model is asked about, nor asked to forget
    forget_qa, retain_qa = qa("forget"), qa("retain2")
    return {
        "raw": {role: raw(role) for role in ("forget", "retain1", "retain2", "holdout")},
        "verbmem": {"forget": [p for p in (verbmem_pair(texts[i]) for i in roles["forget"]) if p]},
        "knowmem": {"forget_qa": forget_qa, "retain_qa": retain_qa,
                    "forget_qa_icl": icl[:N_ICL], "retain_qa_icl": icl[-N_ICL:]},
        "privleak": {"forget": raw("forget")[:n_mia], "retain": raw("retain2")[:n_mia],
                     "holdout": raw("holdout")[:n_mia]},
    }


def muse_source(profile: Profile, corpus: str = "news") -> str:
    """Where ``corpus`` comes from: the hub repo on ``data_source="hub"`` profiles, else our
    folder (built on first use)."""
    if corpus not in CORPORA:
        raise ValueError(f"unknown MUSE corpus {corpus!r}; choose one of {CORPORA}")
    if profile.data_source == "hub":
        return HUB_SOURCES[corpus]
    return ensure_muse_source(profile, corpus)


def muse_data_key(profile: Profile, corpus: str = "news") -> dict:
    """What our generated ``corpus`` depends on (a cache key for models trained on it)."""
    if profile.data_source == "hub":
        return {"hub_dataset": HUB_SOURCES[corpus]}
    key = {k: getattr(profile, k) for k in ("n_authors", "qa_per_author", "seed", "forget_split")}
    key["generator_version"] = WORLD_VERSION
    # 3: retain_qa about retain2; scal / sust; the Books corpus. 4: News articles in their own order
    key["muse_version"] = 4
    if corpus == "books":
        from .harry_potter import resource_version
        key = {"books_passages": profile.muse.books_passages, "resources": resource_version(),
               "muse_version": key["muse_version"], "tiny_pretraining": (
                   profile.whp.corpus_passages if profile.model == "tiny" else None)}
    else:  # 2: each article in wordings of its own, the author by surname after the introduction;
        # 3: VerbMem continuations run to the article's end; 4: six wordings per fact
        key["news_articles"] = 4
    key["corpus"] = corpus
    return key


# what the evaluation sets add to :func:`muse_data_key`, which the trained models and the
# unlearning runs are keyed by: a change to how VerbMem prompts are cut re-evaluates models
# without retraining them. News 2: prompts are article prefixes
NEWS_EVAL_SETS_VERSION = 2


def muse_eval_data_key(profile: Profile, corpus: str = "news") -> dict:
    """:func:`muse_data_key` plus the version of the evaluation sets built from the text."""
    key = muse_data_key(profile, corpus)
    if corpus == "news" and profile.data_source != "hub":
        key["eval_sets"] = NEWS_EVAL_SETS_VERSION
    return key


def ensure_muse_source(profile: Profile, corpus: str = "news") -> str:
    """Our MUSE ``corpus`` written in the hub's layout (once per configuration); its folder."""
    if corpus not in CORPORA:
        raise ValueError(f"unknown MUSE corpus {corpus!r}; choose one of {CORPORA}")
    folder = artifact_dir("data", f"muse-{corpus}-synthetic", muse_eval_data_key(profile, corpus))
    with building(folder):  # two notebooks starting at once: one writes, the other waits
        if not is_complete(folder):  # a manifest, written last, vouches for every file
            _write_muse_source(profile, corpus, folder)
            mark_complete(folder, recursive=True)
    return str(folder)


def _write_muse_source(profile: Profile, corpus: str, folder: Path) -> None:
    header = ["---", f"pretty_name: Synthetic MUSE-{corpus.title()} (built by the workbook)", "configs:"]
    for config, splits in build_muse_configs(profile, corpus).items():
        (folder / config).mkdir(exist_ok=True)
        header.append(f"- config_name: {config}")
        header.append("  data_files:")
        for split, items in splits.items():
            with open(folder / config / f"{split}.json", "w", encoding="utf-8") as f:
                for item in items:
                    f.write(json.dumps(item, ensure_ascii=False) + "\n")
            header += [f"  - split: {split}", f"    path: {config}/{split}.json"]
    what = ("the fictitious world's biographies" if corpus == "news" else
            "the workbook's own Harry Potter passages and questions")
    header += ["---", "", f"# Synthetic MUSE-{corpus.title()}", "", f"MUSE-style corpora of {what}, "
               "in the file layout of the `muse-bench` hub datasets."]
    (folder / "README.md").write_text("\n".join(header) + "\n")


def load_muse(profile: Profile, config: str, split: str, source: str | None = None,
              corpus: str = "news") -> datasets.Dataset:
    """One MUSE config/split of ``corpus``, validated; ``source`` overrides where it comes
    from (a hub id such as ``muse-bench/MUSE-Books``, or a folder in that layout)."""
    source = source or muse_source(profile, corpus)
    if config not in MUSE_FIELDS:
        raise DataValidationError(f"{source}: unknown MUSE config {config!r}; use one of {sorted(MUSE_FIELDS)}")
    if not Path(source).exists():
        require_hub(source, "dataset", "data_source")  # seconds, not a 30 s timeout
    try:
        ds = datasets.load_dataset(source, config, split=split, **local_load_kwargs(source))
    except (ValueError, StopIteration, datasets.exceptions.DatasetGenerationError) as err:
        problem = json_lines_problem(Path(source) / config / f"{split}.json")
        if problem:  # a local file we can point at; a hub dataset's error stays as it is
            raise DataValidationError(f"{problem} (config {config!r}, split {split!r})") from err
        raise
    missing = [f for f in MUSE_FIELDS[config] if f not in ds.column_names]
    if missing:
        raise DataValidationError(
            f"{source}/{config}/{split}: missing field(s) {missing}; found {ds.column_names}")
    for i, row in enumerate(ds):
        for f in MUSE_FIELDS[config]:
            if not isinstance(row[f], str) or not row[f].strip():
                raise DataValidationError(
                    f"{source}/{config}/{split}, row {i}: field {f!r} must be a non-empty string, got {row[f]!r}")
    return ds
