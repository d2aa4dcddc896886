"""Lengths in steps, epochs or fractions of the run, and how schedules resolve them into steps."""

from __future__ import annotations

import pytest

from lightning_lr.lengths import (
    Cadence,
    RunLength,
    cadence,
    check_length,
    is_resolved,
    resolve_length,
    scheduler_steps_before,
)
from lightning_lr.schedules import (
    Constant,
    CosineDecay,
    CosineRestarts,
    Cyclic,
    Hold,
    Join,
    LinearSchedule,
    MultiStepDecay,
    OneCycle,
    StepDecay,
    Warmup,
    WarmupStableDecay,
)

RUN = RunLength(total_steps=200, steps_per_epoch=20)


@pytest.mark.parametrize(
    "value",
    [1, 5, 10**9, 0.5, 1.0, 1e-9, "3 epochs", "1 epoch", "0.5 epochs", ".5 epochs", "120 steps", " 2 step "],
)
def test_check_length_accepts_and_returns_each_written_form(value: object) -> None:
    assert check_length("warmup_steps", value) == value


@pytest.mark.parametrize("value", [0, 0.0, "0 steps", "0 epochs"])
def test_zero_is_a_length_only_where_allowed(value: object) -> None:
    assert check_length("warmup_steps", value, allow_zero=True) == value
    assert resolve_length("warmup_steps", value, RUN) == 0  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"`warmup_steps`"):
        check_length("warmup_steps", value)


@pytest.mark.parametrize("run", [None, RUN, RunLength(None)])
def test_ints_and_step_strings_are_steps_whatever_the_run(run: RunLength | None) -> None:
    assert resolve_length("n", 37, run) == 37
    assert resolve_length("n", "120 steps", run) == 120
    assert resolve_length("n", "1 step", run) == 1


@pytest.mark.parametrize(
    ("fraction", "total", "steps"),
    [(1.0, 200, 200), (0.5, 200, 100), (0.336, 100, 34), (0.334, 100, 33), (0.1, 7, 1), (1e-6, 200, 1)],
)
def test_floats_are_rounded_fractions_of_the_run_and_at_least_one_step(
    fraction: float, total: int, steps: int
) -> None:
    assert resolve_length("n", fraction, RunLength(total)) == steps


@pytest.mark.parametrize(
    ("text", "per_epoch", "steps"),
    [
        ("3 epochs", 20, 60),
        ("1 epoch", 7, 7),
        ("0.5 epochs", 20, 10),
        ("0.35 epochs", 20.0, 7),
        ("2.5 epochs", 7.5, 19),
        ("0.01 epochs", 20, 1),
    ],
)
def test_epochs_use_steps_per_epoch_rounded_and_at_least_one(text: str, per_epoch: float, steps: int) -> None:
    assert resolve_length("n", text, RunLength(None, per_epoch)) == steps


def test_a_fraction_needs_a_known_run_length() -> None:
    for run in (None, RunLength(None, 20)):
        with pytest.raises(
            ValueError, match=r"`warmup_steps` is a fraction of the run.*got 0\.1\. Set `max_steps`"
        ):
            resolve_length("warmup_steps", 0.1, run)


def test_epochs_need_steps_per_epoch() -> None:
    for run in (None, RunLength(100)):
        with pytest.raises(ValueError, match=r"`cycle_steps` is given in epochs.*got '2 epochs'"):
            resolve_length("cycle_steps", "2 epochs", run)


def test_is_resolved_only_for_whole_steps() -> None:
    assert is_resolved(5)
    assert not any(is_resolved(value) for value in (0.5, "5 steps", True))  # type: ignore[arg-type]


def test_run_length_remaining() -> None:
    assert RUN.remaining(30) == RunLength(170, 20)
    assert RUN.remaining(0) == RUN
    assert RUN.remaining(250) == RunLength(0, 20)
    assert RunLength(None, 20).remaining(30) == RunLength(None, 20)


