"""The logit lens (nostalgebraist 2020): decode every layer's hidden state with the model's
own final norm and LM head, and read how probable the true answer already is there.

For the forget set's answers this shows *where* an unlearned model's knowledge went: a model
whose last layers alone changed still "knows" at its middle layers (the curve climbs like
the target's, then drops at the end), where real removal lowers the whole curve towards the
retain model's (REFERENCE §6; Lynch et al. 2024 found WHP's representations close to the
original's).
"""

from __future__ import annotations

import numpy as np
import torch

from ..evaluation.scoring import encode_pair
from ..models.prompts import encode_prompt
from ..models.prompts import IGNORE


def final_norm(model) -> torch.nn.Module:
    """The norm applied before the LM head (Llama: ``model.norm``; Phi:
    ``model.final_layernorm``; GPT-2: ``transformer.ln_f``)."""
    inner = getattr(model, "model", None) or getattr(model, "transformer", None)
    for name in ("norm", "final_layernorm", "ln_f"):
        module = getattr(inner, name, None)
        if isinstance(module, torch.nn.Module):
            return module
    raise TypeError(f"{type(model).__name__}: no final norm found for the logit lens "
                    f"(looked for model.norm, model.final_layernorm, transformer.ln_f)")


@torch.no_grad()
def layer_answer_probs(model, tokenizer, rows: list[dict], prompt_format: str,
                       batch_size: int = 32) -> np.ndarray:
    """``[items, layers + 1]``: per item and per layer (0 = the embeddings, the last = the
    model's own output), the length-normalised probability ``exp(mean_t log p(a_t))`` of the
    true answer (EOS included) read through the final norm and the LM head."""
    if not hasattr(model, "get_output_embeddings") or model.get_output_embeddings() is None:
        raise TypeError(f"{type(model).__name__} has no single LM head to read layers through")
    model.eval()
    norm, head = final_norm(model), model.get_output_embeddings()
    device = next(model.parameters()).device
    encoded = [encode_pair(tokenizer, encode_prompt(tokenizer, r["question"], prompt_format),
                           r["answer"], prompt_format) for r in rows]
    out = []
    for start in range(0, len(encoded), batch_size):
        chunk = encoded[start:start + batch_size]
        width = max(len(ids) for ids, _ in chunk)
        ids = torch.full((len(chunk), width), tokenizer.pad_token_id, dtype=torch.long)
        labels = torch.full((len(chunk), width), IGNORE, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, (x, y) in enumerate(chunk):
            ids[i, :len(x)], labels[i, :len(y)], mask[i, :len(x)] = torch.tensor(x), torch.tensor(y), 1
        hidden = model(input_ids=ids.to(device), attention_mask=mask.to(device),
                       output_hidden_states=True).hidden_states
        target = labels[:, 1:].to(device)
        valid = target != IGNORE
        per_layer = []
        for layer, h in enumerate(hidden):
            # transformers' last hidden state has had the final norm applied already
            h = h if layer == len(hidden) - 1 else norm(h)
            logits = head(h[:, :-1][valid]).float()  # answer positions only
            logp = torch.log_softmax(logits, -1).gather(-1, target[valid][:, None]).squeeze(-1)
            # mean log p per item: split the flat answer positions back into rows
            counts = valid.sum(1).tolist()
            per_layer.append([float(t.mean().exp()) for t in torch.split(logp, counts)])
        out.extend(np.asarray(per_layer).T.tolist())
    return np.asarray(out)
