"""Named profiles and their overrides (no ML work: milliseconds)."""

from __future__ import annotations

import pytest

from nbutils.profiles import PROFILES, FinetuneConfig, Profile, get_profile


@pytest.mark.parametrize("name", ["tiny", "smol", "paper"])
def test_get_profile_each_name(name):
    p = get_profile(name)
    assert isinstance(p, Profile)
    assert p.name == name
    assert p == PROFILES[name]
    assert isinstance(p.to_dict(), dict) and p.to_dict()["name"] == name


def test_profiles_match_their_descriptions():
    tiny, smol, paper = get_profile("tiny"), get_profile("smol"), get_profile("paper")
    assert tiny.model == "tiny" and tiny.data_source == "synthetic"
    assert (tiny.n_authors, tiny.qa_per_author) == (20, 10)
    assert smol.model == "smollm2" and smol.prompt_format == "chat" and smol.finetune.lora
    # laptop-sized (the whole workbook in about an hour on 2 cores); TOFU's size is an override away
    assert (smol.n_authors, smol.qa_per_author) == (20, 10) and smol.unlearn.lora
    full = get_profile("smol", {"n_authors": 200, "qa_per_author": 20})
    assert (full.n_authors, full.qa_per_author) == (200, 20)
    assert paper.data_source == "hub" and paper.hub_dataset == "locuslab/TOFU"
    assert paper.model == "microsoft/phi-1_5" and paper.prompt_format == "qa"
    # TOFU's recipe: 5 epochs, effective batch 32, weight decay 0.01, lr 2e-5, bf16 (auto: on GPUs that have it)
    ft = paper.finetune
    assert ft.epochs == 5 and ft.batch_size * ft.gradient_accumulation_steps == 32
    assert ft.weight_decay == 0.01 and ft.learning_rate == 2e-5 and paper.precision == "auto"
    assert not ft.lora and not ft.load_in_4bit


def test_get_profile_default_is_tiny():
    assert get_profile() == get_profile("tiny")


def test_flat_override():
    p = get_profile("tiny", {"n_authors": 40, "forget_split": "forget05"})
    assert p.n_authors == 40 and p.forget_split == "forget05"
    assert PROFILES["tiny"].n_authors == 20  # the registry is never mutated


def test_dotted_override():
    p = get_profile("tiny", {"finetune.lora": True, "finetune.lora_r": 4, "tiny_arch.hidden_size": 64})
    assert p.finetune.lora is True and p.finetune.lora_r == 4
    assert p.tiny_arch.hidden_size == 64
    # untouched fields of the nested config keep the profile's values
    assert p.finetune.epochs == PROFILES["tiny"].finetune.epochs
    assert p.finetune.max_length == PROFILES["tiny"].finetune.max_length


def test_nested_dict_override_equals_dotted():
    nested = get_profile("tiny", {"finetune": {"lora": True, "epochs": 3}, "seed": 7})
    dotted = get_profile("tiny", {"finetune.lora": True, "finetune.epochs": 3, "seed": 7})
    assert nested == dotted
    assert nested.finetune.epochs == 3 and nested.seed == 7


def test_unknown_key_lists_valid_fields():
    with pytest.raises(KeyError) as err:
        get_profile("tiny", {"n_author": 5})
    msg = str(err.value)
    assert "n_author" in msg and "valid fields" in msg
    assert "n_authors" in msg and "qa_per_author" in msg and "finetune" in msg


def test_unknown_nested_key_lists_nested_fields():
    with pytest.raises(KeyError) as err:
        get_profile("tiny", {"finetune.lr": 1e-4})
    msg = str(err.value)
    assert "finetune.lr" in msg and "FinetuneConfig" in msg
    assert "learning_rate" in msg and "lora" in msg and "load_in_4bit" in msg


def test_type_mismatch():
    with pytest.raises(TypeError, match="expected int, got str"):
        get_profile("tiny", {"n_authors": "40"})
    with pytest.raises(TypeError, match="expected bool"):
        get_profile("tiny", {"finetune.lora": 1})
    with pytest.raises(TypeError, match="expected int, got bool"):
        get_profile("tiny", {"seed": True})
    with pytest.raises(TypeError, match="expected float"):
        get_profile("tiny", {"finetune.learning_rate": "1e-4"})


def test_dataclass_field_needs_a_subfield():
    with pytest.raises(TypeError, match="finetune.epochs"):
        get_profile("tiny", {"finetune": FinetuneConfig()})


