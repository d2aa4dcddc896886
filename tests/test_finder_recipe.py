"""What the LR is for: the kind of a schedule, asked of its shape, and the divisor of the pick."""

from __future__ import annotations

import argparse
import math

import pytest

from lightning_lr.finder import FinderSettings, recipe
from lightning_lr.finder.recipe import divisor, schedule_kind
from lightning_lr.finder.result import pick_spread
from lightning_lr.finder.rules import RULES
from lightning_lr.schedules import (
    Constant,
    CosineDecay,
    InverseSqrt,
    OneCycle,
    StepDecay,
    Warmup,
    WarmupStableDecay,
)


@pytest.mark.parametrize(
    ("schedule", "kind"),
    [
        (None, "constant"),
        ("one-cycle", "one-cycle"),
        (Constant(), "constant"),
        (Warmup(Constant(), 0.05), "constant"),  # flat after its short ramp
        (Warmup(CosineDecay(1.0), 0.05), "decay"),
        (CosineDecay(1.0), "decay"),
        (StepDecay(0.3), "decay"),
        (InverseSqrt(10), "decay"),
        (WarmupStableDecay(1.0, 0.05, 0.2), "decay"),
        (OneCycle(1.0), "one-cycle"),
        (Warmup(CosineDecay(1.0), 0.3), "one-cycle"),  # a ramp that long is a one-cycle's shape
    ],
)
def test_the_kind_is_read_off_the_schedules_shape(schedule: object, kind: str) -> None:
    assert schedule_kind(schedule, 200) == kind  # type: ignore[arg-type]


def test_the_divisor_follows_the_fitted_line() -> None:
    for kind in recipe.SCHEDULE_KINDS:
        at_reference = divisor(kind, recipe.REFERENCE_STEPS)
        assert at_reference == pytest.approx(10 ** -recipe.INTERCEPTS[kind])
        longest, shortest = recipe.FITTED_STEPS[1], recipe.FITTED_STEPS[0]
        ratio = math.log10(longest / recipe.REFERENCE_STEPS)
        assert divisor(kind, longest) == pytest.approx(at_reference * 10 ** (-recipe.SLOPE * ratio))
        # outside the lengths the fit saw, the nearest end: never extrapolated
        assert divisor(kind, 10 * longest) == divisor(kind, longest)
        assert divisor(kind, 1) == divisor(kind, shortest)


def test_bad_kinds_and_lengths_are_refused() -> None:
    with pytest.raises(
        ValueError, match=r"`schedule` must be one of 'constant', 'decay', 'one-cycle', got 'cosine'"
    ):
        divisor("cosine", 100)
    with pytest.raises(ValueError, match=r"`total_steps` must be >= 1, got 0"):
        divisor("decay", 0)
    with pytest.raises(TypeError, match=r"`schedule` must be a Schedule"):
        schedule_kind(3.0, 100)  # type: ignore[arg-type]


def test_the_spread_is_the_geometric_standard_deviation() -> None:
    assert pick_spread([0.01, 0.04]) == pytest.approx(math.exp(math.log(4) / math.sqrt(2)))
    assert pick_spread([0.01, None]) is None and pick_spread([]) is None
    assert pick_spread([0.5, 0.5, 0.5]) == pytest.approx(1.0)


def test_the_command_line_flags_are_the_settings() -> None:
    parser = argparse.ArgumentParser()
    FinderSettings.add_arguments(parser)
    assert FinderSettings.from_namespace(parser.parse_args([])) == FinderSettings()
    parsed = FinderSettings.from_namespace(
        parser.parse_args(["--repeats", "2", "--schedule", "one-cycle", "--total_steps", "300"])
    )
    assert parsed == FinderSettings(repeats=2, schedule="one-cycle", total_steps=300)
    help_text = parser.format_help()
    for name in RULES:
        assert f"{name}:" in help_text  # the rules' summaries come from the registry


def test_build_replaces_fields_and_names_the_options_on_a_typo() -> None:
    base = FinderSettings(num_steps=30)
    assert FinderSettings.build(base, repeats=2) == FinderSettings(num_steps=30, repeats=2)
    with pytest.raises(TypeError, match=r"unknown finder option\(s\) \['repeat'\]"):
        FinderSettings.build(base, repeat=2)
