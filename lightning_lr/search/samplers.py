"""The search's Optuna samplers and pruners, by name, checked against the search space.

A new sampler is one function of ``(space, seed)`` and one line in :data:`SAMPLERS`; a new pruner
one function of ``max_epochs`` and one line in :data:`PRUNERS`. The CLI's help reads both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import optuna

from lightning_lr._validate import check_choice, fail
from lightning_lr.search.space import SearchSpace


def _grid(space: SearchSpace, seed: int | None) -> optuna.samplers.BaseSampler:
    return optuna.samplers.GridSampler(space.grid(), seed=seed)


def _random(space: SearchSpace, seed: int | None) -> optuna.samplers.BaseSampler:
    return optuna.samplers.RandomSampler(seed=seed)


def _tpe(space: SearchSpace, seed: int | None) -> optuna.samplers.BaseSampler:
    return optuna.samplers.TPESampler(seed=seed)


def _gp(space: SearchSpace, seed: int | None) -> optuna.samplers.BaseSampler:
    return optuna.samplers.GPSampler(seed=seed)


def _cmaes(space: SearchSpace, seed: int | None) -> optuna.samplers.BaseSampler:
    if len(space.continuous) < 2:
        raise fail(
            "sampler",
            "cmaes",
            f"needs two continuous axes at least, and the space has {list(space.continuous)} "
            "(CMA-ES cannot search one; Optuna would silently sample at random)",
            "Add a second axis (`weight_decay` or `warmup`), or use sampler='tpe'.",
        )
    return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)


SAMPLERS: dict[str, Callable[[SearchSpace, int | None], optuna.samplers.BaseSampler]] = {
    "grid": _grid,
    "random": _random,
    "tpe": _tpe,
    "gp": _gp,
    "cmaes": _cmaes,
}
"""Every sampler by the name ``search_lr(sampler=...)`` and ``--sampler`` take."""


def _median(max_epochs: int | None) -> optuna.pruners.BasePruner:
    # three full curves before judging, and never on the first epoch alone
    return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1)


def _hyperband(max_epochs: int | None) -> optuna.pruners.BasePruner:
    return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max_epochs or "auto")


def _none(max_epochs: int | None) -> optuna.pruners.BasePruner:
    return optuna.pruners.NopPruner()


PRUNERS: dict[str, Callable[[int | None], optuna.pruners.BasePruner]] = {
    "median": _median,
    "hyperband": _hyperband,
    "none": _none,
}
"""Every pruner by the name ``search_lr(pruner=...)`` and ``--pruner`` take (steps are epochs)."""


def make_sampler(
    sampler: str | optuna.samplers.BaseSampler, space: SearchSpace, seed: int | None
) -> optuna.samplers.BaseSampler:
    """The Optuna sampler a name stands for, seeded with ``seed``; a sampler passes through."""
    if isinstance(sampler, optuna.samplers.BaseSampler):
        return sampler
    check_choice("sampler", sampler, tuple(SAMPLERS))
    return SAMPLERS[sampler](space, seed)


def make_pruner(pruner: str | optuna.pruners.BasePruner, max_epochs: int | None) -> optuna.pruners.BasePruner:
    """The Optuna pruner a name stands for (steps are epochs); a pruner passes through."""
    if isinstance(pruner, optuna.pruners.BasePruner):
        return pruner
    check_choice("pruner", pruner, tuple(PRUNERS))
    return PRUNERS[pruner](max_epochs)


def listed(names: Iterable[str]) -> str:
    """``"a, b or c"``: the registry's names, for help texts."""
    keys = list(names)
    return keys[0] if len(keys) == 1 else f"{', '.join(keys[:-1])} or {keys[-1]}"
