"""The leaderboard: every unlearning method x every metric, against the target and the
retain model, plus forget quality over each run's checkpoints, a MUSE table and the Who's
Harry Potter table (familiarity with the books, general knowledge).

Everything is cached: TOFU evaluations by :func:`ensure_tofu_eval`, the MIA / MUSE numbers
by :func:`ensure_privacy_eval`, so rebuilding the table after one new run costs one
evaluation.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.express as px

from .finetune import ensure_retain_model, ensure_target_model
from .paths import artifact_dir, read_cached_json, write_json
from .profiles import Profile
from .evaluation.tofu import TofuEval, ensure_tofu_eval, eval_key

# reading order of the methods, grouped by family (one notebook each)
LEADERBOARD_ORDER = ("gradascent", "graddiff", "graddiff_kl", "wga", "satimp", "npo", "simnpo",
                     "idknll", "idkdpo", "altpo", "rmu", "undial", "ceu", "pdu", "task_vector",
                     "whp", "whp_inference")
TOFU_COLUMNS = {"forget_quality": "forget quality", "model_utility": "model utility",
                "forget_truth_ratio": "forget truth ratio", "forget_Q_A_Prob": "forget prob",
                "forget_Q_A_ROUGE": "forget ROUGE-L", "extraction_strength": "extraction strength",
                "exact_memorization": "exact memorisation"}
MUSE_COLUMNS = ("VerbMem_f", "KnowMem_f", "PrivLeak", "KnowMem_r")


def ensure_retain_eval(profile: Profile, progress: bool = True) -> TofuEval:
    """The retain model's evaluation, with itself as the forget-quality reference (1.0):
    the reference every other model of this profile is compared with."""
    path = ensure_retain_model(profile)
    ev = ensure_tofu_eval(profile, path, f"retain-{profile.name}-{profile.forget_split}",
                          progress=progress)
    return ev.with_reference(ev)


def model_paths(profile: Profile, methods=LEADERBOARD_ORDER, **method_kwargs) -> dict[str, Path]:
    """``{"target": ..., "retain": ..., method: run folder}`` (trained if not cached)."""
    from .unlearning import ensure_unlearned
    paths = {"target": ensure_target_model(profile), "retain": ensure_retain_model(profile)}
    for m in methods:
        paths[m] = ensure_unlearned(profile, m, **method_kwargs.get(m, {}))
    return paths


def tofu_evals(profile: Profile, paths: dict[str, Path], progress: bool = False) -> dict:
    """Every model's TOFU evaluation, forget quality against the retain model."""
    reference = ensure_retain_eval(profile, progress=progress)
    return {name: reference if name == "retain" else
            ensure_tofu_eval(profile, path, f"{name}-{profile.name}", reference=reference, progress=progress)
            for name, path in paths.items()}


PRIVACY_EVAL_VERSION = 3  # 2: the whole MIA and MUSE results; 3: the GradNorm attack