def test_int_accepted_for_float_field():
    p = get_profile("tiny", {"finetune.learning_rate": 1, "finetune.warmup_epochs": 0})
    assert p.finetune.learning_rate == 1.0 and isinstance(p.finetune.learning_rate, float)
    assert isinstance(p.finetune.warmup_epochs, float)


def test_an_override_equal_to_the_profile_keeps_its_cache_key():
    """smol writes ``muse.finetune_epochs=15`` (an int in a float field): the same 15 given
    as 15 or 15.0 (YAML, JSON) must name the same cached model, or it is trained again."""
    from dataclasses import asdict
    from nbutils.paths import config_key
    smol = get_profile("smol")
    for same in (15, 15.0):
        assert config_key(asdict(get_profile("smol", {"muse.finetune_epochs": same}).muse)) == config_key(asdict(smol.muse))
    assert get_profile("smol", {"muse.finetune_epochs": 2.5}).muse.finetune_epochs == 2.5

def test_4bit_without_lora_rejected():
    with pytest.raises(ValueError, match="lora"):
        get_profile("tiny", {"finetune.load_in_4bit": True})
    p = get_profile("tiny", {"finetune.load_in_4bit": True, "finetune.lora": True})
    assert p.finetune.load_in_4bit and p.finetune.lora


def test_unknown_profile_name():
    with pytest.raises(ValueError) as err:
        get_profile("huge")
    msg = str(err.value)
    assert "huge" in msg and "tiny" in msg and "smol" in msg and "paper" in msg


@pytest.mark.parametrize("bad", [{"forget_split": "forget20"}, {"prompt_format": "alpaca"},
                                 {"data_source": "s3"}, {"n_authors": 2}])
def test_invalid_values_rejected(bad):
    with pytest.raises(ValueError):
        get_profile("tiny", bad)


@pytest.mark.parametrize("forget, retain", [("forget10", "retain90"), ("forget05", "retain95"),
                                            ("forget01", "retain99")])
def test_retain_split(forget, retain):
    assert get_profile("tiny", {"forget_split": forget}).retain_split == retain
    assert get_profile("paper", {"forget_split": forget}).retain_split == retain


def test_precision_setting(monkeypatch):
    from nbutils.models import precision
    assert get_profile("tiny").precision == "fp32"  # its lrs were tuned in fp32
    assert get_profile("smol").precision == "auto" and get_profile("paper").precision == "auto"
    with pytest.raises(ValueError, match="precision"):
        get_profile("smol", {"precision": "fp16"})
    # auto: bf16 on a CPU with bf16 matrix instructions, fp32 without; explicit values win
    monkeypatch.setattr(precision, "cpu_has_fast_bf16", lambda: True)
    assert precision.resolve_precision("auto", "cpu") == "bf16"
    assert precision.resolve_precision("fp32", "cpu") == "fp32"
    assert precision.trainer_precision(get_profile("smol"), "cpu") == {"bf16": True, "use_cpu": True}
    monkeypatch.setattr(precision, "cpu_has_fast_bf16", lambda: False)
    assert precision.resolve_precision("auto", "cpu") == "fp32"
    assert precision.resolve_precision("bf16", "cpu") == "bf16"
    assert precision.resolve_precision("auto", "mps") == "fp32"
    assert precision.trainer_precision(get_profile("smol"), "cpu") == {"bf16": False}


def test_cpu_bf16_detection_reads_cpuinfo_flags(tmp_path, monkeypatch):
    from pathlib import Path

    from nbutils.models import precision
    real_path = Path

    def cpuinfo_with(flags: str):
        f = tmp_path / f"cpuinfo-{abs(hash(flags))}"
        f.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
        monkeypatch.setattr(precision, "Path", lambda p: f if p == "/proc/cpuinfo" else real_path(p))
        monkeypatch.setattr(precision.platform, "system", lambda: "Linux")
        precision.cpu_has_fast_bf16.cache_clear()
        return precision.cpu_has_fast_bf16()

    try:
        assert cpuinfo_with("fpu sse avx512f avx512_bf16") is True      # Zen 4, Cooper Lake
        assert cpuinfo_with("fpu sse avx512f amx_tile amx_bf16") is True  # Sapphire Rapids
        assert cpuinfo_with("fpu sse avx2 avx512f") is False             # emulated bf16: slower
    finally:
        precision.cpu_has_fast_bf16.cache_clear()


