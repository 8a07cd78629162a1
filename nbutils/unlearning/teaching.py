"""Pictures and tables the unlearning notebooks (03-06) share."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
from plotly.subplots import make_subplots


def log_frame(logs: dict[str, list[dict]]) -> pd.DataFrame:
    """Long table (run, step, metric, value) from ``unlearning_log`` lists."""
    rows = []
    for name, log in logs.items():
        for entry in log:
            if "step" not in entry:
                continue
            for key in ("loss", "forget_loss", "retain_loss", "forget_answer_prob", "retain_answer_prob"):
                if key in entry:
                    rows.append({"run": name, "step": entry["step"], "metric": key, "value": entry[key]})
    return pd.DataFrame(rows)


def unlearning_curves(logs: dict[str, list[dict]], title: str = "Unlearning over steps"):
    """Forget/retain loss (top) and forget/retain answer probability P̃(a|q) (bottom)."""
    df = log_frame(logs)
    fig = make_subplots(rows=2, cols=2, shared_xaxes=True, subplot_titles=(
        "forget loss (method's objective)", "retain loss",
        "forget answer probability", "retain answer probability"))
    colors = px.colors.qualitative.Plotly
    for i, (name, _) in enumerate(logs.items()):
        for (r, c, key) in ((1, 1, "forget_loss"), (1, 2, "retain_loss"),
                            (2, 1, "forget_answer_prob"), (2, 2, "retain_answer_prob")):
            part = df[(df.run == name) & (df.metric == key)]
            if part.empty:
                continue
            fig.add_scatter(x=part.step, y=part.value, mode="lines+markers", name=name,
                            legendgroup=name, showlegend=(r, c) == (2, 1),
                            line=dict(color=colors[i % len(colors)]), row=r, col=c)
    fig.update_yaxes(range=[0, 1.02], row=2)
    fig.update_xaxes(title_text="step", row=2)
    fig.update_layout(title=title, height=560)
    return fig


def before_after(results: dict[str, dict[str, float]]) -> pd.DataFrame:
    """``{model: {"forget": r, "retain": r}}`` → a table with the ratios to the target."""
    df = pd.DataFrame(results).T
    if "target" in df.index:
        for col in ("forget", "retain"):
            df[f"{col} / target"] = df[col] / df.loc["target", col]
    return df.round(3)


SPLIT_PREFIXES = {"forget": "forget", "retain": "retain", "real authors": "ra", "world facts": "wf"}


def rouge_before_after(profile, runs: dict, splits=("forget", "retain")):
    """ROUGE-L recall of each ``{name: checkpoint}`` on the TOFU evaluation's splits.

    The numbers come from the model's cached TOFU evaluation (:func:`ensure_tofu_eval`, the
    same greedy answers notebook 07 and the leaderboard report), so each checkpoint is
    generated for once in the whole workbook. ``splits`` are keys of ``SPLIT_PREFIXES``.

    Returns ``(scores, details)``: ``scores[name] = {split: r}`` and ``details[name, split]``
    a dict with the mean ``rougeL_recall``, per item ``scores``, ``generated``, ``questions``
    and ``answers``.
    """
    from ..evaluation.tofu import ensure_retain_eval, ensure_tofu_eval
    scores, details = {}, {}
    for name, path in runs.items():
        ev = (ensure_retain_eval(profile, progress=False) if name == "retain" else
              ensure_tofu_eval(profile, path, f"{name}-{profile.name}", progress=False))
        for split in splits:
            log = ev.logs[f"{SPLIT_PREFIXES[split]}_Q_A_ROUGE"]
            items = [log["value_by_index"][k] for k in sorted(log["value_by_index"], key=int)]
            details[name, split] = {"rougeL_recall": log["agg_value"],
                                    "scores": [e["rougeL_recall"] for e in items],
                                    "generated": [e["generation"] for e in items],
                                    "questions": [e["input"] for e in items],
                                    "answers": [e["ground_truth"] for e in items]}
        scores[name] = {split: details[name, split]["rougeL_recall"] for split in splits}
    return scores, details


def example_answers(details: dict, names: list[str], split: str = "forget", n: int = 6) -> pd.DataFrame:
    """Question, truth and each model's greedy answer, side by side."""
    first = details[names[0], split]
    table = {"question": first["questions"][:n], "truth": first["answers"][:n]}
    for name in names:
        table[name] = details[name, split]["generated"][:n]
    return pd.DataFrame(table)
