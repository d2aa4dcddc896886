"""Properties test_schedules.py does not check: resume through ScheduleLR, length resolution, slopes.

test_schedules.py already checks, for every schedule family and its composites: finite values in
``[0, 1]`` (the documented exceptions: ``Constant`` and ``LinearSchedule`` factors above 1), pickle
and config round trips, the warmup ramp, and the largest step of WSD and 1cycle. Here:

* a ``ScheduleLR`` stopped at any step, saved (``weights_only``), and loaded into a fresh one, goes
  on with the same LRs: the resume the callbacks and the mixin rely on;
* a length written as a fraction of the run, or in epochs, never resolves to fewer steps for a
  longer run (or longer epochs), and a schedule's resolution does the same for every length;
* the smooth families have no step larger than their formula's slope allows.
"""

from __future__ import annotations

import dataclasses
import io
import itertools
import math
from typing import Any

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_schedules import floats, leaves, lengths, schedules, units

from lightning_lr.lengths import RunLength, resolve_length
from lightning_lr.schedule_lr import ScheduleLR
from lightning_lr.schedules import (
    CosineDecay,
    CosineRestarts,
    Cyclic,
    ExponentialDecay,
    InverseTimeDecay,
    LinearSchedule,
    OneCycle,
    PolynomialDecay,
    Schedule,
    StepDecay,
    Warmup,
    WarmupStableDecay,
)

PROPERTY = settings(deadline=None, max_examples=40)