def test_run_length_scaled() -> None:
    assert RUN.scaled(1) == RUN
    assert RUN.scaled(4) == RunLength(50, 5.0)
    assert RunLength(201, 20).scaled(4) == RunLength(51, 5.0)  # a partial block still gets an update
    assert RunLength(None, None).scaled(3) == RunLength(None, None)


# --- schedules resolving their lengths ------------------------------------------------------------


def test_a_schedule_with_fractions_refuses_to_be_called_until_resolved() -> None:
    schedule = CosineDecay(total_steps=0.5)
    assert not schedule.resolved
    with pytest.raises(ValueError, match=r"not resolved yet.*`\.resolve\(run_length\)`"):
        schedule(0)
    resolved = schedule.resolve(RUN)
    assert resolved.resolved
    assert resolved == CosineDecay(total_steps=100)
    assert resolved(50) == pytest.approx(0.5)


def test_an_unresolved_piece_makes_the_composite_unresolved() -> None:
    schedule = Join([Constant(), StepDecay("2 epochs")], boundaries=[10])
    assert not schedule.resolved
    with pytest.raises(ValueError, match=r"not resolved yet"):
        schedule(0)
    with pytest.raises(ValueError, match=r"not resolved yet"):
        Hold(CosineDecay(0.5), every=2)(0)


def test_resolving_step_lengths_changes_nothing() -> None:
    schedule = Warmup(CosineRestarts(10, cycle_mult=2.0), warmup_steps=5)
    assert schedule.resolve(None) == schedule
    assert schedule.resolve(RUN) == schedule


def test_warmup_fraction_then_cosine_over_the_rest() -> None:
    schedule = Warmup(CosineDecay(1.0, min_factor=0.1), 0.1).resolve(RunLength(100, 10))
    assert schedule == Warmup(CosineDecay(90, min_factor=0.1), 10)
    assert schedule(10) == 1.0
    # The last optimizer step (k = 99) is one step above the floor; the LR the scheduler holds after
    # it (k = 100, the end of the run) is the floor.
    assert 0.1 < schedule(99) < 0.1 + 1e-3
    assert schedule(100) == pytest.approx(0.1)


def test_warmup_in_epochs_and_a_schedule_in_epochs_after_it() -> None:
    schedule = Warmup(StepDecay("2 epochs", gamma=0.5), "1 epoch").resolve(RunLength(100, 10))
    assert schedule == Warmup(StepDecay(20, gamma=0.5), 10)


def test_a_warmup_as_long_as_the_run_is_refused() -> None:
    with pytest.raises(
        ValueError, match=r"`warmup_steps`=1\.0 resolves to 50 steps, as long as the run \(50 steps\)"
    ):
        Warmup(Constant(), 1.0).resolve(RunLength(50))
    with pytest.raises(ValueError, match=r"`warmup_steps`='5 epochs' resolves to 50 steps"):
        Warmup(Constant(), "5 epochs").resolve(RunLength(50, 10))
    with pytest.raises(ValueError, match=r"`warmup_steps`=60 resolves to 60 steps"):
        Warmup(Constant(), 60).resolve(RunLength(50))
    assert Warmup(Constant(), 49).resolve(RunLength(50)).warmup_steps == 49


def test_join_pieces_resolve_against_their_own_spans() -> None:
    schedule = Join(
        [LinearSchedule(0.0, 1.0, 1.0), CosineRestarts("1 epoch"), CosineDecay(0.5)],
        boundaries=[0.1, "5 epochs"],
    ).resolve(RUN)
    # Spans: [0, 20), [20, 100) and [100, 200); a fraction is of the piece's span, an epoch is 20 steps.
    assert schedule == Join(
        [LinearSchedule(0.0, 1.0, 20), CosineRestarts(20), CosineDecay(50)], boundaries=[20, 100]
    )
    assert schedule(20) == 1.0
    assert schedule(150) == pytest.approx(0.0)


