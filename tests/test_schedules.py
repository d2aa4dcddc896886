"""Pure schedules: contract values, closed forms, torch's schedulers as live oracles, and properties."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import pickle
from collections.abc import Callable
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_schedule_peers import hf_wsd
from torch.optim import lr_scheduler

from lightning_lr import ReduceOnPlateau
from lightning_lr.lengths import RunLength
from lightning_lr.schedule_lr import ScheduleLR
from lightning_lr.schedules import (
    Constant,
    CosineDecay,
    CosineRestarts,
    Cyclic,
    ExponentialDecay,
    Hold,
    InverseSqrt,
    InverseTimeDecay,
    Join,
    LinearSchedule,
    MultiStepDecay,
    OneCycle,
    PolynomialDecay,
    Schedule,
    StepDecay,
    Warmup,
    WarmupStableDecay,
)
from lightning_lr.settings import SCHEDULE_CLASSES as SCHEDULES
from lightning_lr.settings import schedule_from_config

PROPERTY = settings(deadline=None, max_examples=50)
HORIZON = 400
"""Steps checked by the property tests: past the end of every generated schedule's phases."""


# --- contract values (from the spec; the WSD ones are Hugging Face's get_wsd_schedule) -------------

CONTRACT = [
    pytest.param(Warmup(CosineDecay(90), 10), {10: 1.0, 55: 0.5, 99: 3.045865e-4}, id="warmup-cosine"),
    pytest.param(
        WarmupStableDecay(100, 10, 20, "cosine"),
        {79: 1.0, 80: 1.0, 85: 0.8535533906, 90: 0.5, 95: 0.1464466094, 99: 0.0061558297},
        id="wsd-cosine",
    ),
    pytest.param(
        CosineRestarts(10, cycle_mult=2, peak_decay=0.5, max_cycles=3),
        {5: 0.5, 10: 0.5, 20: 0.25, 30: 0.25, 50: 0.125, 69: 3.853333e-4, 70: 0.0},
        id="sgdr-decaying-peaks",
    ),
]


@pytest.mark.parametrize(("schedule", "expected"), CONTRACT)
def test_contract_values(schedule: Schedule, expected: dict[int, float]) -> None:
    # The spec gives 7 to 10 significant digits; rel 1e-6 checks all of them.
    for step, value in expected.items():
        assert schedule(step) == pytest.approx(value, rel=1e-6, abs=1e-12), step


# --- closed forms written out independently -------------------------------------------------------


@pytest.mark.parametrize("shape", ["linear", "cosine", "1-sqrt"])
@pytest.mark.parametrize(("total", "warmup", "decay", "min_factor"), [(100, 10, 20, 0.0), (250, 0, 97, 0.1)])
def test_wsd_after_warmup_matches_hugging_face(
    shape: str, total: int, warmup: int, decay: int, min_factor: float
) -> None:
    schedule = WarmupStableDecay(total, warmup, decay, decay_shape=shape, min_factor=min_factor)  # type: ignore[arg-type]
    stable = total - warmup - decay
    for step in range(warmup, total + 30):
        expected = hf_wsd(
            step,
            warmup=warmup,
            stable=stable,
            decay=decay,
            warmup_type="linear",
            decay_type=shape,
            min_ratio=min_factor,
        )
        assert schedule(step) == pytest.approx(expected, rel=1e-12, abs=1e-15), step


def test_wsd_warmup_is_linear_never_zero_and_meets_the_peak() -> None:
    schedule = WarmupStableDecay(100, 8, 20, decay_shape="linear")
    ramp = [schedule(k) for k in range(9)]
    assert ramp[0] > 0.0
    assert ramp[8] == 1.0
    increments = [after - before for before, after in itertools.pairwise(ramp)]
    assert increments == pytest.approx([increments[0]] * 8, rel=1e-12)


def keras_inverse_time(step: int, decay_rate: float, decay_steps: int, staircase: bool) -> float:
    """``tf.keras.optimizers.schedules.InverseTimeDecay`` with an initial LR of 1."""
    progress = step / decay_steps
    if staircase:
        progress = math.floor(progress)
    return 1.0 / (1.0 + decay_rate * progress)


