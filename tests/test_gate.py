"""The champion gate and idempotent registration: the pure decision, then
`package.run()` in-process against a real temp sqlite registry (no mocks): a first model takes
the alias, a worse one is registered but does not, a model of another table cannot take it
unless forced, and packaging the same model again registers nothing."""

from __future__ import annotations

import contextlib
import io
import itertools
from types import SimpleNamespace

import pytest

from steps import package, prepare, refit, tune_lasso
from steps.lib import names, tracking
from steps.lib.errors import InputError
from steps.lib.model import gate
from tests.conftest import in_process_store, make_frame

GATE = {"version": "3", "alias": "champion", "champion_error": None, "min_improvement": 0.0, "promote": "gate"}


# --------------------------------------------------------------------------- the decision
def test_no_champion_yet_promotes_and_says_so():
    decision = gate.decide(**{**GATE, "new_rmse": 52.1, "champion_version": None, "champion_rmse": None})
    assert decision.promote and decision.state == "promoted"
    assert decision.message == "version 3 is now @champion: no version held @champion yet (test RMSE 52.1)"
    assert decision.tags[names.GATE_TAG] == "promoted" and names.GATE_CHAMPION_RMSE_TAG not in decision.tags


def test_a_better_model_is_promoted_with_both_figures():
    decision = gate.decide(**{**GATE, "new_rmse": 49.0, "champion_version": "1", "champion_rmse": 51.0})
    assert decision.promote and decision.state == "promoted"
    assert decision.tags == {names.GATE_TAG: "promoted", names.GATE_NEW_RMSE_TAG: "49.0",
                             names.GATE_CHAMPION_RMSE_TAG: "51.0", names.GATE_CHAMPION_VERSION_TAG: "1",
                             names.GATE_MIN_IMPROVEMENT_TAG: "0.0"}


def test_a_worse_or_equal_model_is_rejected_and_the_line_says_why():
    decision = gate.decide(**{**GATE, "new_rmse": 52.1, "champion_version": "1", "champion_rmse": 50.97})
    assert not decision.promote and decision.state == "rejected"
    assert decision.message == ("version 3 kept, @champion stays on version 1: test RMSE 52.1 is not below 50.97 "
                                "(version 1: 50.97, min_improvement 0)")
    tie = gate.decide(**{**GATE, "new_rmse": 50.0, "champion_version": "1", "champion_rmse": 50.0})
    assert not tie.promote


def test_min_improvement_is_a_relative_margin():
    # 10 % better than 50 means below 45: 46 is better, but not by enough
    not_enough = gate.decide(**{**GATE, "new_rmse": 46.0, "champion_version": "1", "champion_rmse": 50.0,
                                "min_improvement": 0.1})
    assert not not_enough.promote and "is not below 45 " in not_enough.message
    enough = gate.decide(**{**GATE, "new_rmse": 44.9, "champion_version": "1", "champion_rmse": 50.0,
                            "min_improvement": 0.1})
    assert enough.promote and enough.tags[names.GATE_MIN_IMPROVEMENT_TAG] == "0.1"


def test_a_champion_that_cannot_score_the_data_keeps_the_alias_and_points_to_the_ways_out():
    decision = gate.decide(**{**GATE, "new_rmse": 1.0, "champion_version": "1", "champion_rmse": None,
                              "champion_error": "MlflowException: missing column x3"})
    assert not decision.promote and decision.state == "rejected"
    assert "cannot score this model's test data (MlflowException: missing column x3)" in decision.message
    assert "another registered_model_name, or pass -P promote=force" in decision.message
    assert decision.tags[names.GATE_REASON_TAG].endswith("missing column x3")


