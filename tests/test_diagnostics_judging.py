"""How the diagnostics benchmark judges a run: the rules of its tables, on runs written by hand."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.diagnostics import Case, Outcome, judge, wrong_actions


def outcome(
    name: str,
    found: list[tuple[str, int]],
    score: float,
    good: float | None = 90.0,
    val: tuple[float, ...] = (0.5,),
) -> Outcome:
    return Outcome(
        Case("regression", "adam", name),
        0,
        "advise",
        tuple((k, s, 0) for k, s in found),
        (),
        val,
        score,
        good,
    )


def test_a_wrong_lr_that_ends_as_well_as_the_good_one_may_go_without_an_alarm() -> None:
    assert judge(outcome("10x", [], 89.5)).right  # within a point of the good LR's 90
    assert not judge(outcome("10x", [], 85.0)).right  # five points below: its fault went unnamed
    assert not judge(outcome("10x", [], 89.5, good=None)).right  # unknown: judged as the case says
    assert judge(outcome("10x", [("too_high", 100)], 89.5)).right  # the alarm is right as well
    assert not judge(outcome("10x", [("too_low", 100)], 89.5)).right  # the wrong way stays wrong
    assert not judge(outcome("0.01x", [("too_high", 100)], 95.0)).right
    assert outcome("1x", [], 95.0).no_fault is False  # the good LR itself is judged as healthy


def test_a_plateau_case_whose_loss_still_falls_to_the_end_may_go_without_an_alarm() -> None:
    still_falling = (0.4, 0.2, 0.1, 0.08, 0.07, 0.065, 0.06)
    stalled = (0.4, 0.2, 0.1, 0.06, 0.0601, 0.0602, 0.0603)
    assert judge(outcome("plateau", [], 90.0, val=still_falling)).right
    assert not judge(outcome("plateau", [], 90.0, val=stalled)).right
    assert judge(outcome("plateau", [("plateau", 400)], 90.0, val=stalled)).right
    assert not judge(outcome("plateau", [("too_high", 100)], 90.0, val=still_falling)).right


def test_healthy_runs_take_no_lr_alarm_and_late_raises_are_judged_after_the_raise() -> None:
    assert judge(outcome("1x", [("plateau", 500)], 90.0)).right  # the validation curve, listed only
    assert not judge(outcome("1x", [("too_low", 100)], 90.0)).right
    case = Case("regression", "adam", "late divergence")
    before, after = case.raise_step - 10, case.raise_step + 10
    assert judge(outcome("late divergence", [("too_high", after)], -100.0)).right
    assert not judge(outcome("late divergence", [("too_high", before), ("too_high", after)], -100.0)).right


def test_actions_are_judged_by_their_direction() -> None:
    def acted(name: str, *actions: tuple[str, int, float]) -> Outcome:
        return Outcome(Case("regression", "sgd", name), 0, "adjust", (), tuple(actions), (0.5,), 0.0)

    assert wrong_actions(acted("0.01x", ("too_low", 49, 3.0))) == 0
    assert wrong_actions(acted("0.01x", ("plateau", 300, 0.3))) == 1  # a decay on a too-low LR
    assert wrong_actions(acted("10x", ("too_high", 49, 0.3), ("too_low", 300, 3.0))) == 1
    assert wrong_actions(acted("1x", ("too_high", 49, 0.3))) == 1
    assert wrong_actions(acted("1x", ("plateau", 300, 0.3))) == 0  # what ReduceLROnPlateau does
