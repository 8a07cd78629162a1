"""Who's Harry Potter (Eldan & Russinovich 2023): reinforced model, anchored terms, generic
labels, the fine-tune on them, and the inference-time variant (MUSE's WHP baseline).

The Harry Potter experiment's model, with its familiarity measured while it trains, is
:func:`nbutils.whp_experiment.ensure_whp_model`."""

from .anchors import align_tokens, translate
from .corpus import WhpTarget, harry_potter_target, tofu_target
from ...models.whp_inference import WHPInferenceModel
from .labels import GenericLabels, generic_labels, generic_logits, top_predictions
from .pipeline import (compute_generic_labels, ensure_reinforced_model, ensure_whp_inference,
                       whp_progress)

__all__ = ["GenericLabels", "WHPInferenceModel", "WhpTarget", "align_tokens", "compute_generic_labels",
           "ensure_reinforced_model", "ensure_whp_inference", "generic_labels",
           "generic_logits", "harry_potter_target", "tofu_target", "top_predictions", "translate",
           "whp_progress"]
