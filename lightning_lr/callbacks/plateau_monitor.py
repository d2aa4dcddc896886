"""PlateauMonitor: a plateau schedule's ``monitor`` that was never logged, refused with the logged names."""

from __future__ import annotations

import lightning.pytorch as pl
from typing_extensions import override

from lightning_lr._internals import fit_is_restarting
from lightning_lr._validate import fail


class PlateauMonitor(pl.Callback):
    """Stop a run whose per-epoch plateau schedule watches a metric nobody logs.

    Lightning would stop it too, one hook later, with a fix for hand-written scheduler dicts (the
    ``monitor`` key); this says the same in the mixin's terms, with the metrics that were logged.
    A module that logs in its own ``on_train_epoch_end`` (which runs after this hook) is left to
    Lightning's check. ``ConfigureOptimizersMixin`` adds this callback for plateau schedules.
    """

    @override
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if fit_is_restarting(trainer) or _logs_at_epoch_end(pl_module):
            return
        logged = trainer.callback_metrics
        for config in trainer.lr_scheduler_configs:
            due = (trainer.current_epoch + 1) % config.frequency == 0
            if not (config.reduce_on_plateau and config.interval == "epoch" and config.strict and due):
                continue
            if config.monitor is not None and config.monitor not in logged:
                names = ", ".join(repr(name) for name in sorted(logged)) or "none"
                raise fail(
                    "monitor",
                    config.monitor,
                    "was never logged, so the plateau schedule cannot watch it",
                    f"Set `monitor` to a logged metric ({names}), or log it with "
                    f"self.log({config.monitor!r}, ...) in validation_step.",
                )


def _logs_at_epoch_end(pl_module: pl.LightningModule) -> bool:
    return type(pl_module).on_train_epoch_end is not pl.LightningModule.on_train_epoch_end