def test_too_few_rows_the_champion_never_saw_keep_the_alias_and_say_why():
    few = gate.decide(**{**GATE, "new_rmse": 1.0, "champion_version": "1", "champion_rmse": None, "rows": 12,
                         "test_rows": 89})
    assert not few.promote and few.state == "rejected"
    assert few.tags[names.GATE_REASON_TAG] == ("only 12 of the 89 test rows are rows version 1 never trained on "
                                               f"(at least {gate.MIN_UNSEEN_ROWS} are needed to compare)")
    assert few.tags[names.GATE_ROWS_TAG] == "12" and few.message.endswith("pass -P promote=force to move the alias "
                                                                          "anyway")
    # A whole test split is compared whatever its size; enough unseen rows are compared and counted.
    whole = gate.decide(**{**GATE, "new_rmse": 1.0, "champion_version": "1", "champion_rmse": 2.0, "rows": 20,
                           "test_rows": 20})
    assert whole.promote and whole.message.endswith("(version 1: 2, min_improvement 0; all 20 test rows)")
    enough = gate.decide(**{**GATE, "new_rmse": 1.0, "champion_version": "1", "champion_rmse": 2.0,
                            "rows": gate.MIN_UNSEEN_ROWS, "test_rows": 89})
    assert enough.promote and enough.message.endswith(
        f"; on the {gate.MIN_UNSEEN_ROWS} of 89 test rows version 1 never trained on)")
    forced = gate.decide(**{**GATE, "new_rmse": 1.0, "champion_version": "1", "champion_rmse": None, "rows": 12,
                            "test_rows": 89, "promote": "force"})
    assert forced.promote and forced.state == "forced"


def test_a_champion_whose_training_rows_are_unknown_keeps_the_alias():
    decision = gate.decide(**{**GATE, "new_rmse": 1.0, "champion_version": "1", "champion_rmse": None,
                              "rows_unknown": "KeyError: version 1 has no data_run_id tag"})
    assert not decision.promote and decision.state == "rejected"
    assert "cannot tell which of this model's test rows version 1 trained on" in decision.message
    assert decision.tags[names.GATE_REASON_TAG].endswith("has no data_run_id tag")


def test_the_reason_is_one_line_without_the_frame_mlflow_quotes():
    error = ValueError("Failed to enforce schema of data '   x1\n0  1.5\n1  2.5' with schema '['x1': double]'. "
                       "Error: Model is missing inputs ['colour', 'size'].")
    assert gate.short_reason(error) == "ValueError: Model is missing inputs ['colour', 'size']"
    assert gate.short_reason(KeyError("x3")) == "KeyError: 'x3'"


def test_force_and_never_do_not_compare():
    forced = gate.decide(**{**GATE, "new_rmse": 99.0, "champion_version": "1", "champion_rmse": 1.0,
                            "promote": "force"})
    assert forced.promote and forced.state == "forced" and forced.tags[names.GATE_TAG] == "forced"
    never = gate.decide(**{**GATE, "new_rmse": 0.1, "champion_version": "1", "champion_rmse": 1.0,
                           "promote": "never"})
    assert not never.promote and never.tags[names.GATE_TAG] == "not_promoted"
    assert never.message == "version 3 registered, @champion stays on version 1 (promote=never)"


def test_the_version_holding_the_alias_has_nothing_to_do():
    decision = gate.decide(**{**GATE, "new_rmse": 9.0, "champion_version": "3", "champion_rmse": None})
    assert not decision.promote and decision.state == "unchanged" and decision.tags == {}
    assert decision.message == "version 3 already holds @champion: nothing to do"


def test_bad_gate_settings_name_the_parameter():
    with pytest.raises(InputError, match=r"^promote: expected one of gate, force, never, got 'always'"):
        gate.check_settings(0.0, "always")
    with pytest.raises(InputError, match=r"^min_improvement: expected a fraction in \[0, 1\), got -0.1"):
        gate.check_settings(-0.1, "gate")
    with pytest.raises(InputError, match=r"^min_improvement:"):
        gate.check_settings(1.0, "gate")


def test_the_comparison_is_redone_when_the_alias_moves_meanwhile():
    holders = iter(["1", "2", "2"])  # another step moved the alias to 2 while we compared with 1
    compared = []

    def decide_against(champion):
        compared.append(champion)
        return gate.decide(**{**GATE, "new_rmse": 5.0, "champion_version": champion, "champion_rmse": 6.0})

    decision, champion = gate.decide_until_stable(lambda: next(holders), decide_against)
    assert compared == ["1", "2"] and champion == "2" and decision.tags[names.GATE_CHAMPION_VERSION_TAG] == "2"
    moving = iter(str(n) for n in range(100))
    with pytest.raises(gate.GateRaced, match="moved 3 times"):
        gate.decide_until_stable(lambda: next(moving), decide_against)