@pytest.mark.parametrize("staircase", [False, True])
@pytest.mark.parametrize(("decay_rate", "decay_steps"), [(0.5, 10), (2.0, 7), (0.0, 3), (0.01, 1)])
def test_inverse_time_decay_matches_keras(decay_rate: float, decay_steps: int, staircase: bool) -> None:
    schedule = InverseTimeDecay(decay_rate, decay_steps, staircase=staircase)
    for step in range(300):
        assert schedule(step) == pytest.approx(
            keras_inverse_time(step, decay_rate, decay_steps, staircase), rel=1e-12
        ), step


def test_polynomial_end_factor_and_hold() -> None:
    schedule = PolynomialDecay(total_steps=40, power=2.0, end_factor=0.2)
    for step in range(60):
        expected = 0.2 + 0.8 * (1 - min(step, 40) / 40) ** 2
        assert schedule(step) == pytest.approx(expected, rel=1e-12)


def test_cosine_decay_is_held_at_its_floor_after_the_end() -> None:
    schedule = CosineDecay(total_steps=50, min_factor=0.1)
    assert schedule(0) == 1.0
    assert schedule(25) == pytest.approx(0.55, rel=1e-12)
    assert [schedule(k) for k in (50, 51, 10_000)] == pytest.approx([0.1] * 3, rel=1e-12)


def test_cosine_restarts_with_float_mult_and_a_floor() -> None:
    schedule = CosineRestarts(cycle_steps=10, cycle_mult=1.5, min_factor=0.2)
    # Cycles of round(10 * 1.5 ** i) steps: 10, 15, 22 (round(22.5) is 22), 34; each starts at the peak.
    for start in (0, 10, 25, 47, 81):
        assert schedule(start) == 1.0, start
        if start:
            assert 0.2 < schedule(start - 1) < 0.25, start  # the last step of a cycle is near the floor
    assert schedule(25 + 11) == pytest.approx(0.2 + 0.8 * 0.5 * (1 + math.cos(math.pi * 11 / 22)), rel=1e-12)


def test_step_must_be_a_non_negative_integer() -> None:
    schedule = StepDecay(step_size=3)
    with pytest.raises(ValueError, match=r"`step` must be >= 0, got -1"):
        schedule(-1)
    with pytest.raises(TypeError, match=r"integer"):
        schedule(1.5)  # type: ignore[arg-type]
    assert schedule(torch.tensor(7)) == schedule(7)  # type: ignore[arg-type]


# --- torch's own schedulers as live oracles ------------------------------------------------------

TWO_LRS = (0.1, 0.03)
SAME_LRS = (0.1, 0.1)
# torch's closed forms (warm restarts, cyclic, 1cycle) agree to rounding; a linear 1cycle anneal
# ends near 1/(div * final_div), where `start + (end - start) * pct` cancels, and was measured at
# 3e-13 relative. Its chainable forms (StepLR ... CosineAnnealingLR) multiply the previous LR by a
# ratio every step, so rounding compounds over hundreds of steps (measured at most 1e-14 here,
# worse for longer runs or a cosine floor nearer 0). Each tolerance leaves a wide margin and still
# catches an off-by-one step, which moves the LR by more than 1e-4 relative in every case.
CLOSED = 1e-11
CHAINED = 1e-9


def _oracle(
    case_id: str,
    schedule: Schedule,
    build: Callable[[torch.optim.Optimizer], lr_scheduler.LRScheduler],
    *,
    lrs: tuple[float, ...] = TWO_LRS,
    steps: int = 300,
    rel: float = CHAINED,
) -> Any:
    return pytest.param(schedule, build, lrs, steps, rel, id=case_id)


def _cyclic(mode: Any, up: int, down: int | None, base_factor: float, gamma: float = 1.0) -> Any:
    def build(optimizer: torch.optim.Optimizer) -> lr_scheduler.LRScheduler:
        max_lrs = [group["lr"] for group in optimizer.param_groups]
        base_lrs = [base_factor * lr for lr in max_lrs]
        return lr_scheduler.CyclicLR(
            optimizer, base_lrs, max_lrs, up, down, mode=mode, gamma=gamma, cycle_momentum=False
        )

    schedule = Cyclic(up, down, base_factor=base_factor, mode=mode, gamma=gamma)
    return _oracle(f"CyclicLR-{mode}-{up}-{down}", schedule, build, steps=400, rel=CLOSED)


