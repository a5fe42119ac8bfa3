"""What makes two refit models the same model (steps/lib/model/fingerprint.py): the digest of the
project's code, the requirement pins, and the fingerprint over data, family, parameters, code
and pins."""

from __future__ import annotations

import pytest

from steps.lib.model.fingerprint import model_fingerprint, project_code_digest, requirement_pins

BASE = {"data": {"data_digest": "d1", "seed": 1}, "family": "lasso", "params": {"alpha": 0.1, "max_iter": 5},
        "code": "c1", "requirements": ["mlflow==3.17.2", "numpy==2.4.6"]}


@pytest.fixture
def project(tmp_path):
    """A project root with two modules under steps/ and a file that is not code."""
    (tmp_path / "steps" / "lib").mkdir(parents=True)
    (tmp_path / "steps" / "a.py").write_text("x = 1\n")
    (tmp_path / "steps" / "lib" / "b.py").write_text("y = 2\n")
    (tmp_path / "steps" / "notes.txt").write_text("not code")
    return tmp_path


def test_code_digest_ignores_files_that_are_not_python(project):
    before = project_code_digest(project)
    (project / "steps" / "notes.txt").write_text("still not code")
    assert project_code_digest(project) == before


def test_code_digest_changes_with_a_module_s_content(project):
    before = project_code_digest(project)
    (project / "steps" / "lib" / "b.py").write_text("y = 3\n")
    assert project_code_digest(project) != before


def test_code_digest_changes_when_a_module_moves(project):
    before = project_code_digest(project)
    (project / "steps" / "lib" / "b.py").rename(project / "steps" / "b.py")
    assert project_code_digest(project) != before


def test_code_digest_changes_when_a_module_is_added(project):
    before = project_code_digest(project)
    (project / "steps" / "lib" / "c.py").write_text("")
    assert project_code_digest(project) != before


def test_requirement_pins_are_the_pinned_lines_sorted_without_comments():
    text = "# pins\nnumpy==2.4.6  # x\n\nmlflow==3.17.2\n   \n"
    assert requirement_pins(text) == ["mlflow==3.17.2", "numpy==2.4.6"]


def test_fingerprint_does_not_depend_on_the_order_of_keys():
    reordered = {**BASE, "params": {"max_iter": 5, "alpha": 0.1}, "data": {"seed": 1, "data_digest": "d1"}}
    assert model_fingerprint(**reordered) == model_fingerprint(**BASE)


@pytest.mark.parametrize("change", [
    {"data": {"data_digest": "d1", "seed": 2}},
    {"data": {"data_digest": "d2", "seed": 1}},
    {"family": "catboost"},
    {"params": {"alpha": 0.2, "max_iter": 5}},
    {"params": {"alpha": 0.1, "max_iter": 5, "tol": 0.001}},
    {"code": "c2"},
    {"requirements": ["mlflow==3.17.1", "numpy==2.4.6"]},
], ids=["split-seed", "data", "family", "param-value", "param-added", "code", "pins"])
def test_fingerprint_changes_with_each_ingredient(change):
    assert model_fingerprint(**{**BASE, **change}) != model_fingerprint(**BASE)
