"""ScheduleLR: the torch adapter keeps group ratios, checkpoints as plain data and resumes exactly."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import pytest
import torch

from lightning_lr import ReduceOnPlateau
from lightning_lr.schedule_lr import ScheduleLR
from lightning_lr.schedules import (
    Constant,
    CosineDecay,
    CosineRestarts,
    Schedule,
    StepDecay,
    Warmup,
)

LRS = (0.1, 0.02, 3e-4)
WARMUP = 15
# SGDR cycles of 20, 40, 80 steps after a 15-step warmup: restarts at steps 35 and 75.
SCHEDULE = Warmup(CosineRestarts(20, cycle_mult=2.0, peak_decay=0.5, min_factor=0.01), WARMUP)
STEPS = 160


@dataclass(frozen=True)
class UserHalving(Schedule):
    """A user's own schedule, outside lightning_lr: halves every ``every`` steps."""

    every: int = 4

    def value(self, step: int) -> float:
        return 0.5 ** (step // self.every)


def _optimizer(lrs: tuple[float, ...] = LRS) -> torch.optim.SGD:
    groups = [
        {"params": [torch.nn.Parameter(torch.full((2,), float(i)))], "lr": lr} for i, lr in enumerate(lrs)
    ]
    return torch.optim.SGD(groups, lr=lrs[0], momentum=0.9)


def _train_step(optimizer: torch.optim.Optimizer, scheduler: ScheduleLR) -> None:
    for group in optimizer.param_groups:
        for parameter in group["params"]:
            parameter.grad = torch.ones_like(parameter)
    optimizer.step()
    scheduler.step()


def _lrs(optimizer: torch.optim.Optimizer) -> list[float]:
    return [group["lr"] for group in optimizer.param_groups]


def _round_trip(state: dict[str, Any]) -> dict[str, Any]:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    loaded: dict[str, Any] = torch.load(buffer, weights_only=True)
    return loaded


def _uninterrupted() -> list[list[float]]:
    optimizer = _optimizer()
    scheduler = ScheduleLR(optimizer, SCHEDULE)
    history = [scheduler.get_last_lr()]
    for _ in range(STEPS):
        _train_step(optimizer, scheduler)
        history.append(scheduler.get_last_lr())
    return history


def test_lr_is_base_times_schedule_and_group_ratios_are_kept() -> None:
    optimizer = _optimizer()
    scheduler = ScheduleLR(optimizer, SCHEDULE)
    for step in range(STEPS):
        if step:
            _train_step(optimizer, scheduler)
        factor = SCHEDULE(step)
        assert scheduler.get_last_lr() == [lr * factor for lr in LRS], step
        assert _lrs(optimizer) == scheduler.get_last_lr()
        current = _lrs(optimizer)
        assert [lr / current[0] for lr in current] == pytest.approx([lr / LRS[0] for lr in LRS], rel=1e-12)


def test_state_dict_is_plain_data_that_loads_with_weights_only() -> None:
    optimizer = _optimizer()
    scheduler = ScheduleLR(optimizer, SCHEDULE)
    for _ in range(5):
        _train_step(optimizer, scheduler)
    state = _round_trip(scheduler.state_dict())
    assert state["schedule"] == SCHEDULE.to_config()
    assert state["last_epoch"] == 5
    assert state["base_lrs"] == list(LRS)
    assert not any(isinstance(value, Schedule) for value in state.values())


# mid-warmup, the last warmup step, on a restart (35), just after it, on the next restart (75), late.
RESUME_AT = [1, 7, WARMUP - 1, WARMUP, 35, 36, 75, 120]


@pytest.mark.parametrize("resume_at", RESUME_AT)
def test_resume_from_a_checkpoint_is_exact(resume_at: int) -> None:
    expected = _uninterrupted()
    optimizer = _optimizer()
    scheduler = ScheduleLR(optimizer, SCHEDULE)
    for _ in range(resume_at):
        _train_step(optimizer, scheduler)
    checkpoint = _round_trip({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()})

    # A fresh run built the way Lightning restores one: optimizer and scheduler first (here with
    # another schedule, which the checkpoint must replace), then both states loaded.
    resumed_optimizer = _optimizer()
    resumed = ScheduleLR(resumed_optimizer, Constant(0.5))
    resumed_optimizer.load_state_dict(checkpoint["optimizer"])
    resumed.load_state_dict(checkpoint["scheduler"])

    assert resumed.schedule == SCHEDULE
    assert resumed.last_epoch == resume_at
    assert resumed.get_last_lr() == expected[resume_at]
    assert _lrs(resumed_optimizer) == expected[resume_at]
    for step in range(resume_at + 1, STEPS + 1):
        _train_step(resumed_optimizer, resumed)
        assert resumed.get_last_lr() == expected[step], step
        assert _lrs(resumed_optimizer) == expected[step], step


def test_resume_needs_no_replay_even_without_the_optimizer_state() -> None:
    # The LR is a closed form of the step: the scheduler state alone puts the next step right.
    expected = _uninterrupted()
    optimizer = _optimizer()
    scheduler = ScheduleLR(optimizer, SCHEDULE)
    for _ in range(35):
        _train_step(optimizer, scheduler)
    state = _round_trip(scheduler.state_dict())
    resumed_optimizer = _optimizer()
    resumed = ScheduleLR(resumed_optimizer, StepDecay(3))
    resumed.load_state_dict(state)
    for step in range(36, 60):
        _train_step(resumed_optimizer, resumed)
        assert resumed.get_last_lr() == expected[step], step


def test_last_epoch_resumes_by_hand() -> None:
    optimizer = _optimizer()
    for group in optimizer.param_groups:
        group["initial_lr"] = group["lr"]
    scheduler = ScheduleLR(optimizer, SCHEDULE, last_epoch=34)
    assert scheduler.last_epoch == 35
    assert scheduler.get_last_lr() == [lr * SCHEDULE(35) for lr in LRS]
    assert SCHEDULE(35) == 0.5  # the second SGDR cycle starts at half the peak


def test_loading_a_state_that_describes_no_schedule_is_refused() -> None:
    scheduler = ScheduleLR(_optimizer(), CosineDecay(10))
    state = scheduler.state_dict()
    with pytest.raises(
        TypeError, match=r"`state_dict\['schedule'\]` must describe a Schedule, got ReduceOnPlateau"
    ):
        scheduler.load_state_dict({**state, "schedule": ReduceOnPlateau().to_config()})
    with pytest.raises(ValueError, match=r"`state_dict\['schedule'\]` names an unknown class 'Gone'"):
        scheduler.load_state_dict({**state, "schedule": {"class_path": "Gone", "init_args": {}}})
    assert scheduler.schedule == CosineDecay(10)


@pytest.mark.parametrize(
    ("schedule", "error", "match"),
    [
        (lambda step: 1.0, TypeError, r"`schedule` must be a lightning_lr Schedule, got <function"),
        (ReduceOnPlateau(), TypeError, r"`schedule` must be a lightning_lr Schedule, got ReduceOnPlateau\("),
        ("CosineDecay", TypeError, r"`schedule` must be a lightning_lr Schedule, got 'CosineDecay'"),
        (
            CosineDecay(0.5),
            ValueError,
            r"`schedule` CosineDecay\(total_steps=0\.5.*still has lengths .*\.resolve\(",
        ),
        (Warmup(Constant(), "1 epoch"), ValueError, r"`schedule` Warmup\(.*'1 epoch'.*still has lengths"),
    ],
)
def test_bad_schedule_is_refused_before_the_optimizer_is_touched(
    schedule: Any, error: type, match: str
) -> None:
    optimizer = _optimizer()
    with pytest.raises(error, match=match):
        ScheduleLR(optimizer, schedule)
    assert _lrs(optimizer) == list(LRS)
    assert all("initial_lr" not in group for group in optimizer.param_groups)


def test_a_users_own_schedule_survives_a_checkpoint() -> None:
    schedule = Warmup(UserHalving(every=3), warmup_steps=2)
    optimizer = _optimizer()
    scheduler = ScheduleLR(optimizer, schedule)
    for _ in range(6):
        _train_step(optimizer, scheduler)
    state = _round_trip(scheduler.state_dict())
    assert state["schedule"]["init_args"]["schedule"]["class_path"] == f"{__name__}.UserHalving"

    resumed_optimizer = _optimizer()
    resumed = ScheduleLR(resumed_optimizer, Constant())
    resumed.load_state_dict(state)
    assert resumed.schedule == schedule
    for step in range(7, 20):
        _train_step(optimizer, scheduler)
        _train_step(resumed_optimizer, resumed)
        assert resumed.get_last_lr() == scheduler.get_last_lr() == [lr * schedule(step) for lr in LRS]
