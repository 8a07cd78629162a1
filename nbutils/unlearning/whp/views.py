"""Pictures and tables of the WHP notebooks (09-10): top tokens side by side, a per-position
view of the three predictions, the coloured token table of generic labels, and the scores
measured over the fine-tune."""

from __future__ import annotations

import html

import pandas as pd
import plotly.graph_objects as go
import torch

from ...plots import next_token_panels
from .labels import IGNORE, GenericLabels, _batch_logits, generic_logits


def top_tokens_figure(df: pd.DataFrame, prompt: str) -> go.Figure:
    """The output of :func:`top_predictions` as one bar chart per model, side by side."""
    tables = {name: df[df["model"] == name] for name in dict.fromkeys(df["model"])}
    return next_token_panels(tables, f"Next token after {prompt!r}")


@torch.no_grad()
def position_table(base, reinforced, tokenizer, text: str, alpha: float) -> pd.DataFrame:
    """At every position of ``text``: the real next token and the top prediction of the
    baseline, the reinforced model and the generic combination."""
    ids = list(tokenizer(text, add_special_tokens=True)["input_ids"])
    vb = _batch_logits(base, [ids], tokenizer.pad_token_id)[0]
    vr = _batch_logits(reinforced, [ids], tokenizer.pad_token_id)[0]
    vg = generic_logits(vb, vr, alpha)
    dec = lambda i: tokenizer.decode([int(i)])  # noqa: E731
    rows = []
    for t in range(len(ids) - 1):
        rows.append({"context ends with": dec(ids[t]), "next token": dec(ids[t + 1]),
                     "baseline": dec(vb[t].argmax()), "reinforced": dec(vr[t].argmax()),
                     "generic": dec(vg[t].argmax())})
    return pd.DataFrame(rows)


def label_table_html(g: GenericLabels, tokenizer, max_tokens: int = 80) -> str:
    """Original tokens, their aligned translation tokens and the generic labels as a coloured
    table: orange where the label departs from the original text, grey where it agrees,
    blank where a position gets no label; a red border marks the consistency penalty."""
    dec = lambda i: html.escape(tokenizer.decode([int(i)])).replace(" ", "&middot;")  # noqa: E731
    n = min(len(g.input_ids) - 1, max_tokens)
    cells = {"original next": [], "translation": [], "generic label": []}
    for t in range(n):
        nxt, lab, a = g.original_next[t], g.targets[t], g.alignment[t]
        trans_next = (dec(g.translated_ids[a + 1]) if a is not None and a + 1 < len(g.translated_ids) else "")
        if lab == IGNORE:
            style = "background:#fafafa;color:#bbb"
        elif lab == nxt:
            style = "background:#eeeeee"
        else:
            style = "background:#ffd8a8;font-weight:bold"
        border = "border:2px solid #d33" if g.penalised[t] and lab != IGNORE else "border:1px solid #ddd"
        cells["original next"].append(f"<td style='border:1px solid #ddd'>{dec(nxt)}</td>")
        cells["translation"].append(f"<td style='border:1px solid #ddd;color:#555'>{trans_next}</td>")
        cells["generic label"].append(f"<td style='{style};{border}'>{'' if lab == IGNORE else dec(lab)}</td>")
    rows = "".join(f"<tr><th style='text-align:left;white-space:nowrap'>{name}</th>{''.join(c)}</tr>"
                   for name, c in cells.items())
    return ("<div style='overflow-x:auto'><table style='border-collapse:collapse;font-family:monospace;"
            f"font-size:12px'>{rows}</table></div>")


def progress_figure(progress: list[dict], title: str = "Over the WHP fine-tune") -> go.Figure:
    """Familiarity, revealing-answer probability and MC accuracy against the step."""
    df = pd.DataFrame(progress)
    fig = go.Figure()
    for col, name in (("familiarity", "familiarity (completions)"),
                      ("answer_prob", "p(revealing answer)"), ("mc_accuracy", "general MC accuracy")):
        if col in df:
            fig.add_trace(go.Scatter(x=df["step"], y=df[col], mode="lines+markers", name=name))
    fig.update_layout(title=title, xaxis_title="optimiser step", yaxis=dict(range=[0, 1.05]))
    return fig
