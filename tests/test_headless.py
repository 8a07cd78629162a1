"""Fast tests of the headless runner and the README table, on toy notebooks (no ML)."""

from __future__ import annotations

import json

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from nbutils import headless, readme
from nbutils.profiles import parse_params


def _write_notebook(path, title, goal, code_cells):
    """A notebook: a markdown intro, a `parameters` cell, then ``code_cells``."""
    params = new_code_cell('PROFILE = "tiny"\nOVERRIDES = {}\nEXTRA = None')
    params.metadata["tags"] = ["parameters"]
    intro = new_markdown_cell(f"# {title}\n\nSome words.\n\n**Goal:** {goal}")
    nb = new_notebook(cells=[intro, params, *[new_code_cell(src) for src in code_cells]])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


@pytest.fixture
def toy_dir(tmp_path):
    """Three toy notebooks; the second fails in its second code cell."""
    nb_dir = tmp_path / "notebooks"
    nb_dir.mkdir()
    _write_notebook(nb_dir / "01_hello.ipynb", "Hello", "say hello", [
        'print(f"profile={PROFILE} extra={EXTRA!r}")\nassert PROFILE in ("tiny", "smol")',
    ])
    _write_notebook(nb_dir / "02_fail.ipynb", "Fail | loudly", "break", [
        "x = 1",
        "# about to fail\nraise ValueError('boom')",
        "print('never')",
    ])
    _write_notebook(nb_dir / "03_after.ipynb", "After", "run last", ["print('after', PROFILE)"])
    (nb_dir / "notes.ipynb").write_text("not a numbered notebook, ignored")
    return nb_dir


def _outputs_text(path):
    nb = nbformat.read(path, as_version=4)
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def test_parse_params():
    assert parse_params(["A=3", "B=1e-4", "C=hello", "D=[1, 2]", "E=true", "F=a=b", "G=3E5", "H=1.5e3x"]) == {
        "A": 3, "B": 1e-4, "G": 3e5, "H": "1.5e3x", "C": "hello", "D": [1, 2], "E": True, "F": "a=b"}
    with pytest.raises(ValueError):
        parse_params(["no_equals_sign"])


def test_find_notebooks_only(toy_dir):
    assert [p.name for p in headless.find_notebooks(toy_dir)] == [
        "01_hello.ipynb", "02_fail.ipynb", "03_after.ipynb"]
    assert [p.stem for p in headless.find_notebooks(toy_dir, only=["03", 1])] == ["01_hello", "03_after"]


def test_success_only_params_record(toy_dir, tmp_path, capsys):
    out = tmp_path / "run"
    result = headless.run_notebooks(profile="smol", only=["01", "03"], out_dir=out,
                               parameters={"EXTRA": [1, 2]}, notebooks_dir=toy_dir, record=True)
    assert result.ok and result.out_dir == out
    assert [nb.name for nb in result.notebooks] == ["01_hello", "03_after"]
    for name in ("01_hello", "03_after"):
        assert (out / f"{name}.ipynb").exists() and (out / f"{name}.html").exists()
    assert not (out / "02_fail.ipynb").exists()
    assert "profile=smol extra=[1, 2]" in _outputs_text(out / "01_hello.ipynb")
    assert "after smol" in _outputs_text(out / "03_after.ipynb")

    summary = json.loads((out / "run.json").read_text())
    assert summary["profile"] == "smol" and summary["ok"] is True
    assert summary["parameters"] == {"PROFILE": "smol", "EXTRA": [1, 2]}
    assert "python" in summary["versions"] and summary["started"]
    assert [(n["name"], n["status"]) for n in summary["notebooks"]] == [
        ("01_hello", "ok"), ("03_after", "ok")]
    assert all(n["seconds"] >= 0 for n in summary["notebooks"]) and summary["total_seconds"] > 0

    timings = json.loads((toy_dir / "timings.json").read_text())
    assert set(timings) == {"smol"} and set(timings["smol"]) == {"01_hello", "03_after"}
    printed = capsys.readouterr().out
    assert "[1/2] 01_hello ... ok in" in printed and "[2/2] 03_after ... ok in" in printed


def test_headless_runs_are_not_interactive(tmp_path):
    """A notebook that declares INTERACTIVE runs with it False unless the caller says otherwise;
    one that does not declare it gets nothing extra."""
    nb_dir = tmp_path / "notebooks"
    nb_dir.mkdir()
    _write_notebook(nb_dir / "01_plain.ipynb", "Plain", "no INTERACTIVE", ["print('plain')"])
    nb = nbformat.read(nb_dir / "01_plain.ipynb", as_version=4)
    nb.cells[1].source += "\nINTERACTIVE = True"
    nbformat.write(nb, nb_dir / "02_widgets.ipynb")
    assert headless.notebook_parameters(nb_dir / "01_plain.ipynb", {"PROFILE": "tiny"}) == {"PROFILE": "tiny"}
    assert headless.notebook_parameters(nb_dir / "02_widgets.ipynb", {"PROFILE": "tiny"}) == {
        "INTERACTIVE": False, "PROFILE": "tiny"}
    assert headless.notebook_parameters(nb_dir / "02_widgets.ipynb", {"INTERACTIVE": True}) == {
        "INTERACTIVE": True}


