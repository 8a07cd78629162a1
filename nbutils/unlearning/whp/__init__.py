"""Who's Harry Potter (Eldan & Russinovich 2023): reinforced model, anchored terms, generic
labels, the fine-tune on them, and the inference-time variant (MUSE's WHP baseline)."""

from .anchors import align_tokens, translate
from .corpus import WhpTarget, harry_potter_target, tofu_target
from .inference import WHPInferenceModel
from .labels import GenericLabels, generic_labels, generic_logits, top_predictions
from .run import (compute_generic_labels, ensure_reinforced_model, ensure_whp_inference,
                  ensure_whp_model, whp_progress)

__all__ = ["GenericLabels", "WHPInferenceModel", "WhpTarget", "align_tokens", "compute_generic_labels",
           "ensure_reinforced_model", "ensure_whp_inference", "ensure_whp_model", "generic_labels",
           "generic_logits", "harry_potter_target", "tofu_target", "top_predictions", "translate",
           "whp_progress"]
