"""The package reads bottom-up: a module imports only from its own layer or the layers below.

    profiles, paths, plots  ->  data  ->  models  ->  finetune  ->  unlearning  ->  evaluation
        ->  what composes them (leaderboard, teaching, muse_task, whp_experiment, robustness, probing, ...)

Imports inside functions count too: they hid four cycles before this test existed. A new
top-level module or subpackage has to be given a layer here, so the map stays complete.
"""

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "nbutils"

LAYERS = {
    "profiles": 0, "paths": 0, "plots": 0, "hub_access": 0,
    "data": 1,
    "models": 2,
    "finetune": 3,
    "unlearning": 4,
    "evaluation": 5,
    # what composes training and evaluation, and the tools around the notebooks
    "leaderboard": 6, "teaching": 6, "muse_task": 6, "robustness": 6, "probing": 6,
    "publishing": 6, "tuning": 6, "report": 6, "headless": 6, "run": 6, "notebook_setup": 6,
    "readme": 6, "whp_experiment": 6,
}


def _parts() -> set[str]:
    return ({p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
            | {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()})


def _imported_parts(path: Path) -> dict[str, int]:
    """``{part: line}`` of every other top-level part that ``path`` imports from."""
    parts = _parts()
    module = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    is_init = module[-1] == "__init__"
    if is_init:
        module = module[:-1]
    found = {}
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = module[: len(module) - node.level + (1 if is_init else 0)]
                target = base + (node.module.split(".") if node.module else [])
            else:
                target = (node.module or "").split(".")
            names = [target + [alias.name] for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name.split(".") for alias in node.names]
        else:
            continue
        for name in names:
            if len(name) > 1 and name[0] == "nbutils" and name[1] in parts and name[1] != module[1]:
                found.setdefault(name[1], node.lineno)
    return found


def _edges() -> dict[str, dict[str, str]]:
    edges = defaultdict(dict)
    for path in sorted(PACKAGE.rglob("*.py")):
        part = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        if part == "__init__":
            continue
        for other, line in _imported_parts(path).items():
            edges[part].setdefault(other, f"{path.relative_to(PACKAGE.parent)}:{line}")
    return edges


def test_every_part_of_the_package_has_a_layer():
    missing = sorted(_parts() - set(LAYERS))
    assert not missing, f"give these parts a layer in tests/test_layers.py: {missing}"


def test_no_module_imports_from_a_layer_above_its_own():
    upward = [f"{where}: {part} (layer {LAYERS[part]}) imports {other} (layer {LAYERS[other]})"
              for part, imports in _edges().items() for other, where in imports.items()
              if LAYERS[other] > LAYERS[part]]
    assert not upward, "upward imports:\n" + "\n".join(upward)


def test_parts_of_one_layer_import_each_other_without_a_cycle():
    edges = _edges()

    def reaches(start, goal, seen=()):
        return any(nxt == goal or (nxt not in seen and reaches(nxt, goal, seen + (nxt,)))
                   for nxt in edges.get(start, {}))

    cycles = sorted(part for part in edges if reaches(part, part))
    assert not cycles, f"import cycles through: {cycles}"
