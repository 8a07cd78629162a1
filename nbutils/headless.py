"""Run the workbook's notebooks headless, in order, with papermill.

    python -m nbutils.headless                      # every notebook, profile "tiny"
    python -m nbutils.headless --profile small --only 01 02
    python -m nbutils.headless -p SEED=1 -p LR=3e-5 # extra papermill parameters
    python -m nbutils.headless --list               # notebooks and their parameters

Each executed notebook (plus an HTML rendering) lands in a run folder,
``runs/<profile>-<timestamp>/`` by default, next to a ``run.json`` summary.
The first failing notebook stops the run; its partially executed copy is kept.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from importlib import metadata
from pathlib import Path

import nbformat
import papermill
from nbconvert import HTMLExporter
from papermill.exceptions import PapermillExecutionError

from .profiles import get_profile, parse_params

REPO_ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"


@dataclass
class NotebookResult:
    """Outcome of one notebook: status is "ok" or "failed"."""

    name: str
    seconds: float
    status: str
    output: str
    html: str
    error: str | None = None


@dataclass
class RunResult:
    """Outcome of a whole run; ``ok`` is True only if every notebook succeeded."""

    out_dir: Path
    notebooks: list[NotebookResult] = field(default_factory=list)
    ok: bool = True
    total_seconds: float = 0.0

    def summaries(self) -> dict[str, dict]:
        """The WORKBOOK_SUMMARY numbers every executed notebook printed, by notebook."""
        from .report import read_summaries
        out: dict[str, dict] = {}
        for nb in self.notebooks:
            out.update(read_summaries(nb.output))
        return out


def find_notebooks(notebooks_dir: Path, only=None) -> list[Path]:
    """The numbered notebooks, sorted; ``only`` keeps those with a listed 2-digit prefix."""
    paths = sorted(Path(notebooks_dir).glob(NOTEBOOK_GLOB))
    if only:
        wanted = {str(n).zfill(2) for n in only}
        paths = [p for p in paths if p.name[:2] in wanted]
    return paths


def package_versions() -> dict:
    """Python and (if installed) torch/papermill versions, for run.json."""
    versions = {"python": platform.python_version()}
    for package in ("torch", "papermill"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return versions


# code (fenced or inline) is left alone; math is $$display$$ or $inline$ (no space inside
# the dollars, so "costs $5 and $6" stays text)
_CODE = re.compile(r"(```.*?```|`[^`\n]*`)", re.S)
_DISPLAY_MATH = re.compile(r"\$\$(.+?)\$\$", re.S)
_INLINE_MATH = re.compile(r"(?<![\\$])\$(?![\s$])([^$\n]+?)(?<!\s)\$(?!\$)")


def math_to_mathml(markdown: str) -> str:
    """The markdown with its LaTeX formulas turned into MathML, which browsers draw without
    MathJax: the HTML renderings load MathJax from a CDN, so offline they showed raw LaTeX.
    A formula latex2mathml cannot read stays LaTeX (MathJax still draws it when online)."""
    from latex2mathml.converter import convert

    def replace(match, display: str) -> str:
        try:
            return convert(match.group(1).strip(), display=display)
        except Exception:  # noqa: BLE001 - any parser error: keep the source
            return match.group(0)

    parts = _CODE.split(markdown)
    for i in range(0, len(parts), 2):  # even parts are outside code
        text = _DISPLAY_MATH.sub(lambda m: replace(m, "block"), parts[i])
        parts[i] = _INLINE_MATH.sub(lambda m: replace(m, "inline"), text)
    return "".join(parts)


def write_html(ipynb_path: Path) -> Path:
    """Render an executed notebook to HTML beside it, formulas as MathML (readable offline)."""
    html_path = ipynb_path.with_suffix(".html")
    nb = nbformat.read(ipynb_path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = math_to_mathml(cell.source)
    body, _ = HTMLExporter().from_notebook_node(nb)
    html_path.write_text(body, encoding="utf-8")
    return html_path


def describe_failure(path: Path, err: Exception, output: Path, html: Path) -> str:
    """A readable multi-line message naming the notebook, the cell and the executed copy."""
    if isinstance(err, PapermillExecutionError):
        where = f"cell {err.exec_count} (index {err.cell_index})"
        lines = [f"FAILED: {_display(path)}, {where}: {err.ename}: {err.evalue}"]
        source = (err.source or "").splitlines()
        lines += ["  failing cell:", *(f"    {line}" for line in source[:8])]
        if len(source) > 8:
            lines.append(f"    ... ({len(source) - 8} more lines)")
    else:  # e.g. the kernel died (out of memory) or could not start
        lines = [f"FAILED: {_display(path)}: {type(err).__name__}: {err}"]
    lines.append(f"  executed notebook: {output}")
    if html.exists():
        lines.append(f"  html: {html}")
    return "\n".join(lines)


def _display(path: Path) -> str:
    """Path relative to the repo root when possible (``notebooks/02_x.ipynb``)."""
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


# Set in a headless run for every notebook whose parameters cell declares it (unless the caller
# passed its own value): the notebook then shows its views once, statically. Widgets that call
# back into the kernel (``ipywidgets.interact``) can deadlock nbclient's execution
# (jupyter/nbclient#312, jupyter/nbconvert#2029): a run then waits forever on an idle kernel.
HEADLESS_PARAMETERS = {"INTERACTIVE": False}


def notebook_parameters(path: Path, parameters: dict) -> dict:
    """``parameters`` plus the headless defaults this notebook declares."""
    declared = papermill.inspect_notebook(str(path))
    headless = {k: v for k, v in HEADLESS_PARAMETERS.items() if k in declared}
    return {**headless, **parameters}


def run_one(path: Path, out_dir: Path, parameters: dict, kernel: str) -> NotebookResult:
    """Execute one notebook into ``out_dir``; a failure is returned, not raised."""
    output = out_dir / path.name
    start = time.perf_counter()
    error = None
    try:
        papermill.execute_notebook(
            str(path), str(output), parameters=notebook_parameters(path, parameters),
            cwd=str(path.parent),
            kernel_name=kernel, progress_bar=True,
        )
    except Exception as err:  # noqa: BLE001 - a dead kernel must stop the run too
        error = err
    seconds = round(time.perf_counter() - start, 1)
    html = write_html(output) if output.exists() else output.with_suffix(".html")
    if error is None:
        return NotebookResult(path.stem, seconds, "ok", str(output), str(html))
    message = describe_failure(path, error, output, html)
    return NotebookResult(path.stem, seconds, "failed", str(output), str(html), message)


def write_run_json(result: RunResult, profile: str, parameters: dict, started: str) -> None:
    """Summarise the run (so far) in ``<out_dir>/run.json``."""
    summary = {
        "profile": profile,
        "parameters": parameters,
        "versions": package_versions(),
        "started": started,
        "ok": result.ok,
        "total_seconds": round(result.total_seconds, 1),
        "notebooks": [
            {"name": nb.name, "seconds": nb.seconds, "status": nb.status} for nb in result.notebooks
        ],
    }
    (result.out_dir / "run.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")


def record_timings(notebooks_dir: Path, profile: str, result: RunResult) -> Path:
    """Merge this run's per-notebook seconds into ``<notebooks_dir>/timings.json``."""
    path = Path(notebooks_dir) / "timings.json"
    timings = json.loads(path.read_text()) if path.exists() else {}
    timings.setdefault(profile, {}).update({nb.name: nb.seconds for nb in result.notebooks})
    timings[profile] = dict(sorted(timings[profile].items()))
    path.write_text(json.dumps(timings, indent=2) + "\n")
    return path


