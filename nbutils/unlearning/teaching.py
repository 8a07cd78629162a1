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


def rouge_before_after(profile, runs: dict, limit: int = 100):
    """ROUGE-L recall on the forget and retain sets for each ``{name: checkpoint}``.

    Returns ``(scores, details)``: ``scores[name] = {"forget": r, "retain": r}`` and
    ``details[name, split]`` the full :func:`rouge_recall_on` result (generations included).
    """
    from ..data.tofu import load_tofu
    from ..evaluation.quick import rouge_recall_on
    from ..models.loading import load_model_and_tokenizer
    sets = {"forget": list(load_tofu(profile, profile.forget_split)),
            "retain": list(load_tofu(profile, profile.retain_split))}
    scores, details = {}, {}
    for name, path in runs.items():
        model, tok = load_model_and_tokenizer(str(path), profile)
        for split, rows in sets.items():
            details[name, split] = rouge_recall_on(model, tok, rows, profile, limit=limit)
        scores[name] = {split: details[name, split]["rougeL_recall"] for split in sets}
        del model
    return scores, details


def example_answers(details: dict, names: list[str], split: str = "forget", n: int = 6) -> pd.DataFrame:
    """Question, truth and each model's greedy answer, side by side."""
    first = details[names[0], split]
    table = {"question": first["questions"][:n], "truth": first["answers"][:n]}
    for name in names:
        table[name] = details[name, split]["generated"][:n]
    return pd.DataFrame(table)
