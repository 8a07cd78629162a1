"""The inference-time WHP variant (MUSE's WHP baseline): no fine-tuning at all; at every
decoding step both the baseline and the reinforced model run, and the next token is drawn
from ``v_base - alpha * ReLU(v_reinforced - v_base)``.

:class:`WHPInferenceModel` behaves like a causal LM where the evaluation code needs one:
``model(input_ids, attention_mask).logits`` for scoring, ``model.generate(...)`` for
generation. Generation keeps **one KV cache per model** (the two never share keys or
values) and feeds each only the newest token after the prompt.

A run folder holding ``whp_inference.json`` (the two checkpoints and alpha) loads as this
model through :func:`nbutils.models.loading.load_model`, so the leaderboard evaluates it like
any other checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import torch
from transformers import DynamicCache, LogitsProcessorList
from transformers.generation.logits_process import (TemperatureLogitsWarper, TopKLogitsWarper,
                                                    TopPLogitsWarper)


CONFIG_FILE = "whp_inference.json"


def generic_logits(v_base: torch.Tensor, v_reinforced: torch.Tensor, alpha: float) -> torch.Tensor:
    """``v_base - alpha * ReLU(v_reinforced - v_base)``: only logits the reinforcement raised
    are pushed down (the paper's equation; MUSE's inference-time WHP uses it alone, alpha 1)."""
    return v_base - alpha * torch.relu(v_reinforced - v_base)


class WHPInferenceModel(torch.nn.Module):
    def __init__(self, base, reinforced, alpha: float = 1.0):
        super().__init__()
        self.base, self.reinforced, self.alpha = base, reinforced, alpha
        self.config = base.config
        self.generation_config = getattr(base, "generation_config", None)
        for p in self.parameters():
            p.requires_grad_(False)

    @classmethod
    def from_folder(cls, folder, profile, **load_kwargs) -> "WHPInferenceModel":
        from .loading import load_model
        spec = cls.read_spec(folder)
        base = load_model(spec["base"], profile, **load_kwargs)
        reinforced = load_model(spec["reinforced"], profile, **load_kwargs)
        return cls(base, reinforced, spec["alpha"]).eval()

    @staticmethod
    def save_spec(folder, base: str, reinforced: str, alpha: float) -> Path:
        """Write the spec. Local checkpoints are named relative to ``folder`` ("../../models/
        ..."), so a cache moved or copied elsewhere still finds them; hub ids stay as given."""
        import os
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)

        def portable(model) -> str:
            return os.path.relpath(Path(model).resolve(), folder.resolve()) if Path(model).exists() else str(model)
        path = folder / CONFIG_FILE
        path.write_text(json.dumps({"base": portable(base), "reinforced": portable(reinforced),
                                    "alpha": alpha}, indent=2))
        return path

    @staticmethod
    def read_spec(folder) -> dict:
        """The spec with local checkpoints as paths again (a relative name starts with ".";
        a hub id never does)."""
        spec = json.loads((Path(folder) / CONFIG_FILE).read_text())
        for role in ("base", "reinforced"):
            if spec[role].startswith("."):
                spec[role] = str((Path(folder) / spec[role]).resolve())
        return spec

    def forward(self, input_ids, attention_mask=None, past_key_values=None, position_ids=None,
                use_cache: bool = False, **kwargs):
        """Combined logits; with ``use_cache`` the caches come back as a (base, reinforced) pair."""
        caches = past_key_values or (None, None)
        outs = [m(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                  past_key_values=c, use_cache=use_cache)
                for m, c in zip((self.base, self.reinforced), caches)]
        logits = generic_logits(outs[0].logits.float(), outs[1].logits.float(), self.alpha)
        pkv = (outs[0].past_key_values, outs[1].past_key_values) if use_cache else None
        return SimpleNamespace(logits=logits, past_key_values=pkv)

    @torch.no_grad()
    def generate(self, input_ids, attention_mask=None, max_new_tokens: int = 32,
                 do_sample: bool = False, temperature: float = 1.0, top_p: float = 1.0,
                 top_k: int = 0, pad_token_id: int | None = None, eos_token_id=None,
                 stopping_criteria=None, use_cache: bool = True, **unused):
        """Greedy or sampled decoding from left-padded prompts; returns prompt + new tokens
        like ``transformers``' ``generate``."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        eos = {eos_token_id} if isinstance(eos_token_id, int) else set(eos_token_id or ())
        warpers = LogitsProcessorList()
        if do_sample:
            if temperature and temperature != 1.0:
                warpers.append(TemperatureLogitsWarper(temperature))
            if top_k:
                warpers.append(TopKLogitsWarper(top_k))
            if top_p < 1.0:
                warpers.append(TopPLogitsWarper(top_p))
        caches = (DynamicCache(), DynamicCache())  # one per model
        sequences, mask = input_ids, attention_mask
        step_ids = input_ids
        done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        for _ in range(max_new_tokens):
            positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, -step_ids.shape[1]:]
            out = self(step_ids, attention_mask=mask, past_key_values=caches,
                       position_ids=positions, use_cache=True)
            caches = out.past_key_values
            scores = warpers(sequences, out.logits[:, -1])
            if do_sample:
                nxt = torch.multinomial(torch.softmax(scores, -1), 1).squeeze(-1)
            else:
                nxt = scores.argmax(-1)
            if pad_token_id is not None:
                nxt = torch.where(done, torch.full_like(nxt, pad_token_id), nxt)
            sequences = torch.cat([sequences, nxt[:, None]], dim=1)
            mask = torch.cat([mask, (~done).long()[:, None]], dim=1)
            step_ids = nxt[:, None]
            done |= torch.tensor([int(t) in eos for t in nxt.tolist()], device=done.device)
            if stopping_criteria is not None:
                done |= stopping_criteria(sequences, scores)
            if done.all():
                break
        return sequences
