"""The LR a training run will use at every optimizer step, computed without training.

A plan of an optimizer and its scheduler; :mod:`lightning_lr.callbacks.plan_recorder` plans a Trainer's
run (with its overlay callbacks) when training starts."""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass, field

from lightning.pytorch.utilities.types import LRSchedulerConfig
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler, ReduceLROnPlateau

from lightning_lr.lengths import scheduler_steps_before
from lightning_lr.schedule_lr import ScheduleLR


@dataclass
class LRPlan:
    """Per param group, the LR of each optimizer step of a run.

    Attributes:
        names: one label per param group (``name`` of the group when set).
        lrs: ``lrs[g][k]`` is the LR of group ``g`` at optimizer step ``k``.
        steps_per_epoch: optimizer steps per epoch, when known (for epoch ticks).
        notes: what the plan cannot know in advance (a plateau's reductions).
    """

    names: list[str]
    lrs: list[list[float]]
    steps_per_epoch: float | None = None
    notes: list[str] = field(default_factory=list)


def plan_lrs(
    optimizer: Optimizer,
    scheduler_config: LRSchedulerConfig | None,
    *,
    total_steps: int,
    steps_per_epoch: float | None = None,
    step_every: int = 1,
) -> LRPlan:
    """The LR of each group for optimizer steps ``0 .. total_steps - 1``, from a fresh setup.

    A :class:`~lightning_lr.ScheduleLR` is evaluated in closed form; another torch scheduler is
    stepped on a copy (the optimizer's state and parameters are not copied); ``ReduceLROnPlateau``
    depends on the metric and is drawn flat, with a note. ``step_every`` is how many of Lightning's
    scheduler calls make one real step (the mixin's ``scheduler_step_every``).
    """
    groups = optimizer.param_groups
    names = [str(group.get("name", f"group {i}")) for i, group in enumerate(groups)]
    current = [float(group["lr"]) for group in groups]
    notes: list[str] = []
    if scheduler_config is None:
        return LRPlan(names, [[lr] * total_steps for lr in current], steps_per_epoch, notes)
    scheduler = scheduler_config.scheduler
    taken = [
        scheduler_steps_before(
            k,
            interval=scheduler_config.interval,  # type: ignore[arg-type]
            frequency=scheduler_config.frequency,
            steps_per_epoch=steps_per_epoch,
            step_every=step_every,
        )
        for k in range(total_steps)
    ]
    if isinstance(scheduler, ScheduleLR):
        start = scheduler.last_epoch
        factors = [scheduler.schedule.value(start + n) for n in taken]
        lrs = [[float(base) * factor for factor in factors] for base in scheduler.base_lrs]
        return LRPlan(names, lrs, steps_per_epoch, notes)
    if isinstance(scheduler, ReduceLROnPlateau):
        notes.append(
            f"ReduceLROnPlateau lowers the LR when `{scheduler_config.monitor}` stops improving; "
            "drawn here without reductions."
        )
        return LRPlan(names, [[lr] * total_steps for lr in current], steps_per_epoch, notes)
    return LRPlan(names, _stepped_copy(scheduler, taken), steps_per_epoch, notes)


def _stepped_copy(scheduler: LRScheduler, taken: list[int]) -> list[list[float]]:
    optimizer = scheduler.optimizer
    shared = {id(p): p for group in optimizer.param_groups for p in group["params"]}
    shared[id(optimizer.state)] = {}
    twin = copy.deepcopy(scheduler, memo=shared)
    lrs: list[list[float]] = [[] for _ in optimizer.param_groups]
    done = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "lr_scheduler.step() before optimizer.step()": no training here
        for needed in taken:
            while done < needed:
                twin.step()
                done += 1
            for g, group in enumerate(twin.optimizer.param_groups):
                lrs[g].append(float(group["lr"]))
    return lrs
