"""The Optuna study behind an LR search: samplers, pruners, storage, and one Trainer per trial."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import optuna
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.utilities import rank_zero_info

from lightning_lr._validate import check_positive, fail
from lightning_lr.search.progress import quiet_logs, search_progress
from lightning_lr.search.pruning import Mode, Score, TrialPruning
from lightning_lr.search.result import SearchResult
from lightning_lr.search.samplers import make_pruner, make_sampler
from lightning_lr.search.settings import SearchSettings
from lightning_lr.search.space import SearchSpace
from lightning_lr.search.storage import claim_study, open_storage, open_study

TrialFit = Callable[[dict[str, Any], TrialPruning, Path], None]
"""Fits one trial: its hparams, the pruning callback its Trainer must have, and its directory."""


def search_lr(
    model: Callable[..., pl.LightningModule],
    datamodule: pl.LightningDataModule | None = None,
    train_dataloaders: Any = None,
    val_dataloaders: Any = None,
    *,
    trainer_kwargs: Mapping[str, Any] | None = None,
    settings: SearchSettings | None = None,
    **options: Any,
) -> SearchResult:
    """Search the peak LR (and optionally weight decay, warmup, schedule family) with Optuna.

    Each trial builds a fresh module with ``model(**hparams)`` and fits it in a Trainer of its own
    that writes only under ``<run_dir>/<study_name>/trial_<number>/`` (a CSV log, no checkpoint,
    no progress bar or summary unless ``trainer_kwargs`` say otherwise; ``max_epochs`` 10 unless
    given). Learning curves are reported each epoch, so hopeless trials are pruned early, and a
    trial whose loss goes non-finite ends pruned with ``diverged`` set, never failed. The study is
    stored in SQLite (``<run_dir>/<study_name>.db``) unless ``storage`` names another database;
    workers started with the same ``study_name`` and storage join one study.

    Args:
        model: called with the hparams as keywords (``lr``, and ``weight_decay`` and ``schedule``
            when searched): a ``LightningModule`` class with the mixin, or e.g.
            ``functools.partial(MyModel, hidden=64)``.
        datamodule: the data, as a datamodule.
        train_dataloaders: the training data, unless ``datamodule`` or the model provides it.
        val_dataloaders: the validation data, likewise.
        trainer_kwargs: settings of each trial's Trainer (``callbacks`` are added to the pruning one).
        settings: how the study runs (:class:`~lightning_lr.search.SearchSettings`); or give its
            fields as keywords (``space``, ``monitor``, ``mode``, ``n_trials``, ``sampler``,
            ``pruner``, ``storage``, ``study_name``, ``run_dir``, ``seed``, ``progress_bar``,
            ``timeout``, ``score``, ``first_lr``), e.g. ``search_lr(MyModel, dm, n_trials=20)``.

    Returns:
        The best LR and parameters, and every trial of the study.

    Raises:
        ValueError: a bad argument, before any training; ``monitor`` not logged (listing what is).
        TypeError: ``model`` is a module instance rather than something that builds one.

    Example:
        >>> from lightning_lr.demo import MNIST1DClassifier, MNIST1DDataModule
        >>> result = search_lr(MNIST1DClassifier, MNIST1DDataModule(), n_trials=20)  # doctest: +SKIP
        >>> from lightning_lr.plot import plot_search
        >>> print(result.table()); plot_search(result, "search.png")  # doctest: +SKIP
    """
    if isinstance(model, pl.LightningModule) or not callable(model):
        instance = isinstance(model, pl.LightningModule)
        got = f"an instance of {type(model).__name__}" if instance else repr(model)
        raise TypeError(
            f"`model` must build a fresh LightningModule for each trial, got {got}. Pass its class, "
            "or a function of the hparams, e.g. functools.partial(MyModel, hidden=64)."
        )
    kwargs = dict(trainer_kwargs or {})
    max_epochs = kwargs.get("max_epochs", None if "max_steps" in kwargs else 10)
    if settings is not None and options:
        raise TypeError(f"Give `settings` or its fields as keywords, not both; got {sorted(options)} too.")
    chosen = settings if settings is not None else SearchSettings(**options)
    fit = ModuleTrials(model, datamodule, train_dataloaders, val_dataloaders, kwargs)
    return run_study(
        fit, chosen, max_epochs=max_epochs if isinstance(max_epochs, int) and max_epochs > 0 else None
    )


@dataclass(frozen=True)
class ModuleTrials:
    """Fits each trial's module in a Trainer of its own, writing only into the trial's directory."""

    model: Callable[..., pl.LightningModule]
    datamodule: pl.LightningDataModule | None = None
    train_dataloaders: Any = None
    val_dataloaders: Any = None
    trainer_kwargs: Mapping[str, Any] = field(default_factory=dict)

    def __call__(self, hparams: dict[str, Any], pruning: TrialPruning, trial_dir: Path) -> None:
        module = self.model(**hparams)
        if not isinstance(module, pl.LightningModule):
            raise TypeError(f"`model` must return a LightningModule, got {module!r} from {self.model!r}.")
        settings: dict[str, Any] = {
            "default_root_dir": str(trial_dir),
            "logger": CSVLogger(save_dir=str(trial_dir), name="", version=""),
            "enable_checkpointing": False,
            "enable_model_summary": False,
            "enable_progress_bar": False,
        }
        if "max_steps" not in self.trainer_kwargs:
            settings["max_epochs"] = 10
        settings.update(self.trainer_kwargs)
        extra = settings.get("callbacks") or []
        settings["callbacks"] = [*([extra] if isinstance(extra, pl.Callback) else extra), pruning]
        trainer = pl.Trainer(**settings)
        trainer.fit(
            module,
            train_dataloaders=self.train_dataloaders,
            val_dataloaders=self.val_dataloaders,
            datamodule=self.datamodule,
        )


def run_study(
    fit: TrialFit,
    settings: SearchSettings,
    *,
    max_epochs: int | None = None,
    fingerprint: str | None = None,
) -> SearchResult:
    """Create or join the study and run ``settings.n_trials`` trials, each fitted by ``fit``.

    The engine under :func:`search_lr` and ``lightning-lr search``: ``fit`` decides how a trial
    is trained (from a module factory, from a LightningCLI config); everything else is here.
    ``max_epochs`` bounds the hyperband pruner. ``fingerprint`` names what the trials train (a
    hash of a config and the search settings): a study is joined only when it was started with
    the same one, and joining says so in one line.
    """
    if not isinstance(settings, SearchSettings):
        raise TypeError(f"`settings` must be a SearchSettings, got {settings!r}.")
    space, study_name, first_lr = settings.space, settings.study_name, settings.first_lr
    run_path = Path(settings.run_dir)
    chosen_sampler = make_sampler(settings.sampler, space, settings.seed)
    if first_lr is not None:
        check_first_lr(first_lr, space, chosen_sampler)
    chosen_pruner = make_pruner(settings.pruner, max_epochs)
    opened, url = open_storage(settings.storage, run_path, study_name)
    with quiet_logs():
        study = open_study(opened, study_name, settings.mode, chosen_sampler, chosen_pruner)
    claim_study(study, fingerprint, url)
    if study.trials:
        rank_zero_info(f"LR search: joined study {study_name!r} in {url}, {len(study.trials)} trials so far.")
    with quiet_logs():
        if first_lr is not None:
            study.enqueue_trial({"lr": float(first_lr)}, skip_if_exists=True)
        objective = Objective(
            fit, space, settings.monitor, settings.mode, settings.score, run_path / study_name, settings.seed
        )
        total = settings.n_trials
        if isinstance(chosen_sampler, optuna.samplers.GridSampler):
            total = min(total, math.prod(len(values) for values in space.grid().values()))
        with search_progress(total, settings.monitor, enabled=settings.progress_bar) as progress:
            study.optimize(
                objective, n_trials=settings.n_trials, timeout=settings.timeout, callbacks=[progress]
            )
    return SearchResult.from_study(study, monitor=settings.monitor, mode=settings.mode, storage_url=url)


def check_first_lr(first_lr: float, space: SearchSpace, sampler: optuna.samplers.BaseSampler) -> None:
    """``first_lr`` must be a number inside the space's LR range, and the sampler not a grid."""
    low, high = space.lr
    check_positive("first_lr", first_lr, "Pass the LR to start from, e.g. the finder's suggestion.")
    if not low <= first_lr <= high:
        raise fail(
            "first_lr",
            first_lr,
            f"lies outside the searched LR range [{low:g}, {high:g}]",
            "Widen SearchSpace(lr=...) to include it, or start from another LR.",
        )
    if isinstance(sampler, optuna.samplers.GridSampler):
        raise fail(
            "first_lr",
            first_lr,
            "cannot be combined with the grid sampler, which visits its own points",
            "Drop first_lr, or use sampler='tpe'.",
        )


