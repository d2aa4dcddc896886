"""LRWarmup: a warmup ramp as a callback, on top of any scheduler, ReduceLROnPlateau included."""

from __future__ import annotations

import math
from typing import Literal

import lightning.pytorch as pl

from lightning_lr._validate import check_choice, fail
from lightning_lr.callbacks.overlay import ScheduleOverlay
from lightning_lr.lengths import Length, check_length
from lightning_lr.schedule_lr import ScheduleLR
from lightning_lr.schedules import Constant, Schedule, Warmup
from lightning_lr.schedules.warmup import check_warmup_shape

CallbackWarmupShape = Literal["linear", "exponential", "cosine", "untuned"]


class LRWarmup(ScheduleOverlay):
    """Warm the LR up over the first optimizer steps, whatever scheduler the module uses.

    torch's ``SequentialLR`` refuses ``ReduceLROnPlateau`` and Lightning has no warmup; this one
    scales the LR as an overlay (see :class:`ScheduleOverlay`): after the warmup the LR is exactly
    what the scheduler alone would have produced, a plateau reduction decided during the warmup is
    kept, step 0 never has a zero LR, and every param group keeps its ratio to the others.

    Args:
        warmup_steps: length of the ramp: steps, ``"N epochs"`` or a fraction of the run. Not
            needed for ``shape="untuned"``.
        shape: ``"linear"``, ``"exponential"``, ``"cosine"`` or ``"untuned"``: a linear ramp over
            ``2 / (1 - beta2)`` steps, read from an Adam-family optimizer (Ma & Yarats 2021,
            arXiv:1910.04209).
        start_factor: where the ramp starts (default 0; 0.01 for the exponential shape).

    Example (YAML)::

        trainer:
          callbacks:
            - class_path: lightning_lr.LRWarmup
              init_args: {warmup_steps: 1 epoch, shape: cosine}
    """

    def __init__(
        self,
        warmup_steps: Length | None = None,
        shape: CallbackWarmupShape = "linear",
        start_factor: float | None = None,
    ) -> None:
        check_choice("shape", shape, ("linear", "exponential", "cosine", "untuned"))
        if shape == "untuned":
            if warmup_steps is not None:
                raise fail(
                    "warmup_steps",
                    warmup_steps,
                    "is derived from beta2 with shape='untuned'",
                    "Leave it out, or pick another shape.",
                )
            check_warmup_shape("linear", start_factor)
        else:
            if warmup_steps is None:
                raise fail("warmup_steps", None, "is required", 'e.g. 500, "1 epoch" or 0.05 of the run.')
            check_length("warmup_steps", warmup_steps)
            check_warmup_shape(shape, start_factor)
        self.warmup_steps = warmup_steps
        self.shape = shape
        self.start_factor = start_factor
        ramp = "linear" if shape == "untuned" else shape
        super().__init__(Warmup(Constant(), warmup_steps or 1, ramp, start_factor), name="warmup")

    @property
    def state_key(self) -> str:
        return f"Warmup[{self.name}]"  # the key its checkpoints have always used (the class was Warmup)

    def build_schedule(self, trainer: pl.Trainer) -> Schedule:
        if self.shape != "untuned":
            return self.schedule
        betas = trainer.optimizers[0].param_groups[0].get("betas") if trainer.optimizers else None
        if not betas:
            raise ValueError(
                "`shape`='untuned' needs an Adam-family optimizer (one with `betas`), got "
                f"{type(trainer.optimizers[0]).__name__ if trainer.optimizers else None}. "
                "Give `warmup_steps` and another shape instead."
            )
        steps = math.ceil(2.0 / (1.0 - float(betas[1])))
        return Warmup(Constant(), steps, "linear", self.start_factor)


def warmup_end(trainer: pl.Trainer) -> int:
    """The first optimizer step after every warmup of the run: of the overlays' schedules (a
    :class:`LRWarmup` callback) and of the schedulers' (a warmup anywhere in a composed schedule, the
    rise of ``OneCycle``, ...), each schedule asked for its own ramp (:meth:`Schedule.warmup_end`)."""
    ends = [0]
    for callback in trainer.callbacks:  # type: ignore[attr-defined]
        if isinstance(callback, ScheduleOverlay) and callback.resolved is not None:
            ends.append(callback.resolved.warmup_end())
    for config in trainer.lr_scheduler_configs:
        scheduler = config.scheduler
        if not isinstance(scheduler, ScheduleLR):
            continue
        ramp = scheduler.schedule.warmup_end()
        if config.interval == "epoch":  # the schedule counts scheduler steps of `frequency` epochs
            ramp *= config.frequency * _steps_per_epoch(trainer)
        ends.append(ramp)
    return max(ends)


def _steps_per_epoch(trainer: pl.Trainer) -> int:
    batches = trainer.num_training_batches
    if not math.isfinite(batches) or batches <= 0:
        return 0
    return math.ceil(batches / trainer.accumulate_grad_batches)
