"""ScheduleOverlay: apply a pure schedule on top of whatever scheduler the module has."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import LearningRateMonitor
from torch.optim import Optimizer
from typing_extensions import override

from lightning_lr.callbacks._overlay import restore_lr, scale_lr
from lightning_lr.lengths import run_length_from_trainer
from lightning_lr.schedules import Schedule, schedule_from_config


class ScheduleOverlay(pl.Callback):
    """Multiply every group's LR by ``schedule(k)`` at optimizer step ``k``, as an overlay.

    The factor is applied from the start of the step's first batch (``on_train_batch_start``;
    under gradient accumulation it stays through every micro-batch of the step) and taken back
    right after the optimizer update, so ``param_groups[i]["lr"]`` shows the LR the step uses to
    Lightning's ``LearningRateMonitor`` and any logging, while the module's own scheduler (none,
    :class:`~lightning_lr.ScheduleLR`, a torch chainable scheduler or ``ReduceLROnPlateau``) keeps
    computing exactly what it would alone. Lengths in epochs or fractions resolve against the run
    when fit starts; ``k`` counts optimizer steps (``trainer.global_step``), so gradient
    accumulation counts once and resume is exact.

    Lightning calls callbacks in the order given, so an overlay must come before a
    ``LearningRateMonitor`` in the Trainer's callbacks (it refuses otherwise, before training).

    Args:
        schedule: the multiplier as a function of the optimizer step.
        name: distinguishes overlays on the same optimizer (they multiply).
    """

    def __init__(self, schedule: Schedule, *, name: str | None = None) -> None:
        if not isinstance(schedule, Schedule):
            raise TypeError(f"`schedule` must be a lightning_lr Schedule, got {schedule!r}.")
        self.schedule = schedule
        self.name = name or type(self).__name__
        self.resolved: Schedule | None = None
        self._batch_step = -1

    def build_schedule(self, trainer: pl.Trainer) -> Schedule:
        """The schedule to resolve when fit starts (subclasses derive it from the trainer)."""
        return self.schedule

    @property
    def state_key(self) -> str:
        return f"{type(self).__name__}[{self.name}]"

    @override
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        callbacks: list[pl.Callback] = trainer.callbacks  # type: ignore[attr-defined]
        position = next(i for i, callback in enumerate(callbacks) if callback is self)
        monitors = [type(c).__name__ for c in callbacks[:position] if isinstance(c, LearningRateMonitor)]
        if stage == "fit" and monitors:
            raise ValueError(
                f"`{type(self).__name__}` comes after {monitors[0]} in the Trainer's callbacks, so the "
                "monitor would log the LR without it: Lightning calls callbacks in the order given. "
                f"Put {type(self).__name__} before {monitors[0]}."
            )

    @override
    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.resolved is None:  # a resumed run keeps the checkpoint's resolution
            self.resolved = self.build_schedule(trainer).resolve(run_length_from_trainer(trainer))

    @override
    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self._batch_step = step = trainer.global_step
        if self.resolved is not None:
            factor = self.resolved.value(step)
            if factor != 1.0:  # a factor of 1 (a warmup's end) leaves the LR as the scheduler set it
                for optimizer in trainer.optimizers:
                    scale_lr(optimizer, self.name, factor)

    @override
    def on_before_optimizer_step(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: Optimizer
    ) -> None:
        # Again (idempotent): a second update in the batch, or a state loaded since, needs it back.
        if self.resolved is not None:
            factor = self.resolved.value(trainer.global_step)
            if factor != 1.0:
                scale_lr(optimizer, self.name, factor)

    @override
    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if trainer.global_step == self._batch_step:
            return  # a micro-batch of gradient accumulation: the step's LR stays until its update
        for optimizer in trainer.optimizers:  # an update skipped by AMP never reached the post-hook
            restore_lr(optimizer)

    @override
    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        for optimizer in trainer.optimizers:
            restore_lr(optimizer)

    def factor(self, step: int) -> float:
        """The multiplier at optimizer ``step`` (after fit has started)."""
        if self.resolved is None:
            raise RuntimeError(f"{type(self).__name__} resolves its lengths when fit starts.")
        return self.resolved.value(step)

    @override
    def state_dict(self) -> dict[str, Any]:
        return {"resolved": None if self.resolved is None else self.resolved.to_config()}

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        config = state_dict.get("resolved")
        resolved = None if config is None else schedule_from_config(config, name="resolved")
        self.resolved = resolved if isinstance(resolved, Schedule) else None
