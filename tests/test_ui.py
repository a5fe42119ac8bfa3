"""What a person sees of a pipeline run: its name, description, experiment kind, where the store is."""

from __future__ import annotations

import mlflow
import pytest

from steps.lib.tracking import ui
from tests.conftest import in_process_store


@pytest.fixture
def client(tmp_path):
    with in_process_store(tmp_path) as (client, _):
        yield client


def test_a_generated_run_name_is_replaced_a_chosen_one_kept(client):
    experiment = client.create_experiment("e")
    generated = client.create_run(experiment).info  # MLflow makes up a name like "bold-fox-123"
    chosen = client.create_run(experiment, run_name="my-big-run-7").info
    assert ui._is_generated_name(generated.run_name)
    for run in (generated, chosen):
        ui.present_run(run.run_id, name="tabtune", description="# hello")
    assert client.get_run(generated.run_id).info.run_name == "tabtune"
    assert client.get_run(chosen.run_id).info.run_name == "my-big-run-7"
    assert client.get_run(chosen.run_id).data.tags["mlflow.note.content"] == "# hello"


def test_the_experiment_kind_is_set_once_and_never_overwritten(client):
    fresh, kinded = client.create_experiment("fresh"), client.create_experiment("kinded")
    client.set_experiment_tag(kinded, ui.EXPERIMENT_KIND_TAG, "genai_development")
    for experiment in (fresh, kinded):
        ui.present_run(client.create_run(experiment).info.run_id, name="tabtune", description="d")
    assert client.get_experiment(fresh).tags[ui.EXPERIMENT_KIND_TAG] == "custom_model_development"
    assert client.get_experiment(kinded).tags[ui.EXPERIMENT_KIND_TAG] == "genai_development"


def test_store_location_gives_an_absolute_ui_command_for_a_local_store(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    mlflow.set_tracking_uri("sqlite:///mlflow.db")
    try:
        assert ui.store_location() == (f"sqlite:///{tmp_path}/mlflow.db",
                                       f"mlflow ui --backend-store-uri sqlite:///{tmp_path}/mlflow.db")
        mlflow.set_tracking_uri("http://user:s3cret@tracking.example.com:5000")
        store, command = ui.store_location()
        assert "s3cret" not in store and "tracking.example.com:5000" in store and command is None
    finally:
        mlflow.set_tracking_uri(None)
