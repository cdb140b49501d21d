"""The packages are the pipeline's stages, and imports only run down them: no circle, no import back up.

Every import of an ``exporter`` module counts: at the top of a module, inside a function (a lazy import
for start-up speed still says which stage needs which) and under ``TYPE_CHECKING`` (a type is a
dependency too). A stage may use the stages below it and itself, never one above or beside it: the
frontends and the backend both build on the IR and know nothing of each other.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from helpers import ROOT

# (module prefix, stage, rank): a module belongs to the longest prefix that matches it
STAGES = [
    ("exporter.common", "common", 0),
    ("exporter.ir", "ir", 1),
    ("exporter.frontends", "frontends", 2),
    ("exporter.backend", "backend", 2),
    ("exporter.build", "build", 3),
    ("exporter.check", "check", 4),
    ("exporter.api", "api", 5),
    ("exporter.spec", "spec", 6),
    ("exporter.sets", "sets", 7),
    ("exporter.run", "run", 8),
    ("exporter.cli", "cli", 9),
    ("exporter.command", "command", 10),
    ("exporter.__main__", "main", 11),
]
FACE = "exporter"  # the package face: imports lazily by name, sits on top of everything


def module_names() -> dict[str, Path]:
    found = {}
    for path in (ROOT / "exporter").rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


MODULES = module_names()


def stage_of(module: str) -> tuple[str, int]:
    matches = [(p, s, r) for p, s, r in STAGES if module == p or module.startswith(p + ".")]
    if not matches:
        return ("face", 99) if module == FACE else ("unplaced", -1)
    _, stage, rank = max(matches, key=lambda m: len(m[0]))
    return stage, rank


def imported(module: str) -> set[str]:
    """Every exporter module ``module`` imports, wherever the import statement stands."""
    tree = ast.parse(MODULES[module].read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
        else:
            continue
        for name in names:
            while name and name not in MODULES:
                name = name.rpartition(".")[0]
            if name.startswith("exporter") and name != module and name != FACE:
                out.add(name)
    # "from exporter.x import y" names the package x as well as the module y: keep the deepest that exists
    return {m for m in out if not any(o.startswith(m + ".") and o in out for o in out) or m in _direct(tree)}


def _direct(tree: ast.Module) -> set[str]:
    return {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}


GRAPH = {m: imported(m) for m in MODULES}


def test_every_module_has_a_stage():
    unplaced = sorted(m for m in MODULES if stage_of(m)[0] == "unplaced")
    assert not unplaced, f"modules outside every stage (add them to a stage's package): {unplaced}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_run_down_the_stages(module):
    stage, rank = stage_of(module)
    up = sorted(
        f"{target} ({stage_of(target)[0]})"
        for target in GRAPH[module]
        if stage_of(target)[0] != stage and stage_of(target)[1] >= rank
    )
    assert not up, f"{module} ({stage}) imports from a stage above or beside it: {up}"


def test_no_import_circles():
    """Tarjan's strongly connected components: any component of two or more modules is a circle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    assert not circles, f"import circles: {circles}"


def test_the_root_holds_only_the_face_the_entry_points_and_the_top():
    root = sorted(p.name for p in (ROOT / "exporter").glob("*.py"))
    assert root == ["__init__.py", "__main__.py", "api.py", "command.py", "spec.py"], root


def test_a_circle_is_seen(monkeypatch):
    """The circle test can fail: two modules importing each other are reported."""
    monkeypatch.setitem(GRAPH, "exporter.common.errors", GRAPH["exporter.common.errors"] | {"exporter.common.files"})
    with pytest.raises(AssertionError, match="import circles"):
        test_no_import_circles()
