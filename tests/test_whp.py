"""Who's Harry Potter: anchored translation, token alignment, generic logits and labels,
consistency, and the two-cache inference-time model."""

from __future__ import annotations

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from nbutils.unlearning.whp.anchors import align_tokens, translate
from nbutils.models.whp_inference import WHPInferenceModel
from nbutils.unlearning.whp.labels import (IGNORE, consistency_penalties, generic_labels,
                                           generic_logits)

ANCHORS = {"Harry": "Jon", "Harry Potter": "Jon Baker", "Potter": "Baker", "Ron": "Tom",
           "Hogwarts": "Mystic Academy"}


def test_translate_longest_first_whole_words_and_spans():
    text = "Harry Potter's friend Ron met Harry at Hogwarts. Ronald stayed."
    out, reps = translate(text, ANCHORS)
    assert out == "Jon Baker's friend Tom met Jon at Mystic Academy. Ronald stayed."
    assert [r.term for r in reps] == ["Harry Potter", "Ron", "Harry", "Hogwarts"]
    for r in reps:
        assert text[r.start:r.end] == r.term and out[r.new_start:r.new_end] == r.generic


def test_translate_without_anchors_is_identity():
    assert translate("Harry", {}) == ("Harry", [])


def test_align_tokens_equal_and_replaced_spans():
    # original: a b [X Y] c ; translation: a b [Z] c
    mapping = align_tokens([1, 2, 7, 8, 3], [1, 2, 9, 3])
    # the replaced term's last token maps to the translated term's last token; its first
    # token has no counterpart (no label is taught there)
    assert mapping == [0, 1, None, 2, 3]


def test_generic_logits_only_pushes_down_what_reinforcement_raised():
    base = torch.tensor([1.0, 2.0, 3.0])
    reinf = torch.tensor([3.0, 1.0, 3.0])
    out = generic_logits(base, reinf, alpha=2.0)
    assert torch.allclose(out, torch.tensor([1.0 - 4.0, 2.0, 3.0]))
    assert torch.equal(generic_logits(base, reinf, 0.0), base)


def _tiny_lm(vocab: int, seed: int) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=128,
                      pad_token_id=0, bos_token_id=1, eos_token_id=2)
    return LlamaForCausalLM(cfg).eval()


def test_consistency_penalises_translation_after_first_appearance(tiny_tokenizer):
    text = "Harry met Ron. Harry smiled."
    translated, reps = translate(text, ANCHORS)
    enc = tiny_tokenizer(text, return_offsets_mapping=True)
    penalties = consistency_penalties(reps, enc["offset_mapping"], tiny_tokenizer, len(enc["input_ids"]))
    jon = {tiny_tokenizer(w, add_special_tokens=False)["input_ids"][0] for w in ("Jon", " Jon")}
    first_end = text.index(" met")
    for t, (_, end) in enumerate(enc["offset_mapping"]):
        assert (jon <= penalties[t]) == (end >= first_end)


def test_generic_labels_shapes_and_identity_case(tiny_tokenizer):
    model = _tiny_lm(len(tiny_tokenizer), seed=0)
    texts = ["Harry met Ron at Hogwarts.", "An ordinary sentence with no names."]
    labelled = generic_labels(model, model, tiny_tokenizer, texts, ANCHORS, alpha=5.0,
                              consistency_margin=0.0)
    for g, text in zip(labelled, texts):
        assert len(g.targets) == len(g.input_ids) == len(g.alignment) == len(g.labels)
        assert g.targets[-1] == IGNORE and g.labels[0] == IGNORE
        assert all(t == IGNORE for t, a in zip(g.targets, g.alignment) if a is None)
    # no anchor, reinforced == base: the labels are the baseline's own argmax predictions
    plain = labelled[1]
    ids = torch.tensor([plain.input_ids])
    argmax = model(input_ids=ids).logits[0].argmax(-1).tolist()
    assert plain.targets[:-1] == argmax[:-1]
    # with anchors the baseline is read on the translation at aligned positions
    g = labelled[0]
    t_logits = model(input_ids=torch.tensor([g.translated_ids])).logits[0]
    for t, a in enumerate(g.alignment[:-1]):
        if a is not None:
            assert g.targets[t] == int(t_logits[a].argmax())


def test_generic_labels_push_down_reinforced_tokens(tiny_tokenizer):
    base = _tiny_lm(len(tiny_tokenizer), seed=0)
    reinf = _tiny_lm(len(tiny_tokenizer), seed=1)
    g = generic_labels(base, reinf, tiny_tokenizer, ["What is the name of the author?"], {},
                       alpha=1000.0, consistency_margin=0.0)[0]
    ids = torch.tensor([g.input_ids])
    vb, vr = base(input_ids=ids).logits[0], reinf(input_ids=ids).logits[0]
    expected = generic_logits(vb, vr, 1000.0).argmax(-1).tolist()
    assert g.targets[:-1] == expected[:-1]
    # a token the reinforced model raised by a lot is never a label
    for t, lab in enumerate(g.targets[:-1]):
        assert vr[t, lab] <= vb[t, lab] + 1e-3