def _one_cycle(total: int, pct: float, anneal: Any, three_phase: bool) -> Any:
    options = {"div_factor": 20.0, "final_div_factor": 500.0, "three_phase": three_phase}

    def build(optimizer: torch.optim.Optimizer) -> lr_scheduler.LRScheduler:
        max_lrs = [group["lr"] for group in optimizer.param_groups]
        return lr_scheduler.OneCycleLR(
            optimizer, max_lrs, total, pct_start=pct, anneal_strategy=anneal, cycle_momentum=False, **options
        )

    schedule = OneCycle(total, pct, anneal=anneal, **options)  # type: ignore[arg-type]
    # torch refuses to step past total_steps: compare steps 0 .. total - 1.
    case_id = f"OneCycleLR-{anneal}-{total}-three_phase={three_phase}"
    return _oracle(case_id, schedule, build, steps=total - 1, rel=CLOSED)


# fmt: off
TORCH_ORACLES = [
    _oracle("StepLR", StepDecay(30, gamma=0.5), lambda o: lr_scheduler.StepLR(o, 30, gamma=0.5)),
    _oracle("MultiStepLR", MultiStepDecay([50, 120, 121, 200], gamma=0.3),
            lambda o: lr_scheduler.MultiStepLR(o, [50, 120, 121, 200], gamma=0.3)),
    _oracle("ExponentialLR", ExponentialDecay(0.99), lambda o: lr_scheduler.ExponentialLR(o, 0.99)),
    _oracle("PolynomialLR-power1", PolynomialDecay(200, power=1.0),
            lambda o: lr_scheduler.PolynomialLR(o, total_iters=200, power=1.0)),
    _oracle("PolynomialLR-power2", PolynomialDecay(200, power=2.0),
            lambda o: lr_scheduler.PolynomialLR(o, total_iters=200, power=2.0)),
    _oracle("LinearLR-up", LinearSchedule(0.25, 1.0, 100),
            lambda o: lr_scheduler.LinearLR(o, start_factor=0.25, end_factor=1.0, total_iters=100)),
    _oracle("LinearLR-down", LinearSchedule(1.0, 0.1, 150),
            lambda o: lr_scheduler.LinearLR(o, start_factor=1.0, end_factor=0.1, total_iters=150)),
    # Only k <= T_max: torch's cosine climbs back up after T_max, CosineDecay holds its floor.
    _oracle("CosineAnnealingLR", CosineDecay(300), lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=300)),
    # torch's eta_min is absolute: with a floor, both groups share one base LR so it is one factor.
    _oracle("CosineAnnealingLR-eta_min", CosineDecay(300, min_factor=0.2),
            lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=300, eta_min=0.2 * SAME_LRS[0]), lrs=SAME_LRS),
    _oracle("CosineAnnealingWarmRestarts-mult1", CosineRestarts(37),
            lambda o: lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=37), rel=CLOSED),
    _oracle("CosineAnnealingWarmRestarts-mult2", CosineRestarts(10, cycle_mult=2),
            lambda o: lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=10, T_mult=2), steps=320, rel=CLOSED),
    _cyclic("triangular", 20, None, 0.1),
    _cyclic("triangular", 15, 35, 0.25),
    _cyclic("triangular2", 20, None, 0.0),
    _cyclic("triangular2", 30, 10, 0.1),
    _cyclic("exp_range", 25, None, 0.1, gamma=0.995),
    _cyclic("exp_range", 12, 40, 0.3, gamma=0.999),
    _one_cycle(301, 0.3, "cos", three_phase=False),
    _one_cycle(301, 0.3, "linear", three_phase=False),
    _one_cycle(400, 0.25, "cos", three_phase=True),
    _one_cycle(400, 0.25, "linear", three_phase=True),
    _one_cycle(333, 0.45, "cos", three_phase=True),
]
# fmt: on


def _sgd(lrs: tuple[float, ...]) -> torch.optim.SGD:
    groups = [{"params": [torch.nn.Parameter(torch.ones(3))], "lr": lr} for lr in lrs]
    return torch.optim.SGD(groups, lr=lrs[0])


