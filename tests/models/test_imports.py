"""mango.models has no import cycle: loading and saving build on the model's parts, never back."""

from __future__ import annotations

import ast
from pathlib import Path

import mango.models

PACKAGE = Path(mango.models.__file__).parent


def _imports(path: Path) -> set[str]:
    """Sibling modules a file imports anywhere (top level or inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module:
                found.add(node.module.split(".")[0])
            elif node.module and node.module.startswith("mango.models."):
                found.add(node.module.split(".")[2])
    return found


def test_the_import_graph_of_mango_models_is_acyclic():
    graph = {p.stem: _imports(p) for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    assert "hub" in graph and "checkpoint" in graph and "model" in graph
    state: dict[str, int] = {}

    def visit(module: str, path: list[str]) -> None:
        if state.get(module) == 1:
            raise AssertionError(f"import cycle: {' -> '.join(path + [module])}")
        if state.get(module) == 2:
            return
        state[module] = 1
        for child in sorted(graph.get(module, ())):
            visit(child, path + [module])
        state[module] = 2

    for module in sorted(graph):
        visit(module, [])
    assert "model" not in graph["hub"] and "model" not in graph["checkpoint"]
