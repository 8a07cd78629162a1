"""MUSE-style corpora from the same fictitious world (REFERENCE §3).

MUSE (``muse-bench/MUSE-Books`` / ``MUSE-News``) works on raw text rather than QA. From our
world we derive, with the authors of the profile's forget split as the forget set:

- ``raw``: ``forget``, ``retain1``, ``retain2``, ``holdout`` biographies (field ``text``);
- ``verbmem``: ``forget`` pairs ``{prompt, gt}``: the start of a forget text and its true
  continuation (verbatim memorisation);
- ``knowmem``: ``forget_qa`` / ``retain_qa`` with short answers, and ``*_icl`` few-shot
  examples drawn from other retain authors (knowledge memorisation / utility);
- ``privleak``: ``forget`` / ``retain`` / ``holdout`` texts for membership inference.

They are written like the hub repos (one JSON-lines file per config and split, a README
``configs:`` header), and :func:`load_muse` is the same ``load_dataset`` call for both.
"""

from __future__ import annotations

import json
import random
import re

import datasets

from ..paths import artifact_dir
from ..profiles import Profile
from .tofu import DataValidationError, forget_author_counts, local_load_kwargs
from .world import WORLD_VERSION, generate_world

MUSE_FIELDS = {"raw": ("text",), "verbmem": ("prompt", "gt"), "knowmem": ("question", "answer"),
               "privleak": ("text",)}
N_ICL = 10  # MUSE's few-shot prompt uses 10 examples


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]


def _chunks(text: str, size: int = 4) -> list[str]:
    """A biography cut into passages of ``size`` sentences (more samples for MIA)."""
    s = _sentences(text)
    return [" ".join(s[i:i + size]) for i in range(0, len(s), size)]


def build_muse_configs(profile: Profile) -> dict[str, dict[str, list[dict]]]:
    counts = forget_author_counts(profile.n_authors)
    authors, holdout, rows, bios = generate_world(
        profile.n_authors, counts["10"], profile.qa_per_author, profile.seed)
    k = counts[profile.forget_split.removeprefix("forget")]
    forget, retain = authors[-k:], authors[:-k]
    rng = random.Random(profile.seed)
    icl_authors, retain_eval = retain[: max(1, len(retain) // 4)], retain[max(1, len(retain) // 4):]
    half = len(retain_eval) // 2

    def texts(group):
        return [{"text": bios[a.name]} for a in group]

    def passages(group):
        return [{"text": c} for a in group for c in _chunks(bios[a.name])]

    def qa(group):
        return [{"question": r["question"], "answer": r["short_answer"]}
                for a in group for r in rows[a.name]]

    verbmem = []
    for a in forget:  # sliding windows: 2 sentences and the start of a third, then the rest
        s = _sentences(bios[a.name])
        for i in range(0, max(1, len(s) - 4), 2):
            # the prompt stops mid-sentence (as MUSE's book excerpts do), so a model that
            # memorised the text has something to continue rather than a natural stop
            third = s[i + 2].split() if i + 2 < len(s) else []
            cut = min(6, max(1, len(third) // 2))
            prompt = " ".join(s[i:i + 2] + third[:cut])
            gt = " ".join([" ".join(third[cut:])] + s[i + 3:i + 8]).strip()
            if gt:
                verbmem.append({"prompt": prompt, "gt": gt})
    retain_qa = qa(retain_eval)
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
    }


def ensure_muse_source(profile: Profile) -> str:
    key = {k: getattr(profile, k) for k in
           ("n_authors", "qa_per_author", "seed", "forget_split")}
    key["generator_version"] = WORLD_VERSION
    key["muse_version"] = 2  # verbmem prompts stop mid-sentence
    folder = artifact_dir("data", "muse-synthetic", key)
    if (folder / "README.md").exists():
        return str(folder)
    header = ["---", "pretty_name: Synthetic MUSE (fictitious world)", "configs:"]
    for config, splits in build_muse_configs(profile).items():
        (folder / config).mkdir(exist_ok=True)
        header.append(f"- config_name: {config}")
        header.append("  data_files:")
        for split, items in splits.items():
            with open(folder / config / f"{split}.json", "w", encoding="utf-8") as f:
                for item in items:
                    f.write(json.dumps(item, ensure_ascii=False) + "\n")
            header += [f"  - split: {split}", f"    path: {config}/{split}.json"]
    header += ["---", "", "# Synthetic MUSE", "", "MUSE-style corpora of the workbook's "
               "fictitious world, in the file layout of the `muse-bench` hub datasets."]
    (folder / "README.md").write_text("\n".join(header) + "\n")
    return str(folder)


def load_muse(profile: Profile, config: str, split: str, source: str | None = None) -> datasets.Dataset:
    """One MUSE config/split, validated; ``source`` may be a hub id such as
    ``muse-bench/MUSE-Books`` (the default is our generated world)."""
    source = source or ensure_muse_source(profile)
    if config not in MUSE_FIELDS:
        raise DataValidationError(f"{source}: unknown MUSE config {config!r}; use one of {sorted(MUSE_FIELDS)}")
    ds = datasets.load_dataset(source, config, split=split, **local_load_kwargs(source))
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