@pytest.mark.parametrize(("schedule", "build_torch", "lrs", "steps", "rel"), TORCH_ORACLES)
def test_matches_torch_scheduler(
    schedule: Schedule,
    build_torch: Callable[[torch.optim.Optimizer], lr_scheduler.LRScheduler],
    lrs: tuple[float, ...],
    steps: int,
    rel: float,
) -> None:
    assert steps >= 299
    ours_optimizer, torch_optimizer = _sgd(lrs), _sgd(lrs)
    ours, theirs = ScheduleLR(ours_optimizer, schedule), build_torch(torch_optimizer)
    for step in range(steps + 1):
        if step:
            for optimizer, scheduler in ((ours_optimizer, ours), (torch_optimizer, theirs)):
                optimizer.step()
                scheduler.step()
        expected = theirs.get_last_lr()
        assert ours.get_last_lr() == pytest.approx(expected, rel=rel, abs=1e-15), step
        assert [group["lr"] for group in ours_optimizer.param_groups] == ours.get_last_lr()


# --- compositions --------------------------------------------------------------------------------


def test_join_of_three_pieces() -> None:
    ramp, flat, tail = LinearSchedule(0.1, 1.0, 10), Constant(), CosineDecay(50, min_factor=0.05)
    schedule = Join([ramp, flat, tail], boundaries=[10, 30])
    assert [schedule(k) for k in range(10)] == [ramp(k) for k in range(10)]
    assert [schedule(k) for k in range(10, 30)] == [1.0] * 20
    assert [schedule(k) for k in range(30, 100)] == [tail(k) for k in range(70)]
    assert schedule(30) == 1.0
    assert schedule(80) == pytest.approx(0.05)


