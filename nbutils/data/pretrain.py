"""The general 'pretraining' mix of the from-scratch ``tiny`` model.

A pretrained LLM arrives knowing true facts about real authors and the world; TOFU's model
utility measures whether unlearning keeps that knowledge. Our tiny model is born empty, so
it first learns the probe facts (as statements and as QA in the profile's prompt format).
The fictitious authors are *not* in this mix: they come only with TOFU finetuning, so the
retain model really has never seen the forget authors.
"""

from __future__ import annotations

from ..profiles import Profile
from .world import generate_world, load_resource


def probe_items(profile: Profile) -> list[dict]:
    """The real-author and world-fact items this profile uses."""
    return (load_resource("real_authors.json")[: profile.n_real_authors]
            + load_resource("world_facts.json")[: profile.n_world_facts])


def pretraining_examples(profile: Profile) -> list[dict]:
    """``{"text": ...}`` statements and ``{"question", "answer"}`` pairs."""
    examples = []
    for item in probe_items(profile):
        examples.append({"text": item["statement"]})
        examples.append({"question": item["question"], "answer": item["answer"]})
    return examples


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
    texts += ["Question:", "Answer:"]
    return texts
