"""What every unlearning method is: a typed config and a loss on a forget/retain batch.

A method declares what it needs and the trainer provides it:

- ``reference_logprobs``: which answer groups need the frozen starting model's sequence
  log-probability ``S_ref``. Those never change, so they are computed **once**, before
  training, and travel with each example (NPO, the DPO family, AltPO);
- ``needs_reference_model``: per-token reference logits or activations (KL, RMU, UNDIAL),
  computed each step by a frozen copy, or, on LoRA runs, by the same model with its
  adapters disabled (no second copy in memory);
- ``preferred_answers``: an answer per forget question to prefer (IdkDPO's refusals,
  AltPO's generated alternatives).

``L = γ·L_forget + α·L_retain``, with ``L_retain`` NLL on the paired retain example or
``KL(p_ref || p_θ)`` on its answer tokens.
"""

from __future__ import annotations

import dataclasses
import types
import typing

from dataclasses import dataclass
from typing import ClassVar

import torch

from ..models.prompts import answer_window
from . import losses

METHOD_REGISTRY: dict[str, type["UnlearningMethod"]] = {}


def register(cls):
    """Class decorator: make a method reachable by name (notebooks and the leaderboard loop)."""
    METHOD_REGISTRY[cls.name] = cls
    return cls


def get_method(name: str, **hparams) -> "UnlearningMethod":
    from . import methods  # noqa: F401  (imports every method module, filling METHOD_REGISTRY)
    key = name.lower()
    if key not in METHOD_REGISTRY:
        raise KeyError(f"unknown unlearning method {name!r}; available: {sorted(METHOD_REGISTRY)}")
    cls = METHOD_REGISTRY[key]
    return cls(make_config(cls, hparams))


def make_config(cls, hparams: dict) -> "MethodConfig":
    """``cls``'s config from ``hparams``, checked first: names (the valid ones listed), types
    (a number where the default is one) and ranges (:meth:`MethodConfig.check`)."""
    config_cls = cls.config_cls
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(hparams) - set(fields))
    if unknown:
        raise ValueError(f"{cls.name}: unknown hyperparameter(s) {unknown}; {cls.name} has "
                         f"{sorted(fields)}")
    hints = typing.get_type_hints(config_cls)
    for name, value in hparams.items():
        expected = hints[name]
        union = typing.get_origin(expected) in (typing.Union, types.UnionType)
        # list[str] | None -> (list, NoneType): the container is what can be checked
        allowed = tuple(typing.get_origin(t) or t for t in (typing.get_args(expected) if union else (expected,)))
        numbers = (int, float) if float in allowed else (int,) if int in allowed else ()
        ok = (value is None and type(None) in allowed) or (
            numbers and isinstance(value, numbers) and not isinstance(value, bool)) or (
            not numbers and any(isinstance(value, t) for t in allowed if isinstance(t, type)))
        if not ok:
            raise ValueError(f"{cls.name}: hyperparameter {name}={value!r} must be "
                             f"{' or '.join(getattr(t, '__name__', str(t)) for t in allowed)}")
    config = config_cls(**hparams)
    config.check(cls.name)
    return config