# --------------------------------------------------------------------------- package, for real
MODEL = "gate-test"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    directory = tmp_path_factory.mktemp("gate")
    with in_process_store(directory) as (client, _):
        tables = {}
        for key, frame in {"a": make_frame(160, seed=3), "b": make_frame(160, seed=4, categorical=False)}.items():
            tables[key] = str(directory / f"{key}.csv")
            frame.to_csv(tables[key], index=False)
        yield client, tables


def refit_lasso(table: str, alphas: str, seed: int = 5) -> str:
    """prepare → tune_lasso over `alphas` → refit: a LASSO refit run on `table`, in seconds."""
    data_run_id = prepare.run(data=table, target="y", val_size=0.2, test_size=0.2, seed=seed)
    tuned = tune_lasso.run(data_run_id=data_run_id, alphas=alphas, seed=seed)
    return refit.run(data_run_id="", tune_run_ids=tuned, max_iterations=10, early_stopping_rounds=5)


@pytest.fixture(scope="module")
def packaged(store):
    """The story, in order: a good model, a worse one, the good one again, a model of another
    table (gated, then forced). Each package run's ID and the lines it printed."""
    _, tables = store
    refits = {"good": refit_lasso(tables["a"], "0.1,0.01"), "worse": refit_lasso(tables["a"], "100"),
              "other": refit_lasso(tables["b"], "0.1,0.01")}
    results = {}
    for key, refit_key, options in (("good", "good", {}), ("worse", "worse", {}), ("again", "good", {}),
                                    ("other", "other", {}), ("forced", "other", {"promote": "force"})):
        with contextlib.redirect_stdout(io.StringIO()) as out:
            run_id = package.run(model_run_id=refits[refit_key], registered_model_name=MODEL, alias="champion",
                                 **options)
        print(out.getvalue(), end="")
        lines = [line for line in out.getvalue().splitlines() if line.startswith("package: ")]
        results[key] = {"run_id": run_id, "lines": lines}
    return refits, results


def version_of(client, refit_run_id: str):
    """The one registered version of the model `refit_run_id` made (its number as a string)."""
    versions = [v for v in client.search_model_versions(f"name = '{MODEL}'") if v.tags["refit_run_id"] == refit_run_id]
    assert len(versions) == 1, versions
    return SimpleNamespace(version=str(versions[0].version), tags=versions[0].tags,
                           description=versions[0].description)


def test_the_first_model_is_promoted_with_a_description_and_its_fingerprint(store, packaged):
    client, _ = store
    refits, results = packaged
    good = version_of(client, refits["good"])
    refit_run = client.get_run(refits["good"])
    assert good.tags[names.GATE_TAG] == "promoted"
    assert good.tags[names.MODEL_FINGERPRINT_TAG] == refit_run.data.tags[names.MODEL_FINGERPRINT_TAG]
    assert float(good.tags[names.GATE_NEW_RMSE_TAG]) == pytest.approx(refit_run.data.metrics["test_rmse"])
    assert results["good"]["lines"][0] == (f"package: version {good.version} is now @champion: no version held "
                                          f"@champion yet (test RMSE {refit_run.data.metrics['test_rmse']:.6g})")
    assert f"test RMSE {refit_run.data.metrics['test_rmse']:.6g}" in good.description
    for run_id in (good.tags["data_run_id"], good.tags["tune_run_ids"], refits["good"]):
        assert run_id in good.description


def test_a_worse_model_is_registered_but_the_alias_stays(store, packaged):
    client, _ = store
    refits, results = packaged
    good, worse = version_of(client, refits["good"]), version_of(client, refits["worse"])
    assert worse.tags[names.GATE_TAG] == "rejected" and worse.tags[names.GATE_CHAMPION_VERSION_TAG] == good.version
    new, champion = float(worse.tags[names.GATE_NEW_RMSE_TAG]), float(worse.tags[names.GATE_CHAMPION_RMSE_TAG])
    assert new >= champion
    assert champion == pytest.approx(client.get_run(refits["good"]).data.metrics["test_rmse"])  # same rows
    # Same table, same seed, another prepare run: the same splits, so every test row is compared.
    rows = int(client.get_run(worse.tags["data_run_id"]).data.metrics["rows_test"])
    assert worse.tags["data_run_id"] != good.tags["data_run_id"]
    assert worse.tags[names.GATE_ROWS_TAG] == str(rows)
    assert results["worse"]["lines"][0] == (
        f"package: version {worse.version} kept, @champion stays on version {good.version}: test RMSE {new:.6g} "
        f"is not below {champion:.6g} (version {good.version}: {champion:.6g}, min_improvement 0; "
        f"all {rows} test rows)")
    assert client.get_run(results["worse"]["run_id"]).info.status == "FINISHED"


