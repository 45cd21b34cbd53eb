"""The import structure of codeactions_core against the layers docs/ARCHITECTURE.md declares.

Imports point down only, modules never import each other in a circle, and every
top-level module or package is placed in a layer, so the document stays the
layout as built.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "codeactions_core"
ARCHITECTURE = ROOT / "docs" / "ARCHITECTURE.md"
FACE = "codeactions_core"  # the package's own __init__, named so in the layer table


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imported(name: str, path: Path, known: Mapping[str, Path]) -> set[str]:
    """The modules of codeactions_core that `name` imports (any import, however guarded)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join([*base, node.module] if node.module else base)
            else:
                source = node.module or ""
            found.add(source)
            found.update(f"{source}.{alias.name}" for alias in node.names)
    return {module for module in found if module in known and module != name}


def unit(module: str) -> str:
    """The top-level module or package of codeactions_core a module belongs to."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else FACE


def declared_layers() -> list[set[str]]:
    text = ARCHITECTURE.read_text()
    match = re.search(r"<!-- layers:[^>]*-->\s*```\n(.*?)```", text, re.DOTALL)
    assert match, f"{ARCHITECTURE} has no layer table (<!-- layers: ... --> and a code block)"
    return [set(line.split()) for line in match.group(1).splitlines() if line.strip()]


def import_graph() -> dict[str, set[str]]:
    known = modules()
    graph = {}
    for name, path in known.items():
        edges = imported(name, path, known)
        if path.name == "__init__.py":  # a package's face re-exporting its own modules
            edges = {module for module in edges if not module.startswith(name + ".")}
        graph[name] = edges
    return graph


def circles(graph: Mapping[str, set[str]]) -> Iterator[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    yield sorted(component)


def test_every_top_level_module_has_a_layer() -> None:
    placed = [name for layer in declared_layers() for name in layer]
    assert len(placed) == len(set(placed)), "a name stands in two layers"
    units = {unit(module) for module in modules()}
    assert sorted(units - set(placed)) == [], "not placed in docs/ARCHITECTURE.md's layers"
    assert sorted(set(placed) - units) == [], "placed in the layers but not in the package"


def test_imports_point_down_the_layers() -> None:
    level = {name: depth for depth, layer in enumerate(declared_layers()) for name in layer}
    upward = sorted(
        f"{module} imports {target}"
        for module, targets in import_graph().items()
        for target in targets
        if level.get(unit(target), 0) < level.get(unit(module), 0)
    )
    assert upward == []


def test_no_modules_import_each_other_in_a_circle() -> None:
    assert list(circles(import_graph())) == []


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
        ({"a": {"b"}, "b": set()}, []),
    ],
    ids=["a circle of three", "a chain"],
)
def test_circles_are_found(graph: dict[str, set[str]], expected: list[list[str]]) -> None:
    assert list(circles(graph)) == expected
