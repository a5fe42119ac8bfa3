"""The library's layers (docs/layout.md): a module of steps/lib imports only from its own layer and
the layers below it, and `tracking`, the one layer that knows MLflow, imports only the top-level
modules. Lazy imports inside functions count too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import PROJECT_DIR

LIB = PROJECT_DIR / "steps" / "lib"
# Bottom to top: a layer may import the ones before it. `tracking` sits beside them: every layer but
# the top-level modules may use it, and it may use the top-level modules only.
LAYERS = ("", "data", "families", "model", "search", "orchestration")
TRACKING = "tracking"


def layer_of(module: str) -> str:
    """The layer of a dotted module under steps.lib ("" for the top-level modules)."""
    parts = module.removeprefix("steps.lib").strip(".").split(".")
    return parts[0] if len(parts) > 1 or (LIB / parts[0]).is_dir() else ""


def imported_modules(path: Path) -> set[str]:
    """Every steps.lib module (or package) a file imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("steps.lib"):
            if node.module == "steps.lib":
                found |= {f"steps.lib.{alias.name}" for alias in node.names}
            else:
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("steps.lib")}
    return found


def allowed(importer: str, imported: str) -> bool:
    if importer == imported:
        return True
    if importer == TRACKING:
        return imported == ""
    if imported == TRACKING:
        return importer != ""
    return LAYERS.index(imported) < LAYERS.index(importer)


MODULES = sorted(LIB.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(LIB)) for p in MODULES])
def test_a_module_imports_only_from_the_layers_below_it(path):
    importer = layer_of(".".join(path.relative_to(LIB).with_suffix("").parts))
    wrong = sorted(module for module in imported_modules(path) if not allowed(importer, layer_of(module)))
    assert wrong == [], f"{path.relative_to(PROJECT_DIR)} ({importer or 'top level'}) imports {wrong}"


def test_every_folder_of_the_library_is_a_known_layer():
    folders = {p.name for p in LIB.iterdir() if p.is_dir() and not p.name.startswith("__")}
    assert folders == set(LAYERS[1:]) | {TRACKING}


def test_the_check_sees_an_upward_import(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from steps.lib.orchestration import pipeline\n")
    assert not allowed("model", layer_of(next(iter(imported_modules(module)))))
    module.write_text("from steps.lib import tracking\n")
    assert not allowed("", layer_of(next(iter(imported_modules(module)))))