def ensure_privacy_eval(profile: Profile, path: Path, name: str, retain: dict | None = None,
                        reference: Path | None = None, verbmem_tokens: int | None = None,
                        knowmem_tokens: int | None = None) -> dict:
    """Membership inference on TOFU forget vs holdout QA and MUSE's metrics of one model,
    computed once and cached: what notebook 08 teaches and the leaderboard tabulates.

    Returns ``{"mia": ..., "muse": ..., "tofu_privleak": ...}``: ``mia`` is
    :func:`~nbutils.evaluation.mia.mia_suite`'s result (AUC, ROC curve and per-item scores of
    every attack; the reference attack too when ``reference``, a checkpoint folder, usually the
    retain model, is given); ``muse`` is :func:`~nbutils.evaluation.muse.evaluate_muse`'s (the
    four numbers, the MIA AUC and the generations behind them). ``retain`` is the retain
    model's result of this function: its AUCs are the PrivLeak baseline (for the retain model
    itself pass nothing: its PrivLeak is 0 by definition).
    """
    from .evaluation.mia import mia_suite, privleak
    from .evaluation.muse import evaluate_muse
    from .models.loading import load_model_and_tokenizer
    v_tok = verbmem_tokens or min(128, profile.max_new_tokens)
    k_tok = knowmem_tokens or min(32, profile.max_new_tokens)
    key = eval_key(profile, path) | {"verbmem_tokens": v_tok, "knowmem_tokens": k_tok,
                                     "reference": None if reference is None else eval_key(profile, reference),
                                     "privacy_version": PRIVACY_EVAL_VERSION}
    folder = artifact_dir("eval", f"{name}-privacy", key)
    cached = folder / "PRIVACY_EVAL.json"
    result = read_cached_json(cached)
    if result is None:
        model, tok = load_model_and_tokenizer(str(path), profile)
        ref_model = load_model_and_tokenizer(str(reference), profile)[0] if reference is not None else None
        mia = mia_suite(model, tok, profile, reference_model=ref_model)
        muse = evaluate_muse(model, tok, profile, verbmem_tokens=v_tok, knowmem_tokens=k_tok)
        result = {"mia": mia, "muse": {k: v for k, v in muse.items() if k != "PrivLeak"},
                  "precision": muse["settings"]["precision"]}
        write_json(cached, result, indent=None, default=float)
        del model, ref_model
    base = retain or result
    result = dict(result)
    result["tofu_privleak"] = privleak(result["mia"]["auc"]["min_k"], base["mia"]["auc"]["min_k"])
    result["muse"] = dict(result["muse"], PrivLeak=privleak(result["muse"]["auc"], base["muse"]["auc"]))
    return result


def privacy_evals(profile: Profile, paths: dict[str, Path]) -> dict:
    """:func:`ensure_privacy_eval` of every model in ``paths`` (which holds ``retain``): PrivLeak
    against the retain model, which is also every other model's reference-attack model."""
    retain = ensure_privacy_eval(profile, paths["retain"], f"retain-{profile.name}")
    return {name: retain if name == "retain" else
            ensure_privacy_eval(profile, path, f"{name}-{profile.name}", retain=retain,
                                reference=paths["retain"])
            for name, path in paths.items()}


ROBUSTNESS_COLUMNS = ("R", "Q", "robustness")


def tofu_table(evals: dict, privacy: dict | None = None,
               robustness: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per model, the field's headline TOFU metrics (and TOFU PrivLeak; with
    ``robustness``, the frame of :func:`nbutils.robustness.robustness_frame`, its relearning
    and quantization scores R, Q and their harmonic mean)."""
    rows = {}
    for name, ev in evals.items():
        row = {label: ev.logs.get(key, {}).get("agg_value") for key, label in TOFU_COLUMNS.items()}
        if privacy is not None:
            row["privleak"] = privacy[name]["tofu_privleak"]
        if robustness is not None:
            row |= {c: robustness.loc[name, c] if name in robustness.index else None
                    for c in ROBUSTNESS_COLUMNS}
        rows[name] = row
    df = pd.DataFrame(rows).T.astype(float)
    df.index.name = "model"
    return df


def summary_table(evals: dict) -> pd.DataFrame:
    """One row per model, *every* metric its log holds (the TOFU_SUMMARY.json values): ours,
    or any log in open-unlearning's layout, its extra metrics included. ``evals``: name ->
    :class:`TofuEval` (or a path to a ``TOFU_EVAL.json`` / its folder)."""
    rows = {}
    for name, ev in evals.items():
        ev = ev if isinstance(ev, TofuEval) else TofuEval.load(ev)
        rows[name] = {k: v for k, v in ev.summary.items() if v is None or isinstance(v, (int, float))}
    df = pd.DataFrame.from_dict(rows, orient="index")
    df.index.name = "model"
    return df


def muse_table(privacy: dict) -> pd.DataFrame:
    """The SimNPO paper's MUSE table: VerbMem_f, KnowMem_f, PrivLeak, KnowMem_r."""
    names = {"target": "Origin", "retain": "Retrain"}
    df = pd.DataFrame({names.get(n, n): {c: r["muse"].get(c) for c in MUSE_COLUMNS}
                       for n, r in privacy.items()}).T.astype(float)
    df.index.name = "model"
    return df