def test_hold_updates_every_n_steps() -> None:
    inner = StepDecay(step_size=2, gamma=0.5)
    schedule = Hold(inner, every=3)
    assert [schedule(k) for k in range(13)] == [1.0] * 6 + [0.5] * 6 + [0.25]
    assert all(schedule(k) == inner(k // 3) for k in range(100))


def test_warmup_of_wsd() -> None:
    inner = WarmupStableDecay(100, 0, 20, decay_shape="linear")
    schedule = Warmup(inner, warmup_steps=10)
    ramp = [schedule(k) for k in range(11)]
    assert ramp[0] > 0.0
    assert all(before < after for before, after in itertools.pairwise(ramp))
    assert [schedule(10 + k) for k in range(120)] == [inner(k) for k in range(120)]
    assert schedule(10 + 90) == pytest.approx(0.5)


def test_warmup_of_a_warmup_and_a_join_inside_a_hold() -> None:
    inner = Join([Constant(0.5), ExponentialDecay(0.9)], boundaries=[5])
    schedule = Warmup(Hold(inner, every=2), warmup_steps=4, shape="cosine")
    assert schedule(4) == 0.5
    assert [schedule(4 + k) for k in range(40)] == [inner(k // 2) for k in range(40)]
    twice = Warmup(schedule, warmup_steps=3)
    assert [twice(3 + k) for k in range(50)] == [schedule(k) for k in range(50)]


@pytest.mark.parametrize(
    ("shape", "start_factor", "first"),
    [("linear", None, 1 / 6), ("linear", 0.4, 0.4 + 0.6 / 6), ("exponential", None, 0.01 ** (5 / 6))],
)
def test_warmup_start(shape: str, start_factor: float | None, first: float) -> None:
    # Progress is (k + 1) / (W + 1): step 0 is already one increment up the ramp.
    schedule = Warmup(Constant(), warmup_steps=5, shape=shape, start_factor=start_factor)  # type: ignore[arg-type]
    assert schedule(0) == pytest.approx(first, rel=1e-12)
    assert schedule(5) == 1.0


def test_zero_warmup_is_the_wrapped_schedule() -> None:
    inner = CosineDecay(40)
    schedule = Warmup(inner, warmup_steps=0)
    assert [schedule(k) for k in range(50)] == [inner(k) for k in range(50)]


WARMUP_ENDS: list[tuple[Schedule, int]] = [
    (Warmup(Constant(), 10), 10),
    (Warmup(CosineDecay(90), 10, "cosine"), 10),
    (Warmup(Constant(), 10, "exponential", overlap=True), 10),
    (Warmup(Warmup(Constant(), 4), 6), 10),
    (WarmupStableDecay(100, 12, 20, warmup_shape="1-sqrt"), 12),
    (OneCycle(100, 0.25), 24),
    (OneCycle(97, 0.3), 28),  # the rise ends at step 28.1: step 28 is the higher of 28 and 29
    (OneCycle(100, 0.3, three_phase=True, anneal="linear"), 29),
    (Cyclic(7, 3), 7),
    (LinearSchedule(0.1, 1.0, 12), 12),
    (Join([LinearSchedule(0.1, 1.0, 10), CosineDecay(50)], [10]), 10),
    (Join([Warmup(Constant(), 5), CosineDecay(50)], [20]), 5),
    (Join([LinearSchedule(0.0, 0.5, 10), LinearSchedule(0.5, 1.0, 6), Constant()], [10, 16]), 16),
    (Hold(Warmup(Constant(), 5), 3), 15),
    (Warmup(Join([LinearSchedule(0.2, 1.0, 4), CosineDecay(30)], [4]), 3), 7),
    (Constant(), 0),
    (CosineDecay(40), 0),
    (OneCycle(100, 0.3, div_factor=1.0), 0),
    (Join([CosineDecay(10), LinearSchedule(0.0, 1.0, 10)], [10]), 0),
    (LinearSchedule(1.0, 0.1, 12), 0),
    (WarmupStableDecay(100, 0, 20), 0),
]


@pytest.mark.parametrize(("schedule", "expected"), WARMUP_ENDS)
def test_warmup_end_is_where_the_ramp_first_reaches_the_peak(schedule: Schedule, expected: int) -> None:
    values = [schedule(step) for step in range(200)]
    peak = max(values)
    assert schedule.warmup_end() == expected
    assert values.index(peak) == expected or (expected == 0 and values[0] == pytest.approx(peak))
    if expected:
        assert max(values[:expected]) < peak


def test_warmup_end_of_a_schedule_with_unresolved_lengths_is_refused() -> None:
    with pytest.raises(ValueError, match=r"not resolved yet.*\.resolve\(run_length\)"):
        Warmup(CosineDecay(1.0), "1 epoch").warmup_end()
    assert Warmup(CosineDecay(1.0), "1 epoch").resolve(RunLength(100, 10)).warmup_end() == 10


# --- property tests ------------------------------------------------------------------------------


def floats(low: float, high: float, **options: Any) -> st.SearchStrategy[float]:
    # Subnormal factors (5e-324) underflow to 0 once multiplied; no one schedules an LR that small.
    return st.floats(low, high, allow_subnormal=False, **options)


TINY = 1e-6
"""Smallest positive factor drawn: products of two factors near 1e-308 would underflow to 0."""


lengths = st.integers(1, 60)
units = floats(0.0, 1.0)
gammas = floats(TINY, 1.0)


def _valid(cls: type[Schedule], *args: Any, **kwargs: Any) -> Schedule | None:
    """The schedule, or None when the drawn arguments do not fit together (filtered out)."""
    try:
        return cls(*args, **kwargs)
    except ValueError:
        return None


@st.composite
def one_cycles(draw: st.DrawFn, every_phase_has_steps: bool = True) -> Schedule | None:
    # div_factor and final_div_factor >= 1 keep the peak at 1: OneCycle, like torch, accepts smaller ones,
    # and then starts or ends above the peak.
    schedule = _valid(
        OneCycle,
        draw(st.integers(2, 300)),
        draw(floats(0.01, 0.99)),
        draw(floats(1.0, 100.0)),
        draw(floats(1.0, 1e4)),
        draw(st.sampled_from(["cos", "linear"])),
        draw(st.booleans()),
        draw(st.booleans()),
        draw(floats(0.0, 0.99)),
        draw(floats(0.0, 0.99)),
    )
    if not isinstance(schedule, OneCycle) or not every_phase_has_steps:
        return schedule
    # Like torch, OneCycle also takes settings where a phase is never reached (three phases with
    # pct_start > 0.5); the slope test below is about the ones where each phase has steps.
    ends = [end for end, _, _ in schedule.phases()]
    return schedule if all(end > start for start, end in zip([0.0, *ends], ends)) else None


@st.composite
def wsds(draw: st.DrawFn) -> Schedule:
    total = draw(st.integers(1, 300))
    warmup = draw(st.integers(0, total - 1))
    decay = draw(st.integers(1, total - warmup))
    return WarmupStableDecay(
        total, warmup, decay, draw(st.sampled_from(["linear", "cosine", "1-sqrt"])), draw(units)
    )


@st.composite
def wsd_shapes(draw: st.DrawFn) -> Schedule:
    """WSD with every warmup shape and start, on top of :func:`wsds`."""
    base = draw(wsds())
    start = draw(st.none() | floats(0.0, 1.0, exclude_max=True))
    shape = draw(st.sampled_from(["linear", "cosine", "1-sqrt"]))
    return dataclasses.replace(base, warmup_shape=shape, start_factor=start)  # type: ignore[type-var]


LEAVES: dict[type[Schedule], st.SearchStrategy[Schedule]] = {
    Constant: st.builds(Constant, floats(TINY, 1.0)),
    StepDecay: st.builds(StepDecay, lengths, gammas),
    MultiStepDecay: st.builds(
        MultiStepDecay, st.lists(st.integers(1, 300), min_size=1, max_size=5, unique=True).map(sorted), gammas
    ),
    ExponentialDecay: st.builds(ExponentialDecay, gammas),
    InverseTimeDecay: st.builds(InverseTimeDecay, floats(0.0, 10.0), lengths, st.booleans()),
    PolynomialDecay: st.builds(PolynomialDecay, lengths, floats(0.1, 5.0), units),
    LinearSchedule: st.builds(LinearSchedule, units, units, lengths),
    CosineDecay: st.one_of(
        st.builds(CosineDecay, lengths, units),
        st.builds(CosineDecay, lengths, units, floats(0.05, 4.0), floats(0.1, 5.0)),
    ),
    InverseSqrt: st.builds(InverseSqrt, lengths),
    CosineRestarts: st.builds(
        CosineRestarts, lengths, floats(1.0, 3.0), gammas, units, st.none() | st.integers(1, 5)
    ),
    Cyclic: st.builds(
        Cyclic,
        lengths,
        st.none() | lengths,
        floats(0.0, 0.99),
        st.sampled_from(["triangular", "triangular2", "exp_range"]),
        gammas,
    ),
    OneCycle: st.one_of(
        one_cycles().filter(lambda s: s is not None),
        one_cycles(every_phase_has_steps=False).filter(lambda s: s is not None),
    ),
    WarmupStableDecay: st.one_of(wsds(), wsd_shapes()),
}
"""A strategy for each schedule class that wraps no other schedule."""

leaves = st.one_of(*LEAVES.values())


@st.composite
def warmups(draw: st.DrawFn, inner: st.SearchStrategy[Schedule] = leaves) -> Schedule:
    shape = draw(st.sampled_from(["linear", "cosine", "exponential"]))
    if shape == "exponential":
        start = draw(st.none() | floats(TINY, 1.0, exclude_max=True))
    else:
        start = draw(st.none() | floats(0.0, 1.0, exclude_max=True))
    return Warmup(draw(inner), draw(st.integers(0, 50)), shape, start)


@st.composite
def joins(draw: st.DrawFn) -> Schedule:
    pieces = draw(st.lists(leaves, min_size=1, max_size=3))
    bounds = draw(
        st.lists(st.integers(1, 200), min_size=len(pieces) - 1, max_size=len(pieces) - 1, unique=True)
    )
    return Join(pieces, sorted(bounds))


COMPOSITES: dict[type[Schedule], st.SearchStrategy[Schedule]] = {
    Warmup: warmups(),
    Join: joins(),
    Hold: st.builds(Hold, leaves, st.integers(1, 10)),
}
"""A strategy for each schedule class built around other schedules (leaves inside)."""

STRATEGIES = {**LEAVES, **COMPOSITES}
"""The one place a schedule class gets its strategy: the registry test below asks for every class."""

composites = st.one_of(*COMPOSITES.values())
schedules = st.one_of(leaves, composites, warmups(composites))


def test_every_schedule_class_has_a_strategy() -> None:
    # A new schedule class needs its line in LEAVES or COMPOSITES (ReduceOnPlateau has its own test below).
    assert {cls.__name__ for cls in STRATEGIES} | {"ReduceOnPlateau"} == set(SCHEDULES)


@pytest.mark.parametrize("cls", list(STRATEGIES), ids=lambda cls: cls.__name__)
@settings(deadline=None, max_examples=10)
@given(data=st.data())
def test_each_strategy_draws_its_own_class(cls: type[Schedule], data: st.DataObject) -> None:
    assert type(data.draw(STRATEGIES[cls])) is cls


@PROPERTY
@given(schedules)
def test_values_are_finite_and_within_zero_and_the_peak(schedule: Schedule) -> None:
    for step in range(HORIZON):
        value = schedule(step)
        assert isinstance(value, float)
        assert math.isfinite(value) and 0.0 <= value <= 1.0, (step, value)


@PROPERTY
@given(schedules)
def test_momentum_is_left_alone_or_a_valid_momentum(schedule: Schedule) -> None:
    values = [schedule.momentum(step) for step in range(HORIZON)]
    if not schedule.sets_momentum:
        assert values == [None] * HORIZON
    assert all(value is None or 0.0 <= value < 1.0 for value in values)


@PROPERTY
@given(
    floats(1.0, 100.0, exclude_min=True),
    floats(0.0, 10.0),
    floats(1.0, 10.0, exclude_min=True),
    lengths,
)
def test_factors_above_one_are_kept_where_asked_for(
    factor: float, low: float, high: float, total: int
) -> None:
    # The only schedules allowed above the peak: an explicit Constant or LinearSchedule factor > 1.
    assert Constant(factor)(123) == factor
    ramp = LinearSchedule(low, high, total)
    assert ramp(total) == pytest.approx(high)
    assert min(low, high) - 1e-12 <= ramp(total // 2) <= max(low, high) + 1e-12


@PROPERTY
@given(schedules)
def test_pickle_round_trip(schedule: Schedule) -> None:
    copy = pickle.loads(pickle.dumps(schedule))
    assert copy == schedule
    assert [copy(k) for k in range(HORIZON)] == [schedule(k) for k in range(HORIZON)]


@PROPERTY
@given(schedules)
def test_config_round_trip(schedule: Schedule) -> None:
    config = schedule.to_config()
    rebuilt = schedule_from_config(json.loads(json.dumps(config)))  # plain data only
    assert rebuilt == schedule
    assert type(rebuilt) is type(schedule)
    assert [rebuilt(k) for k in range(0, HORIZON, 7)] == [schedule(k) for k in range(0, HORIZON, 7)]


@PROPERTY
@given(
    st.builds(
        ReduceOnPlateau,
        floats(0.01, 0.99),
        st.integers(0, 20),
        floats(0.0, 1.0),
        st.integers(0, 5),
        floats(0.0, 1e-3),
        st.sampled_from(["min", "max"]),
        st.sampled_from(["rel", "abs"]),
    )
)
def test_reduce_on_plateau_round_trips(policy: ReduceOnPlateau) -> None:
    assert pickle.loads(pickle.dumps(policy)) == policy
    assert schedule_from_config(json.loads(json.dumps(policy.to_config()))) == policy
    assert (
        torch.optim.lr_scheduler.ReduceLROnPlateau(_sgd((0.1,)), **policy.torch_kwargs()).factor
        == policy.factor
    )


def _ramp_slope(shape: str, start: float) -> float:
    """The steepest slope of the warmup ramp per unit of progress (progress moves 1/(W+1) a step)."""
    if shape == "linear":
        return 1.0 - start
    if shape == "cosine":
        return (1.0 - start) * math.pi / 2  # (1 - cos(pi p)) / 2 has slope at most pi / 2
    return -math.log(start)  # start ** (1 - p) has slope -ln(start) * start ** (1 - p) <= -ln(start)


@PROPERTY
@given(warmups(schedules))
def test_warmup_ramp(schedule: Warmup) -> None:
    inner, warmup = schedule.schedule, int(schedule.warmup_steps)
    if inner(0) > 0:
        assert schedule(0) > 0.0
    assert [schedule(warmup + k) for k in range(100)] == [inner(k) for k in range(100)]
    values = [schedule(k) for k in range(warmup + 1)]
    assert values[-1] == inner(0)
    bound = inner(0) * _ramp_slope(schedule.shape, float(schedule.start_factor or 0.0)) / (warmup + 1)
    for before, after in itertools.pairwise(values):
        assert -1e-15 <= after - before <= bound + 1e-12, (before, after, bound)


@PROPERTY
@given(floats(0.01, 3.0), st.integers(1, 60), st.sampled_from(["linear", "cosine", "exponential"]))
def test_warmup_of_constant_rises_monotonically_to_it(factor: float, warmup: int, shape: str) -> None:
    schedule = Warmup(Constant(factor), warmup, shape)  # type: ignore[arg-type]
    values = [schedule(k) for k in range(warmup + 5)]
    assert values[0] > 0.0
    assert all(before <= after for before, after in itertools.pairwise(values))
    assert values[warmup:] == [factor] * 5
    if shape == "linear":
        # The jump onto the plateau is exactly one ramp increment.
        jump = values[warmup] - values[warmup - 1]
        assert jump == pytest.approx(factor / (warmup + 1), rel=1e-9)
        assert jump == pytest.approx(values[0], rel=1e-9)


@PROPERTY
@given(wsds())
def test_wsd_has_no_jump_larger_than_its_slopes(schedule: WarmupStableDecay) -> None:
    warmup, decay = int(schedule.warmup_steps), int(schedule.decay_steps)
    drop = 1.0 - schedule.min_factor
    # Largest step of each phase: the ramp rises 1/(W+1) a step; a linear decay falls drop/D, a
    # cosine at most drop * pi / (2D); 1 - sqrt(p) is steepest at p = 0, its first step drop/sqrt(D).
    decay_step = {
        "linear": drop / decay,
        "cosine": drop * math.pi / (2 * decay),
        "1-sqrt": drop / math.sqrt(decay),
    }
    bound = max(1.0 / (warmup + 1), decay_step[schedule.decay_shape])
    values = [schedule(k) for k in range(int(schedule.total_steps) + 3)]
    assert max(abs(after - before) for before, after in itertools.pairwise(values)) <= bound + 1e-12
    assert values[-1] == pytest.approx(schedule.min_factor)


@PROPERTY
@given(one_cycles().filter(lambda s: s is not None))
def test_one_cycle_has_no_jump_larger_than_its_slopes(schedule: OneCycle) -> None:
    total, pct = int(schedule.total_steps), schedule.pct_start
    initial = 1.0 / schedule.div_factor
    floor = initial / schedule.final_div_factor
    # torch's OneCycleLR phases: (end step, start factor, end factor), each starting where the last ended.
    if schedule.three_phase:
        phases = [
            (pct * total - 1, initial, 1.0),
            (2 * pct * total - 2, 1.0, initial),
            (total - 1, initial, floor),
        ]
    else:
        phases = [(pct * total - 1, initial, 1.0), (total - 1, 1.0, floor)]
    steepness = math.pi / 2 if schedule.anneal == "cos" else 1.0
    starts = [0.0] + [end for end, _, _ in phases[:-1]]
    bound = max(abs(b - a) * steepness / (end - start) for start, (end, a, b) in zip(starts, phases))
    values = [schedule(k) for k in range(total + 3)]
    assert values[0] == pytest.approx(initial)
    assert values[total - 1] == pytest.approx(floor)
    assert values[total:] == [values[total - 1]] * 3
    assert (
        max(abs(after - before) for before, after in itertools.pairwise(values)) <= bound * (1 + 1e-9) + 1e-12
    )


@PROPERTY
@given(joins())
def test_join_is_its_pieces_shifted_to_their_boundaries(schedule: Join) -> None:
    starts = [0, *schedule.boundaries]
    ends = [*schedule.boundaries, starts[-1] + 100]
    for piece, start, end in zip(schedule.schedules, starts, ends):
        assert [schedule(k) for k in range(start, end)] == [piece(k - start) for k in range(start, end)]


@PROPERTY
@given(leaves, st.integers(1, 10))
def test_hold_is_the_schedule_of_the_block_index(inner: Schedule, every: int) -> None:
    schedule = Hold(inner, every)
    assert [schedule(k) for k in range(HORIZON)] == [inner(k // every) for k in range(HORIZON)]