def test_failure_stops_run(toy_dir, tmp_path, capsys):
    out = tmp_path / "run"
    code = headless.main(["--notebooks-dir", str(toy_dir), "--out", str(out), "--record",
                     "-p", "EXTRA=5"])
    assert code == 1
    printed = capsys.readouterr().out
    assert "FAILED:" in printed and "02_fail.ipynb" in printed
    # execution count 4: papermill injects a cell after `parameters`, which runs too
    assert "cell 4 (index 4)" in printed and "ValueError: boom" in printed
    assert "raise ValueError('boom')" in printed and str(out / "02_fail.ipynb") in printed

    assert (out / "02_fail.ipynb").exists() and (out / "02_fail.html").exists()
    assert not (out / "03_after.ipynb").exists()
    executed = nbformat.read(out / "02_fail.ipynb", as_version=4)
    assert any(o.get("ename") == "ValueError" for c in executed.cells if c.cell_type == "code"
               for o in c.outputs)

    summary = json.loads((out / "run.json").read_text())
    assert summary["ok"] is False
    assert [(n["name"], n["status"]) for n in summary["notebooks"]] == [
        ("01_hello", "ok"), ("02_fail", "failed")]
    assert not (toy_dir / "timings.json").exists(), "a failed run must not record timings"


def test_failure_api(toy_dir, tmp_path):
    result = headless.run_notebooks(only=["02"], out_dir=tmp_path / "r", notebooks_dir=toy_dir)
    assert not result.ok
    assert result.notebooks[0].status == "failed" and "ValueError: boom" in result.notebooks[0].error


def test_list_and_bad_usage(toy_dir, capsys):
    assert headless.main(["--list", "--notebooks-dir", str(toy_dir), "--only", "01"]) == 0
    printed = capsys.readouterr().out
    assert "01_hello.ipynb" in printed and "PROFILE" in printed and "EXTRA" in printed
    assert "02_fail" not in printed
    assert headless.main(["--notebooks-dir", str(toy_dir), "--only", "99"]) == 2
    assert headless.main(["--notebooks-dir", str(toy_dir), "-p", "oops"]) == 2


def test_bad_runs_are_refused_before_the_first_notebook(toy_dir, tmp_path, capsys):
    """Issue 14: a misspelt parameter ran minutes of tiny with a warning; a bad profile or
    override, or an --only that matches nothing, now stop at once with exit code 2."""
    out = tmp_path / "never"
    for argv, expected in ((["-p", "PROFIL=smol"], "unknown parameter(s) ['PROFIL']"),
                           (["--profile", "smoll"], "smoll"),
                           (["-p", "OVERRIDES={unlearn.epochs: 0}"], "unlearn.epochs must be positive"),
                           (["--list", "--only", "99"], "no notebooks matching")):
        assert headless.main(["--notebooks-dir", str(toy_dir), "--out", str(out), *argv]) == 2, argv
        assert expected in capsys.readouterr().err, argv
        assert not out.exists()


def test_notebook_table(toy_dir, tmp_path):
    (toy_dir / "timings.json").write_text(json.dumps(
        {"tiny": {"01_hello": 12.3, "02_fail": 192.0}, "small": {"01_hello": 45.0}}))
    table = readme.notebook_table(toy_dir, link_base=tmp_path)
    lines = table.strip().splitlines()
    assert lines[0] == "| # | Notebook | Goal | tiny | small |"
    assert len(lines) == 2 + 3
    assert lines[2] == "| 01 | [Hello](notebooks/01_hello.ipynb) | say hello | 12 s | 45 s |"
    assert lines[3] == "| 02 | [Fail \\| loudly](notebooks/02_fail.ipynb) | break | 3.2 min | — |"
    assert lines[4].endswith("| run last | — | — |")


def test_update_readme(toy_dir, tmp_path):
    path = tmp_path / "README.md"
    path.write_text(f"# Title\n\n{readme.START}\nold\n{readme.END}\n\nMore.\n")
    assert readme.update_readme(path, toy_dir) is True
    text = path.read_text()
    assert "[Hello](notebooks/01_hello.ipynb)" in text and "old" not in text
    assert text.startswith("# Title\n") and text.endswith(f"{readme.END}\n\nMore.\n")
    assert readme.update_readme(path, toy_dir) is False
    args = ["--readme", str(path), "--notebooks-dir", str(toy_dir), "--check"]
    assert readme.main(args) == 0
    (toy_dir / "timings.json").write_text(json.dumps({"tiny": {"01_hello": 1.0}}))
    assert readme.main(args) == 1
    assert readme.main(args[:-1]) == 0 and readme.main(args) == 0


def test_readme_without_markers(toy_dir, tmp_path, capsys):
    assert readme.main(["--readme", str(tmp_path / "nope.md"), "--notebooks-dir", str(toy_dir)]) == 0
    assert "| 01 |" in capsys.readouterr().out


def test_html_renderings_draw_formulas_without_mathjax(tmp_path):
    """Offline, MathJax (a CDN script) never loads: formulas must already be MathML."""
    nb = new_notebook(cells=[new_markdown_cell(
        "# Loss\nNPO: $\\mathcal{L} = -\\frac{2}{\\beta}\\log\\sigma(x)$, code `$keep$`, "
        "costs $5 and $6.\n\n$$\\sum_i x_i$$\n\n```\n$not math$\n```")])
    path = tmp_path / "01_math.ipynb"
    nbformat.write(nb, path)
    html = headless.write_html(path).read_text()
    body = html[html.index("<body"):]
    assert body.count("<math") == 2 and 'display="block"' in body
    assert "\\frac" not in body and "\\sum" not in body  # no raw LaTeX left to read
    assert "$keep$" in body and "$not math$" in body and "costs $5 and $6" in body