def test_packaging_the_same_model_again_registers_nothing_and_names_the_version(store, packaged):
    client, _ = store
    refits, results = packaged
    good = version_of(client, refits["good"])
    assert results["again"]["lines"][:2] == [
        f"package: identical to version {good.version} (same data, parameters and code): nothing registered",
        f"package: version {good.version} already holds @champion: nothing to do"]
    params = client.get_run(results["again"]["run_id"]).data.params
    assert params["registered_version"] == good.version and params["registered_new"] == "False"


def test_a_model_of_another_table_takes_the_alias_only_when_forced(store, packaged):
    client, _ = store
    refits, results = packaged
    good, other = version_of(client, refits["good"]), version_of(client, refits["other"])
    gated = results["other"]["lines"][0]
    assert gated.startswith(f"package: version {other.version} kept, @champion stays on version {good.version}: "
                            f"version {good.version} cannot score this model's test data (")
    assert "Model is missing inputs ['colour', 'size']" in gated
    assert gated.endswith("a different table belongs under another registered_model_name, or pass -P promote=force")
    assert results["forced"]["lines"][:2] == [
        f"package: identical to version {other.version} (same data, parameters and code): nothing registered",
        (f"package: version {other.version} is now @champion, replacing version {good.version} "
         "(promote=force: not compared)")]
    assert other.tags[names.GATE_TAG] == "forced"
    assert names.GATE_REASON_TAG not in other.tags  # the earlier refusal's reason went with its verdict
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == other.version
    assert len(client.search_model_versions(f"name = '{MODEL}'")) == 3  # good, worse, other: once each


def test_refit_links_its_test_metrics_to_the_logged_model(store, packaged):
    client, _ = store
    refits, _ = packaged
    run = client.get_run(refits["good"])
    model_id = run.data.tags[names.MODEL_URI_TAG].removeprefix("models:/")
    model_metrics = {m.key: m.value for m in client.get_logged_model(model_id).metrics}
    assert model_metrics["test_rmse"] == run.data.metrics["test_rmse"]
    assert {"test_mae", "test_r2"} <= set(model_metrics)
    assert len(client.get_metric_history(refits["good"], "test_rmse")) == 1  # logged once, not twice


def test_package_refuses_bad_gate_settings_before_registering(store, packaged):
    client, _ = store
    refits, _ = packaged
    before = len(client.search_model_versions(f"name = '{MODEL}'"))
    with pytest.raises(InputError, match=r"^promote:"):
        package.run(model_run_id=refits["good"], registered_model_name=MODEL, alias="champion", promote="maybe")
    with pytest.raises(InputError, match=r"^min_improvement:"):
        package.run(model_run_id=refits["good"], registered_model_name=MODEL, alias="champion", min_improvement=-1)
    assert len(client.search_model_versions(f"name = '{MODEL}'")) == before


# ------------------------------------------------- the gate compares on rows neither model trained on
def lineage_rows(data_run_id: str, split: str) -> list[list[str]]:
    """A prepare run's rows of one split (train+val: "seen"), each as the text of its values."""
    from steps.lib.orchestration import lineage

    splits = lineage.load_splits(data_run_id)
    frame = splits.test if split == "test" else splits.train_val()[0].assign(y=splits.train_val()[1].to_numpy())
    return frame[["x1", "x2", "colour", "size", "y"]].astype(str).to_numpy().tolist()


@pytest.fixture(scope="module")
def retrained(store, tmp_path_factory):
    """A champion on table a (seed 5); then the same table with 200 rows appended (seed 5), and the
    same table with seed 6: the usual retrains, whose test splits hold rows the champion trained on."""
    import pandas as pd

    _, tables = store
    grown = str(tmp_path_factory.mktemp("grown") / "a_grown.csv")
    pd.concat([pd.read_csv(tables["a"]), make_frame(200, seed=9)]).to_csv(grown, index=False)
    refits = {"champion": refit_lasso(tables["a"], "0.01"), "grown": refit_lasso(grown, "0.01"),
              "reseeded": refit_lasso(tables["a"], "0.01", seed=6)}
    lines = {}
    for key in refits:
        with contextlib.redirect_stdout(io.StringIO()) as out:
            package.run(model_run_id=refits[key], registered_model_name="retrained", alias="champion")
        lines[key] = [line for line in out.getvalue().splitlines() if line.startswith("package: ")]
    return refits, lines