@dataclass(frozen=True)
class Objective:
    """One trial: sample the space, fit, and return the score, or raise ``TrialPruned``."""

    fit: TrialFit
    space: SearchSpace
    monitor: str
    mode: Mode
    score: Score
    study_dir: Path
    seed: int | None = None

    def __call__(self, trial: optuna.Trial) -> float:
        params = self.space.suggest(trial)
        trial_dir = self.study_dir / f"trial_{trial.number}"
        trial_dir.mkdir(parents=True, exist_ok=True)
        trial.set_user_attr("run_dir", str(trial_dir.resolve()))
        pruning = TrialPruning(trial, self.monitor, self.mode)
        if self.seed is not None:
            pl.seed_everything(self.seed, verbose=False)
        try:
            self.fit(self.space.to_hparams(params), pruning, trial_dir)
        except SystemExit as error:  # Lightning exits on Ctrl+C; Optuna closes the trial on this one
            raise KeyboardInterrupt(f"trial {trial.number} was interrupted") from error
        trial.set_user_attr("epochs", pruning.epochs)
        trial.set_user_attr("diverged", pruning.diverged)
        if pruning.diverged:
            raise optuna.TrialPruned(f"diverged at lr={params['lr']:.3g}: a non-finite loss")
        if pruning.pruned:
            raise optuna.TrialPruned(f"pruned after {pruning.epochs} epochs")
        value = pruning.score(self.score)
        if value is None:
            raise fail(
                "monitor",
                self.monitor,
                f"was never validated in trial {trial.number}: the Trainer ran no validation",
                "Give it validation data and keep `limit_val_batches` above 0.",
            )
        return value
