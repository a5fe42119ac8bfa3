"""How a study proposes and stops trials: seeded TPE samplers (distinct seeds for workers
sharing a study) and the pruners a user can choose."""

from __future__ import annotations

from steps.lib.process_identity import Worker

PRUNERS = ("none", "median", "hyperband")
SEEDS_ATTR = "tabtune.sampler_seeds"  # study attribute: the seeds its workers' samplers use


def make_pruner(name: str, steps: int):
    """The pruner `name` for trials reported over `steps` steps (iterations, or folds)."""
    import optuna

    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=max(1, steps // 10))
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=max(1, steps // 20), max_resource=steps)
    return optuna.pruners.NopPruner()


def make_sampler(seed: int | None, *, parallel: bool):
    """Seeded TPE; with parallel or distributed workers, the constant liar keeps running trials
    from being proposed twice."""
    import optuna

    return optuna.samplers.TPESampler(seed=seed, constant_liar=parallel)


def worker_seed(study, seed: int, worker: Worker) -> int:
    """`seed`, unless another worker of this study already samples with it (identical seeds would
    propose identical points): then a seed derived from this worker's identity."""
    used = list(study.user_attrs.get(SEEDS_ATTR, []))
    chosen = seed
    if seed in used:
        chosen = (seed * 1_000_003 + worker.pid + sum(map(ord, worker.host))) % (2**31 - 1)
    study.set_user_attr(SEEDS_ATTR, [*used, chosen])
    return chosen
