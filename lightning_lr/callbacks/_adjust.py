"""Lasting LR changes: scale every group and every scheduler's base LRs, so the change sticks.

Each optimizer's running product of such changes is kept, so that a rollback to an older state
(:class:`~lightning_lr.callbacks.DivergenceGuard`) can re-apply the changes made since, instead of
silently undoing them (``optimizer.load_state_dict`` brings back the old LRs).
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence

import lightning.pytorch as pl
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler, ReduceLROnPlateau

from lightning_lr.callbacks._overlay import scale_own_lrs

_TOTALS: weakref.WeakKeyDictionary[Optimizer, float] = weakref.WeakKeyDictionary()


def total_scales(trainer: pl.Trainer) -> list[float]:
    """The product of the lasting changes made to each optimizer's LR so far."""
    return [_TOTALS.get(optimizer, 1.0) for optimizer in trainer.optimizers]


def scale_lrs(trainer: pl.Trainer, factor: float) -> None:
    """Multiply the LR of every param group, its ``initial_lr`` and the schedulers' base LRs.

    A closed-form scheduler recomputes the LR from its base LRs at its next step, so changing only
    ``group["lr"]`` would be undone; ReduceLROnPlateau and chainable schedulers read the group's LR
    and keep the change.
    """
    for optimizer in trainer.optimizers:
        _TOTALS[optimizer] = _TOTALS.get(optimizer, 1.0) * factor
        _scale(trainer, optimizer, factor)


def reapply_after_restore(trainer: pl.Trainer, saved_totals: Sequence[float]) -> None:
    """After restoring states saved when the totals were ``saved_totals``, bring back the changes since."""
    for optimizer, saved in zip(trainer.optimizers, saved_totals):
        _scale(trainer, optimizer, _TOTALS.get(optimizer, 1.0) / saved)


def _scale(trainer: pl.Trainer, optimizer: Optimizer, factor: float) -> None:
    if factor == 1.0:
        return
    scale_own_lrs(optimizer, factor)  # an overlay applied now would otherwise undo the change
    for group in optimizer.param_groups:
        group["lr"] *= factor
        if "initial_lr" in group:
            group["initial_lr"] *= factor
    for config in trainer.lr_scheduler_configs:
        scheduler = config.scheduler
        # ReduceLROnPlateau (an LRScheduler since torch 2.2) has no base LRs: it reads the group's LR
        if isinstance(scheduler, ReduceLROnPlateau) or not isinstance(scheduler, LRScheduler):
            continue
        if scheduler.optimizer is optimizer:
            scheduler.base_lrs = [base * factor for base in scheduler.base_lrs]
