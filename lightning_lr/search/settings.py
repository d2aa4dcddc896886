"""SearchSettings: everything an LR search is run with besides what its trials train, checked once."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import optuna

from lightning_lr._validate import check_choice, check_int, check_positive, fail
from lightning_lr.search.pruning import Mode, Score
from lightning_lr.search.space import SearchSpace
from lightning_lr.search.storage import check_study_name


@dataclass(frozen=True)
class SearchSettings:
    """How a study is run: what it searches, how it samples, prunes and scores, where it is stored.

    :func:`~lightning_lr.search.search_lr` takes these as keywords, ``lightning-lr search`` as
    options, and :func:`~lightning_lr.search.run_study` as this object.

    Args:
        space: what to search; default ``SearchSpace()``, the LR alone in ``[1e-5, 1]``.
        monitor: the validation metric each trial is judged by.
        mode: ``"min"`` when lower is better, ``"max"`` when higher is.
        n_trials: trials this worker runs (other workers add theirs to the same study).
        sampler: ``"grid"`` (every point of ``space.grid()`` once, then stops), ``"random"``,
            ``"tpe"``, ``"gp"``, ``"cmaes"`` (two continuous axes at least), or a sampler
            (:data:`~lightning_lr.search.samplers.SAMPLERS`).
        pruner: ``"median"``, ``"hyperband"``, ``"none"``, or a pruner
            (:data:`~lightning_lr.search.samplers.PRUNERS`).
        storage: a database URL, an Optuna storage, or ``None`` for SQLite in ``run_dir``.
        study_name: the study to create or join; also the name of its directory and database.
        run_dir: where the trials' files (and the default database) go.
        seed: seeds the sampler, and every trial's weights the same way (a fair comparison).
        progress_bar: show a bar over this worker's trials (rank zero only).
        timeout: stop starting trials after this many seconds.
        score: judge a trial by its ``"best"`` or ``"last"`` monitored value.
        first_lr: the LR of the study's first trial, e.g. the LR finder's suggestion, so the
            sampler starts from a good point (other searched axes are sampled). Enqueued once per
            study: workers joining it later, or a second run, do not repeat it (workers started at
            the same moment may each enqueue it once). Not with ``"grid"``.

    Raises:
        ValueError: a bad setting, before any study is opened.
        TypeError: ``space`` is not a SearchSpace.
    """

    space: SearchSpace = field(default_factory=SearchSpace)
    monitor: str = "val_loss"
    mode: Mode = "min"
    n_trials: int = 20
    sampler: str | optuna.samplers.BaseSampler = "tpe"
    pruner: str | optuna.pruners.BasePruner = "median"
    storage: str | optuna.storages.BaseStorage | None = None
    study_name: str = "lightning-lr-search"
    run_dir: str | Path = "lightning_lr_search"
    seed: int | None = None
    progress_bar: bool = True
    timeout: float | None = None
    score: Score = "best"
    first_lr: float | None = None

    def __post_init__(self) -> None:
        if self.space is None:  # None asks for the default, as elsewhere
            object.__setattr__(self, "space", SearchSpace())
        if not isinstance(self.space, SearchSpace):
            raise TypeError(f"`space` must be a SearchSpace, got {self.space!r}.")
        if not isinstance(self.monitor, str) or not self.monitor:
            raise fail("monitor", self.monitor, "must name a logged validation metric", "e.g. 'val_loss'.")
        check_choice("mode", self.mode, ("min", "max"))
        check_choice("score", self.score, ("best", "last"))
        check_int("n_trials", self.n_trials, 1)
        check_study_name(self.study_name)
        if self.seed is not None:
            check_int("seed", self.seed, 0)
        if self.timeout is not None:
            check_positive("timeout", self.timeout, "Use None for no time limit.")
