"""Without a network, a hub download fails within seconds and says what to do (issue 14)."""

from __future__ import annotations

import time

import pytest
from huggingface_hub import constants

from nbutils import hub_access
from nbutils.hub_access import HubUnavailable
from nbutils.profiles import get_profile


@pytest.fixture
def no_network(monkeypatch, tmp_path):
    """An endpoint that refuses connections, an empty hub cache, and no memory of earlier checks."""
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    hub_access.reachable.cache_clear()
    yield
    hub_access.reachable.cache_clear()


def _fails_fast(call):
    start = time.monotonic()
    with pytest.raises(HubUnavailable) as err:
        call()
    assert time.monotonic() - start < 10
    return str(err.value)


def test_the_paper_dataset_fails_fast_and_names_the_way_forward(no_network):
    from nbutils.data.tofu import ensure_tofu_source
    msg = _fails_fast(lambda: ensure_tofu_source(get_profile("paper")))
    assert "'locuslab/TOFU'" in msg and "--profile tiny" in msg and "HF_HUB_OFFLINE=1" in msg
    assert "--repo-type dataset locuslab/TOFU" in msg


def test_a_model_id_fails_fast(no_network):
    from nbutils.models.loading import load_tokenizer
    msg = _fails_fast(lambda: load_tokenizer("microsoft/phi-1_5", get_profile("paper")))
    assert "'microsoft/phi-1_5'" in msg and "model" in msg


def test_switched_off_hub_without_a_copy_says_so(no_network, monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    msg = _fails_fast(lambda: hub_access.require_hub("muse-bench/MUSE-News", "dataset"))
    assert "switched off" in msg and "not in the local hub cache" in msg


def test_a_local_folder_or_a_cached_copy_needs_no_network(no_network, tmp_path):
    hub_access.require_hub(str(tmp_path))  # a folder: nothing to download
    snapshot = tmp_path / "hub" / "models--org--cached" / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    hub_access.require_hub("org/cached")


def test_a_muse_hub_corpus_fails_fast_when_loaded(no_network):
    from dataclasses import replace

    from nbutils.data.muse import load_muse, muse_source
    hub = replace(get_profile("tiny"), data_source="hub")
    assert muse_source(hub, "books") == "muse-bench/MUSE-Books"  # naming the source needs no network
    msg = _fails_fast(lambda: load_muse(hub, "raw", "forget", corpus="books"))
    assert "'muse-bench/MUSE-Books'" in msg
