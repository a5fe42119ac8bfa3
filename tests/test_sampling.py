"""How a study proposes and stops trials (steps/lib/search/sampling.py): seeded samplers, distinct
seeds for workers sharing a study, the pruners."""

from __future__ import annotations

import optuna
import pytest

from steps.lib import process_identity
from steps.lib.search import sampling
from tests.conftest import memory_study


def test_a_second_worker_asking_for_the_same_seed_gets_another_one():
    study = memory_study()
    first = sampling.worker_seed(study, 42, process_identity.Worker("host-a", 100))
    second = sampling.worker_seed(study, 42, process_identity.Worker("host-b", 200))
    other = sampling.worker_seed(study, 7, process_identity.Worker("host-c", 300))
    assert first == 42 and second != 42 and other == 7
    assert study.user_attrs[sampling.SEEDS_ATTR] == [42, second, 7]


@pytest.mark.parametrize(("name", "expected"), [
    ("none", optuna.pruners.NopPruner),
    ("median", optuna.pruners.MedianPruner),
    ("hyperband", optuna.pruners.HyperbandPruner),
])
def test_make_pruner(name, expected):
    assert type(sampling.make_pruner(name, 100)) is expected


@pytest.mark.parametrize("parallel", [False, True])
def test_make_sampler_is_a_seeded_tpe_sampler(parallel):
    first, second = (sampling.make_sampler(3, parallel=parallel) for _ in range(2))
    assert type(first) is optuna.samplers.TPESampler
    # same seed, same first proposal
    proposals = []
    for sampler in (first, second):
        study = optuna.create_study(sampler=sampler)
        proposals.append(study.ask().suggest_float("x", 0, 1))
    assert proposals[0] == proposals[1]