def versions_of(client, refits):
    by_refit = {v.tags["refit_run_id"]: v for v in client.search_model_versions("name = 'retrained'")}
    return {key: by_refit[run_id] for key, run_id in refits.items()}


def test_the_gate_scores_both_models_only_on_rows_the_champion_never_trained_on(store, retrained):
    import numpy as np

    from steps.lib.model import gate as gate_module
    from steps.lib.orchestration import lineage

    client, _ = store
    refits, lines = retrained
    versions = versions_of(client, refits)
    champion, grown = versions["champion"], versions["grown"]
    seen = {tuple(row) for row in lineage_rows(champion.tags["data_run_id"], "seen")}
    test_rows = lineage_rows(grown.tags["data_run_id"], "test")
    unseen = np.array([tuple(row) not in seen for row in test_rows])
    assert gate_module.MIN_UNSEEN_ROWS <= unseen.sum() < len(test_rows)  # the table grew: some test rows were seen
    assert grown.tags[names.GATE_ROWS_TAG] == str(unseen.sum())
    x, y = lineage.load_test_rows(grown.tags["data_run_id"])
    for version, tag in ((champion, names.GATE_CHAMPION_RMSE_TAG), (grown, names.GATE_NEW_RMSE_TAG)):
        model = tracking.load_pyfunc(tracking.version_uri("retrained", version.version))
        assert float(grown.tags[tag]) == pytest.approx(gate_module.rmse_of(model, x[unseen], y[unseen]), rel=1e-9)
    assert f"; on the {unseen.sum()} of {len(test_rows)} test rows version {champion.version} never trained on)" in (
        lines["grown"][0])


def test_a_reseeded_split_of_a_small_table_leaves_too_few_unseen_rows_and_the_alias_stays(store, retrained):
    client, _ = store
    refits, lines = retrained
    versions = versions_of(client, refits)
    reseeded = versions["reseeded"]
    champion_version = reseeded.tags[names.GATE_CHAMPION_VERSION_TAG]
    compared_with = next(v for v in versions.values() if str(v.version) == champion_version)
    seen = {tuple(row) for row in lineage_rows(compared_with.tags["data_run_id"], "seen")}
    test_rows = lineage_rows(reseeded.tags["data_run_id"], "test")
    unseen = sum(tuple(row) not in seen for row in test_rows)
    assert unseen < gate.MIN_UNSEEN_ROWS
    assert reseeded.tags[names.GATE_TAG] == "rejected" and reseeded.tags[names.GATE_ROWS_TAG] == str(unseen)
    assert reseeded.tags[names.GATE_REASON_TAG].startswith(f"only {unseen} of the {len(test_rows)} test rows")
    holder = str(client.get_model_version_by_alias("retrained", "champion").version)
    assert holder == reseeded.tags[names.GATE_CHAMPION_VERSION_TAG] != str(reseeded.version)
    assert "pass -P promote=force" in lines["reseeded"][0]


def test_registry_helpers_read_the_alias_and_find_by_tag(store, packaged):
    assert tracking.alias_version("no-such-model", "champion") is None
    assert tracking.alias_version(MODEL, "no-such-alias") is None
    assert tracking.find_version(MODEL, {names.MODEL_FINGERPRINT_TAG: "nope"}) is None


