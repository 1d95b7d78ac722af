"""The package's import layering: data flows one way (config -> data -> backbone -> protocol ->
metrics -> report -> study -> CLI). No module imports one on a higher floor, and no files import
each other in a loop -- imports inside functions included, since they are real dependencies too.

``docs/architecture.md`` explains the floors; moving a module means editing ``FLOORS`` here.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "safeadapt"

# Rooms (a top-level module, or a sub-package as a whole) and their floors, ground = 1.
FLOORS = {
    "errors": 1,
    "paths": 1,
    "progress": 1,
    "distributed": 1,
    "threads": 1,
    "config": 2,
    "rules": 2,
    "settings_info": 2,
    "files": 2,
    "readback": 2,
    "results": 2,
    "_registry": 2,
    "trust": 2,
    "hub": 2,
    "merge": 2,
    "backbones": 3,
    "linear": 3,
    "perturb": 3,
    "data": 4,
    "model": 4,
    "metrics": 5,
    "shift": 5,
    "bias": 5,
    "protocols": 6,
    "evaluation": 6,
    "safety": 7,
    "run": 8,
    "catalog": 8,
    "report": 8,
    "monitor": 8,
    "study": 9,
    "demo": 10,
    "cli": 11,
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(path: Path, known: dict[str, Path]) -> set[str]:
    """The package's modules that ``path`` imports, anywhere in the file."""
    this = _module_name(path)
    package = this if path.name == "__init__.py" else this.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            # `from pkg import sub` imports the submodule when there is one
            names = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names
            ]
        else:
            continue
        out.update(n for n in names if n in known and n != this)
    return out


def _room(module: str) -> str:
    return module.split(".")[1] if "." in module else module


def _graph() -> dict[str, set[str]]:
    known = _modules()
    return {m: _imports(p, known) for m, p in known.items() if m != "safeadapt"}


def test_every_room_has_a_floor():
    rooms = {_room(m) for m in _modules() if m != "safeadapt"}
    assert rooms <= set(FLOORS), f"give these a floor in FLOORS: {sorted(rooms - set(FLOORS))}"


def test_no_import_runs_back_up():
    up = [
        f"{m} (floor {FLOORS[_room(m)]}) imports {t} (floor {FLOORS[_room(t)]})"
        for m, targets in _graph().items()
        for t in sorted(targets)
        if t != "safeadapt" and FLOORS[_room(t)] > FLOORS[_room(m)]
    ]
    assert not up, "\n".join(up)


def test_no_files_import_each_other_in_a_loop():
    graph = _graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    loops: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part = []
            while True:
                w = stack.pop()
                part.append(w)
                if w == v:
                    break
            if len(part) > 1:
                loops.append(sorted(part))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not loops, loops
