"""Generic predictions and generic labels (WHP parts 1 and 2).

Part 1, the reinforced model: a copy of the baseline trained further on the target text
knows it *better*, so wherever its logits rise above the baseline's, that rise points at
target-specific knowledge. The generic prediction pushes exactly those logits down:

    v_generic = v_base - alpha * ReLU(v_reinforced - v_base)

Part 2, anchored terms: the baseline's logits on the *translated* block (idiosyncratic terms
replaced by generic ones) stand in for the first ``v_base`` wherever a token has a
counterpart in the translation, while the reinforcement's rise ``v_reinforced - v_base`` is
still measured on the original text. The argmax of the combination is the generic label.

Consistency: once a term has appeared (and been translated), a label that names its
translation again would teach the model to switch names mid-text ("Harry ... Jon"). After a
term's first appearance its translation's first token is penalised by a fixed margin.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ...models.prompts import IGNORE
from ...models.whp_inference import generic_logits
from .anchors import Replacement, align_tokens, translate



@dataclass
class GenericLabels:
    """One block: the original, its translation, and the label of every position."""

    text: str
    translated: str
    input_ids: list[int]  # the original block's tokens
    translated_ids: list[int]
    alignment: list[int | None]  # original position -> translated position
    targets: list[int]  # generic label of the token *after* each position (-100: none)
    original_next: list[int]  # the token that really follows each position
    replacements: list[Replacement] = field(default_factory=list)
    penalised: list[bool] = field(default_factory=list)  # consistency margin applied here

    @property
    def labels(self) -> list[int]:
        """Labels in transformers' convention (``labels[t]`` is predicted at ``t - 1``)."""
        return [IGNORE] + self.targets[:-1]

    @property
    def changed(self) -> int:
        """Positions whose generic label differs from the original next token."""
        return sum(1 for t, o in zip(self.targets, self.original_next) if t != IGNORE and t != o)


def first_token_variants(tokenizer, word: str) -> set[int]:
    """First token ids of ``word`` as it starts a text and as it follows a space."""
    ids = set()
    for text in (word, " " + word):
        toks = tokenizer(text, add_special_tokens=False)["input_ids"]
        if toks:
            ids.add(toks[0])
    return ids


def _encode(tokenizer, text: str) -> tuple[list[int], list[tuple[int, int]]]:
    enc = tokenizer(text, add_special_tokens=True, return_offsets_mapping=True)
    return list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]]


@torch.no_grad()
def _batch_logits(model, sequences: list[list[int]], pad_token_id: int) -> torch.Tensor:
    """Logits of right-padded ``sequences`` in one forward pass, ``[batch, width, vocab]``."""
    device = next(model.parameters()).device
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_token_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, s in enumerate(sequences):
        ids[i, :len(s)] = torch.tensor(s)
        mask[i, :len(s)] = 1
    return model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float().cpu()


def consistency_penalties(replacements: list[Replacement], offsets, tokenizer,
                          n_positions: int) -> list[set[int]]:
    """Per original position, the token ids to penalise: the first tokens of every
    translation whose term has already appeared (up to and including this position)."""
    penalties: list[set[int]] = [set() for _ in range(n_positions)]
    seen: set[str] = set()
    for rep in replacements:
        if rep.generic in seen:
            continue
        seen.add(rep.generic)
        ids = first_token_variants(tokenizer, rep.generic.split()[0])
        for t, (_, end) in enumerate(offsets[:n_positions]):
            if end >= rep.end and end > 0:
                penalties[t] |= ids
    return penalties


@torch.no_grad()
def generic_labels(base, reinforced, tokenizer, texts: list[str], anchors: dict[str, str],
                   alpha: float, consistency_margin: float = 5.0, batch_size: int = 8,
                   progress: bool = False) -> list[GenericLabels]:
    """The generic label of every position of every block in ``texts`` (WHP parts 1 + 2)."""
    from tqdm.auto import tqdm
    base.eval()
    reinforced.eval()
    pad = tokenizer.pad_token_id
    out: list[GenericLabels] = []
    for start in tqdm(range(0, len(texts), batch_size), desc="generic labels", disable=not progress):
        chunk = texts[start:start + batch_size]
        encoded = [_encode(tokenizer, t) for t in chunk]
        translations = [translate(t, anchors) for t in chunk]
        trans_ids = [list(tokenizer(tr, add_special_tokens=True)["input_ids"]) for tr, _ in translations]
        originals = [ids for ids, _ in encoded]
        v_base = _batch_logits(base, originals, pad)
        v_reinf = _batch_logits(reinforced, originals, pad)
        v_trans = _batch_logits(base, trans_ids, pad)
        for row, (text, (ids, offsets), (translated, reps), t_ids) in enumerate(
                zip(chunk, encoded, translations, trans_ids)):
            n = len(ids)
            alignment = align_tokens(ids, t_ids)
            # v_base on the translation where a position has a counterpart there
            anchored = v_base[row, :n].clone()
            aligned = [t for t in range(n) if alignment[t] is not None]
            if aligned:
                anchored[aligned] = v_trans[row, [alignment[t] for t in aligned]]
            # the reinforcement's rise is measured on the same (original) text, then taken
            # off the anchored prediction: v_anchored - alpha * ReLU(v_reinf - v_base)
            combined = anchored - alpha * torch.relu(v_reinf[row, :n] - v_base[row, :n])
            penalties = consistency_penalties(reps, offsets, tokenizer, n)
            penalised = []
            for t, ban in enumerate(penalties):
                if ban:
                    combined[t, sorted(ban)] -= consistency_margin
                penalised.append(bool(ban))
            targets = combined.argmax(-1).tolist()
            # positions inside a replaced term have no counterpart: no label, no training
            targets = [lab if alignment[t] is not None else IGNORE for t, lab in enumerate(targets)]
            targets[-1] = IGNORE  # nothing follows the block's last token
            original_next = ids[1:] + [IGNORE]
            out.append(GenericLabels(text, translated, ids, t_ids, alignment, targets,
                                     original_next, reps, penalised))
    return out


@torch.no_grad()
def top_predictions(base, reinforced, tokenizer, prompt: str, alpha: float, k: int = 10):
    """Top-``k`` next tokens after ``prompt`` of the baseline, the reinforced model and the
    generic combination, as one long table (model, rank, token, probability)."""
    import pandas as pd
    ids = list(tokenizer(prompt, add_special_tokens=True)["input_ids"])
    v_base = _batch_logits(base, [ids], tokenizer.pad_token_id)[0, -1]
    v_reinf = _batch_logits(reinforced, [ids], tokenizer.pad_token_id)[0, -1]
    rows = []
    for name, logits in (("baseline", v_base), ("reinforced", v_reinf),
                         (f"generic (alpha={alpha:g})", generic_logits(v_base, v_reinf, alpha))):
        probs = torch.softmax(logits, -1)
        top = torch.topk(probs, k)
        for rank, (p, i) in enumerate(zip(top.values.tolist(), top.indices.tolist()), 1):
            rows.append({"model": name, "rank": rank, "token": tokenizer.decode([i]), "probability": p})
    return pd.DataFrame(rows)
