"""What the unlearning notebooks (02-06) share: each method's settings, one batch built as
the trainer builds it, the training curves and the before/after tables."""

from __future__ import annotations

from dataclasses import asdict

import pandas as pd
import plotly.express as px
from plotly.subplots import make_subplots


def method_settings(profile, names) -> pd.DataFrame:
    """Each method's hyperparameters as ``profile`` runs it (its own config, then the learning
    rate and epochs it trains with): one column per method, ``—`` where a method has no
    such setting."""
    from .unlearning.cached_runs import method_for, schedule
    columns = {}
    for name in names:
        method = method_for(profile, name)
        lr, epochs = schedule(profile, method)
        config = {k: v for k, v in asdict(method.config).items() if k not in ("learning_rate", "epochs")}
        columns[name] = {**config, "learning rate": lr, "epochs": epochs}
    return pd.DataFrame(columns).map(lambda v: "—" if v is None or v != v else v)


def example_batch(profile, model, tokenizer, n: int = 4, preferred_answers: list[str] | None = None,
                  reference_logprobs: bool = False) -> dict:
    """The first ``n`` forget questions as one training batch, built as the trainer builds it:
    each paired with its seeded random retain example, every group right-padded on its own,
    on the model's device. ``preferred_answers`` adds a ``preferred`` group (one answer per
    forget question, as IdkDPO's refusals); ``reference_logprobs`` gives every forget (and
    preferred) answer its ``ref_logprob``, ``S_ref(a|q)`` under ``model``, computed once
    before training as the trainer does."""
    from .data.tofu import load_tofu
    from .unlearning.trainer import UnlearningCollator, UnlearningDataset, encode_rows, sequence_logprobs

    def encode(rows):
        return encode_rows(tokenizer, rows, profile.prompt_format, profile.finetune.max_length)
    forget_rows = list(load_tofu(profile, profile.forget_split))[:n]
    forget = encode(forget_rows)
    retain = encode(list(load_tofu(profile, profile.retain_split)))
    preferred = None
    if preferred_answers is not None:
        preferred = encode([{"question": r["question"], "answer": a}
                            for r, a in zip(forget_rows, preferred_answers)])
    if reference_logprobs:
        for group in (forget, preferred or []):
            for feature, s in zip(group, sequence_logprobs(model, group, tokenizer.pad_token_id)):
                feature["ref_logprob"] = s
    dataset = UnlearningDataset(forget, retain, preferred, seed=profile.seed)
    batch = UnlearningCollator(tokenizer.pad_token_id)([dataset[i] for i in range(len(dataset))])
    device = next(model.parameters()).device
    return {group: {k: v.to(device) for k, v in tensors.items()} for group, tensors in batch.items()}


def group_logits(model, group):
    """The model's logits on one group of a batch (``forget``, ``retain``, ...)."""
    return model(input_ids=group["input_ids"], attention_mask=group["attention_mask"]).logits


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
    from .evaluation.tofu import ensure_tofu_eval
    from .leaderboard import ensure_retain_eval
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