@dataclass(frozen=True)
class MethodConfig:
    gamma: float = 1.0  # weight of the forget loss
    alpha: float = 1.0  # weight of the retain loss
    retain_loss: str = "nll"  # "nll", "kl" or "none"
    learning_rate: float | None = None  # a method's own published lr (else the profile's)
    epochs: float | None = None  # a method's own published epochs (else the profile's)

    def check(self, method: str) -> None:
        """Ranges every method shares; a method's config adds its own by extending this."""
        for name in ("gamma", "alpha"):
            if getattr(self, name) < 0:
                raise ValueError(f"{method}: {name} (a loss weight) must not be negative, got {getattr(self, name)!r}")
        for name in ("learning_rate", "epochs"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{method}: {name} must be positive, got {value!r}")
        # the shared retain losses, or the method's own (RMU's "activations")
        choices = sorted({"nll", "kl", "none", type(self).__dataclass_fields__["retain_loss"].default})
        if self.retain_loss not in choices:
            raise ValueError(f"{method}: retain_loss must be one of {choices}, got {self.retain_loss!r}")
        for name in ("beta", "temperature"):  # temperatures of sigmoids and softmaxes
            value = getattr(self, name, None)
            if value is not None and value <= 0:
                raise ValueError(f"{method}: {name} must be positive, got {value!r}")


class UnlearningMethod:
    name: ClassVar[str]
    paper: ClassVar[str] = ""
    config_cls: ClassVar[type[MethodConfig]] = MethodConfig
    reference_logprobs: ClassVar[tuple[str, ...]] = ()
    needs_reference_model: ClassVar[bool] = False
    # sections of the profile, besides ``unlearn``, the method reads its settings from (they
    # become part of the run's cache key)
    profile_sections: ClassVar[tuple[str, ...]] = ()
    # the method prefers other answers to the forget *questions* (IdkDPO, IdkNLL, AltPO): it
    # does not apply to raw text (MUSE)
    needs_questions: ClassVar[bool] = False

    def __init__(self, config: MethodConfig):
        self.config = config

    @property
    def uses_reference_model(self) -> bool:
        return self.needs_reference_model or self.config.retain_loss == "kl"

    # --- hooks a method may override ------------------------------------------------------
    def unlearn(self, profile, start: str, out_dir, task):
        """Build the unlearned model in ``out_dir`` without the trainer and return the folder,
        for methods that are not a training loss (task vectors, WHP); ``None`` (the default)
        means: train ``start`` with :meth:`loss`."""
        return None

    def trainable_parameter_names(self, model) -> list[str] | None:
        """Names of the parameters this method trains (RMU: a few layers' MLPs), or ``None``
        (the default) for all of them, or all LoRA adapters on a LoRA run."""
        return None

    # --- hooks the trainer calls ---------------------------------------------------------
    def preferred_answers(self, forget_rows, context) -> list[str] | None:
        """An answer to prefer for each forget row, or None (most methods)."""
        return None

    def forget_loss(self, model, batch, context) -> torch.Tensor:
        raise NotImplementedError

    def retain_loss(self, model, batch, context) -> torch.Tensor:
        kind = self.config.retain_loss
        if kind == "none" or self.config.alpha == 0:
            return torch.zeros((), device=batch["retain"]["input_ids"].device)
        retain = batch["retain"]
        logits, labels = self.answer_logits(model, retain)
        if kind == "nll":
            return losses.nll(logits, labels)
        if kind == "kl":
            ref = context.reference_logits(retain)
            return losses.answer_kl(logits, ref, labels)
        raise ValueError(f"retain_loss must be 'nll', 'kl' or 'none', got {kind!r}")

    def loss(self, model, batch, context) -> tuple[torch.Tensor, dict[str, float]]:
        forget = self.forget_loss(model, batch, context)
        retain = self.retain_loss(model, batch, context)
        total = self.config.gamma * forget + self.config.alpha * retain
        return total, {"forget_loss": forget.detach().item(), "retain_loss": retain.detach().item()}

    # --- helpers for subclasses ----------------------------------------------------------
    @staticmethod
    def answer_logits(model, group) -> tuple[torch.Tensor, torch.Tensor]:
        """``(logits, labels)`` of a batch group over its answer window (see
        :func:`~nbutils.models.prompts.answer_window`): every loss reads answer tokens only,
        so the LM head skips the prompt. Same values as full logits at those positions."""
        keep = answer_window(group["labels"])
        logits = model(input_ids=group["input_ids"], attention_mask=group["attention_mask"],
                       logits_to_keep=keep).logits
        return logits, group["labels"][:, -keep:]

    def sequence_scores(self, model, group):
        """``(S_θ(a|q), |a|)`` for a batch group."""
        return losses.sequence_logprob(*self.answer_logits(model, group))

    def dpo_forget_loss(self, model, batch, beta: float) -> torch.Tensor:
        """DPO with the ``preferred`` answers as w and the true ``forget`` answers as l,
        against their cached reference log-probabilities (the DPO family, AltPO)."""
        win, lose = batch["preferred"], batch["forget"]
        s_w, _ = self.sequence_scores(model, win)
        s_l, _ = self.sequence_scores(model, lose)
        return losses.dpo_loss(s_w, win["ref_logprob"], s_l, lose["ref_logprob"], beta)
