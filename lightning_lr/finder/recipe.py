"""What an LR is for: the schedule it will run under and the length of the run, mapped to a pick.

A constant LR must be safe for the whole run; the peak of a warmup + decay or a one-cycle schedule
is held only briefly and can be higher; a long run can afford a lower LR than a short one. The pick
of the finder's default rule (``peak``) is the LR at the smoothed loss's minimum divided by
:func:`divisor`, which reads the kind of schedule and the run's length in optimizer steps::

    log10(divisor) = -(INTERCEPTS[kind] + SLOPE * log10(total_steps / REFERENCE_STEPS))

with ``total_steps`` held within :data:`FITTED_STEPS`, the lengths the fit saw.

The numbers are fitted by ``benchmarks/finder_suite.py`` on its tuning seeds (0-2) over 14 settings
(six tasks, AdamW and SGD with momentum, the three kinds of schedule, 5- and 20-epoch runs): a least-
squares fit of ``log10(best grid LR / LR at the smoothed minimum)``, and the benchmark prints the fit
again on every run so that a drift shows.
"""

from __future__ import annotations

import math
from typing import Literal, get_args

from lightning_lr._validate import check_choice, check_int
from lightning_lr.lengths import RunLength
from lightning_lr.schedules import Schedule

ScheduleKind = Literal["constant", "decay", "one-cycle"]
SCHEDULE_KINDS: tuple[str, ...] = get_args(ScheduleKind)
"""``constant``: one LR throughout; ``decay``: a short warmup (or none) to the peak, then a decay
(cosine, linear, steps, WSD); ``one-cycle``: a long ramp up to the peak and down again."""

REFERENCE_STEPS = 500
"""The run length the intercepts refer to (optimizer steps)."""

DEFAULT_TOTAL_STEPS = REFERENCE_STEPS
"""The run length assumed when neither the caller nor a Trainer says (a few thousand samples x 20 epochs)."""

INTERCEPTS: dict[str, float] = {"constant": -0.90, "decay": -0.45, "one-cycle": -0.55}
"""``log10(pick / LR at the smoothed minimum)`` at :data:`REFERENCE_STEPS`, by kind of schedule."""

SLOPE = 0.2
"""How ``log10`` of the pick moves per decade of run length."""

FITTED_STEPS = (65, 1260)
"""The run lengths the fit saw; a length outside is read as the nearest end, never extrapolated."""

ONE_CYCLE_RAMP = 0.15
"""A schedule whose ramp up takes at least this share of the run is read as one-cycle."""


def divisor(kind: str, total_steps: int) -> float:
    """What the LR at the smoothed minimum is divided by for a schedule of ``kind`` over ``total_steps``.

    Example:
        >>> divisor("constant", REFERENCE_STEPS) > divisor("decay", REFERENCE_STEPS)
        True
    """
    check_choice("schedule", kind, SCHEDULE_KINDS)
    check_int("total_steps", total_steps, 1)
    steps = min(max(total_steps, FITTED_STEPS[0]), FITTED_STEPS[1])
    return float(10.0 ** -(INTERCEPTS[kind] + SLOPE * math.log10(steps / REFERENCE_STEPS)))


def schedule_kind(schedule: Schedule | str | None, total_steps: int) -> str:
    """The kind of a schedule, asked of the schedule itself (its shape), never of its type.

    ``None`` (no scheduler) is ``constant``; a name of :data:`SCHEDULE_KINDS` is itself. A schedule
    whose ramp (:meth:`Schedule.warmup_end`) takes :data:`ONE_CYCLE_RAMP` of the run or more is
    ``one-cycle``; one whose multiplier never moves after its ramp is ``constant``; any other is
    ``decay``. Lengths in epochs or fractions are resolved against ``total_steps`` first.

    Example:
        >>> from lightning_lr.schedules import Constant, CosineDecay, OneCycle, Warmup
        >>> [schedule_kind(s, 100) for s in (Constant(), Warmup(CosineDecay(1.0), 0.05), OneCycle(1.0))]
        ['constant', 'decay', 'one-cycle']
    """
    if schedule is None:
        return "constant"
    if isinstance(schedule, str):
        return check_choice("schedule", schedule, SCHEDULE_KINDS)
    if not isinstance(schedule, Schedule):
        raise TypeError(f"`schedule` must be a Schedule, one of {SCHEDULE_KINDS} or None, got {schedule!r}.")
    resolved = schedule if schedule.resolved else schedule.resolve(RunLength(total_steps))
    ramp = resolved.warmup_end()
    if ramp >= ONE_CYCLE_RAMP * total_steps:
        return "one-cycle"
    after = sorted({ramp + round(k * (total_steps - 1 - ramp) / 50) for k in range(51)})
    values = [resolved(step) for step in after]
    return "constant" if max(values) <= 1.0001 * min(values) else "decay"
