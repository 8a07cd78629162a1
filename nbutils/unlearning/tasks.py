"""What an unlearning run unlearns: TOFU's question/answer pairs, or MUSE's raw text.

Every method sees the same thing either way: forget and retain examples as token features
``{input_ids, labels}``. On TOFU the labels cover the answer (the prompt is masked); on MUSE
they cover every token of a text block, as muse_bench trains. So GradAscent, NPO, SimNPO,
RMU, UNDIAL and the rest run unchanged on both; methods built on answers to questions
(IdkDPO, IdkNLL, AltPO) say that they do not apply to raw text.

- ``tofu``: the profile's forget split, from the TOFU target model;
- ``muse_news`` / ``muse_books``: the ``raw/forget`` text of our MUSE corpus (or the hub's on
  ``paper``), from the MUSE target model, with ``raw/retain1`` as the retain set (KnowMem_r
  asks about retain2, which no unlearning run trains on). ``forget`` may name MUSE's other
  forget sets: ``scal/forget_2`` (a growing forget set), ``sust/forget_3`` (one of the
  successive requests).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..profiles import Profile, for_corpus

TASKS = ("tofu", "muse_news", "muse_books")


class MethodNotApplicable(ValueError):
    """The method needs something the task does not have (e.g. questions, on raw text)."""


@dataclass(frozen=True)
class UnlearningTask:
    name: str = "tofu"
    forget: str = "forget"  # MUSE: "forget", "scal/forget_<k>" or "sust/forget_<k>"

    def __post_init__(self):
        if self.name not in TASKS:
            raise ValueError(f"unknown unlearning task {self.name!r}; choose one of {TASKS}")
        if self.name == "tofu" and self.forget != "forget":
            raise ValueError("the TOFU task's forget set is the profile's forget_split; "
                             f"forget={self.forget!r} is for MUSE tasks")
        if self.is_muse and self.forget != "forget":
            config, _, split = self.forget.partition("/")
            if config not in ("scal", "sust") or not split.startswith("forget_"):
                raise ValueError(f"MUSE forget set {self.forget!r}: use 'forget', "
                                 "'scal/forget_<k>' or 'sust/forget_<k>'")

    @property
    def is_muse(self) -> bool:
        return self.name.startswith("muse_")

    @property
    def corpus(self) -> str | None:
        """``"news"`` or ``"books"`` for MUSE tasks."""
        return self.name.removeprefix("muse_") if self.is_muse else None

    @property
    def label(self) -> str:
        """The task's part of a run name: ``tofu``, ``muse_news``, ``muse_news_scal_forget_2``."""
        return self.name if self.forget == "forget" else f"{self.name}_{self.forget.replace('/', '_')}"

    def check_applicable(self, method) -> None:
        """Raise :class:`MethodNotApplicable` if ``method`` needs what this task lacks."""
        if method.needs_questions and self.is_muse:
            raise MethodNotApplicable(
                f"{method.name} does not apply to {self.name}: it prefers other *answers* to forget "
                "questions, and MUSE's forget set is raw text with no questions")

    def forget_label(self, profile: Profile) -> str:
        return profile.forget_split if self.name == "tofu" else self.forget

    # --- what a run needs -----------------------------------------------------------------
    def start_model(self, profile: Profile) -> str:
        """The model the run starts from: TOFU's or MUSE's target."""
        if self.is_muse:
            from ..finetune import ensure_muse_model
            return str(ensure_muse_model(profile, self.corpus, "target"))
        from ..finetune import ensure_target_model
        return str(ensure_target_model(profile))

    def profile_for(self, profile: Profile) -> Profile:
        """The profile a run of this task trains with: on MUSE, the ``muse`` section's epochs,
        learning rate and per-method hyperparameters (this corpus's, ``muse.per_corpus``) in
        the unlearn section."""
        if not self.is_muse:
            return profile
        profile = for_corpus(profile, self.corpus)
        m = profile.muse
        return replace(profile, unlearn=replace(
            profile.unlearn, epochs=m.unlearn_epochs, learning_rate=m.unlearn_learning_rate,
            batch_size=m.unlearn_batch_size or profile.unlearn.batch_size,
            method_hparams=m.method_hparams, method_schedule=False))

    def max_length(self, profile: Profile) -> int:
        return profile.muse.block_length if self.is_muse else profile.finetune.max_length

    def forget_texts(self, profile: Profile) -> list[str]:
        from ..data.muse import load_muse
        config, _, split = self.forget.partition("/") if "/" in self.forget else ("raw", "", "forget")
        return [r["text"] for r in load_muse(profile, config, split, corpus=self.corpus)]

    def retain_texts(self, profile: Profile) -> list[str]:
        from ..data.muse import load_muse
        return [r["text"] for r in load_muse(profile, "raw", "retain1", corpus=self.corpus)]

    def qa_rows(self, profile: Profile) -> tuple[list[dict], list[dict]]:
        """TOFU's forget and retain rows (question/answer); MUSE has none."""
        if self.is_muse:
            raise MethodNotApplicable(f"the {self.name} task is raw text: it has no questions and answers")
        from ..data.tofu import load_tofu
        return (list(load_tofu(profile, profile.forget_split)),
                list(load_tofu(profile, profile.retain_split)))

    def text_features(self, profile: Profile, tokenizer) -> tuple[list[dict], list[dict]]:
        """MUSE's forget and retain texts as language-modelling blocks."""
        from ..models.prompts import encode_text_blocks
        n = profile.muse.block_length
        return (encode_text_blocks(tokenizer, self.forget_texts(profile), n),
                encode_text_blocks(tokenizer, self.retain_texts(profile), n))

    def data_key(self, profile: Profile) -> dict:
        if not self.is_muse:
            return {"forget_split": profile.forget_split, "prompt_format": profile.prompt_format}
        from ..data.muse import muse_data_key
        return {"task": self.name, "forget": self.forget, "data": muse_data_key(profile, self.corpus),
                "block_length": profile.muse.block_length}


def as_task(task) -> UnlearningTask:
    """``"muse_news"`` or an :class:`UnlearningTask`."""
    return task if isinstance(task, UnlearningTask) else UnlearningTask(task)
