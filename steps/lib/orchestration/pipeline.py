"""The pipeline as data, spelled once: which steps run, which entry point each uses, which
pipeline settings and which upstream run IDs each consumes. `main` (through `mlflow.run`) and
the Databricks job are both built from it, so the two cannot wire the steps differently."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

import click

from steps.lib import names, options

DEFAULT_FAMILIES = ("lasso", "catboost")  # the tutorial's two families
# Families tuned over a fixed grid by their own entry point; every other family goes through
# the generic Optuna `tune` entry point.
GRID_TUNED = {"lasso": names.TUNE_LASSO}


def entry_point_options(entry_point: str) -> list[click.Parameter]:
    """The options of an entry point's click command: the one declaration of its parameters."""
    return list(importlib.import_module(f"steps.{entry_point}").command.params)


def setting_options(entry_point: str) -> list[click.Parameter]:
    """The options of an entry point that are pipeline settings (all but `options.StepOnly` ones)."""
    return [option for option in entry_point_options(entry_point) if not isinstance(option, options.StepOnly)]


@dataclass(frozen=True)
class Step:
    """One step of the pipeline: its name (run name, tabtune.step tag, job task key), the
    MLproject entry point it runs, the parameters that take upstream steps' run IDs
    (comma-joined), parameters the pipeline fixes, and whether its fits keep every core busy (the
    scheduler never runs two such steps side by side). Every other option of the entry point is
    a pipeline setting the step takes under its own name."""

    name: str
    entry_point: str
    upstream: dict[str, tuple[str, ...]] = field(default_factory=dict)
    fixed: dict[str, str] = field(default_factory=dict)
    fills_cores: bool = False

    @property
    def settings(self) -> tuple[str, ...]:
        """The pipeline settings this step takes."""
        return tuple(option.name for option in setting_options(self.entry_point))

    @property
    def depends_on(self) -> tuple[str, ...]:
        """The steps whose run IDs this one needs, in order, once each."""
        return tuple(dict.fromkeys(step for steps in self.upstream.values() for step in steps))

    def parameters(self, settings: dict[str, object], run_ids: dict[str, str]) -> dict[str, str]:
        """This step's entry-point parameters, from the pipeline's settings and the run IDs (or
        references to them, for a job) of the steps it depends on."""
        return {
            **{name: options.as_text(settings[name]) for name in self.settings},
            **self.fixed,
            **{param: ",".join(run_ids[step] for step in steps) for param, steps in self.upstream.items()},
        }


def tuning_step(family: str) -> Step:
    """How `family` is tuned inside the pipeline."""
    if family in GRID_TUNED:
        return Step(names.tune_step(family), GRID_TUNED[family], {"data_run_id": (names.PREPARE,)})
    return Step(names.tune_step(family), names.TUNE, {"data_run_id": (names.PREPARE,)}, {"family": family},
                fills_cores=True)  # its trials' threads (n_jobs x thread_count) are every core


def steps(families: tuple[str, ...] = DEFAULT_FAMILIES) -> list[Step]:
    """Every step in the order they run: prepare, one tuning step per family, refit, package."""
    tuning = [tuning_step(family) for family in families]
    return [
        Step(names.PREPARE, names.PREPARE),
        *tuning,
        Step(names.REFIT, names.REFIT,
             {"data_run_id": (names.PREPARE,), "tune_run_ids": tuple(step.name for step in tuning)},
             fills_cores=True),
        Step(names.PACKAGE, names.PACKAGE, {"model_run_id": (names.REFIT,)}),
    ]


def settings_used(families: tuple[str, ...] = DEFAULT_FAMILIES) -> tuple[str, ...]:
    """Every pipeline setting some step takes, in first-use order."""
    return tuple(dict.fromkeys(name for step in steps(families) for name in step.settings))


def all_setting_options() -> list[click.Parameter]:
    """The options of every setting some step of some pipeline takes (whichever families it
    tunes), each once, in first-use order: what `main` offers and passes on."""
    from steps.lib.families import family_names

    found: dict[str, click.Parameter] = {}
    for entry_point in dict.fromkeys(step.entry_point for step in steps(family_names())):
        for option in setting_options(entry_point):
            found.setdefault(option.name, option)
    return list(found.values())


def _named_once(text: str | None, parameter: str) -> tuple[str, ...]:
    """The non-empty items of a comma list, stripped of spaces, in order; each once (a family
    named twice would be fitted twice)."""
    from steps.lib.errors import InputError

    items = tuple(part.strip() for part in (text or "").split(",") if part.strip())
    if len(set(items)) != len(items):
        raise InputError(parameter, f"duplicate families in {text!r}")
    return items


def parse_untuned_families(text: str) -> tuple[str, ...]:
    """Family names from `untuned_families` ("" or a comma list): each known, with defaults
    worth weighing (`Family.untuned_params`), and named once."""
    from steps.lib.errors import InputError
    from steps.lib.families import family_names, get_family

    chosen = _named_once(text, "untuned_families")
    offered = [name for name in family_names() if get_family(name).untuned_params is not None]
    for name in chosen:
        if name not in offered:
            raise InputError("untuned_families", f"{name!r} cannot be weighed untuned; expected a comma list "
                                                 f"from {', '.join(offered)}, or nothing")
    return chosen


def parse_families(text: str) -> tuple[str, ...]:
    """Family names from a comma list ("lasso,catboost"): known, at least one, no duplicates."""
    from steps.lib.errors import InputError
    from steps.lib.families import family_names

    chosen = _named_once(text, "families")
    known = family_names()
    if not chosen:
        raise InputError("families", f"expected a comma list of model families from {', '.join(known)}")
    for family in chosen:
        if family not in known:
            raise InputError("families", f"unknown model family {family!r}; known: {', '.join(known)}")
    return chosen