def whp_evals(profile: Profile) -> dict[str, dict]:
    """Familiarity and general MC accuracy of the Harry Potter baseline and its WHP models
    (fine-tuned and inference-time), each evaluated once and cached."""
    from .models.loading import ensure_base_model
    from .unlearning.whp import ensure_whp_inference
    from .whp_experiment import ensure_whp_model
    from .evaluation.whp import ensure_whp_eval
    paths = {"baseline": ensure_base_model(profile), "whp": ensure_whp_model(profile),
             "whp_inference": ensure_whp_inference(profile)}
    return {name: ensure_whp_eval(profile, path, f"{name}-hp-{profile.name}") for name, path in paths.items()}


def whp_table(evals: dict[str, dict]) -> pd.DataFrame:
    """One row per model: familiarity, p(revealing answer), general MC accuracy."""
    df = pd.DataFrame({name: {"familiarity": e["familiarity"], "p(revealing answer)": e["answer_prob"],
                              "general MC accuracy": e["mc_accuracy"]} for name, e in evals.items()}).T
    df.index.name = "model"
    return df.astype(float)


def style_leaderboard(df: pd.DataFrame):
    """Greener = closer to what unlearning wants (utility up, memorisation down)."""
    higher_better = [c for c in ("forget quality", "model utility", *ROBUSTNESS_COLUMNS) if c in df]
    lower_better = [c for c in ("forget prob", "forget ROUGE-L", "extraction strength",
                                "exact memorisation") if c in df]
    sty = df.style.format(lambda v: "—" if pd.isna(v) else (f"{v:.2e}" if 0 < abs(v) < 1e-3 else f"{v:.3f}"))
    if higher_better:
        sty = sty.apply(_greens, subset=higher_better)
    if lower_better:
        sty = sty.apply(_greens, subset=lower_better, reverse=True)
    return sty


def _greens(column: pd.Series, reverse: bool = False) -> list[str]:
    """White-to-green cell shading by rank within a column (no matplotlib needed)."""
    ranks = column.rank(pct=True, ascending=not reverse).fillna(0)
    return [f"background-color: rgba(34, 139, 34, {0.08 + 0.5 * r:.2f})" for r in ranks]


def fq_mu_scatter(df: pd.DataFrame, title: str = "Forget quality vs model utility"):
    """The TOFU paper's picture: forget quality on a log axis against model utility."""
    plot = df.reset_index().rename(columns={"index": "model"})
    plot["forget quality"] = plot["forget quality"].clip(lower=1e-300)
    fig = px.scatter(plot, x="model utility", y="forget quality", text="model", log_y=True,
                     title=title)
    fig.update_traces(textposition="top center", marker=dict(size=11))
    return fig


def evenly_spaced(items: list, max_points: int | None) -> list:
    """At most ``max_points`` of ``items``, evenly spaced, first and last included."""
    if not max_points or len(items) <= max_points:
        return list(items)
    picks = np.linspace(0, len(items) - 1, max_points).round().astype(int)
    return [items[i] for i in sorted(set(picks))]


