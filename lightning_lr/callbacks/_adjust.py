"""Lasting LR changes: scale every group and every scheduler's base LRs, so the change sticks."""

from __future__ import annotations

import lightning.pytorch as pl
from torch.optim.lr_scheduler import LRScheduler


def scale_lrs(trainer: pl.Trainer, factor: float) -> None:
    """Multiply the LR of every param group, its ``initial_lr`` and the schedulers' base LRs.

    A closed-form scheduler recomputes the LR from its base LRs at its next step, so changing only
    ``group["lr"]`` would be undone; ReduceLROnPlateau and chainable schedulers read the group's LR
    and keep the change.
    """
    if factor == 1.0:
        return
    for optimizer in trainer.optimizers:
        for group in optimizer.param_groups:
            group["lr"] *= factor
            if "initial_lr" in group:
                group["initial_lr"] *= factor
    for config in trainer.lr_scheduler_configs:
        if isinstance(config.scheduler, LRScheduler):
            config.scheduler.base_lrs = [base * factor for base in config.scheduler.base_lrs]
