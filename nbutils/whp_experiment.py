"""The Who's Harry Potter experiment of notebooks 09-11 (and the leaderboard's WHP table):
the model unlearned from our Harry Potter corpus, with its familiarity measured along the
fine-tune. WHP itself lives in :mod:`nbutils.unlearning.whp`; this module only joins it to
the evaluation that watches it train, which the unlearning layer cannot import."""

from __future__ import annotations

from pathlib import Path

from .evaluation.whp import training_probe
from .profiles import Profile
from .unlearning.whp.pipeline import ensure_whp_model as _ensure_whp_model


def ensure_whp_model(profile: Profile, progress: bool = False) -> Path:
    """The WHP model of the Harry Potter corpus, trained once per config, with familiarity,
    answer probability and MC accuracy recorded over its fine-tune (``whp_progress``)."""
    return _ensure_whp_model(profile, "harry_potter", progress=progress, probe=training_probe)
