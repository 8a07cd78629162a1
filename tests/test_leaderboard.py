"""The leaderboard's tables, built from hand-made evaluation logs (no model involved): the
right numbers land in the right cells, missing ones show as missing, exports round-trip."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from nbutils import leaderboard
from nbutils.evaluation.tofu_logs import TofuEval


def _eval(forget_quality, utility, forget_rouge, extra=None) -> TofuEval:
    logs = {"forget_quality": {"agg_value": forget_quality}, "model_utility": {"agg_value": utility},
            "forget_truth_ratio": {"agg_value": 0.6}, "forget_Q_A_Prob": {"agg_value": 0.3},
            "forget_Q_A_ROUGE": {"agg_value": forget_rouge}, "extraction_strength": {"agg_value": 0.2},
            "exact_memorization": {"agg_value": 0.5}, **(extra or {})}
    return TofuEval(logs)


@pytest.fixture
def evals():
    return {"target": _eval(1e-12, 0.62, 0.95), "retain": _eval(1.0, 0.60, 0.40),
            "npo": _eval(0.02, 0.55, 0.30, {"mia_min_k": {"agg_value": 0.7}})}


def test_tofu_table_reads_every_headline_metric(evals):
    privacy = {name: {"tofu_privleak": v} for name, v in (("target", -80.0), ("retain", 0.0), ("npo", -12.5))}
    robustness = pd.DataFrame({"R": [0.3], "Q": [0.9], "robustness": [0.45]}, index=["npo"])
    df = leaderboard.tofu_table(evals, privacy, robustness)
    assert list(df.index) == ["target", "retain", "npo"] and df.index.name == "model"
    assert list(df.columns) == [*leaderboard.TOFU_COLUMNS.values(), "privleak", "R", "Q", "robustness"]
    assert df.loc["npo", "forget quality"] == 0.02 and df.loc["target", "forget ROUGE-L"] == 0.95
    assert df.loc["retain", "privleak"] == 0.0 and df.loc["npo", "robustness"] == 0.45
    assert math.isnan(df.loc["target", "R"])  # not attacked: missing, not zero


def test_summary_table_keeps_every_numeric_metric_of_any_log(evals, tmp_path):
    evals["npo"].save(tmp_path / "npo")
    df = leaderboard.summary_table({"target": evals["target"], "npo": tmp_path / "npo"})
    assert df.loc["npo", "mia_min_k"] == 0.7 and math.isnan(df.loc["target", "mia_min_k"])
    assert df.loc["target", "model_utility"] == 0.62


def test_muse_and_whp_tables_name_their_rows_as_the_papers_do():
    privacy = {n: {"muse": {"VerbMem_f": v, "KnowMem_f": 1.0, "PrivLeak": p, "KnowMem_r": 2.0}}
               for n, v, p in (("target", 60.0, -90.0), ("retain", 20.0, 0.0), ("npo", 18.0, -5.0))}
    df = leaderboard.muse_table(privacy)
    assert list(df.index) == ["Origin", "Retrain", "npo"] and list(df.columns) == list(leaderboard.MUSE_COLUMNS)
    assert df.loc["Origin", "VerbMem_f"] == 60.0 and df.loc["npo", "PrivLeak"] == -5.0
    whp = leaderboard.whp_table({"baseline": {"familiarity": 0.9, "answer_prob": 0.4, "mc_accuracy": 1.0}})
    assert whp.loc["baseline"].tolist() == [0.9, 0.4, 1.0]


def test_evenly_spaced_keeps_first_and_last():
    assert leaderboard.evenly_spaced(list(range(10)), 4) == [0, 3, 6, 9]
    assert leaderboard.evenly_spaced([1, 2], 4) == [1, 2] and leaderboard.evenly_spaced([1, 2, 3], None) == [1, 2, 3]


def test_markdown_and_csv_exports_round_trip(evals, tmp_path):
    df = leaderboard.tofu_table(evals)
    md = leaderboard.to_markdown(df, "caption")
    assert md.startswith("caption\n\n| model | forget quality |")
    assert "| target | 1.00e-12 | 0.62 |" in md  # tiny p-values in scientific notation
    written = leaderboard.export({"tofu": df}, tmp_path / "out")
    assert [p.name for p in written] == ["tofu.csv", "tofu.md"]
    back = pd.read_csv(tmp_path / "out" / "tofu.csv", index_col="model")
    np.testing.assert_allclose(back.to_numpy(), df.to_numpy())


def test_styling_and_plots_build_without_a_display(evals):
    df = leaderboard.tofu_table(evals)
    html = leaderboard.style_leaderboard(df).to_html()
    assert "background-color" in html and "1.00e-12" in html
    fig = leaderboard.fq_mu_scatter(df)
    assert fig.layout.yaxis.type == "log" and list(fig.data[0].text) == ["target", "retain", "npo"]
    trajectory = pd.DataFrame({"method": ["npo"] * 3, "step": [0, 5, 10], "forget quality": [1e-9, 1e-4, 0.01],
                               "model utility": [0.6, 0.58, 0.55]})
    fig = leaderboard.trajectory_plot(trajectory)
    assert [list(d.x) for d in fig.data] == [[0, 5, 10], [0, 5, 10]]
