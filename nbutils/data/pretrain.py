"""The general 'pretraining' mix of the from-scratch ``tiny`` model.

A pretrained LLM arrives knowing true facts about real authors and the world; TOFU's model
utility measures whether unlearning keeps that knowledge. Our tiny model is born empty, so
it first learns the probe facts (as statements and as QA in the profile's prompt format).
The fictitious authors are *not* in this mix: they come only with TOFU finetuning, so the
retain model really has never seen the forget authors.

The mix also holds what Who's Harry Potter needs (notebooks 09-11): our Harry Potter corpus,
in the same blocks WHP later trains on, so the tiny model has read "the books" before anyone
asks it to forget them; and the general-knowledge multiple-choice facts, so there is
utility to keep.
"""

from __future__ import annotations

from ..profiles import Profile
from .world import generate_world, load_resource


def probe_items(profile: Profile) -> list[dict]:
    """The real-author and world-fact items this profile uses."""
    return (load_resource("real_authors.json")[: profile.n_real_authors]
            + load_resource("world_facts.json")[: profile.n_world_facts])


def held_out_probe_items(profile: Profile) -> list[dict]:
    """The real-author and world-fact items this profile does *not* evaluate (those past
    ``n_real_authors`` / ``n_world_facts`` in our lists): general knowledge that can be
    mixed into finetuning without touching a single evaluated item."""
    return (load_resource("real_authors.json")[profile.n_real_authors:]
            + load_resource("world_facts.json")[profile.n_world_facts:])


def pretraining_examples(profile: Profile, tokenizer=None) -> list[dict]:
    """``{"text": ...}`` statements and ``{"question", "answer"}`` pairs; with a
    ``tokenizer``, also the Harry Potter corpus as WHP's training blocks."""
    from .harry_potter import general_mc
    examples = []
    for item in probe_items(profile):
        examples.append({"text": item["statement"]})
        examples.append({"question": item["question"], "answer": item["answer"]})
    for item in general_mc():
        examples.append({"text": item["statement"]})
        examples.append({"question": item["question"], "answer": item["choices"][item["answer"]]})
    if tokenizer is not None:
        from .harry_potter import harry_potter_blocks
        # no BOS: WHP, familiarity prompts and the probing widgets all tokenise raw text
        # with the tokenizer's own special tokens, which for the tiny tokenizer is none
        examples += [{"text": block, "bos": False} for block in harry_potter_blocks(profile, tokenizer)]
    return examples


def harry_potter_key(profile: Profile) -> dict:
    """What the Harry Potter part of the mix depends on (for cache keys)."""
    from ..paths import config_key
    from .harry_potter import load_harry_potter
    return {"data": config_key(load_harry_potter()), "passages": profile.whp.corpus_passages,
            "block_length": profile.whp.block_length}


def tokenizer_texts(profile: Profile) -> list[str]:
    """The project's own corpus the tiny tokenizer is trained on."""
    from .tofu import forget_author_counts
    n_holdout = forget_author_counts(profile.n_authors)["10"]
    _, _, rows, bios = generate_world(profile.n_authors, n_holdout, profile.qa_per_author,
                                      profile.seed)
    texts = list(bios.values())
    for rs in rows.values():
        for r in rs:
            texts += [r["question"], r["answer"], r["paraphrased_answer"],
                      r["paraphrased_question"], *r["perturbed_answer"]]
    for item in probe_items(profile):
        texts += [item["statement"], item["question"], item["answer"], *item["perturbed_answer"]]
    texts += load_resource("idk.json")
    from .harry_potter import anchor_terms, familiarity_prompts, general_mc, passages
    texts += passages(profile.whp.corpus_passages or None)
    texts += list(anchor_terms().values())
    texts += [p["prompt"] + p["answer"] for p in familiarity_prompts()]
    texts += [" ".join([m["question"], *m["choices"], m["statement"]]) for m in general_mc()]
    texts += ["Question:", "Answer:"]
    return texts
