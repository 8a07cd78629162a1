"""Regenerate the notebooks table in README.md from the notebooks themselves.

    python -m nbutils.readme          # rewrite the table between the markers
    python -m nbutils.readme --check  # exit 1 if README.md is out of date

The table sits between ``<!-- notebooks:start -->`` and ``<!-- notebooks:end -->``.
Titles and goals come from each notebook's first markdown cell (its ``# `` line and a
``**Goal:**`` line); times come from ``notebooks/timings.json`` (``python -m nbutils.headless --record``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import nbformat

REPO_ROOT = Path(__file__).resolve().parent.parent
START = "<!-- notebooks:start -->"
END = "<!-- notebooks:end -->"
GOAL_PREFIX = "**Goal:**"


def title_and_goal(notebook_path: Path) -> tuple[str, str]:
    """The ``# `` title and the ``**Goal:**`` text of the first markdown cell ("" if absent)."""
    nb = nbformat.read(notebook_path, as_version=4)
    markdown = next((c.source for c in nb.cells if c.cell_type == "markdown"), "")
    lines = [line.strip() for line in markdown.splitlines()]
    title = next((line[2:].strip() for line in lines if line.startswith("# ")), "")
    goal = next((line[len(GOAL_PREFIX):].strip() for line in lines if line.startswith(GOAL_PREFIX)), "")
    return title, goal


def format_seconds(seconds) -> str:
    """``45 s`` under a minute, else ``3.2 min``; ``—`` when unknown."""
    if seconds is None:
        return "—"
    return f"{seconds:.0f} s" if seconds < 60 else f"{seconds / 60:.1f} min"


def load_timings(notebooks_dir: Path) -> dict:
    """``{profile: {notebook stem: seconds}}`` from timings.json, or {} if there is none."""
    path = Path(notebooks_dir) / "timings.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _cell(text: str) -> str:
    """Make text safe inside a markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def _row(cells) -> str:
    return "| " + " | ".join(cells) + " |"


def notebook_table(notebooks_dir, link_base=None) -> str:
    """A markdown table of the numbered notebooks; links are relative to ``link_base``
    (default: the repo root, i.e. where README.md lives)."""
    notebooks_dir = Path(notebooks_dir)
    link_base = Path(link_base or REPO_ROOT)
    timings = load_timings(notebooks_dir)
    profiles = list(timings)
    rows = [_row(["#", "Notebook", "Goal", *profiles]), "|---|---|---|" + "---:|" * len(profiles)]
    for path in sorted(notebooks_dir.glob("[0-9][0-9]_*.ipynb")):
        title, goal = title_and_goal(path)
        link = Path(os.path.relpath(path.resolve(), link_base.resolve())).as_posix()
        times = [format_seconds(timings[p].get(path.stem)) for p in profiles]
        cells = [path.name[:2], f"[{_cell(title or path.stem)}]({link})", _cell(goal), *times]
        rows.append(_row(cells))
    return "\n".join(rows) + "\n"


def has_markers(readme_path) -> bool:
    """True if the README exists and contains both marker lines, in order."""
    path = Path(readme_path)
    if not path.exists():
        return False
    text = path.read_text(encoding="utf-8")
    return START in text and END in text and text.index(START) < text.index(END)


def render_readme(text: str, table: str) -> str:
    """README text with the block between the markers replaced by ``table``."""
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{table}{END}{tail}"


def update_readme(readme_path, notebooks_dir, write=True) -> bool:
    """Rewrite the table in the README; returns True if its text changed.
    With ``write=False`` only reports whether it would change."""
    readme_path = Path(readme_path)
    if not has_markers(readme_path):
        raise ValueError(f"{readme_path} has no {START} / {END} markers")
    old = readme_path.read_text(encoding="utf-8")
    new = render_readme(old, notebook_table(notebooks_dir, link_base=readme_path.parent))
    if new != old and write:
        readme_path.write_text(new, encoding="utf-8")
    return new != old


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nbutils.readme", description=__doc__.split("\n")[0])
    parser.add_argument("--readme", type=Path, default=REPO_ROOT / "README.md")
    parser.add_argument("--notebooks-dir", type=Path, default=REPO_ROOT / "notebooks")
    parser.add_argument("--check", action="store_true", help="exit 1 if the table is out of date")
    args = parser.parse_args(argv)
    if not has_markers(args.readme):
        print(notebook_table(args.notebooks_dir, link_base=args.readme.parent))
        print(f"{args.readme} missing or without {START} / {END} markers; nothing updated.")
        return 0
    changed = update_readme(args.readme, args.notebooks_dir, write=not args.check)
    if args.check:
        if changed:
            print(f"{args.readme} notebooks table is out of date: run `python -m nbutils.readme`.")
            return 1
        print(f"{args.readme} notebooks table is up to date.")
        return 0
    print(f"{args.readme}: {'table updated' if changed else 'already up to date'}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
