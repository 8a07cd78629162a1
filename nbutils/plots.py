"""Plotly figures the notebooks share (one function per kind of picture)."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go


def training_curves(logs: dict[str, list[dict]], key: str = "loss", title: str = "Training loss"):
    """One line per run from Trainer ``log_history`` lists, against the epoch."""
    rows = [{"run": name, "epoch": e["epoch"], key: e[key]}
            for name, log in logs.items() for e in log if key in e and "epoch" in e]
    fig = px.line(pd.DataFrame(rows), x="epoch", y=key, color="run", title=title, markers=True)
    fig.update_yaxes(type="log")
    return fig


def split_sizes(sizes: dict[str, int], title: str = "Rows per TOFU config"):
    df = pd.DataFrame({"config": list(sizes), "rows": list(sizes.values())})
    df["kind"] = df["config"].str.extract(r"^(forget|retain|holdout|real|world|full)")[0]
    return px.bar(df, x="config", y="rows", color="kind", title=title, text="rows")


def length_histograms(lengths: dict[str, list[int]], title: str = "Tokens per text"):
    rows = [{"field": k, "tokens": n} for k, ns in lengths.items() for n in ns]
    return px.histogram(pd.DataFrame(rows), x="tokens", color="field", barmode="overlay",
                        opacity=0.6, title=title)


def next_token_bars(tokens: list[str], probs: list[float], title: str = "Next-token probabilities"):
    fig = go.Figure(go.Bar(x=probs[::-1], y=[repr(t) for t in tokens[::-1]], orientation="h"))
    fig.update_layout(title=title, xaxis_title="probability", height=80 + 28 * len(tokens))
    return fig


def next_token_panels(tables: dict[str, pd.DataFrame], title: str, spacing: float = 0.12):
    """One horizontal bar chart per model, side by side: ``{model: DataFrame(token,
    probability)}``, most likely token on top (the multi-model ``next_token_bars``)."""
    from plotly.subplots import make_subplots
    fig = make_subplots(rows=1, cols=len(tables), subplot_titles=list(tables), horizontal_spacing=spacing)
    rows = 0
    for col, df in enumerate(tables.values(), 1):
        part = df.iloc[::-1]
        rows = max(rows, len(part))
        fig.add_trace(go.Bar(x=part["probability"], y=[repr(t) for t in part["token"]],
                             orientation="h", showlegend=False), row=1, col=col)
        fig.update_xaxes(range=[0, 1], title_text="probability", row=1, col=col)
    fig.update_layout(title=title, height=120 + 28 * rows)
    return fig


def grouped_scores(df: pd.DataFrame, x: str, y: str, color: str, title: str):
    fig = px.bar(df, x=x, y=y, color=color, barmode="group", title=title, text_auto=".2f")
    fig.update_yaxes(range=[0, 1.05])
    return fig
