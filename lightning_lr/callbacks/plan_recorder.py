"""The LR plan of a Trainer's run, overlay callbacks included; recorded when training starts."""

from __future__ import annotations

import math

import lightning.pytorch as pl
from typing_extensions import override

from lightning_lr.callbacks.overlay import ScheduleOverlay
from lightning_lr.lengths import steps_per_epoch
from lightning_lr.preview import LRPlan, plan_lrs


def plan_from_trainer(trainer: pl.Trainer, total_steps: int | None = None) -> LRPlan:
    """The plan of the first optimizer of a Trainer whose fit has set up its optimizers."""
    if not trainer.optimizers:
        raise RuntimeError("The Trainer has no optimizer yet: plan after `configure_optimizers` has run.")
    optimizer = trainer.optimizers[0]
    config = next((c for c in trainer.lr_scheduler_configs if c.scheduler.optimizer is optimizer), None)
    steps = total_steps if total_steps is not None else int(trainer.estimated_stepping_batches)
    per_epoch = steps_per_epoch(trainer)
    every = int(getattr(trainer.lightning_module, "scheduler_step_every", 1))
    plan = plan_lrs(optimizer, config, total_steps=steps, steps_per_epoch=per_epoch, step_every=every)
    overlays = [c for c in trainer.callbacks if isinstance(c, ScheduleOverlay)]  # type: ignore[attr-defined]
    if overlays:  # Warmup, WarmRestarts, ...: they multiply whatever the scheduler gives
        factors = [math.prod(overlay.factor(k) for overlay in overlays) for k in range(steps)]
        plan.lrs = [[lr * factor for lr, factor in zip(lrs, factors)] for lrs in plan.lrs]
    return plan


class PlanAtTrainStart(pl.Callback):
    """Records the run's LR plan when training starts and, with ``stop=True``, ends fit there."""

    def __init__(self, stop: bool = True) -> None:
        self.stop = stop
        self.plan: LRPlan | None = None

    @override
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.plan = plan_from_trainer(trainer)
        if self.stop:
            trainer.should_stop = True
