"""MLproject's entry points and the parameter reference (docs/parameters.md), written from the
steps' click options, which are the one declaration of every parameter: a step's options are
its MLproject parameters, and `main` offers every step's settings (steps/lib/orchestration/pipeline.py).

    python -m steps.lib.orchestration.project_file     # rewrite MLproject and docs/parameters.md

tests/test_project_files.py fails when either file differs from what this writes."""

from __future__ import annotations

import json

import click

from steps.lib import names, options
from steps.lib.families import family_names
from steps.lib.names import PROJECT_DIR
from steps.lib.orchestration import pipeline

MLPROJECT = PROJECT_DIR / "MLproject"
PARAMETERS_DOC = PROJECT_DIR / "docs" / "parameters.md"
# The entry points in the order MLproject lists them: the pipeline, then its steps; tune_catboost
# is the tutorial's name for `tune` with family=catboost.
ENTRY_POINTS = (names.MAIN, names.PREPARE, names.TUNE_LASSO, names.TUNE, names.tune_step("catboost"),
                names.REFIT, names.PACKAGE)
HEADER = """\
name: tabtune

python_env: python_env.yaml

# Written by `python -m steps.lib.orchestration.project_file` from the steps' click options: edit those, then
# rerun it. Every parameter is validated by the step itself (MLflow only substitutes strings).
# Empty run IDs mean "use the latest FINISHED run of the step needed, or run it first".
entry_points:
"""
NUMERIC_TYPES = (click.types.IntParamType, click.types.FloatParamType, click.IntRange, click.FloatRange)


def mlflow_type(option: click.Parameter) -> str:
    """MLflow's parameter type: `float` for numbers (so `-P trials=50` and `50.0` both pass), else string."""
    return "float" if isinstance(option.type, NUMERIC_TYPES) else "string"


def default_text(option: click.Parameter) -> str:
    """The option's default as `mlflow run` passes it on the command line."""
    value = option.default
    return f"{value:g}" if isinstance(value, float) else options.as_text(value)


def flag(option: click.Parameter) -> str:
    return f"--{option.name.replace('_', '-')}"


def entry_point_block(entry_point: str) -> str:
    """One entry point of MLproject: its parameters with type and default, and its command."""
    declared = pipeline.entry_point_options(entry_point)
    lines = [f"  {entry_point}:", "    parameters:"]
    lines += [f"      {option.name}: {{type: {mlflow_type(option)}, default: {json.dumps(default_text(option))}}}"
              for option in declared]
    words = [f"python -m steps.{entry_point}", *(f"{flag(option)} {{{option.name}}}" for option in declared)]
    lines += ["    command: >-", *wrapped(words, indent=" " * 6, width=110)]
    return "\n".join(lines) + "\n"


def wrapped(words: list[str], *, indent: str, width: int) -> list[str]:
    """`words` (each kept whole) joined by spaces into lines of at most `width` characters."""
    lines = [indent + words[0]]
    for word in words[1:]:
        if len(lines[-1]) + 1 + len(word) > width:
            lines.append(indent + word)
        else:
            lines[-1] += " " + word
    return lines


def mlproject() -> str:
    return HEADER + "\n".join(entry_point_block(entry_point) for entry_point in ENTRY_POINTS)


def values_text(option: click.Parameter) -> str:
    if isinstance(option.type, click.Choice):
        return " \\| ".join(str(choice) for choice in option.type.choices)
    return {"float": "number", "string": "text"}[mlflow_type(option)]


def parameters_doc() -> str:
    """Every parameter of every entry point: default, values, what it does, and for `main`
    which steps it is passed to."""
    takers: dict[str, list[str]] = {}
    for step in pipeline.steps(family_names()):
        for setting in step.settings:
            takers.setdefault(setting, [])
            if step.entry_point not in takers[setting]:
                takers[setting].append(step.entry_point)
    lines = ["# Parameters", "",
             "Every parameter of every entry point, as `mlflow run . -e <entry point> -P name=value` takes it.",
             "Written by `python -m steps.lib.orchestration.project_file` from the steps' click options (the",
             "same text as `python -m steps.<entry point> --help`); `main` takes every step's own parameters",
             "except run IDs and per-worker knobs, and passes each to the steps that take it.", ""]
    for entry_point in ENTRY_POINTS:
        main = entry_point == names.MAIN
        lines += [f"## {entry_point}", "",
                  "| parameter | default | values | what it does |" + (" passed to |" if main else ""),
                  "| --- | --- | --- | --- |" + (" --- |" if main else "")]
        for option in pipeline.entry_point_options(entry_point):
            help_text = (option.help or "").replace("|", "\\|")
            default = default_text(option) or "''"
            row = f"| `{option.name}` | `{default}` | {values_text(option)} | {help_text} |"
            if main:
                row += f" {', '.join(takers.get(option.name, [])) or '(main itself)'} |"
            lines.append(row)
        lines.append("")
    return "\n".join(lines)


def write() -> None:
    MLPROJECT.write_text(mlproject())
    PARAMETERS_DOC.write_text(parameters_doc())


if __name__ == "__main__":
    write()
