"""The step key: what determines a step's output, and nothing else."""

from __future__ import annotations

import shutil

import click
import pytest

from steps.lib.orchestration import step_cache
from tests.conftest import PROJECT_DIR


@pytest.fixture
def project(tmp_path):
    """A copy of the project's code and pins, to edit freely."""
    shutil.copytree(PROJECT_DIR / "steps", tmp_path / "steps", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(PROJECT_DIR / "requirements.txt", tmp_path)
    return tmp_path


def digests(project) -> dict[str, str]:
    return {step: step_cache.step_code_digest(step, project) for step in ("prepare", "tune_lasso", "tune", "refit",
                                                                      "package")}


def test_editing_a_step_module_changes_only_that_step_s_code(project):
    before = digests(project)
    with open(project / "steps" / "refit.py", "a") as handle:
        handle.write("\n# an uncommitted edit\n")
    after = digests(project)
    assert {step for step in before if before[step] != after[step]} == {"refit"}


def test_editing_a_library_module_changes_the_steps_that_import_it(project):
    before = digests(project)
    with open(project / "steps" / "lib" / "model" / "gate.py", "a") as handle:
        handle.write("\n# package gates the alias with this module\n")
    after = digests(project)
    assert {step for step in before if before[step] != after[step]} == {"package"}
    with open(project / "steps" / "lib" / "families" / "hist_gradient_boosting.py", "a") as handle:
        handle.write("\n# families are discovered: every step that uses the registry sees it\n")
    changed = {step for step, digest in digests(project).items() if digest != after[step]}
    assert changed == {"tune_lasso", "tune", "refit", "package"}


def test_parameters_are_keyed_as_the_step_reads_them():
    as_typed = step_cache.interpreted_parameters("tune", {"family": "catboost", "trials": "50", "seed": "42"})
    as_float = step_cache.interpreted_parameters("tune", {"family": "catboost", "trials": "50.0"})
    assert as_typed == as_float and as_typed["trials"] == 50 and as_typed["iterations"] == 500
    with pytest.raises(click.BadParameter, match=r"50\.5"):
        step_cache.interpreted_parameters("tune", {"trials": "50.5"})


def test_the_key_changes_with_each_ingredient():
    base = dict(step="refit", entry_point="refit", parameters={"data_run_id": "a", "early_stopping_rounds": 100},
                code="c", data="", dependencies="d")
    key = step_cache.step_key(**base)
    assert step_cache.step_key(**base) == key
    variants = [{"parameters": {"data_run_id": "b", "early_stopping_rounds": 100}},
                {"parameters": {"data_run_id": "a", "early_stopping_rounds": 50}},
                {"code": "c2"}, {"data": "x"}, {"dependencies": "d2"}, {"step": "package"}]
    assert len({step_cache.step_key(**{**base, **change}) for change in variants} | {key}) == len(variants) + 1


def test_a_file_is_keyed_by_its_bytes_not_its_name_or_time(tmp_path):
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    first.write_text("x,y\n1,2\n")
    second.write_text("x,y\n1,2\n")
    assert step_cache.file_digest(first) == step_cache.file_digest(second)
    second.write_text("x,y\n1,3\n")
    assert step_cache.file_digest(first) != step_cache.file_digest(second)
