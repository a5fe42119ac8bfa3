"""What determines a step's output, as one key: the entry point and its parameters as the step
interprets them (so `trials=50` and `trials=50.0` agree), the upstream run IDs among them, the
content of the code the step runs (its module and every project module it imports, committed
or not), the content of its input data, and the pinned dependencies. Two runs with the same
key compute the same thing, so `main` may reuse the earlier one. Pure: no MLflow here."""

from __future__ import annotations

import ast
import hashlib
import importlib
import json
from pathlib import Path

from steps.lib.names import PROJECT_DIR

SOURCE_PACKAGE = "steps"  # the package whose modules a step runs
KEY_VERSION = "1"  # bump when the key's recipe changes, so old keys never match


def interpreted_parameters(entry_point: str, parameters: dict[str, str]) -> dict:
    """The parameters as the entry point's click command turns them into values, defaults
    included (raises click's error for a value the step would refuse)."""
    command = importlib.import_module(f"{SOURCE_PACKAGE}.{entry_point}").command
    args = [part for name, value in parameters.items() for part in (f"--{name.replace('_', '-')}", str(value))]
    return dict(command.make_context(entry_point, args).params)


def modules_of(entry_point: str, project_dir: Path = PROJECT_DIR) -> list[Path]:
    """The project's source files a step runs: its module and, transitively, every module of
    this project it imports (anywhere in the file, lazy imports included). Importing a package
    counts as importing all of it: a family registry, say, discovers its modules at run time."""
    seen: set[Path] = set()
    pending = [project_dir / SOURCE_PACKAGE / f"{entry_point}.py"]
    while pending:
        path = pending.pop()
        if path in seen or not path.is_file():
            continue
        seen.add(path)
        for name in _imported_names(path, project_dir):
            pending += _files_of(name, project_dir)
    return sorted(seen)


def _imported_names(path: Path, project_dir: Path) -> set[str]:
    """Dotted names of the project modules and packages a file imports."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == SOURCE_PACKAGE}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == SOURCE_PACKAGE:
            found.add(f"{node.module}.__init__")
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                # `from pkg import module` names a module; `from pkg import name` needs all of pkg
                found.add(submodule if _files_of(submodule, project_dir) else node.module)
    return found


def _files_of(dotted: str, project_dir: Path) -> list[Path]:
    base = project_dir.joinpath(*dotted.split("."))
    if base.is_dir():
        return sorted(base.rglob("*.py"))
    return [base.with_suffix(".py")] if base.with_suffix(".py").is_file() else []


def step_code_digest(entry_point: str, project_dir: Path = PROJECT_DIR) -> str:
    """A hash of the content of every source file the step runs, by path relative to the project."""
    digest = hashlib.sha256()
    for path in modules_of(entry_point, project_dir):
        digest.update(str(path.relative_to(project_dir)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def file_digest(path: str | Path) -> str:
    """A hash of a file's bytes, whatever its name or modification time."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def dependencies_digest(project_dir: Path = PROJECT_DIR) -> str:
    """The pinned runtime dependencies (requirements.txt, identical to the env files)."""
    return file_digest(project_dir / "requirements.txt")


def step_key(*, step: str, entry_point: str, parameters: dict, code: str, data: str, dependencies: str) -> str:
    """The key of one step run: equal keys mean equal outputs."""
    recipe = {"version": KEY_VERSION, "step": step, "entry_point": entry_point, "parameters": parameters,
              "code": code, "data": data, "dependencies": dependencies}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True, default=str).encode()).hexdigest()