def _scheduler(schedule: Schedule, lrs: tuple[float, ...] = (0.1, 0.03)) -> ScheduleLR:
    groups = [{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": lr} for lr in lrs]
    return ScheduleLR(torch.optim.SGD(groups, lr=lrs[0]), schedule)


def _advance(scheduler: ScheduleLR, steps: int) -> list[list[float]]:
    seen = []
    for _ in range(steps):
        scheduler.optimizer.step()
        scheduler.step()
        seen.append(scheduler.get_last_lr())
    return seen


@PROPERTY
@given(schedules, st.integers(0, 120), st.integers(1, 60))
def test_schedule_lr_resumes_exactly_from_its_weights_only_state(
    schedule: Schedule, stop: int, more: int
) -> None:
    uninterrupted = _scheduler(schedule)
    expected = _advance(uninterrupted, stop + more)[stop:]
    first = _scheduler(schedule)
    _advance(first, stop)
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)
    buffer.seek(0)
    resumed = _scheduler(CosineDecay(7))  # another schedule: the state must bring its own back
    resumed.load_state_dict(torch.load(buffer, weights_only=True))
    assert resumed.schedule == schedule
    assert _advance(resumed, more) == expected


@PROPERTY
@given(floats(0.0, 1.0, exclude_min=True), st.integers(1, 10_000), st.integers(0, 10_000))
def test_a_fraction_never_resolves_shorter_for_a_longer_run(fraction: float, total: int, extra: int) -> None:
    short = resolve_length("length", fraction, RunLength(total))
    long = resolve_length("length", fraction, RunLength(total + extra))
    assert 1 <= short <= long
    assert abs(short - fraction * total) <= 0.5 + 1e-9 or short == 1


@PROPERTY
@given(st.integers(1, 5_000), floats(0.5, 500.0), floats(0.0, 500.0))
def test_epochs_never_resolve_shorter_for_longer_epochs(
    hundredths: int, per_epoch: float, extra: float
) -> None:
    written = f"{hundredths / 100} epochs"  # as people write them: "0.5 epochs", "12.25 epochs"
    short = resolve_length("length", written, RunLength(None, per_epoch))
    long = resolve_length("length", written, RunLength(None, per_epoch + extra))
    assert 1 <= short <= long


def _fractional(draw: st.DrawFn) -> Schedule:
    """A schedule whose lengths are fractions of the run, inside a Warmup or not."""
    fraction = st.floats(0.05, 1.0)
    family = draw(st.sampled_from(["cosine", "step", "polynomial", "onecycle", "restarts", "wsd", "cyclic"]))
    inner: Schedule
    if family == "cosine":
        inner = CosineDecay(draw(fraction))
    elif family == "step":
        inner = StepDecay(draw(fraction), draw(st.floats(0.1, 0.9)))
    elif family == "polynomial":
        inner = PolynomialDecay(draw(fraction), draw(st.floats(0.5, 3.0)))
    elif family == "onecycle":
        inner = OneCycle(1.0, pct_start=draw(st.floats(0.1, 0.5)))
    elif family == "restarts":
        inner = CosineRestarts(draw(st.floats(0.05, 0.5)), draw(st.floats(1.0, 2.0)))
    elif family == "cyclic":
        inner = Cyclic(draw(st.floats(0.05, 0.5)))
    else:
        inner = WarmupStableDecay(1.0, draw(st.floats(0.0, 0.3)) or 0, draw(st.floats(0.05, 0.5)))
    return Warmup(inner, draw(st.floats(0.01, 0.3))) if draw(st.booleans()) else inner


fractional = st.composite(_fractional)()


def _resolved_lengths(schedule: Schedule) -> list[int]:
    found = []
    for field in dataclasses.fields(schedule):  # type: ignore[arg-type]
        value = getattr(schedule, field.name)
        if isinstance(value, Schedule):
            found += _resolved_lengths(value)
        elif field.name in type(schedule)._lengths:
            found += list(value) if isinstance(value, tuple) else [value]
    return found


@PROPERTY
@given(fractional, st.integers(40, 5_000), st.integers(0, 5_000))
def test_resolving_against_a_longer_run_never_shortens_a_length(
    schedule: Schedule, total: int, extra: int
) -> None:
    try:
        short = schedule.resolve(RunLength(total, 10.0))
    except ValueError:  # some phase does not fit in the shorter run (e.g. 1cycle too short): refused
        return
    long = schedule.resolve(RunLength(total + extra, 10.0))
    assert all(a <= b for a, b in zip(_resolved_lengths(short), _resolved_lengths(long), strict=True))


def _slope(schedule: Schedule) -> float | None:
    """The largest change of one step the formula allows, for the smooth families."""
    if isinstance(schedule, CosineDecay):  # f = m + (1 - m) (1 + cos(2 pi c k / T)) / 2
        if schedule.k_decay != 1.0:
            return None  # progress (k / T) ** k_decay: no bound of this form near k = 0
        return (1.0 - schedule.min_factor) * math.pi * schedule.num_cycles / int(schedule.total_steps)
    if isinstance(schedule, LinearSchedule):
        return abs(schedule.end_factor - schedule.start_factor) / int(schedule.total_steps)
    if isinstance(schedule, ExponentialDecay):
        return 1.0 - schedule.gamma
    if isinstance(schedule, InverseTimeDecay) and not schedule.staircase:
        return schedule.decay_rate / int(schedule.decay_steps)
    if isinstance(schedule, PolynomialDecay) and schedule.power >= 1.0:
        return schedule.power * (1.0 - schedule.end_factor) / int(schedule.total_steps)
    return None


@PROPERTY
@given(leaves)
def test_smooth_schedules_have_no_step_larger_than_their_slope(schedule: Schedule) -> None:
    bound = _slope(schedule)
    if bound is None:
        return
    values = [schedule(k) for k in range(300)]
    assert max(abs(b - a) for a, b in itertools.pairwise(values)) <= bound * (1 + 1e-9) + 1e-12


@PROPERTY
@given(lengths, floats(1.0, 3.0), units)
def test_restarts_are_continuous_inside_a_cycle_and_jump_only_at_its_start(
    cycle: int, mult: float, floor: float
) -> None:
    schedule = CosineRestarts(cycle, mult, min_factor=floor)
    for step in range(1, 300):
        _, position, length = schedule.cycle_at(step)
        if position == 0:
            continue  # a restart: the jump back to the peak is the point of SGDR
        slope = (1.0 - floor) * math.pi / (2 * length)
        assert abs(schedule(step) - schedule(step - 1)) <= slope * (1 + 1e-9) + 1e-12


@PROPERTY
@given(st.integers(1, 60), st.none() | st.integers(1, 60), floats(0.0, 0.99))
def test_triangular_cycles_move_at_most_one_ramp_increment(up: int, down: int | None, base: float) -> None:
    schedule = Cyclic(up, down, base)
    bound = (1.0 - base) / min(up, down or up)
    values = [schedule(k) for k in range(300)]
    assert max(abs(b - a) for a, b in itertools.pairwise(values)) <= bound * (1 + 1e-9) + 1e-12


def test_the_slope_table_covers_the_smooth_families() -> None:
    examples: list[Any] = [CosineDecay(10), LinearSchedule(0.1, 1.0, 10), ExponentialDecay(0.9)]
    examples += [InverseTimeDecay(0.5), PolynomialDecay(10, 2.0)]
    assert all(_slope(example) is not None for example in examples)