def _manual_greedy(base, reinf, alpha, ids, steps):
    """Greedy decoding by full recomputation, no cache: the ground truth."""
    seq = list(ids)
    for _ in range(steps):
        x = torch.tensor([seq])
        logits = generic_logits(base(input_ids=x).logits[0, -1], reinf(input_ids=x).logits[0, -1], alpha)
        seq.append(int(logits.argmax()))
    return seq[len(ids):]


def test_inference_model_two_caches_match_recomputation():
    base, reinf = _tiny_lm(64, 0), _tiny_lm(64, 1)
    model = WHPInferenceModel(base, reinf, alpha=1.0)
    prompts = [[5, 6, 7, 8, 9], [10, 11]]
    # left-padded batch, as the evaluation generates
    from nbutils.evaluation.generation import left_pad
    ids, mask = left_pad(prompts, pad_token_id=0)
    out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=6, pad_token_id=0,
                         eos_token_id=None)
    for row, p in enumerate(prompts):
        assert out[row, ids.shape[1]:].tolist() == _manual_greedy(base, reinf, 1.0, p, 6)
    # scoring path: forward gives the combined logits
    x = torch.tensor([prompts[0]])
    expected = generic_logits(base(input_ids=x).logits, reinf(input_ids=x).logits, 1.0)
    assert torch.allclose(model(input_ids=x).logits, expected, atol=1e-5)


def test_inference_model_alpha_zero_is_the_baseline():
    base, reinf = _tiny_lm(64, 0), _tiny_lm(64, 1)
    ids = torch.tensor([[3, 4, 5, 6]])
    ours = WHPInferenceModel(base, reinf, alpha=0.0).generate(input_ids=ids, max_new_tokens=5)
    theirs = base.generate(input_ids=ids, max_new_tokens=5, do_sample=False, pad_token_id=0)
    assert ours.tolist() == theirs.tolist()


def test_tofu_anchors_find_forget_authors(micro_profile):
    from nbutils.data.tofu import load_tofu
    from nbutils.unlearning.whp.corpus import tofu_anchors, tofu_forget_names
    forget = list(load_tofu(micro_profile, micro_profile.forget_split))
    retain = list(load_tofu(micro_profile, micro_profile.retain_split))
    names = tofu_forget_names(forget, retain)
    assert names, "the forget authors' names should be found in their questions"
    taken = " ".join(r["question"] + " " + r["answer"] for r in forget + retain)
    anchors = tofu_anchors(names, taken, seed=0)
    for name in names:
        first, last = name.split()[0], name.split()[-1]
        assert anchors[name] == f"{anchors[first]} {anchors[last]}"  # consistent parts
        assert anchors[name] not in taken


def test_views_render(tiny_tokenizer):
    from nbutils.unlearning.whp import top_predictions
    from nbutils.unlearning.whp.views import (label_table_html, position_table, progress_figure,
                                              top_tokens_figure)
    base, reinf = _tiny_lm(len(tiny_tokenizer), 0), _tiny_lm(len(tiny_tokenizer), 1)
    df = top_predictions(base, reinf, tiny_tokenizer, "Harry met", alpha=1.0, k=4)
    assert list(dict.fromkeys(df["model"])) == ["baseline", "reinforced", "generic (alpha=1)"]
    assert len(top_tokens_figure(df, "Harry met").data) == 3
    table = position_table(base, reinf, tiny_tokenizer, "Harry met Ron at Hogwarts.", alpha=1.0)
    assert len(table) == len(tiny_tokenizer("Harry met Ron at Hogwarts.")["input_ids"]) - 1
    g = generic_labels(base, reinf, tiny_tokenizer, ["Harry met Ron. Harry left."], ANCHORS, 1.0)[0]
    html = label_table_html(g, tiny_tokenizer)
    assert html.count("<tr>") == 3 and "border:2px solid #d33" in html  # consistency marked
    fig = progress_figure([{"step": 0, "familiarity": 1.0, "answer_prob": 0.5, "mc_accuracy": 1.0},
                           {"step": 5, "familiarity": 0.2, "answer_prob": 0.1, "mc_accuracy": 0.9}])
    assert len(fig.data) == 3


def test_the_inference_spec_finds_its_models_in_a_moved_cache(tmp_path):
    """The spec names local checkpoints relative to itself, so a copied cache still loads;
    a hub id is kept as given."""
    import shutil
    from nbutils.models.whp_inference import WHPInferenceModel
    cache = tmp_path / "cache"
    (cache / "models" / "target").mkdir(parents=True)
    (cache / "whp" / "reinforced").mkdir(parents=True)
    spec_dir = cache / "whp" / "inference"
    WHPInferenceModel.save_spec(spec_dir, cache / "models" / "target", "org/reinforced-on-hub", 1.0)
    shutil.copytree(cache, tmp_path / "moved")
    spec = WHPInferenceModel.read_spec(tmp_path / "moved" / "whp" / "inference")
    assert spec["base"] == str((tmp_path / "moved" / "models" / "target").resolve())
    assert spec["reinforced"] == "org/reinforced-on-hub" and spec["alpha"] == 1.0
