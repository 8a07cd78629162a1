"""The field's released TOFU models, by repo id: what a name says and how to prompt the model.

open-unlearning releases several hundred models under one naming pattern,
``open-unlearning/unlearn_tofu_<model>_<forget split>_<method>_lr<lr>_beta<β>_alpha<α>_epoch<n>``
(and the finetuned ``tofu_<model>_full`` / ``tofu_<model>_retain<NN>`` they start from);
the TOFU authors' phi-1.5 runs are ``locuslab/phi_<method>_<lr>_<forget split>`` with a branch
per checkpoint. :func:`parse_release` reads such a name; :func:`release_overrides` gives the
profile overrides that evaluate the model as its publisher did: the prompt format of its
family (open-unlearning's ``template_args``) and its forget split.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

# model name in a release -> (prompt format, tokenizer repo where the release ships none)
MODEL_FAMILIES = {
    "Llama-3.2-1B-Instruct": ("llama3", None),
    "Llama-3.2-3B-Instruct": ("llama3", None),
    "Llama-3.1-8B-Instruct": ("llama3", None),
    "Llama-2-7b-chat-hf": ("llama2", None),
    "phi-1_5": ("qa", None),
    "phi-1.5": ("qa", None),
    "phi": ("qa", "microsoft/phi-1_5"),  # locuslab/phi_*: weights only
}
_UNLEARNED = re.compile(r"^unlearn_(?P<bench>tofu|muse)_(?P<model>.+?)_(?P<split>forget\d\d)_(?P<rest>.+)$")
_FINETUNED = re.compile(r"^(?P<bench>tofu)_(?P<model>.+)_(?P<split>full|retain\d\d)$")
_LOCUSLAB = re.compile(r"^(?P<model>phi)_(?P<method>.+)_(?P<lr>\d[\d.e-]*)_(?P<split>forget\d\d)$")
_HPARAM = re.compile(r"^(lr|beta|alpha|epoch|gamma|delta|steering|layer)(.+)$")


@dataclass(frozen=True)
class Release:
    repo_id: str
    model: str  # the family name as the release writes it ("Llama-3.2-1B-Instruct")
    split: str  # "forget10", or "full" / "retain90" for a finetuned model
    method: str | None = None
    hparams: dict = field(default_factory=dict)
    prompt_format: str = "qa"
    tokenizer: str | None = None

    @property
    def forget_split(self) -> str:
        """The forget split the model is evaluated on (a retainNN model: its complement)."""
        if self.split.startswith("retain"):
            return f"forget{100 - int(self.split[6:]):02d}"
        return self.split if self.split.startswith("forget") else "forget10"

    @property
    def retain_split(self) -> str:
        return "retain" + str(100 - int(self.forget_split.removeprefix("forget")))


def parse_release(repo_id: str) -> Release:
    """What a released model's name says (model family, split, method, hyperparameters);
    a clear error for a name outside the known patterns."""
    name = repo_id.split("/")[-1]
    m = _UNLEARNED.match(name)
    if m:
        method, *parts = m["rest"].split("_")
        hparams = {}
        for part in parts:
            hm = _HPARAM.match(part)
            if hm:
                hparams[hm.group(1)] = _number(hm.group(2))
        return _with_family(Release(repo_id, m["model"], m["split"], method, hparams))
    m = _FINETUNED.match(name)
    if m:
        return _with_family(Release(repo_id, m["model"], m["split"]))
    m = _LOCUSLAB.match(name)
    if m:
        return _with_family(Release(repo_id, m["model"], m["split"], m["method"],
                                    {"lr": _number(m["lr"])}))
    raise ValueError(
        f"{repo_id}: not a released-model name this workbook knows. Expected "
        f"open-unlearning/unlearn_tofu_<model>_<forgetNN>_<method>_lr..., "
        f"open-unlearning/tofu_<model>_<full|retainNN> or locuslab/phi_<method>_<lr>_<forgetNN>; "
        f"for any other model pass the profile overrides (model, prompt_format, forget_split) yourself")


def _with_family(release: Release) -> Release:
    if release.model not in MODEL_FAMILIES:
        raise ValueError(f"{release.repo_id}: unknown model family {release.model!r}; known: "
                         f"{sorted(MODEL_FAMILIES)}. Pass prompt_format as a profile override.")
    fmt, tokenizer = MODEL_FAMILIES[release.model]
    return replace(release, prompt_format=fmt, tokenizer=tokenizer)


def _number(text: str):
    try:
        value = float(text)
    except ValueError:
        return text
    return int(value) if value.is_integer() and "e" not in text and "." not in text else value


def release_overrides(repo_id: str) -> dict:
    """Profile overrides that evaluate ``repo_id`` as its publisher did (use with ``paper``)."""
    r = parse_release(repo_id)
    out = {"model": repo_id, "prompt_format": r.prompt_format, "forget_split": r.forget_split}
    if r.tokenizer:
        out["tokenizer"] = r.tokenizer
    return out
