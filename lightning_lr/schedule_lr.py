"""ScheduleLR: the thin torch adapter that applies a pure schedule to an optimizer."""

from __future__ import annotations

from typing import Any

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from lightning_lr._internals import with_closed_form
from lightning_lr.schedules import Schedule
from lightning_lr.settings import schedule_from_config


@with_closed_form
class ScheduleLR(LRScheduler):
    """A torch LR scheduler whose LR is ``base_lr * schedule(k)`` for each param group.

    ``k`` counts ``step()`` calls, so param groups keep their LR ratios and any step's LR is
    known without replaying the ones before it. A schedule that sets the momentum too
    (``OneCycle`` and ``Cyclic`` by default) writes ``schedule.momentum(k)`` into each group's
    ``momentum``, or ``betas[0]`` for an optimizer with ``betas``, as torch's ``OneCycleLR`` and
    ``CyclicLR`` do; where it leaves momentum alone the group gets its own value back.

    ``state_dict()`` holds the schedule as plain data (its ``class_path``/``init_args`` form) and
    the groups' own momentums as floats, so a checkpoint loads with
    ``torch.load(weights_only=True)`` and resume is exact.

    Args:
        optimizer: the optimizer whose param groups' ``lr`` is set.
        schedule: a resolved :class:`~lightning_lr.schedules.Schedule` (lengths in steps).
        last_epoch: index of the last step taken, for resuming by hand; -1 starts fresh.

    Raises:
        ValueError: the schedule sets the momentum, but the optimizer has neither ``momentum``
            nor ``betas`` (torch's ``OneCycleLR`` refuses it too).

    Example:
        >>> import torch
        >>> from lightning_lr.schedules import StepDecay
        >>> optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
        >>> scheduler = ScheduleLR(optimizer, StepDecay(step_size=2, gamma=0.5))
        >>> for _ in range(2):
        ...     optimizer.step(); scheduler.step()
        >>> scheduler.get_last_lr()
        [0.5]
    """

    def __init__(self, optimizer: Optimizer, schedule: Schedule, last_epoch: int = -1) -> None:
        if not isinstance(schedule, Schedule):
            raise TypeError(
                f"`schedule` must be a lightning_lr Schedule, got {schedule!r}. For torch schedulers "
                "use them directly; for ReduceOnPlateau use the mixin or torch's ReduceLROnPlateau."
            )
        if not schedule.resolved:
            raise ValueError(
                f"`schedule` {schedule!r} still has lengths in epochs or fractions of the run. Resolve "
                "it first: `schedule.resolve(run_length_from_trainer(trainer))`, or let "
                "ConfigureOptimizersMixin build the scheduler."
            )
        self.schedule = schedule
        self.use_beta1 = "betas" in optimizer.defaults
        self.base_momentums: list[float] | None = None
        if schedule.sets_momentum:
            if "momentum" not in optimizer.defaults and not self.use_beta1:
                raise ValueError(
                    f"`schedule` {schedule!r} cycles the momentum, but {type(optimizer).__name__} has "
                    "neither `momentum` nor `betas`. Pass `cycle_momentum=False` to the schedule, or use "
                    "an optimizer with momentum."
                )
            self.base_momentums = [_momentum_of(group, self.use_beta1) for group in optimizer.param_groups]
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:  # type: ignore[override]
        factor = self.schedule.value(max(self.last_epoch, 0))
        return [float(base) * factor for base in self.base_lrs]

    def step(self, epoch: int | None = None) -> None:
        super().step(epoch)
        if self.base_momentums is None:
            return
        scheduled = self.schedule.momentum(max(self.last_epoch, 0))
        for group, own in zip(self.optimizer.param_groups, self.base_momentums):
            momentum = own if scheduled is None else scheduled
            if self.use_beta1:
                group["betas"] = (momentum, *group["betas"][1:])
            else:
                group["momentum"] = momentum

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["schedule"] = self.schedule.to_config()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state = dict(state_dict)
        schedule = schedule_from_config(state.pop("schedule"), name="state_dict['schedule']")
        if not isinstance(schedule, Schedule):
            raise TypeError(f"`state_dict['schedule']` must describe a Schedule, got {schedule!r}.")
        super().load_state_dict(state)
        self.schedule = schedule


def _momentum_of(group: dict[str, Any], use_beta1: bool) -> float:
    return float(group["betas"][0] if use_beta1 else group["momentum"])
