"""Who's Harry Potter on the TOFU forget set, so it sits on the leaderboard with the rest.

The machinery lives in :mod:`nbutils.unlearning.whp` (notebooks 09-10 apply it to our Harry
Potter corpus). Here the target text is the forget QA and the anchored terms are the forget
authors' names; hyperparameters come from the profile's ``whp`` section.
"""

from dataclasses import dataclass

from ..base import MethodConfig, UnlearningMethod, register


@dataclass(frozen=True)
class WhpMethodConfig(MethodConfig):
    alpha: float = 0.0  # no retain term: WHP's only loss is the generic labels' NLL
    retain_loss: str = "none"


@register
class WhoIsHarryPotter(UnlearningMethod):
    name = "whp"
    paper = "Eldan & Russinovich 2023, Who's Harry Potter? Approximate Unlearning in LLMs"
    config_cls = WhpMethodConfig
    profile_sections = ("whp",)

    def unlearn(self, profile, start: str, out_dir, task):
        from ..whp.pipeline import build_whp_model
        return build_whp_model(profile, task.label if task.is_muse else "tofu", start, out_dir)


@register
class WhpInference(UnlearningMethod):
    name = "whp_inference"
    paper = "MUSE's WHP baseline: v_base - alpha * ReLU(v_reinforced - v_base) at inference"
    config_cls = WhpMethodConfig
    profile_sections = ("whp",)

    def unlearn(self, profile, start: str, out_dir, task):
        from ..whp.pipeline import write_whp_inference
        return write_whp_inference(profile, task.label if task.is_muse else "tofu", start, out_dir)
