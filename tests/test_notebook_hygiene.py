"""Rules every committed workbook notebook follows (checked on the real notebooks/)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _ids(paths):
    return [p.name for p in paths]


def test_the_notebooks_are_found():
    """The checks below run once per notebook: an empty glob (a moved folder, a renamed
    pattern) must fail here rather than leave every check silently unrun."""
    assert len(NOTEBOOKS) >= 16, f"expected the workbook's notebooks in {REPO_ROOT / 'notebooks'}"


@pytest.fixture(params=NOTEBOOKS, ids=_ids(NOTEBOOKS))
def notebook(request):
    return request.param, nbformat.read(request.param, as_version=4)


def _code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def test_committed_without_outputs(notebook):
    path, nb = notebook
    dirty = [i for i, c in enumerate(_code_cells(nb)) if c.outputs or c.execution_count is not None]
    assert not dirty, (
        f"{path.name}: code cells {dirty} have outputs or execution counts; run "
        "`jupyter nbconvert --clear-output --inplace notebooks/*.ipynb` before committing")


def test_parameters_cell(notebook):
    path, nb = notebook
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: expected exactly one cell tagged `parameters`"
    code = _code_cells(nb)
    assert code and code[0] is tagged[0], f"{path.name}: the first code cell must be the parameters cell"
    names = []
    for stmt in ast.parse(tagged[0].source).body:
        simple = (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
                  and isinstance(stmt.targets[0], ast.Name))
        assert simple, f"{path.name}: parameters cell may only hold `NAME = literal` lines: {ast.unparse(stmt)}"
        try:
            ast.literal_eval(stmt.value)
        except (ValueError, TypeError, SyntaxError):
            pytest.fail(f"{path.name}: parameter {stmt.targets[0].id} is not a literal: {ast.unparse(stmt)}")
        names.append(stmt.targets[0].id)
    assert "PROFILE" in names, f"{path.name}: the parameters cell must set PROFILE"


def test_setup_cell(notebook):
    path, nb = notebook
    code = _code_cells(nb)
    assert len(code) >= 2 and "setup_notebook(" in code[1].source, (
        f"{path.name}: the second code cell (right after parameters) must call setup_notebook(...)")


def test_unique_numbers():
    prefixes = [p.name[:2] for p in NOTEBOOKS]
    dupes = sorted({p for p in prefixes if prefixes.count(p) > 1})
    assert not dupes, f"notebook numbers used more than once: {dupes}"


def test_readme_table_up_to_date():
    readme = REPO_ROOT / "README.md"
    text = readme.read_text(encoding="utf-8") if readme.exists() else ""
    assert "<!-- notebooks:start -->" in text and "<!-- notebooks:end -->" in text, (
        "README.md lost the notebooks table markers that `python -m nbutils.readme` fills")
    proc = subprocess.run([sys.executable, "-m", "nbutils.readme", "--check"], cwd=REPO_ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr + "\nrun `python -m nbutils.readme`"
