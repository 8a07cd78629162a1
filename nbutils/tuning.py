"""Choosing a method's hyperparameters as the field does: a small grid, one run per point,
every point evaluated with the full TOFU evaluation, the best forget quality among the points
that keep model utility.

    python -m nbutils.tuning --profile smol --method npo --grid learning_rate=1e-4,3e-4,1e-3
    python -m nbutils.tuning --profile smol --method simnpo --grid learning_rate=3e-4,1e-3 \\
        --grid beta=2.5,4.5

NPO, SimNPO and open-unlearning's sweeps pick, per method, the run with the highest forget
quality whose model utility stays near the target's (here: at least ``--keep`` of it, 0.7 by
default); where no point keeps it, the one with the highest utility is reported instead, so a
too-strong grid shows itself. Runs and evaluations are cached like every other run, so a
notebook that later asks for the chosen setting trains nothing. The table of every point is
printed and returned; write the grid and the choice next to the method in the profile.
"""

from __future__ import annotations

import argparse
import itertools

import pandas as pd

from .profiles import Profile


def grid_points(grid: dict[str, list]) -> list[dict]:
    """Every combination of the grid's values, in the order given."""
    keys = list(grid)
    return [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]


def evaluate_grid(profile: Profile, method: str, grid: dict[str, list]) -> pd.DataFrame:
    """One row per grid point: the hyperparameters, forget quality, model utility, forget
    ROUGE-L and answer probability, and their ratios to the target model's."""
    from .evaluation.tofu import ensure_tofu_eval
    from .leaderboard import ensure_retain_eval
    from .finetune import ensure_target_model
    from .unlearning import ensure_unlearned
    reference = ensure_retain_eval(profile, progress=False)
    target = ensure_tofu_eval(profile, ensure_target_model(profile), f"target-{profile.name}",
                              reference=reference, progress=False)
    rows = []
    for point in grid_points(grid):
        run = ensure_unlearned(profile, method, **point)
        ev = ensure_tofu_eval(profile, run, f"{method}-{profile.name}", reference=reference,
                              progress=False)
        rows.append({**point, "forget quality": ev["forget_quality"],
                     "model utility": ev["model_utility"],
                     "forget ROUGE-L": ev["forget_Q_A_ROUGE"], "forget prob": ev["forget_Q_A_Prob"],
                     "utility / target": _ratio(ev["model_utility"], target["model_utility"]),
                     "ROUGE / target": _ratio(ev["forget_Q_A_ROUGE"], target["forget_Q_A_ROUGE"]),
                     "run": run.name})
    return pd.DataFrame(rows)


def _plain(value):
    """A numpy scalar as the Python number it holds (for printing)."""
    return value.item() if hasattr(value, "item") else value


def _ratio(value: float, reference: float) -> float:
    return value / reference if reference else float("nan")


def choose(table: pd.DataFrame, keep: float = 0.7) -> pd.Series:
    """The highest forget quality among the points keeping ``keep`` of the target's utility
    (ties: the lower forget ROUGE-L); the highest utility if none keeps it."""
    kept = table[table["utility / target"] >= keep]
    if kept.empty:
        return table.sort_values("model utility", ascending=False).iloc[0]
    return kept.sort_values(["forget quality", "forget ROUGE-L"], ascending=[False, True]).iloc[0]


def main(argv=None) -> pd.DataFrame:
    from .profiles import get_profile
    from .profiles import parse_params, parse_value
    parser = argparse.ArgumentParser(prog="python -m nbutils.tuning", description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="tiny")
    parser.add_argument("--method", required=True)
    parser.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                        help="a hyperparameter and its values (repeatable)")
    parser.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                        help="profile override, e.g. unlearn.epochs=3 (repeatable)")
    parser.add_argument("--keep", type=float, default=0.7, help="model utility to keep, as a fraction of the target's")
    args = parser.parse_args(argv)
    grid = {}
    for item in args.grid:
        key, sep, values = item.partition("=")
        if not sep or not values:
            parser.error(f"--grid {item!r} is not KEY=V1,V2,...")
        grid[key.strip()] = [parse_value(v) for v in values.split(",")]
    if not grid:
        parser.error("give at least one --grid KEY=V1,V2,...")
    profile = get_profile(args.profile, parse_params(args.override))
    table = evaluate_grid(profile, args.method, grid)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.drop(columns="run").round(4).to_string(index=False))
    best = choose(table, args.keep)
    print(f"\nchosen for {args.method} on {profile.name}: "
          f"{ {k: _plain(best[k]) for k in grid} } (forget quality {best['forget quality']:.3g}, "
          f"utility {best['utility / target']:.2f}x the target's)")
    return table


if __name__ == "__main__":
    main()
