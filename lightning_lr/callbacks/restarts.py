"""WarmRestarts: SGDR as a callback, for modules without a schedule of their own."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.utilities import rank_zero_info
from torch.optim import Optimizer
from typing_extensions import override

from lightning_lr.callbacks.overlay import ScheduleOverlay
from lightning_lr.lengths import Length
from lightning_lr.schedules import CosineRestarts


class WarmRestarts(ScheduleOverlay):
    """Cosine annealing with warm restarts (SGDR, Loshchilov & Hutter 2017) on top of any optimizer.

    Step for step equal to :class:`~lightning_lr.schedules.CosineRestarts` times the LR the module
    would otherwise use (its own constant LR, or its scheduler's). Cycles may be given in steps,
    ``"N epochs"`` or fractions of the run; ``cycle_mult`` may be any float >= 1. Each restart is
    logged as ``lr_restart/cycle`` and kept in :attr:`restarts` (step, cycle index).

    Example (YAML)::

        trainer:
          callbacks:
            - class_path: lightning_lr.WarmRestarts
              init_args: {cycle_steps: 2 epochs, cycle_mult: 2.0, peak_decay: 0.7}
    """

    def __init__(
        self,
        cycle_steps: Length,
        cycle_mult: float = 1.0,
        peak_decay: float = 1.0,
        min_factor: float = 0.0,
        max_cycles: int | None = None,
    ) -> None:
        super().__init__(
            CosineRestarts(cycle_steps, cycle_mult, peak_decay, min_factor, max_cycles), name="restarts"
        )
        self.restarts: list[tuple[int, int]] = []

    @override
    def on_before_optimizer_step(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: Optimizer
    ) -> None:
        super().on_before_optimizer_step(trainer, pl_module, optimizer)
        schedule = self.resolved
        if not isinstance(schedule, CosineRestarts) or optimizer is not trainer.optimizers[0]:
            return
        step = trainer.global_step
        cycle, position, _ = schedule.cycle_at(step)
        if position == 0 and step > 0 and (schedule.max_cycles is None or cycle < schedule.max_cycles):
            self.restarts = [*self.restarts[-999:], (step, cycle)]  # bounded history
            for logger in trainer.loggers:
                logger.log_metrics({"lr_restart/cycle": float(cycle)}, step=step)
            rank_zero_info(f"WarmRestarts: cycle {cycle} starts at optimizer step {step}.")

    @override
    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "restarts": [list(item) for item in self.restarts]}

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self.restarts = [(int(step), int(cycle)) for step, cycle in state_dict.get("restarts", [])]
