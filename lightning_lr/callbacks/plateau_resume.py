"""PlateauResume: the epoch-end steps of ReduceLROnPlateau that Lightning drops after a resume."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
from typing_extensions import override

from lightning_lr._internals import at_last_batch_of_epoch, fit_is_restarting, run_fit_validation


class PlateauResume(pl.Callback):
    """Take the epoch-end steps of plateau schedulers that Lightning skips around a resume.

    Two steps go missing when a run resumes from a checkpoint written mid-epoch, as
    ``ModelCheckpoint(every_n_train_steps=...)`` writes them:

    * Lightning does not step ``ReduceLROnPlateau`` at the end of the epoch the run resumes in
      (the fit loop skips it while it is restarting). That epoch's validation runs, so this
      callback takes the step with the metric it just logged, exactly when Lightning skips it.
    * A checkpoint written after the last training batch of an epoch but before that epoch's
      validation resumes into the next epoch: Lightning never runs the pending validation, so
      the decision it feeds is lost. The checkpoint records that the validation was pending; on
      resume, before the first batch, this callback runs it on the restored weights (through the
      fit's own validation loop, so callbacks and loggers see it as the uninterrupted run did) and
      steps the plateau schedulers with its metric. (With a loader that resumes mid-epoch,
      Lightning then closes the finished epoch once more, without batches; that close takes no
      second step.)

    Only end-of-epoch validation (``val_check_interval=1.0``, the default) is tracked as pending.
    A checkpoint written after the epoch's validation needs neither: Lightning resumes past it.
    ``ConfigureOptimizersMixin`` adds this callback for plateau schedules; every rank does the same
    work, so it is safe under DDP.
    """

    def __init__(self) -> None:
        self._trainer: pl.Trainer | None = None
        self._validated_since_batch = False
        self._pending_epoch: int | None = None
        self._trained = False  # a batch ran since this fit started

    @override
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._trainer = trainer

    @override
    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        self._validated_since_batch = False
        self._trained = True

    @override
    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._validated_since_batch = True

    def _validation_pending(self) -> int | None:
        """The epoch whose end-of-epoch validation has not run yet, when saving after its last batch."""
        trainer = self._trainer
        if trainer is None or not trainer.training or self._validated_since_batch:
            return None
        if not at_last_batch_of_epoch(trainer) or not trainer.enable_validation:
            return None
        every = trainer.check_val_every_n_epoch
        if trainer.val_check_interval != 1.0 or every is None or (trainer.current_epoch + 1) % every:
            return None
        return trainer.current_epoch

    @override
    def state_dict(self) -> dict[str, Any]:
        return {"pending_validation_epoch": self._validation_pending()}

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._pending_epoch = state_dict.get("pending_validation_epoch")

    @staticmethod
    def _step(trainer: pl.Trainer, pl_module: pl.LightningModule, epoch: int) -> None:
        """Step the epoch-interval plateau schedulers due after ``epoch`` with their metric."""
        for config in trainer.lr_scheduler_configs:
            if not config.reduce_on_plateau or config.interval != "epoch" or config.monitor is None:
                continue
            if (epoch + 1) % config.frequency:
                continue
            value = trainer.callback_metrics.get(config.monitor)
            if value is not None:
                pl_module.lr_scheduler_step(config.scheduler, value)

    @override
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._trained = False
        pending, self._pending_epoch = self._pending_epoch, None
        if pending is None or not fit_is_restarting(trainer):
            return
        run_fit_validation(trainer)
        self._step(trainer, pl_module, pending)

    @override
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if fit_is_restarting(trainer) and self._trained:
            self._step(trainer, pl_module, trainer.current_epoch)
