"""OptimizerMode: keep schedule-free optimizers in the mode that matches the Trainer's stage."""

from __future__ import annotations

import lightning.pytorch as pl
from lightning.pytorch.trainer.states import TrainerFn
from typing_extensions import override

from lightning_lr.optimizers import has_mode_switch


class OptimizerMode(pl.Callback):
    """Switch optimizers that have ``train()``/``eval()`` (schedule-free ones) with the Trainer.

    Schedule-free optimizers (Defazio et al. 2024) keep two sequences of weights: training steps
    use one, evaluation must use the average. They need ``optimizer.eval()`` before validation,
    testing and prediction, and ``optimizer.train()`` before training resumes; Lightning does not
    do this. ``ConfigureOptimizersMixin`` adds this callback by itself for schedule-free optimizers.
    """

    @staticmethod
    def _switch(trainer: pl.Trainer, mode: str) -> None:
        for optimizer in trainer.optimizers:
            if has_mode_switch(optimizer):
                getattr(optimizer, mode)()

    @override
    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._switch(trainer, "train")

    @override
    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._switch(trainer, "eval")

    @override
    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.state.fn == TrainerFn.FITTING:
            self._switch(trainer, "train")

    @override
    def on_test_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._switch(trainer, "eval")

    @override
    def on_predict_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._switch(trainer, "eval")
