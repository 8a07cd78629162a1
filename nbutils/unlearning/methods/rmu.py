"""RMU, representation misdirection for unlearning (Li et al. 2024, WMDP).

At one hidden layer ℓ, push the forget answers' activations towards a fixed random
direction scaled by c, and keep the retain answers' activations where the frozen model
had them:
``L_f = mean_t mean_d (h_ℓ - c·u)^2`` over forget answer tokens, u ~ U[0,1)^d normalised
to unit length and drawn once; ``L_r = mean_t mean_d (h_ℓ - h_ℓ^ref)^2`` on retain answers.
TOFU (open-unlearning): ℓ = 7 of 16 layers, c = 2. WMDP's original: c = 6.5, α = 1200,
only ``mlp.down_proj`` of layers ℓ-2..ℓ trained (``trainable="wmdp"``).
"""

from dataclasses import dataclass

import torch

from .. import losses
from ..base import MethodConfig, UnlearningMethod, register


@dataclass(frozen=True)
class RMUConfig(MethodConfig):
    layer: int | None = None  # None: 7/16 of the depth (7 for a 16-layer Llama-3.2-1B)
    steering_coeff: float = 2.0
    alpha: float = 1.0
    retain_loss: str = "activations"
    trainable: str = "all"  # "all" or "wmdp" (mlp.down_proj of layers ℓ-2..ℓ)


def default_layer(n_layers: int) -> int:
    return max(0, min(n_layers - 2, int(7 / 16 * n_layers)))


@register
class RMU(UnlearningMethod):
    name = "rmu"
    paper = "Li et al. 2024, The WMDP Benchmark: Measuring and Reducing Malicious Use With Unlearning"
    config_cls = RMUConfig
    needs_reference_model = True

    def layer(self, model) -> int:
        """The index of the decoder layer whose output RMU steers (the configured one, else
        7/16 of the depth: :func:`default_layer`)."""
        n = model.config.num_hidden_layers if hasattr(model, "config") else None
        return self.config.layer if self.config.layer is not None else default_layer(n)

    def control_vector(self, hidden_size: int, device, seed: int) -> torch.Tensor:
        if getattr(self, "_u", None) is None or self._u.shape[0] != hidden_size:
            g = torch.Generator().manual_seed(seed)
            u = torch.rand(hidden_size, generator=g)
            self._u = u / u.norm()
        return self._u.to(device)

    def trainable_parameter_names(self, model) -> list[str] | None:
        """Names to train, or None for all (the trainer freezes the rest)."""
        if self.config.trainable == "all":
            return None
        layer = self.layer(model)
        keep = {f"layers.{i}.mlp.down_proj" for i in range(max(0, layer - 2), layer + 1)}
        return [n for n, _ in model.named_parameters() if any(k in n for k in keep)]

    @staticmethod
    def hidden(model, group, layer: int) -> torch.Tensor:
        out = model(input_ids=group["input_ids"], attention_mask=group["attention_mask"],
                    output_hidden_states=True, logits_to_keep=1)  # no loss reads the logits
        return out.hidden_states[layer + 1]  # [0] is the embeddings

    def forget_loss(self, model, batch, context):
        forget = batch["forget"]
        h = self.hidden(model, forget, self.layer(model))
        u = self.control_vector(h.shape[-1], h.device, context.seed)
        return losses.masked_mse(h, self.config.steering_coeff * u.expand_as(h), forget["labels"])

    def retain_loss(self, model, batch, context):
        retain = batch["retain"]
        layer = self.layer(model)
        h = self.hidden(model, retain, layer)
        h_ref = context.reference_hidden(retain, layer)
        return losses.masked_mse(h, h_ref, retain["labels"])
