"""The hyperparameter grid: points, the field's choice rule, and a real two-point sweep."""

from __future__ import annotations

import pandas as pd

from nbutils.profiles import get_profile
from nbutils.tuning import choose, evaluate_grid, grid_points, main


def test_grid_points_cover_every_combination_in_order():
    assert grid_points({"learning_rate": [1e-4, 1e-3], "beta": [0.1]}) == [
        {"learning_rate": 1e-4, "beta": 0.1}, {"learning_rate": 1e-3, "beta": 0.1}]


def test_choice_is_best_forget_quality_that_keeps_utility():
    table = pd.DataFrame([
        {"learning_rate": 1e-4, "forget quality": 0.01, "forget ROUGE-L": 0.6, "model utility": 0.5, "utility / target": 1.0},
        {"learning_rate": 3e-4, "forget quality": 0.20, "forget ROUGE-L": 0.4, "model utility": 0.4, "utility / target": 0.8},
        {"learning_rate": 1e-3, "forget quality": 0.90, "forget ROUGE-L": 0.1, "model utility": 0.1, "utility / target": 0.2},
    ])
    assert choose(table)["learning_rate"] == 3e-4
    # nothing keeps 0.9 of the utility but the weakest point
    assert choose(table, keep=0.9)["learning_rate"] == 1e-4
    # no point keeps it: the highest utility, so a too-strong grid shows itself
    assert choose(table.iloc[1:], keep=0.9)["learning_rate"] == 3e-4


def test_sweep_runs_and_evaluates_each_point(micro_overrides, capsys):
    over = {**micro_overrides, "unlearn.epochs": 1, "unlearn.batch_size": 2,
            "unlearn.gradient_accumulation_steps": 1, "max_new_tokens": 8}
    profile = get_profile("tiny", over)
    table = evaluate_grid(profile, "graddiff", {"learning_rate": [1e-4, 1e-2]})
    assert list(table["learning_rate"]) == [1e-4, 1e-2]
    assert table["run"].nunique() == 2 and table["model utility"].notna().all()
    # the command line prints the table and the choice
    args = ["--profile", "tiny", "--method", "graddiff", "--grid", "learning_rate=1e-4,1e-2"]
    for k, v in over.items():
        args += ["--override", f"{k}={v}"]
    main(args)
    assert "chosen for graddiff on tiny" in capsys.readouterr().out
