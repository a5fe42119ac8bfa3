"""The registered model as a team serves it: a pipeline on a table with categorical columns and
missing values, then the champion behind a real `mlflow models serve`, and files scored by
`mlflow models predict` (MLflow's own batch scoring)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

import mlflow
import numpy as np
import pandas as pd
import pytest

from tests.conftest import TINY, Store, check, make_frame, mlflow_env
from tests.servers import free_port, stop_process, wait_for

pytestmark = pytest.mark.slow
MODEL = "models:/tabtune_shop@champion"


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """One pipeline on a CSV with two categorical columns (one with missing levels) and missing
    numbers; its store and the champion loaded in-process."""
    directory = tmp_path_factory.mktemp("shop")
    frame = make_frame(n_rows=160, seed=4)
    frame.loc[[3, 7, 11], "x2"] = np.nan
    path = directory / "shop.csv"
    frame.to_csv(path, index=False)
    store = Store(directory)
    check(store.run("main", {**TINY, "data": str(path), "target": "y", "trials": 2}))
    mlflow.set_tracking_uri(store.uri)
    mlflow.set_registry_uri(store.uri)
    return store, frame, mlflow.pyfunc.load_model(MODEL)


AWKWARD = pd.DataFrame({
    "size": [None, "XL", "M"],            # columns in another order than training's
    "x1": [None, 0.5, 2],                 # a null, and an int among floats
    "colour": [None, "a colour never seen", "red"],
    "x2": [None, None, -0.25],
})


@pytest.fixture(scope="module")
def served(shop):
    """`mlflow models serve` of the champion on a loopback port; stopped by process group."""
    store, _, _ = shop
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "models", "serve", "-m", MODEL, "--env-manager", "local",
         "--host", "127.0.0.1", "--port", str(port)],
        env=mlflow_env(store.uri), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: urllib.request.urlopen(f"{url}/ping", timeout=2).status == 200, "mlflow models serve", 120)
        yield url
    finally:
        stop_process(process.pid)


def post(url: str, frame: pd.DataFrame) -> tuple[int, str]:
    body = json.dumps({"dataframe_split": json.loads(frame.to_json(orient="split", index=False))}).encode()
    request = urllib.request.Request(f"{url}/invocations", data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_served_champion_answers_raw_rows_with_nulls_and_unseen_levels(shop, served):
    _, _, model = shop
    status, body = post(served, AWKWARD)
    assert status == 200, body
    predictions = np.asarray(json.loads(body)["predictions"], dtype="float64")
    assert predictions.shape == (3,) and np.isfinite(predictions).all()
    expected = model.predict(AWKWARD.astype({"x1": "float64", "x2": "float64"}))
    np.testing.assert_allclose(predictions, np.asarray(expected, dtype="float64"), rtol=1e-9)


def test_served_champion_answers_a_request_whose_numeric_columns_are_all_integers(shop, served):
    """JSON with no null and no fraction in a numeric column arrives as int64, not float64: the
    signature's double columns must still take it (MLflow converts ints it can hold exactly)."""
    _, _, model = shop
    whole = pd.DataFrame({"x1": [1, -2, 0], "x2": [0, 1, -1], "colour": ["red", "blue", "green"],
                          "size": ["S", "M", "L"]})
    assert str(whole["x1"].dtype) == "int64" and '"x1"' in whole.to_json(orient="split")
    status, body = post(served, whole)
    assert status == 200, body[:2000]
    predictions = np.asarray(json.loads(body)["predictions"], dtype="float64")
    expected = model.predict(whole.astype({"x1": "float64", "x2": "float64"}))
    np.testing.assert_allclose(predictions, np.asarray(expected, dtype="float64"), rtol=1e-9)


@pytest.mark.parametrize(("frame", "column"), [
    (AWKWARD.drop(columns=["colour"]), "colour"),
    (AWKWARD.assign(x2=["cheap", "dear", "free"]), "x2"),
])
def test_served_champion_refuses_a_wrong_request_naming_the_column(served, frame, column):
    status, body = post(served, frame)
    assert 400 <= status < 500 and column in body, (status, body[:500])