def print_table(result: RunResult) -> None:
    """The closing summary: one row per notebook, then the total."""
    width = max([len(nb.name) for nb in result.notebooks] + [8])
    print(f"\n{'notebook':<{width}}  {'status':<6}  {'seconds':>8}")
    for nb in result.notebooks:
        print(f"{nb.name:<{width}}  {nb.status:<6}  {nb.seconds:>8.1f}")
    print(f"{'total':<{width}}  {'':<6}  {result.total_seconds:>8.1f}")
    print(f"run folder: {result.out_dir}")


def run_notebooks(profile="tiny", only=None, out_dir=None, parameters=None,
                  notebooks_dir=None, kernel="python3", record=False) -> RunResult:
    """Execute the numbered notebooks in order; stop at the first failure."""
    notebooks_dir = Path(notebooks_dir or REPO_ROOT / "notebooks")
    paths = find_notebooks(notebooks_dir, only)
    if not paths:
        raise FileNotFoundError(f"no notebooks matching {NOTEBOOK_GLOB} (only={only}) in {notebooks_dir}")
    check_run(paths, profile, parameters or {})
    started = datetime.now()
    out_dir = Path(out_dir or REPO_ROOT / "runs" / f"{profile}-{started:%Y%m%d-%H%M%S}")
    out_dir.mkdir(parents=True, exist_ok=True)
    params = {"PROFILE": profile, **(parameters or {})}
    result = RunResult(out_dir=out_dir)
    for i, path in enumerate(paths, start=1):
        print(f"[{i}/{len(paths)}] {path.stem} ...", flush=True)
        nb = run_one(path, out_dir, params, kernel)
        result.notebooks.append(nb)
        result.total_seconds += nb.seconds
        result.ok = nb.status == "ok"
        write_run_json(result, profile, params, started.isoformat(timespec="seconds"))
        print(f"[{i}/{len(paths)}] {path.stem} ... {nb.status} in {nb.seconds:.1f} s", flush=True)
        if not result.ok:
            print(nb.error, flush=True)
            break
    print_table(result)
    if record and result.ok:
        print(f"timings recorded in {record_timings(notebooks_dir, profile, result)}")
    return result


