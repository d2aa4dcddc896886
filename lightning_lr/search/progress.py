"""What a search shows while it runs: a progress bar over the trials, and quieter logs."""

from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import Iterator

import optuna

from lightning_lr._internals import ProgressBar, process_rank
from lightning_lr.logs import quiet_lightning


@contextlib.contextmanager
def quiet_logs() -> Iterator[None]:
    """Optuna's and Lightning's info messages off for the search (warnings stay), restored after."""
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        with quiet_lightning(), warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            yield
    finally:
        optuna.logging.set_verbosity(verbosity)


class SearchProgress:
    """A bar over this worker's trials in Lightning's look; an Optuna callback after each trial."""

    def __init__(self, total: int, monitor: str, *, enabled: bool) -> None:
        self.monitor = monitor
        self.bar: ProgressBar | None = None
        if enabled and process_rank() == 0:
            self.bar = ProgressBar(
                total=total,
                desc="Search",
                file=sys.stdout,
                dynamic_ncols=True,
                smoothing=0,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} trials "
                "[{elapsed}<{remaining}{postfix}]",
            )

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if self.bar is None:
            return
        done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        if done:
            top = study.best_trial
            text = f"best {self.monitor}={top.value:.4g} at lr={top.params['lr']:.3g}"
            self.bar.set_postfix_str(text, refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@contextlib.contextmanager
def search_progress(total: int, monitor: str, *, enabled: bool) -> Iterator[SearchProgress]:
    progress = SearchProgress(total, monitor, enabled=enabled)
    try:
        yield progress
    finally:
        progress.close()
