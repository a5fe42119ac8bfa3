"""Where a study lives (steps/lib/search/storage.py): storage URLs, variables holding them, journal
files other workers open too."""

from __future__ import annotations

import optuna
import pytest

from steps.lib.errors import InputError
from steps.lib.search import storage, studies

VARIABLE = "TABTUNE_TEST_STORAGE"


def test_env_storage_reads_the_variable(monkeypatch):
    monkeypatch.setenv(VARIABLE, "postgresql://u:p@db/optuna")
    assert storage.resolve_storage_url(f"env:{VARIABLE}") == "postgresql://u:p@db/optuna"
    assert storage.resolve_storage_url("sqlite:///s.db") == "sqlite:///s.db"


@pytest.mark.parametrize("value", [None, ""])
def test_env_storage_with_the_variable_unset_names_storage(monkeypatch, value):
    if value is None:
        monkeypatch.delenv(VARIABLE, raising=False)
    else:
        monkeypatch.setenv(VARIABLE, value)
    with pytest.raises(InputError, match=rf"^storage: environment variable '{VARIABLE}' is not set"):
        storage.resolve_storage_url(f"env:{VARIABLE}")


def test_no_storage_means_in_memory():
    assert storage.open_storage("") is None


def test_a_url_that_is_no_storage_is_rejected_without_its_password():
    expected = r"^storage: 'https://user:\*\*\*@example\.com/db' is not a storage URL"
    with pytest.raises(InputError, match=expected) as error:
        storage.open_storage("https://user:s3cret@example.com/db")
    assert "s3cret" not in str(error.value)


def test_journal_needs_a_path():
    with pytest.raises(InputError, match=r"^storage: journal storage needs a file path"):
        storage.open_storage("journal:")


def test_journal_storage_is_a_file_other_workers_can_open(tmp_path):
    url = f"journal:{tmp_path / 'sub' / 's.log'}"
    opened = storage.open_storage(url)
    assert isinstance(opened, optuna.storages.JournalStorage)
    study, created = studies.create_or_load("shared", opened, None, None)
    study.enqueue_trial({"x": 1.0})
    assert created and (tmp_path / "sub" / "s.log").is_file()
    # A second worker, through its own storage object on the same file, joins the same study.
    joined, created = studies.create_or_load("shared", storage.open_storage(url), None, None)
    assert not created and len(joined.trials) == 1
