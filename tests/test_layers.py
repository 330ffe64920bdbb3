"""The house's layers: `app/` calls `mango/` and draws, `train/` calls `mango/`; neither `mango/` nor
`train/` knows the app or gradio (the app's benchmark once lived in `mango/bench/` and imported both)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
APP_ONLY = ("app", "gradio", "gradio_client")


def _imported(path: Path) -> set[str]:
    """Top-level packages a file imports anywhere (module level or inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", ["mango", "train"])
def test_the_library_and_training_know_nothing_of_the_app(package):
    files = sorted((REPO / package).rglob("*.py"))
    assert len(files) > 5
    offending = {f.relative_to(REPO).as_posix(): sorted(_imported(f) & set(APP_ONLY)) for f in files}
    assert {name: found for name, found in offending.items() if found} == {}


def test_the_check_sees_imports_inside_functions(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from app.ui import build_demo\n    import gradio as gr\n")
    assert _imported(module) == {"app", "gradio"}
