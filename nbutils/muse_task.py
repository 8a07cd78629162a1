"""MUSE as its own task (notebook 12): train on raw text, forget part of it, measure the six
criteria. Everything is cached: the MUSE models by :func:`~nbutils.finetune.ensure_muse_model`,
the runs by :func:`~nbutils.unlearning.ensure_unlearned`, the evaluations by
:func:`~nbutils.evaluation.muse.ensure_muse_eval`.

MUSE's six criteria and where they are:

1. no verbatim memorisation: ``VerbMem_f`` (down to the retrain model's level);
2. no knowledge memorisation: ``KnowMem_f``;
3. no privacy leakage: ``PrivLeak`` near 0 (negative: still more familiar with the forget
   text than a model that never saw it; positive: over-unlearnt, just as detectable);
4. utility preserved: ``KnowMem_r``;
5. scalability: the same four numbers as the forget set grows (``scal/forget_1..4``);
6. sustainability: after successive unlearning requests (``sust/forget_1..4``, each run
   starting from the previous one's result).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import plotly.express as px

from .profiles import Profile
from .evaluation.muse import ensure_muse_eval

# methods that apply to raw text, in the workbook's order; IdkDPO, IdkNLL and AltPO prefer
# other answers to forget *questions* and have none here
MUSE_METHODS = ("gradascent", "graddiff", "graddiff_kl", "wga", "satimp", "npo", "simnpo", "rmu",
                "undial", "ceu", "pdu", "task_vector", "whp", "whp_inference")
QUESTION_METHODS = ("idknll", "idkdpo", "altpo")
COLUMNS = ("VerbMem_f", "KnowMem_f", "PrivLeak", "KnowMem_r")
ROW_NAMES = {"target": "Origin", "retrain": "Retrain"}
# MUSE-Books as the SimNPO model card reports it (ICLM-7B; VerbMem_f / KnowMem_f / PrivLeak /
# KnowMem_r), for orientation beside our numbers
PUBLISHED_BOOKS = {"Origin": (99.56, 58.32, -56.32, 67.01), "Retrain": (14.30, 28.90, 0.00, 74.50),
                   "NPO": (0.00, 0.00, -31.17, 23.71), "SimNPO": (0.00, 0.00, -19.82, 48.27)}


def task_name(corpus: str) -> str:
    return f"muse_{corpus}"


def muse_methods(profile: Profile) -> tuple[str, ...]:
    """The methods this profile runs on the MUSE task (``profile.muse.methods``; all of
    :data:`MUSE_METHODS` when it names none)."""
    unknown = sorted(set(profile.muse.methods) - set(MUSE_METHODS))
    if unknown:
        raise ValueError(f"muse.methods {unknown} cannot run on raw text; choose from {list(MUSE_METHODS)}")
    return tuple(profile.muse.methods) or MUSE_METHODS


def muse_model_paths(profile: Profile, corpus: str, methods=None) -> dict[str, Path]:
    """``{"target": ..., "retrain": ..., method: run folder}`` (trained if not cached) for
    ``methods``, by default the profile's (:func:`muse_methods`)."""
    from .finetune import ensure_muse_model
    from .unlearning import ensure_unlearned
    paths = {"target": ensure_muse_model(profile, corpus, "target"),
             "retrain": ensure_muse_model(profile, corpus, "retrain")}
    for m in muse_methods(profile) if methods is None else methods:
        paths[m] = ensure_unlearned(profile, m, task=task_name(corpus))
    return paths


def muse_evals(profile: Profile, corpus: str, paths: dict[str, Path]) -> dict[str, dict]:
    """Every model's MUSE evaluation; PrivLeak against the retrain model's AUC."""
    retrain = ensure_muse_eval(profile, paths["retrain"], f"retrain-{profile.name}", corpus)
    return {name: ensure_muse_eval(profile, path, f"{name}-{profile.name}", corpus, retain_auc=retrain["auc"])
            for name, path in paths.items()}