def checkpoint_trajectory(profile: Profile, method: str, run_dir: Path, reference,
                          max_points: int | None = None) -> pd.DataFrame:
    """Forget quality and model utility at the ``checkpoint-<step>`` folders of a run
    (``max_points`` evenly spaced ones, the last always included)."""
    from .unlearning import checkpoints
    ckpts = evenly_spaced(checkpoints(run_dir), max_points)
    final_step = json.loads((Path(run_dir) / "unlearning.json").read_text()).get("steps") \
        if (Path(run_dir) / "unlearning.json").exists() else None
    rows = []
    for ckpt in ckpts:
        meta = json.loads((ckpt / "unlearning.json").read_text()) if (ckpt / "unlearning.json").exists() else {}
        step = meta.get("step", int(ckpt.name.split("-")[-1]))
        if step == final_step:  # the last checkpoint is the run's final model: its evaluation is cached
            ev = ensure_tofu_eval(profile, run_dir, f"{method}-{profile.name}", reference=reference,
                                  progress=False)
        else:
            ev = ensure_tofu_eval(profile, ckpt, f"{method}-{profile.name}-{ckpt.name}",
                                  reference=reference, progress=False)
        rows.append({"method": method, "step": step,
                     "forget quality": ev["forget_quality"], "model utility": ev["model_utility"]})
    return pd.DataFrame(rows)


def revision_trajectory(profile: Profile, source: str, reference, label: str | None = None,
                        max_points: int | None = None, revisions=None,
                        progress: bool = False) -> pd.DataFrame:
    """Forget quality and model utility at every ``checkpoint-<step>`` *revision* of
    ``source``: the branches of a hub repo (the field's published trajectories, ours exported
    by :func:`nbutils.publishing.export_run`) or the subfolders of a run folder. Each revision
    gets the batched TOFU evaluation, cached by repo, revision and commit; the frame has the
    columns of :func:`checkpoint_trajectory`, so both plot alike."""
    from .models.hub import checkpoint_revisions
    revisions = evenly_spaced(revisions or checkpoint_revisions(source), max_points)
    label = label or str(source).rstrip("/").split("/")[-1]
    rows = []
    for rev in revisions:
        ev = ensure_tofu_eval(profile, rev.source, f"{label}-{rev.name}", reference=reference,
                              progress=progress, revision=rev.name)
        rows.append({"method": label, "step": rev.step, "revision": rev.name,
                     "forget quality": ev["forget_quality"], "model utility": ev["model_utility"]})
    return pd.DataFrame(rows)


def trajectory_plot(df: pd.DataFrame, title: str = "Forget quality and model utility over checkpoints"):
    """Forget quality (log scale, the higher the closer to the retain model) and model
    utility against the step, one line per method or repo."""
    from plotly.subplots import make_subplots
    fig = make_subplots(rows=1, cols=2, subplot_titles=("forget quality", "model utility"))
    colours = px.colors.qualitative.Plotly
    for i, (name, part) in enumerate(df.sort_values("step").groupby("method", sort=False)):
        colour = colours[i % len(colours)]
        for col, metric in ((1, "forget quality"), (2, "model utility")):
            fig.add_scatter(x=part["step"], y=part[metric], mode="lines+markers", name=name,
                            legendgroup=name, showlegend=col == 1, line=dict(color=colour),
                            row=1, col=col)
    fig.update_yaxes(type="log", row=1, col=1)
    fig.update_xaxes(title_text="step")
    fig.update_layout(title=title)
    return fig


def to_markdown(df: pd.DataFrame, caption: str = "") -> str:
    """A model-card style markdown table (values to 3 significant figures)."""
    def fmt(v):
        if isinstance(v, (float, np.floating)):
            return "—" if np.isnan(v) else (f"{v:.2e}" if 0 < abs(v) < 1e-3 else f"{v:.3g}")
        return str(v)
    cols = [df.index.name or ""] + list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for idx, row in df.iterrows():
        lines.append("| " + " | ".join([str(idx)] + [fmt(v) for v in row]) + " |")
    return (f"{caption}\n\n" if caption else "") + "\n".join(lines) + "\n"


def export(tables: dict[str, pd.DataFrame], folder: Path) -> list[Path]:
    """Each table as CSV and as markdown under ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, df in tables.items():
        df.to_csv(folder / f"{name}.csv")
        (folder / f"{name}.md").write_text(to_markdown(df, f"**{name}**"))
        written += [folder / f"{name}.csv", folder / f"{name}.md"]
    return written