def hold_at_once(name: str, holders: int = 3, inside=lambda: None) -> list[tuple[float, float]]:
    """`holders` threads take the gate lock of registered model `name` at once, each holding it
    0.3 s (calling `inside` first); the (start, end) of each hold, in order."""
    import threading
    import time

    spans: list[tuple[float, float]] = []

    def hold():
        with tracking.gate_lock(name):
            inside()
            started = time.monotonic()
            time.sleep(0.3)
            spans.append((started, time.monotonic()))

    threads = [threading.Thread(target=hold) for _ in range(holders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(spans)


def test_the_gate_lock_lets_one_package_step_at_a_time(tmp_path):
    """Two threads take the gate lock of one registered model: their critical sections never
    overlap, the lock is gone afterwards, and a stale lock (its holder died) is taken over."""

    from mlflow.tracking import MlflowClient

    from steps.lib import tracking
    from steps.lib.tracking import registry
    from tests.conftest import in_process_store

    with in_process_store(tmp_path) as (client, _):
        spans = hold_at_once("locked-model")
        assert len(spans) == 3 and all(a[1] <= b[0] for a, b in itertools.pairwise(spans))
        assert not client.search_registered_models(f"name = 'locked-model{registry.LOCK_SUFFIX}'")

        MlflowClient().create_registered_model(f"stale{registry.LOCK_SUFFIX}")
        original = registry.LOCK_STALE_S
        registry.LOCK_STALE_S = 0  # every existing lock now counts as left by a dead step
        try:
            with tracking.gate_lock("stale"):
                owner = client.get_registered_model(f"stale{registry.LOCK_SUFFIX}").tags.get(registry.OWNER_TAG)
                assert owner  # the stale lock (no owner) was broken and this step's own taken
        finally:
            registry.LOCK_STALE_S = original
        assert not client.search_registered_models("name LIKE 'stale%'")  # no lock, marker or clock probe left


def test_a_stale_lock_is_broken_once_and_no_holder_deletes_another_s_lock(tmp_path, monkeypatch, capsys):
    """Three package steps wait on a lock whose holder died: exactly one breaks it (by creating
    the takeover marker), then they hold the lock one at a time, each with its own token; a
    holder whose lock was taken over meanwhile leaves its successor's lock alone and says so."""
    import time

    from steps.lib.tracking import registry

    with in_process_store(tmp_path) as (client, _):
        lock = f"stale{registry.LOCK_SUFFIX}"
        client.create_registered_model(lock, tags={registry.OWNER_TAG: "a step that died"})
        monkeypatch.setattr(registry, "LOCK_STALE_S", 1)
        monkeypatch.setattr(registry, "STALE_CHECK_S", 0.1)
        time.sleep(1.2)
        owners, breaks = [], []
        original_delete = client.__class__.delete_registered_model

        def counting_delete(self, name):
            if name == lock and (self.get_registered_model(name).tags or {}).get(registry.OWNER_TAG) == (
                    "a step that died"):
                breaks.append(name)
            return original_delete(self, name)

        monkeypatch.setattr(client.__class__, "delete_registered_model", counting_delete)

        spans = hold_at_once("stale", inside=lambda: owners.append(
            client.get_registered_model(lock).tags[registry.OWNER_TAG]))
        assert breaks == [lock]  # broken once
        assert len(spans) == 3 and all(a[1] <= b[0] for a, b in itertools.pairwise(spans))
        assert len(set(owners)) == 3 and "a step that died" not in owners
        assert not client.search_registered_models("name LIKE 'stale%'")

        with tracking.gate_lock("stale"):  # held too long: another step took the lock over meanwhile
            original_delete(client, lock)
            client.create_registered_model(lock, tags={registry.OWNER_TAG: "successor"})
        assert client.get_registered_model(lock).tags[registry.OWNER_TAG] == "successor"
        assert "was taken over while this step held it" in capsys.readouterr().out


def test_a_lock_deleted_while_the_server_reports_it_taken_counts_as_taken():
    """The server answered "not found" to a create that raced its holder's delete (four package
    steps at once): that is contention, tried again, not a failed package step."""
    from mlflow.exceptions import MlflowException
    from mlflow.protos import databricks_pb2

    from steps.lib.tracking import registry

    answers = iter([databricks_pb2.RESOURCE_DOES_NOT_EXIST, databricks_pb2.RESOURCE_ALREADY_EXISTS,
                    databricks_pb2.INTERNAL_ERROR])

    def create_registered_model(*_, **__):
        raise MlflowException("raced", error_code=next(answers))

    client = SimpleNamespace(create_registered_model=create_registered_model)
    assert registry._create(client, "m_lock", "t", "") is False
    assert registry._create(client, "m_lock", "t", "") is False
    with pytest.raises(MlflowException):
        registry._create(client, "m_lock", "t", "")
