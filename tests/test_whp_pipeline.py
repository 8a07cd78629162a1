"""WHP end to end on the micro profile: reinforced model, generic labels, fine-tune with
familiarity measured over steps, the inference-time variant loading through ``load_model``,
and both registered as unlearning methods on the TOFU forget set."""

from __future__ import annotations

import json

import pytest
import torch

from nbutils.profiles import get_profile

WHP_FAST = {"whp.reinforce_epochs": 1, "whp.finetune_epochs": 2, "whp.max_new_tokens": 8}


@pytest.fixture(scope="module")
def whp_profile(micro_overrides):
    return get_profile("tiny", {**micro_overrides, **WHP_FAST})


def test_harry_potter_pipeline(whp_profile, micro_base):
    from nbutils.models.loading import load_model
    from nbutils.unlearning.whp import (WHPInferenceModel, ensure_reinforced_model,
                                        ensure_whp_inference, whp_progress)
    from nbutils.whp_experiment import ensure_whp_model
    reinforced = ensure_reinforced_model(whp_profile)
    assert (reinforced / "DONE").exists() and any(reinforced.glob("*.safetensors"))
    run = ensure_whp_model(whp_profile)
    assert ensure_whp_model(whp_profile) == run  # cached: same folder, no retraining
    progress = whp_progress(run)
    assert progress[0]["step"] == 0 and progress[-1]["step"] > 0
    for row in progress:
        assert 0 <= row["familiarity"] <= 1 and 0 <= row["mc_accuracy"] <= 1 and 0 < row["answer_prob"] <= 1
    stats = json.loads((run / "generic_labels.json").read_text())
    assert 0 < stats["changed"] <= stats["positions"]
    # the fine-tune moved the weights
    base_w = load_model(micro_base, whp_profile).state_dict()
    new_w = load_model(str(run), whp_profile).state_dict()
    assert any(not torch.equal(base_w[k], new_w[k]) for k in base_w)
    inference = ensure_whp_inference(whp_profile)
    model = load_model(str(inference), whp_profile)
    assert isinstance(model, WHPInferenceModel) and model.alpha == whp_profile.whp.inference_alpha


def test_whp_methods_on_tofu_evaluate_like_any_checkpoint(whp_profile, micro_base):
    from nbutils.evaluation.tofu import evaluate_tofu
    from nbutils.models.loading import load_model_and_tokenizer
    from nbutils.unlearning import ensure_unlearned
    for name in ("whp", "whp_inference"):
        run = ensure_unlearned(whp_profile, name)
        assert (run / "DONE").exists() and json.loads((run / "unlearning.json").read_text())["method"] == name
        model, tok = load_model_and_tokenizer(str(run), whp_profile)
        ev = evaluate_tofu(model, tok, whp_profile, progress=False)
        assert ev["model_utility"] is not None and 0 <= ev["forget_Q_A_ROUGE"] <= 1


def test_profile_override_of_whp_fields():
    p = get_profile("tiny", {"whp.alpha": 2.5, "whp.lora": True})
    assert p.whp.alpha == 2.5 and p.whp.lora
    with pytest.raises(KeyError, match="whp"):
        get_profile("tiny", {"whp.alhpa": 1.0})


def test_relearning_whp_at_inference_time_finetunes_its_baseline(whp_profile, micro_base):
    """The relearning attack on WHP's inference-time variant: the attacker finetunes the
    checkpoint that answers and keeps the combination, a folder finished like any artifact."""
    from nbutils.models.loading import load_model
    from nbutils.paths import is_complete
    from nbutils.probing import probe_catalogue
    from nbutils.robustness.attacks import forget_rows, relearned_model
    from nbutils.unlearning import ensure_unlearned
    from nbutils.unlearning.whp import WHPInferenceModel
    run = ensure_unlearned(whp_profile, "whp_inference")
    rows = forget_rows(whp_profile)[:4]
    folder = relearned_model(whp_profile, run, "whp_inference-test", "forget", rows)
    assert is_complete(folder)  # its manifest, like every artifact
    model = load_model(str(folder), whp_profile)
    assert isinstance(model, WHPInferenceModel)
    spec = WHPInferenceModel.read_spec(folder)
    assert spec["base"] != WHPInferenceModel.read_spec(run)["base"]  # the relearned baseline
    assert relearned_model(whp_profile, run, "whp_inference-test", "forget", rows) == folder
    assert str(run) in probe_catalogue(whp_profile).values()  # a finished run is offered