def test_join_boundaries_that_collide_once_resolved_are_refused() -> None:
    with pytest.raises(ValueError, match=r"`boundaries` must be strictly increasing, got \[10, 10\]"):
        Join([Constant(), Constant(), Constant()], boundaries=[0.1, 0.104]).resolve(RunLength(100))


def test_hold_resolves_its_schedule_in_blocks() -> None:
    assert Hold(CosineDecay(1.0), every=4).resolve(RunLength(100, 10)) == Hold(CosineDecay(25), every=4)
    assert Hold(CosineDecay(1.0), every=4).resolve(RunLength(102, 10)) == Hold(CosineDecay(26), every=4)
    # 10 steps per epoch are 2.5 blocks of 4 steps: 2 epochs are 5 blocks.
    assert Hold(StepDecay("2 epochs"), every=4).resolve(RunLength(100, 10)) == Hold(StepDecay(5), every=4)


def test_multistep_milestones_resolve_and_must_stay_distinct() -> None:
    assert MultiStepDecay([0.5, "8 epochs"]).resolve(RUN) == MultiStepDecay([100, 160])
    with pytest.raises(ValueError, match=r"`milestones` must be strictly increasing, got \[100, 100\]"):
        MultiStepDecay([0.5, "5 epochs"]).resolve(RUN)


def test_fractions_in_wsd_cyclic_and_one_cycle() -> None:
    assert WarmupStableDecay(1.0, 0.05, 0.2).resolve(RunLength(1000)) == WarmupStableDecay(1000, 50, 200)
    with pytest.raises(
        ValueError, match=r"`warmup_steps`=500 plus `decay_steps`=600 exceed `total_steps`=1000"
    ):
        WarmupStableDecay(1.0, 0.5, 0.6).resolve(RunLength(1000))
    cyclic = Cyclic(0.1).resolve(RUN)
    assert (cyclic.step_size_up, cyclic.step_size_down) == (20, 20)
    assert OneCycle(1.0).resolve(RUN) == OneCycle(200)
    # torch's OneCycleLR takes 3 steps at pct_start 0.3 (the rise has no step); 4 at 0.25 divide by zero
    assert OneCycle(1.0).resolve(RunLength(3)) == OneCycle(3)
    with pytest.raises(ValueError, match=r"`total_steps`=4 is too short for `pct_start`=0\.25"):
        OneCycle(1.0, pct_start=0.25).resolve(RunLength(4))


def test_one_cadence_for_every_scheduler() -> None:
    # a closed form holds its value; anything else skips Lightning's calls; epochs are Lightning's own
    assert cadence("step", 3, closed_form=True) == Cadence(hold=3, lightning_frequency=1, step_every=1)
    assert cadence("step", 3, closed_form=False) == Cadence(hold=1, lightning_frequency=1, step_every=3)
    assert cadence("epoch", 3, closed_form=True) == Cadence(hold=1, lightning_frequency=3, step_every=1)
    assert cadence("epoch", 3, closed_form=False) == cadence("epoch", 3, closed_form=True)


def test_scheduler_steps_before_counts_real_steps() -> None:
    steps = [scheduler_steps_before(k, interval="step", frequency=2, steps_per_epoch=None) for k in range(6)]
    assert steps == [0, 0, 1, 1, 2, 2]
    every = [
        scheduler_steps_before(k, interval="step", frequency=1, steps_per_epoch=None, step_every=3)
        for k in range(7)
    ]
    assert every == [0, 0, 0, 1, 1, 1, 2]
    epochs = [
        scheduler_steps_before(k, interval="epoch", frequency=2, steps_per_epoch=2.5) for k in range(11)
    ]
    assert epochs == [0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 2]
    assert scheduler_steps_before(99, interval="epoch", frequency=1, steps_per_epoch=None) == 0
