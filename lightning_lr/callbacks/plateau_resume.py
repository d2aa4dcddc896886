"""PlateauResume: the epoch-end step of ReduceLROnPlateau that Lightning drops after a resume."""

from __future__ import annotations

import lightning.pytorch as pl
from typing_extensions import override


class PlateauResume(pl.Callback):
    """Step epoch-interval plateau schedulers at the end of the epoch a run resumed in.

    Lightning does not step ``ReduceLROnPlateau`` at the end of the first epoch after a resume
    (the fit loop skips it while it is restarting, because the metrics of a finished epoch are not
    in the checkpoint). After a checkpoint saved mid-epoch, or after the last batch of an epoch but
    before its validation, as ``ModelCheckpoint(every_n_train_steps=...)`` saves them, that epoch's
    validation does run after the resume, and its step is simply lost: the resumed run lowers the
    LR one plateau later than the uninterrupted run, or not at all. This callback takes that step,
    with the metric the validation just logged, exactly when Lightning skips it; when the metric is
    not there (the checkpoint was saved after the epoch's validation), it does nothing, as
    Lightning. ``ConfigureOptimizersMixin`` adds it for plateau schedules.
    """

    @override
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.fit_loop.restarting:
            return
        for config in trainer.lr_scheduler_configs:
            if not config.reduce_on_plateau or config.interval != "epoch" or config.monitor is None:
                continue
            if (trainer.current_epoch + 1) % config.frequency:
                continue
            value = trainer.callback_metrics.get(config.monitor)
            if value is not None:
                pl_module.lr_scheduler_step(config.scheduler, value)