def muse_table(evals: dict[str, dict]) -> pd.DataFrame:
    """MUSE's table: Origin, Retrain, then each method; VerbMem_f, KnowMem_f, PrivLeak, KnowMem_r."""
    df = pd.DataFrame({ROW_NAMES.get(n, n): {c: e[c] for c in COLUMNS} for n, e in evals.items()}).T
    df.index.name = "model"
    return df.astype(float).round(2)


def published_books_table() -> pd.DataFrame:
    df = pd.DataFrame(PUBLISHED_BOOKS, index=list(COLUMNS)).T
    df.index.name = "model (MUSE-Books, published)"
    return df


def scalability_runs(profile: Profile, methods=None) -> dict[tuple[str, int], Path]:
    """Each method unlearning ``scal/forget_k`` (k = 1..4), each from the MUSE-News target."""
    from .unlearning import ensure_unlearned
    from .unlearning.tasks import UnlearningTask
    methods = methods or profile.muse.scal_sust_methods
    return {(m, k): ensure_unlearned(profile, m, task=UnlearningTask("muse_news", f"scal/forget_{k}"))
            for m in methods for k in range(1, 5)}


def sustainability_runs(profile: Profile, methods=None) -> dict[tuple[str, int], Path]:
    """Each method unlearning ``sust/forget_1``, then ``forget_2`` from that result, and so on."""
    from .unlearning import ensure_unlearned
    from .unlearning.tasks import UnlearningTask
    methods = methods or profile.muse.scal_sust_methods
    runs = {}
    for m in methods:
        start = None  # the MUSE-News target
        for k in range(1, 5):
            start = ensure_unlearned(profile, m, start=start and str(start),
                                     task=UnlearningTask("muse_news", f"sust/forget_{k}"))
            runs[m, k] = start
    return runs


def criteria_frame(profile: Profile, runs: dict[tuple[str, int], Path], kind: str,
                   sizes: dict[int, int] | None = None) -> pd.DataFrame:
    """Long table (method, k, [forget texts], metric, value) of the runs' MUSE-News numbers,
    with the target's (k = 0) and the retrain model's as reference rows."""
    from .finetune import ensure_muse_model
    retrain = ensure_muse_eval(profile, ensure_muse_model(profile, "news", "retrain"),
                               f"retrain-{profile.name}", "news")
    target = ensure_muse_eval(profile, ensure_muse_model(profile, "news", "target"),
                              f"target-{profile.name}", "news", retain_auc=retrain["auc"])
    rows = []
    for (method, k), path in runs.items():
        ev = ensure_muse_eval(profile, path, f"{method}-{kind}{k}-{profile.name}", "news",
                              retain_auc=retrain["auc"])
        for c in COLUMNS:
            rows.append({"method": method, "k": k, "metric": c, "value": ev[c]})
            if k == 1:  # every curve starts at the target
                rows.append({"method": method, "k": 0, "metric": c, "value": target[c]})
    df = pd.DataFrame(rows).sort_values(["method", "metric", "k"]).reset_index(drop=True)
    if sizes:
        df["forget texts"] = df.k.map(lambda k: sizes.get(k, 0))
    # the retrain model's level of each metric (its PrivLeak is 0 by definition)
    df.attrs["retrain"] = {c: (retrain[c] if c != "PrivLeak" else 0.0) for c in COLUMNS}
    return df


def criteria_plot(df: pd.DataFrame, x: str, title: str):
    """The four metrics against ``x`` (forget-set size or request number), one panel each,
    with the retrain model's level dotted."""
    fig = px.line(df, x=x, y="value", color="method", facet_col="metric", facet_col_wrap=4,
                  markers=True, title=title)
    fig.update_yaxes(matches=None, showticklabels=True)
    for i, c in enumerate(COLUMNS):
        level = df.attrs.get("retrain", {}).get(c)
        if level is not None:
            fig.add_hline(y=level, line_dash="dot", line_color="grey", row=1, col=i + 1)
    fig.for_each_annotation(lambda a: a.update(text=a.text.split("=")[-1]))
    fig.update_layout(height=380)
    return fig
