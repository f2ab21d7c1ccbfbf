"""The package's layout: every import runs down a floor (the four that do not are named with their reason), no
cycle, hydra._internal in one module, and no module imports a `python -m` command."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "mixupexp"
COMMANDS = {"mixupexp.train", "mixupexp.summarize", "mixupexp.evaluate", "mixupexp.plan", "mixupexp.bench",
            "mixupexp.cache"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_imports(path: Path) -> set[str]:
    """Every mixupexp module that `path` imports, at the top or inside a function (TYPE_CHECKING blocks apart)."""
    tree = ast.parse(path.read_text())
    type_only = {id(node) for block in ast.walk(tree) if isinstance(block, ast.If)
                 and ast.unparse(block.test).endswith("TYPE_CHECKING") for node in ast.walk(block)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mixupexp"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("mixupexp")}
    return found


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: {m for m in project_imports(path) if m in modules and m != name} for name, path in modules.items()}


FLOORS = ("config", "records", "data", "augment", "models", "tracking", "training", "analysis", "runs")
"""The subpackages from the bottom up; the commands (mixupexp/*.py) stand on top of them all."""

UPWARD = {
    ("mixupexp.config.options", f"mixupexp.{stage}"): "options is the vocabulary of every option, complete only once "
    "each stage's module has registered its own (the registrations are where the builders live)"
    for stage in ("augment.methods", "data.datasets", "models.networks", "training.optim")
}
"""The imports that run up a floor, each with why."""


def floor(module: str) -> int:
    parts = module.split(".")
    if len(parts) == 1:
        return -1  # the package itself: its version
    return FLOORS.index(parts[1]) if parts[1] in FLOORS else len(FLOORS)


def test_every_import_runs_down_a_floor_but_the_few_explained():
    upward = {(name, dep) for name, deps in graph().items() for dep in deps if floor(dep) > floor(name)}
    assert upward == set(UPWARD)
    assert len(upward) == 4


def test_every_module_stands_on_a_floor():
    strays = [name for name in graph() if name.count(".") >= 2 and name.split(".")[1] not in FLOORS]
    assert not strays


def test_no_module_imports_a_command_module():
    offenders = {name: sorted(deps & COMMANDS) for name, deps in graph().items() if deps & COMMANDS}
    # A command may start itself by name (`python -m` runs a copy called __main__).
    offenders = {name: deps for name, deps in offenders.items() if deps != [name]}
    assert not offenders


def test_there_is_no_import_cycle():
    edges = graph()
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in sorted(edges[node]):
            if state.get(dep) == 1:
                raise AssertionError(f"import cycle: {' -> '.join(path[path.index(dep):] + [dep])}")
            if dep not in state:
                visit(dep, path + [dep])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])


def test_commands_are_thin():
    """The `python -m` commands parse arguments and call the stages; the work lives in the subpackages."""
    for name in COMMANDS - {"mixupexp.bench"}:
        lines = (PACKAGE / f"{name.split('.')[-1]}.py").read_text().splitlines()
        assert len(lines) < 130, f"{name}: {len(lines)} lines"


def test_only_one_module_imports_hydras_internals():
    """hydra._internal is not Hydra's API: one module holds what the package takes from it, and says why."""
    importers = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([node.module] if isinstance(node, ast.ImportFrom) and node.module else
                     [alias.name for alias in node.names] if isinstance(node, ast.Import) else [])
            if any(name.startswith("hydra._internal") for name in names):
                importers.add(module_name(path))
    assert importers == {"mixupexp.config.hydra_internals"}


def test_readmes_layout_names_every_module_in_its_folder():
    """README's layout lists each folder's modules; a module added or moved without it would leave the map stale."""
    import re

    readme = (PACKAGE.parent / "README.md").read_text()
    block = readme.split("## Layout", 1)[1].split("```", 2)[1]
    rows = re.split(r"\n  (?=\w+/ )", block)
    for folder in FLOORS:
        row = next(r for r in rows if r.startswith(f"{folder}/"))
        named = set(re.findall(r"(\w+)\.py", row))
        modules = {p.stem for p in (PACKAGE / folder).glob("*.py") if p.stem != "__init__"}
        assert modules <= named, f"{folder}/: {sorted(modules - named)} not in README's layout"
        assert re.match(rf"{folder}/\s+{FLOORS.index(folder)}\s", row), f"{folder}/: its floor number"


SWEEP_MODULES = ("mixupexp.runs.sweeps", "mixupexp.runs.sequential_", "mixupexp.runs.tune_")


def test_shared_code_asks_the_sweep_interface_not_which_sweeper_it_is():
    """command_plan, dry_run, callbacks and summarize once branched on is_sequential / is_tune / is_tune_sweep; a
    sweep's own modules and runs/sweeps.py are the only places that may tell the sweepers apart."""
    asking = set()
    for path in PACKAGE.rglob("*.py"):
        name = module_name(path)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) in (
                    "is_sequential", "is_tune", "is_tune_sweep"):
                asking.add(name)
    assert asking and all(name.startswith(SWEEP_MODULES) for name in asking), sorted(asking)
