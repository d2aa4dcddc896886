"""The search's Optuna samplers and pruners, by name, checked against the search space."""

from __future__ import annotations

from typing import Literal

import optuna

from lightning_lr._validate import check_choice, fail
from lightning_lr.search.space import SearchSpace

SamplerName = Literal["grid", "random", "tpe", "gp", "cmaes"]
PrunerName = Literal["median", "hyperband", "none"]
SAMPLERS: tuple[str, ...] = ("grid", "random", "tpe", "gp", "cmaes")
PRUNERS: tuple[str, ...] = ("median", "hyperband", "none")


def make_sampler(
    sampler: str | optuna.samplers.BaseSampler, space: SearchSpace, seed: int | None
) -> optuna.samplers.BaseSampler:
    """The Optuna sampler a name stands for, seeded with ``seed``; a sampler passes through."""
    if isinstance(sampler, optuna.samplers.BaseSampler):
        return sampler
    check_choice("sampler", sampler, SAMPLERS)
    if sampler == "grid":
        return optuna.samplers.GridSampler(space.grid(), seed=seed)
    if sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if sampler == "gp":
        return optuna.samplers.GPSampler(seed=seed)
    if sampler == "cmaes":
        if len(space.continuous) < 2:
            raise fail(
                "sampler",
                sampler,
                f"needs two continuous axes at least, and the space has {list(space.continuous)} "
                "(CMA-ES cannot search one; Optuna would silently sample at random)",
                "Add a second axis (`weight_decay` or `warmup`), or use sampler='tpe'.",
            )
        return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    return optuna.samplers.TPESampler(seed=seed)


def make_pruner(pruner: str | optuna.pruners.BasePruner, max_epochs: int | None) -> optuna.pruners.BasePruner:
    """The Optuna pruner a name stands for (steps are epochs); a pruner passes through."""
    if isinstance(pruner, optuna.pruners.BasePruner):
        return pruner
    check_choice("pruner", pruner, PRUNERS)
    if pruner == "median":
        # three full curves before judging, and never on the first epoch alone
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1)
    if pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max_epochs or "auto")
    return optuna.pruners.NopPruner()
