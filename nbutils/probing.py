"""Probing a model by hand: "Who is Harry Potter?" asked of two models side by side.

Pure functions do the work and tests call them directly: :func:`probe` generates with every
chosen model, reads its next-token distribution after the prompt and the per-token
probabilities of a chosen answer; :func:`next_token_figure`, :func:`probability_strip` and
:func:`generations_html` draw the result. :class:`ProbeApp` is only a thin ipywidgets view
over them (notebook 11, also served as a standalone app with Voila); its ``run()`` is the
Generate button's callback, callable without a browser.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import torch

from .evaluation.generation import left_pad
from .paths import MARKER, cache_root
from .plots import next_token_panels


@dataclass(frozen=True)
class Sampling:
    """Decoding settings: greedy by default (reproducible), sampling when asked."""

    max_new_tokens: int = 32
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    seed: int = 0


@dataclass
class ProbeResult:
    prompt: str
    answer: str  # the answer whose per-token probabilities are shown
    generations: dict[str, str] = field(default_factory=dict)
    next_tokens: dict[str, pd.DataFrame] = field(default_factory=dict)
    answer_tokens: dict[str, pd.DataFrame] = field(default_factory=dict)


def _device(model) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def generate_text(model, tokenizer, prompt: str, sampling: Sampling = Sampling()) -> str:
    """The model's continuation of ``prompt`` (raw text, the tokenizer's special tokens)."""
    ids, mask = left_pad([list(tokenizer(prompt, add_special_tokens=True)["input_ids"])],
                         tokenizer.pad_token_id)
    torch.manual_seed(sampling.seed)
    kwargs = dict(max_new_tokens=sampling.max_new_tokens, do_sample=sampling.do_sample,
                  pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    if sampling.do_sample:
        kwargs.update(temperature=max(sampling.temperature, 1e-3), top_p=sampling.top_p,
                      top_k=sampling.top_k)
    model.eval()
    out = model.generate(input_ids=ids.to(_device(model)), attention_mask=mask.to(_device(model)), **kwargs)
    return tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)


def next_tokens(model, tokenizer, prompt: str, k: int = 10) -> pd.DataFrame:
    """The ``k`` most likely next tokens after ``prompt`` and their probabilities."""
    from .evaluation.scoring import next_token_distribution
    ids = list(tokenizer(prompt, add_special_tokens=True)["input_ids"])
    tokens, probs = next_token_distribution(model, tokenizer, ids, k)
    return pd.DataFrame({"token": tokens, "probability": probs})


def answer_token_probabilities(model, tokenizer, prompt: str, answer: str) -> pd.DataFrame:
    """Teacher-forced probability of each token of ``answer`` following ``prompt`` (the
    evaluation's shared scoring pass, one pair)."""
    from .evaluation.scoring import IGNORE, score_encoded
    prompt_ids = list(tokenizer(prompt, add_special_tokens=True)["input_ids"])
    answer_ids = list(tokenizer(answer, add_special_tokens=False)["input_ids"])
    if not answer_ids:
        return pd.DataFrame({"token": [], "probability": []})
    scores = score_encoded(model, [(prompt_ids + answer_ids, [IGNORE] * len(prompt_ids) + answer_ids)],
                           tokenizer.pad_token_id, stats=False)[0]
    return pd.DataFrame({"token": [tokenizer.decode([i]) for i in answer_ids],
                         "probability": np.exp(scores.logprobs).tolist()})


def probe(models: dict[str, tuple], prompt: str, answer: str | None = None,
          sampling: Sampling = Sampling(), k: int = 10) -> ProbeResult:
    """Everything the probing view shows, for each ``{label: (model, tokenizer)}``. Without
    an ``answer``, the first model's generation is the answer whose tokens are scored."""
    if not prompt.strip():
        raise ValueError("type a prompt first (e.g. 'Who is Harry Potter?')")
    result = ProbeResult(prompt, answer or "")
    for label, (model, tokenizer) in models.items():
        result.generations[label] = generate_text(model, tokenizer, prompt, sampling)
        result.next_tokens[label] = next_tokens(model, tokenizer, prompt, k)
    if not result.answer.strip():
        result.answer = next(iter(result.generations.values()))
    for label, (model, tokenizer) in models.items():
        result.answer_tokens[label] = answer_token_probabilities(model, tokenizer, prompt, result.answer)
    return result


def next_token_figure(result: ProbeResult) -> go.Figure:
    """One horizontal bar chart per model: its most likely next tokens."""
    return next_token_panels(result.next_tokens, f"Next token after {result.prompt!r}", spacing=0.18)


def probability_strip(result: ProbeResult) -> go.Figure:
    """The chosen answer token by token, each cell coloured by the model's probability of it
    (one row per model): where the unlearned model stops "knowing" shows as a colour change."""
    labels = list(result.answer_tokens)
    tokens = list(result.answer_tokens[labels[0]]["token"]) if labels else []
    z = [list(result.answer_tokens[l]["probability"]) for l in labels]
    text = [[t for t in tokens] for _ in labels]
    fig = go.Figure(go.Heatmap(z=z, x=list(range(len(tokens))), y=labels, text=text,
                               texttemplate="%{text}", zmin=0, zmax=1, colorscale="RdYlGn",
                               colorbar=dict(title="p(token)", thickness=12, len=1.0),
                               hovertemplate="%{y}<br>%{text}: %{z:.3f}<extra></extra>"))
    fig.update_layout(title=f"Per-token probability of the answer {result.answer.strip()[:60]!r}",
                      height=200 + 45 * len(labels), xaxis=dict(showticklabels=False))
    return fig


def generations_html(result: ProbeResult) -> str:
    """The generations side by side as a small HTML table."""
    cells = "".join(
        f"<td style='vertical-align:top;padding:6px;border:1px solid #ddd;width:{100 // max(1, len(result.generations))}%'>"
        f"<b>{html.escape(label)}</b><br>{html.escape(text.strip()) or '<i>(nothing)</i>'}</td>"
        for label, text in result.generations.items())
    return (f"<p><b>Prompt:</b> {html.escape(result.prompt)}</p>"
            f"<table style='border-collapse:collapse;width:100%'><tr>{cells}</tr></table>")


# ---------------------------------------------------------------- which models to offer

def probe_catalogue(profile) -> dict[str, str]:
    """Models a student can pick: the baseline, the WHP models of this profile and every
    cached unlearning run or finetuned model (label -> checkpoint folder)."""
    from .models.loading import ensure_base_model
    found = {"baseline": str(ensure_base_model(profile))}
    root = cache_root()
    for kind in ("whp", "unlearn", "models"):
        for folder in sorted((root / kind).glob("*")) if (root / kind).exists() else []:
            finished = (folder / MARKER).exists()  # its manifest; half-trained runs are not offered
            weights = any(folder.glob("*.safetensors")) or (folder / "whp_inference.json").exists()
            if finished and weights and _belongs_to(folder, profile):
                label = _label(kind, folder)
                if label in found:  # same run name, other settings (a different key hash)
                    label += f" [{folder.name.rsplit('-', 1)[-1]}]"
                found[label] = str(folder)
    return found


def _belongs_to(folder: Path, profile) -> bool:
    name = folder.name.rsplit("-", 1)[0]
    return f"-{profile.name}" in name or f"_{profile.model}_" in name or name.endswith(profile.name)


def _label(kind: str, folder: Path) -> str:
    name = folder.name.rsplit("-", 1)[0]
    return {"whp": "", "unlearn": "unlearn: ", "models": "model: "}[kind] + name


class ModelLoader:
    """Loads a checkpoint the first time it is picked and keeps it (probing switches back
    and forth between a handful of models)."""

    def __init__(self, profile):
        self.profile, self._cache = profile, {}

    def __call__(self, path: str):
        if path not in self._cache:
            from .models.loading import load_model, load_tokenizer
            self._cache[path] = (load_model(path, self.profile, load_in_4bit=False).eval(),
                                 load_tokenizer(path, self.profile))
        return self._cache[path]


# ---------------------------------------------------------------- the widget view

def _display_data(fig) -> dict:
    """A figure as an Output widget's display_data entry. Not ``Output.append_display_data``:
    plotly figures define ``_ipython_display_``, so IPython's formatter shows them in the cell
    that is running (none, in a button callback) and hands the widget an empty bundle."""
    # the mimetype JupyterLab's and Voila's plotly renderer draw, whatever renderer is default
    data = {"application/vnd.plotly.v1+json": json.loads(fig.to_json()),
            "text/plain": f"<plotly figure: {fig.layout.title.text or 'untitled'}>"}
    return {"output_type": "display_data", "data": data, "metadata": {}}


class ProbeApp:
    """Two model pickers, a prompt (typed or preset), an answer to score, sampling controls
    and a Generate button; results below. CSS classes name every part the browser test uses."""

    def __init__(self, catalogue: dict[str, str], loader: Callable, presets: list[dict],
                 baseline: str = "baseline", unlearned: str | None = None):
        import ipywidgets as w
        self.catalogue, self.loader, self.presets = catalogue, loader, presets
        names = list(catalogue)
        self.left = w.Dropdown(options=names, value=baseline if baseline in names else names[0],
                               description="model A")
        self.right = w.Dropdown(options=names, value=unlearned if unlearned in names else names[-1],
                                description="model B")
        self.preset = w.Dropdown(options=[("(type your own)", -1)] + [(p["prompt"], i) for i, p in enumerate(presets)],
                                 value=-1, description="preset")
        self.prompt = w.Textarea(value=presets[0]["prompt"] if presets else "", description="prompt",
                                 layout=w.Layout(width="95%", height="60px"))
        self.answer = w.Text(value=presets[0].get("answer", "") if presets else "",
                             description="answer", placeholder="answer to score (empty: model A's generation)",
                             layout=w.Layout(width="95%"))
        self.do_sample = w.Checkbox(value=False, description="sample")
        self.temperature = w.FloatSlider(value=1.0, min=0.1, max=2.0, step=0.05, description="temperature")
        self.top_p = w.FloatSlider(value=1.0, min=0.05, max=1.0, step=0.05, description="top-p")
        self.max_new_tokens = w.IntSlider(value=32, min=4, max=128, step=4, description="new tokens")
        self.seed = w.IntText(value=0, description="seed")
        self.button = w.Button(description="Generate", button_style="primary", icon="play")
        self.status = w.HTML("")
        self.answer_a, self.answer_b = w.HTML("—"), w.HTML("—")
        self.charts = w.Output()
        for widget, cls in ((self.prompt, "probe-prompt"), (self.button, "probe-generate"),
                            (self.status, "probe-status"), (self.answer_a, "probe-answer-baseline"),
                            (self.answer_b, "probe-answer-unlearned"), (self.charts, "probe-charts")):
            widget.add_class(cls)
        self.preset.observe(self._on_preset, names="value")
        self.button.on_click(lambda _: self.run())
        sampling = w.HBox([self.do_sample, self.temperature, self.top_p, self.max_new_tokens, self.seed])
        answers = w.HBox([w.VBox([w.HTML("<b>model A</b>"), self.answer_a], layout=w.Layout(width="50%")),
                          w.VBox([w.HTML("<b>model B</b>"), self.answer_b], layout=w.Layout(width="50%"))])
        self.container = w.VBox([w.HBox([self.left, self.right]), self.preset, self.prompt, self.answer,
                                 sampling, w.HBox([self.button, self.status]), answers, self.charts])
        self.container.add_class("probe-app")
        self.last: ProbeResult | None = None

    def _on_preset(self, change):
        if change["new"] >= 0:
            p = self.presets[change["new"]]
            self.prompt.value, self.answer.value = p["prompt"], p.get("answer", "")

    def sampling(self) -> Sampling:
        return Sampling(self.max_new_tokens.value, self.do_sample.value, self.temperature.value,
                        self.top_p.value, 0, self.seed.value)

    def run(self) -> ProbeResult | None:
        """The Generate callback: probe both models and redraw the results."""
        self.status.value = "generating…"
        try:
            models = {f"A: {self.left.value}": self.loader(self.catalogue[self.left.value]),
                      f"B: {self.right.value}": self.loader(self.catalogue[self.right.value])}
            result = probe(models, self.prompt.value, self.answer.value, self.sampling())
        except Exception as err:  # shown in the app: a student's typo must not look like a hang
            self.status.value = f"<span style='color:#b00'>error: {html.escape(str(err))}</span>"
            return None
        texts = list(result.generations.values())
        self.answer_a.value = html.escape(texts[0].strip()) or "<i>(nothing)</i>"
        self.answer_b.value = html.escape(texts[1].strip()) or "<i>(nothing)</i>"
        # set as display data rather than shown inside ``with self.charts``: the same outputs
        # then appear in JupyterLab, in Voila and when tests call run() with no kernel
        self.charts.outputs = tuple(_display_data(fig) for fig in
                                    (next_token_figure(result), probability_strip(result)))
        self.status.value = "done"
        self.last = result
        return result
