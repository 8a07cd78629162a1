"""Task vector negation (Ilharco et al. 2023; MUSE's baseline).

Finetune the model further on the forget set to get θ_ft; the difference θ_ft - θ_0 is the
"forget task vector", and subtracting it λ times removes that knowledge:
``θ = θ_0 - λ(θ_ft - θ_0)``, λ = 5. No unlearning loss, no optimiser on θ itself: only
arithmetic on weights, after an ordinary finetuning run.
"""

import json
from dataclasses import asdict, dataclass, replace

import torch

from ..base import MethodConfig, UnlearningMethod, register


@dataclass(frozen=True)
class TaskVectorConfig(MethodConfig):
    scale: float = 5.0  # λ
    alpha: float = 0.0
    retain_loss: str = "none"


def negate_task_vector(base_state: dict, finetuned_state: dict, scale: float) -> dict:
    """``θ_0 - λ(θ_ft - θ_0)`` tensor by tensor (floating-point tensors only)."""
    out = {}
    for name, w0 in base_state.items():
        w_ft = finetuned_state[name]
        out[name] = w0 - scale * (w_ft - w0) if torch.is_floating_point(w0) else w0
    return out


@register
class TaskVector(UnlearningMethod):
    name = "task_vector"
    paper = "Ilharco et al. 2023, Editing Models with Task Arithmetic; MUSE baseline"
    config_cls = TaskVectorConfig

    def unlearn(self, profile, start: str, out_dir, task):
        from ...data.tofu import load_tofu
        from ...finetune import finetune, muse_finetune_profile
        from ...models.loading import load_model, load_tokenizer
        ft_dir = out_dir / "forget_finetuned"
        # the profile's own finetuning recipe (LoRA adapters are merged, so the vector lives in
        # weight space either way); 4-bit weights could not be subtracted. On MUSE: the recipe
        # that trained the MUSE target, on the forget text
        ft_profile = muse_finetune_profile(profile) if task.is_muse else profile
        ft_profile = replace(ft_profile, finetune=replace(ft_profile.finetune, load_in_4bit=False),
                             replay_pretraining=False)
        if task.is_muse:
            forget, _ = task.text_features(profile, load_tokenizer(start, profile))
            finetune(ft_profile, None, ft_dir, base=start, features=forget)
        else:
            finetune(ft_profile, list(load_tofu(profile, profile.forget_split)), ft_dir, base=start)
        model = load_model(start, ft_profile, load_in_4bit=False, full_precision=True)
        tuned = load_model(str(ft_dir), ft_profile, load_in_4bit=False, full_precision=True)
        model.load_state_dict(negate_task_vector(model.state_dict(), tuned.state_dict(), self.config.scale))
        model.save_pretrained(out_dir, safe_serialization=True)
        load_tokenizer(start, profile).save_pretrained(out_dir)
        (out_dir / "log_history.json").write_text(json.dumps(
            json.loads((ft_dir / "log_history.json").read_text()), indent=1))
        (out_dir / "unlearning.json").write_text(json.dumps(
            {"method": self.name, "hyperparameters": asdict(self.config),
             "split": task.forget_label(profile), "task": task.name, "start": start}, indent=2))
        return out_dir

    def forget_loss(self, model, batch, context):  # pragma: no cover - not a loss-based method
        raise NotImplementedError("task vectors are weight arithmetic, see unlearn()")