def check_run(paths: list[Path], profile: str, parameters: dict) -> None:
    """Refuse a run before its first notebook starts: a parameter no selected notebook declares
    (``-p PROFIL=smol`` would otherwise warn and run minutes of ``tiny``), or a profile (with
    its ``OVERRIDES``) that does not resolve."""
    declared = set().union(*(papermill.inspect_notebook(str(p)) for p in paths))
    unknown = sorted(set(parameters) - declared)
    if unknown:
        raise ValueError(f"unknown parameter(s) {unknown}; these notebooks declare {sorted(declared)}")
    try:
        get_profile(profile, parameters.get("OVERRIDES") or None)
    except (KeyError, TypeError) as err:
        raise ValueError(str(err).strip('"')) from err


def list_notebooks(notebooks_dir: Path, only=None) -> None:
    """Print each notebook with the parameters papermill finds in it."""
    if not find_notebooks(notebooks_dir, only):
        raise FileNotFoundError(f"no notebooks matching {NOTEBOOK_GLOB} (only={only}) in {notebooks_dir}")
    for path in find_notebooks(notebooks_dir, only):
        print(path.name)
        for name, info in papermill.inspect_notebook(str(path)).items():
            kind = info.get("inferred_type_name")
            kind = f": {kind}" if kind and kind != "None" else ""
            comment = f"  # {info['help']}" if info.get("help") else ""
            print(f"    {name}{kind} = {info.get('default')}{comment}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m nbutils.headless", description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="tiny", help="size profile passed as PROFILE (default: tiny)")
    parser.add_argument("--only", nargs="+", metavar="NN", help="run only these 2-digit prefixes")
    parser.add_argument("--out", type=Path, help="run folder (default: runs/<profile>-<timestamp>)")
    parser.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE",
                        help="extra papermill parameter, value parsed as YAML (repeatable)")
    parser.add_argument("--list", action="store_true", help="list notebooks and their parameters")
    parser.add_argument("--record", action="store_true", help="save times to notebooks/timings.json")
    parser.add_argument("--notebooks-dir", type=Path, default=REPO_ROOT / "notebooks")
    parser.add_argument("--kernel", default="python3", help="Jupyter kernel name (default: python3)")
    return parser


def main(argv=None) -> int:
    """CLI entry point; returns the exit code (0 ok, 1 a notebook failed, 2 bad usage)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.list:
            list_notebooks(args.notebooks_dir, args.only)
            return 0
        params = parse_params(args.param)
        result = run_notebooks(profile=args.profile, only=args.only, out_dir=args.out,
                               parameters=params, notebooks_dir=args.notebooks_dir,
                               kernel=args.kernel, record=args.record)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