def test_a_list_is_accepted_for_a_tuple_field():
    # papermill's -p OVERRIDES arrives as YAML, which has lists and no tuples
    p = get_profile("tiny", {"muse.methods": ["npo", "simnpo"]})
    assert p.muse.methods == ("npo", "simnpo")
    assert get_profile("smol", {"muse.methods": []}).muse.methods == ()
    with pytest.raises(TypeError, match="expected tuple"):
        get_profile("tiny", {"muse.methods": "npo"})


def test_muse_models_train_every_weight_where_the_profile_says_so():
    from nbutils.finetune import muse_finetune_profile
    lora = get_profile("tiny", {"finetune.lora": True})
    assert muse_finetune_profile(lora).finetune.lora  # the finetune section's recipe by default
    full = get_profile("tiny", {"finetune.lora": True, "muse.full_finetune": True})
    ft = muse_finetune_profile(full).finetune
    assert not ft.lora and ft.epochs == full.muse.finetune_epochs
    assert not muse_finetune_profile(get_profile("smol")).finetune.lora  # smol memorises raw text fully


def test_muse_batch_size_is_the_finetune_sections_unless_the_muse_section_sets_one():
    from nbutils.finetune import muse_finetune_profile
    tiny = get_profile("tiny")
    assert muse_finetune_profile(tiny).finetune.batch_size == tiny.finetune.batch_size
    two = get_profile("tiny", {"muse.finetune_batch_size": 2})
    assert muse_finetune_profile(two).finetune.batch_size == 2
    assert get_profile("tiny", {"muse.finetune_batch_size": 0}) == tiny  # 0: the default
    with pytest.raises(ValueError, match="finetune_batch_size"):
        get_profile("tiny", {"muse.finetune_batch_size": -1})


def test_muse_settings_can_differ_per_corpus():
    from nbutils.profiles import for_corpus
    from nbutils.unlearning.tasks import UnlearningTask
    p = get_profile("tiny", {"muse.per_corpus": {"news": {"finetune_epochs": 7, "unlearn_epochs": 2}}})
    news, books = for_corpus(p, "news"), for_corpus(p, "books")
    assert (news.muse.finetune_epochs, news.muse.unlearn_epochs) == (7, 2)
    assert books == p and books.muse.finetune_epochs == get_profile("tiny").muse.finetune_epochs
    assert news.muse.per_corpus == {}  # applied once, and a run's key does not see the others'
    # the unlearning task trains with its own corpus's settings
    assert UnlearningTask("muse_news").profile_for(p).unlearn.epochs == 2
    assert UnlearningTask("muse_books").profile_for(p).unlearn.epochs == p.muse.unlearn_epochs
    # an override reaches one setting of one corpus
    q = get_profile("tiny", {"muse.per_corpus.books.verbmem_tokens": 16})
    assert for_corpus(q, "books").muse.verbmem_tokens == 16
    # and is coerced as an override is (YAML has no tuples)
    r = get_profile("tiny", {"muse.per_corpus.news.methods": ["npo"]})
    assert for_corpus(r, "news").muse.methods == ("npo",)
    # a corpus's method hyperparameters are merged per method over the shared ones
    s = get_profile("tiny", {"muse.per_corpus.news.method_hparams.npo.learning_rate": 1e-2})
    shared = s.muse.method_hparams
    news_hparams = for_corpus(s, "news").muse.method_hparams
    assert news_hparams["npo"] == {**shared["npo"], "learning_rate": 1e-2}
    assert news_hparams["simnpo"] == shared["simnpo"]
    assert for_corpus(s, "books").muse.method_hparams == shared
    assert UnlearningTask("muse_news").profile_for(s).unlearn.method_hparams["npo"]["learning_rate"] == 1e-2


@pytest.mark.parametrize("per_corpus, message", [
    ({"newz": {"finetune_epochs": 3}}, "unknown corpus 'newz'"),
    ({"news": {"finetune_epochz": 3}}, r"\['finetune_epochz'\] are not muse settings"),
    ({"news": {"finetune_epochs": -3}}, "muse.per_corpus.news: muse.finetune_epochs must be positive"),
    ({"news": {"methods": "npo"}}, "expected tuple"),
])
def test_muse_per_corpus_settings_are_checked(per_corpus, message):
    with pytest.raises((ValueError, TypeError), match=message):
        get_profile("tiny", {"muse.per_corpus": per_corpus})
