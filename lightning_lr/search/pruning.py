"""TrialPruning: report a trial's learning curve to Optuna, and stop it when pruned or diverged."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Literal

import lightning.pytorch as pl
import torch
from typing_extensions import override

from lightning_lr._validate import check_choice

if TYPE_CHECKING:
    import optuna

Mode = Literal["min", "max"]
Score = Literal["best", "last"]


def trial_score(values: list[float], mode: Mode, score: Score) -> float | None:
    """The value a trial is judged by: its best (``mode``-aware) or last monitored value.

    Example:
        >>> trial_score([0.5, 0.2, 0.3], "min", "best"), trial_score([0.5, 0.2, 0.3], "min", "last")
        (0.2, 0.3)
    """
    if not values:
        return None
    if score == "last":
        return values[-1]
    return min(values) if mode == "min" else max(values)


class TrialPruning(pl.Callback):
    """Report ``monitor`` to an Optuna trial after each validation; stop the fit when it is pruned.

    At the end of each validation (not the sanity check) the monitored value is reported to the
    trial with the epoch as the step, and if ``trial.should_prune()`` the run stops cleanly
    (``trainer.should_stop``) and :attr:`pruned` is set: nothing is raised through Lightning, the
    search raises ``optuna.TrialPruned`` after ``fit`` returns. A non-finite training loss (on any
    rank) or monitored value stops the run too and sets :attr:`diverged`. Rank 0 takes the pruning
    decision and broadcasts it, so every DDP rank stops together.

    Args:
        trial: the Optuna trial (only rank 0 uses it; ``None`` elsewhere is fine).
        monitor: the validation metric to report, as logged with ``self.log``.
        mode: ``"min"`` when lower is better, ``"max"`` when higher is.

    Raises:
        ValueError: ``monitor`` was not logged by the end of a validation (the message lists
            the metrics that were).
    """

    def __init__(
        self, trial: optuna.trial.BaseTrial | None, monitor: str = "val_loss", mode: Mode = "min"
    ) -> None:
        self.trial = trial
        self.monitor = monitor
        self.mode: Mode = check_choice("mode", mode, ("min", "max"))  # type: ignore[assignment]
        self.values: list[float] = []
        self.epochs = 0
        self.pruned = False
        self.diverged = False
        self._last_step: int | None = None

    @property
    def stopped(self) -> bool:
        """The trial was pruned or diverged."""
        return self.pruned or self.diverged

    def score(self, score: Score = "best") -> float | None:
        """The trial's best or last monitored value (``None`` before any validation)."""
        return trial_score(self.values, self.mode, score)

    @override
    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.epochs += 1

    @override
    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self.stopped:
            return
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        finite = not isinstance(loss, torch.Tensor) or bool(torch.isfinite(loss.detach()).all())
        if trainer.strategy.reduce_boolean_decision(not finite, all=False):
            self.diverged = True
            trainer.should_stop = True

    @override
    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or self.stopped:
            return
        metrics = trainer.callback_metrics
        if self.monitor not in metrics:
            available = ", ".join(sorted(metrics)) or "none"
            raise ValueError(
                f"TrialPruning: `monitor`={self.monitor!r} was not logged. Log it in validation_step "
                f"with self.log({self.monitor!r}, value), or pass the name you log. Logged: {available}."
            )
        value = float(metrics[self.monitor])
        decision = None
        if trainer.is_global_zero:
            decision = self._decide(value, step=trainer.current_epoch)
        decision = trainer.strategy.broadcast(decision, src=0)
        if math.isfinite(value):
            self.values.append(value)
        if decision == "diverged":
            self.diverged = True
        elif decision == "pruned":
            self.pruned = True
        if self.stopped:
            trainer.should_stop = True

    def _decide(self, value: float, step: int) -> str | None:
        if not math.isfinite(value):
            return "diverged"
        if self.trial is None:
            return None
        if step != self._last_step:  # a second validation in an epoch is judged on the first's report
            self.trial.report(value, step)
            self._last_step = step
        return "pruned" if self.trial.should_prune() else None