def test_mlflow_models_predict_scores_a_csv_file(shop, tmp_path):
    store, frame, model = shop
    new = frame.drop(columns=["y"]).head(20)
    new.loc[0, "colour"] = None
    path, out = tmp_path / "new.csv", tmp_path / "predictions.json"
    new.to_csv(path, index=False)
    result = subprocess.run(
        [sys.executable, "-m", "mlflow", "models", "predict", "-m", MODEL, "-i", str(path), "-t", "csv",
         "-o", str(out), "--env-manager", "local"],
        env=mlflow_env(store.uri), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    predictions = np.asarray(json.loads(out.read_text())["predictions"], dtype="float64")
    expected = np.asarray(model.predict(pd.read_csv(path).astype({"x1": "float64", "x2": "float64"})))
    np.testing.assert_allclose(predictions, expected.astype("float64"), rtol=1e-9)


def test_champion_loads_in_a_fresh_process_without_the_project_on_its_path(shop, tmp_path):
    """The model carries the code it needs (no pickle of ours): a fresh interpreter in an empty
    directory loads it and predicts."""
    store, _, _ = shop
    script = ("import mlflow, pandas as pd, sys; "
              f"m = mlflow.pyfunc.load_model({MODEL!r}); "
              "print(float(m.predict(pd.DataFrame({'x1': [1.0], 'x2': [None], 'colour': [None], 'size': ['S']}))[0]))")
    env = {k: v for k, v in mlflow_env(store.uri).items() if k != "PYTHONPATH"}
    result = subprocess.run([sys.executable, "-I", "-c", script], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert np.isfinite(float(result.stdout.strip().splitlines()[-1]))
    assert "steps" not in os.listdir(tmp_path)


def as_csv_from_a_users_table(frame: pd.DataFrame) -> str:
    """Rows as a data team writes them from their own table: integer columns, a null, and a
    categorical column empty in every row of the file."""
    rows = frame.drop(columns=["y"]).head(3).copy()
    rows["x1"] = [3, -1, 0]  # whole numbers: pandas reads them back as int64
    rows["size"] = None  # empty in every row: pandas reads it back as float64 NaN
    rows.loc[rows.index[1], "colour"] = None
    return rows.to_csv(index=False)


def test_served_champion_scores_a_csv_request_with_integer_and_empty_columns(shop, served):
    """`mlflow models serve` parses text/csv with the signature's types, so a CSV written from
    the user's own table scores as its JSON would."""
    _, frame, model = shop
    text = as_csv_from_a_users_table(frame)
    request = urllib.request.Request(f"{served}/invocations", data=text.encode(),
                                     headers={"Content-Type": "text/csv"})
    with urllib.request.urlopen(request, timeout=30) as response:
        predictions = np.asarray(json.loads(response.read().decode())["predictions"], dtype="float64")
    typed = pd.read_csv(io.StringIO(text)).astype({"x1": "float64", "x2": "float64", "size": "object"})
    np.testing.assert_allclose(predictions, np.asarray(model.predict(typed), dtype="float64"), rtol=1e-9)


def test_mlflow_models_predict_scores_such_a_csv_once_written_as_json(shop, tmp_path):
    """`mlflow models predict -t csv` (MLflow 3.17) reads a CSV without the signature's types and
    refuses its integer column; the same rows converted with the one-liner of docs/serving.md
    score through `-t json`, which is parsed with them."""
    store, frame, model = shop
    csv_path, json_path, out = tmp_path / "new.csv", tmp_path / "new.json", tmp_path / "predictions.json"
    csv_path.write_text(as_csv_from_a_users_table(frame))
    command = [sys.executable, "-m", "mlflow", "models", "predict", "-m", MODEL, "--env-manager", "local",
               "-o", str(out)]
    refused = subprocess.run([*command, "-i", str(csv_path), "-t", "csv"], env=mlflow_env(store.uri),
                             capture_output=True, text=True, timeout=300)
    assert refused.returncode != 0 and "Can not safely convert int64 to float64" in refused.stderr
    convert = ("import json, sys, pandas as pd; print(json.dumps({'dataframe_split': json.loads("
               "pd.read_csv(sys.argv[1]).to_json(orient='split', index=False))}))")
    json_path.write_text(subprocess.run([sys.executable, "-c", convert, str(csv_path)], capture_output=True,
                                        text=True, check=True).stdout)
    result = subprocess.run([*command, "-i", str(json_path), "-t", "json"], env=mlflow_env(store.uri),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    predictions = np.asarray(json.loads(out.read_text())["predictions"], dtype="float64")
    typed = pd.read_csv(csv_path).astype({"x1": "float64", "x2": "float64", "size": "object"})
    np.testing.assert_allclose(predictions, np.asarray(model.predict(typed), dtype="float64"), rtol=1e-9)
