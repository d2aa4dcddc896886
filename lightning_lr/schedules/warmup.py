"""Warmup: a ramp in front of any schedule, and warmup-stable-decay (WSD)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Literal

from lightning_lr._validate import check_choice, check_range
from lightning_lr.lengths import Length, RunLength, check_length, resolve_length
from lightning_lr.schedules._base import Schedule, as_schedule, registered
from lightning_lr.schedules.cosine import half_cosine

WarmupShape = Literal["linear", "exponential", "cosine"]
WsdWarmupShape = Literal["linear", "cosine", "1-sqrt"]
DecayShape = Literal["linear", "cosine", "1-sqrt"]

DEFAULT_EXPONENTIAL_START = 0.01


def warmup_ramp(step: int, warmup_steps: int, shape: str, start_factor: float) -> float:
    """The warmup multiplier at ``step < warmup_steps``, rising from ``start_factor`` towards 1.

    Progress is ``p = (k + 1) / (W + 1)``, so step 0 is never at zero LR and step ``W`` (the
    first after the ramp) is where 1 is reached: linear ``s + (1 - s) p``, cosine
    ``s + (1 - s) (1 - cos(pi p)) / 2``, 1-sqrt ``s + (1 - s) (1 - sqrt(1 - p))``, exponential
    ``s ** (1 - p)``. This is Hugging Face's and timm's ramp over ``W + 1`` steps, one step later:
    theirs has progress ``k / W`` and starts at ``s`` on step 0.
    """
    progress = (step + 1) / (warmup_steps + 1)
    if shape == "exponential":
        return float(start_factor ** (1.0 - progress))
    if shape == "cosine":
        return start_factor + (1.0 - start_factor) * (1.0 - half_cosine(progress))
    if shape == "1-sqrt":
        return start_factor + (1.0 - start_factor) * (1.0 - math.sqrt(1.0 - progress))
    return start_factor + (1.0 - start_factor) * progress


def check_warmup_shape(shape: str, start_factor: float | None) -> float:
    """Validate a warmup's shape and start, and return the start it ramps from."""
    check_choice("shape", shape, ("linear", "exponential", "cosine"))
    if start_factor is None:
        return DEFAULT_EXPONENTIAL_START if shape == "exponential" else 0.0
    if shape == "exponential":
        return check_range(
            "start_factor",
            start_factor,
            0.0,
            1.0,
            low_open=True,
            high_open=True,
            fix="An exponential ramp cannot start from 0; try 0.01.",
        )
    return check_range("start_factor", start_factor, 0.0, 1.0, high_open=True)


@registered
@dataclass(frozen=True)
class Warmup(Schedule):
    """A warmup ramp of ``warmup_steps`` steps, then ``schedule(k - warmup_steps)``.

    During the ramp ``f(k) = schedule(0) * ramp(k)`` (see :func:`warmup_ramp`): the LR is never
    zero at step 0 (unless the wrapped schedule starts at zero), rises monotonically, and meets
    the wrapped schedule's value at ``warmup_steps``. ``start_factor`` defaults to 0 (0.01 for
    the exponential shape). A fraction inside ``schedule`` is a fraction of the steps after the warmup, so
    ``Warmup(CosineDecay(1.0), 0.05)`` warms up for 5% of the run and decays over the rest.

    With ``overlap=True`` the warmup overlaps the schedule instead of preceding it: after the ramp
    ``f(k) = schedule(k)``, and a fraction inside ``schedule`` is a fraction of the whole run. This
    is timm's ``warmup_prefix=False`` (its default), which jumps from the ramp's top to
    ``schedule(W)``; from step ``W`` on it equals timm's step for step (the ramp follows the
    convention of :func:`warmup_ramp`).

    Example:
        >>> from lightning_lr.schedules import CosineDecay
        >>> schedule = Warmup(CosineDecay(total_steps=90), warmup_steps=10)
        >>> round(schedule(0), 4), schedule(10), schedule(55)
        (0.0909, 1.0, 0.5)
        >>> Warmup(CosineDecay(total_steps=100), warmup_steps=10, overlap=True)(50)
        0.5
    """

    schedule: Schedule
    warmup_steps: Length
    shape: WarmupShape = "linear"
    start_factor: float | None = None
    overlap: bool = False

    _lengths = ("warmup_steps",)

    def __post_init__(self) -> None:
        object.__setattr__(self, "schedule", as_schedule(self.schedule, "schedule"))
        check_length("warmup_steps", self.warmup_steps, allow_zero=True)
        object.__setattr__(self, "start_factor", check_warmup_shape(self.shape, self.start_factor))
        if not isinstance(self.overlap, bool):
            raise TypeError(f"`overlap` must be True or False, got {self.overlap!r}.")

    def children(self) -> tuple[Schedule, ...]:
        return (self.schedule,)

    def resolve(self, run: RunLength | None) -> Warmup:
        warmup = resolve_length("warmup_steps", self.warmup_steps, run)
        if run is not None and run.total_steps is not None and warmup >= run.total_steps > 0:
            raise ValueError(
                f"`warmup_steps`={self.warmup_steps!r} resolves to {warmup} steps, as long as the "
                f"run ({run.total_steps} steps). Shorten the warmup or lengthen the run."
            )
        return dataclasses.replace(
            self,
            warmup_steps=warmup,
            schedule=self.schedule.resolve(run if run is None or self.overlap else run.remaining(warmup)),
        )

    def value(self, step: int) -> float:
        warmup = int(self.warmup_steps)
        if step >= warmup:
            return self.schedule.value(step if self.overlap else step - warmup)
        start = float(self.start_factor or 0.0)
        return self.schedule.value(0) * warmup_ramp(step, warmup, self.shape, start)

    def momentum(self, step: int) -> float | None:
        """The wrapped schedule's momentum, at its step 0 during the ramp."""
        warmup = int(self.warmup_steps)
        if step < warmup:
            return self.schedule.momentum(0)
        return self.schedule.momentum(step if self.overlap else step - warmup)

    def ramp_steps(self) -> int:
        """This ramp, then any ramp the wrapped schedule starts with (beside it, with ``overlap``)."""
        inner = self.schedule.ramp_steps()
        return max(int(self.warmup_steps), inner) if self.overlap else int(self.warmup_steps) + inner


@registered
@dataclass(frozen=True)
class WarmupStableDecay(Schedule):
    """Warmup-stable-decay (WSD; Hu et al. 2024, MiniCPM, arXiv:2404.06395).

    A warmup over ``warmup_steps`` from ``start_factor`` (default ``min_factor``) to the peak 1,
    shaped ``warmup_shape`` by :func:`warmup_ramp` (it ramps from step 1, so step 0 already lies
    above the start), the peak held until ``T - decay_steps``, then a decay to ``min_factor`` by
    step ``T``, held after: with progress ``p`` through the decay, ``f = m + (1 - m) * d(p)`` where
    ``d`` is ``1 - p`` (linear), ``(1 + cos(pi p)) / 2`` (cosine) or ``1 - sqrt(p)`` (1-sqrt).

    Equals Hugging Face's ``get_wsd_schedule(warmup_type=..., decay_type=..., min_lr_ratio=m)`` in
    every shape: step for step from the end of the warmup on (throughout with ``warmup_steps=0``);
    during the warmup, this schedule's step ``k`` is Hugging Face's step ``k + 1`` of the same
    schedule with one more warmup step and one more step in all (Hugging Face's step 0 runs at the
    start factor itself).

    Example:
        >>> schedule = WarmupStableDecay(total_steps=100, warmup_steps=10, decay_steps=20,
        ...                              decay_shape="cosine")
        >>> schedule(50), schedule(90), schedule(100)
        (1.0, 0.5, 0.0)
        >>> round(WarmupStableDecay(100, 9, 20, min_factor=0.1)(0), 12)  # ramps up from min_factor
        0.19
    """

    total_steps: Length
    warmup_steps: Length
    decay_steps: Length
    decay_shape: DecayShape = "1-sqrt"
    min_factor: float = 0.0
    warmup_shape: WsdWarmupShape = "linear"
    start_factor: float | None = None

    _lengths = ("total_steps", "warmup_steps", "decay_steps")

    def __post_init__(self) -> None:
        check_length("total_steps", self.total_steps)
        check_length("warmup_steps", self.warmup_steps, allow_zero=True)
        check_length("decay_steps", self.decay_steps)
        check_choice("decay_shape", self.decay_shape, ("linear", "cosine", "1-sqrt"))
        check_range("min_factor", self.min_factor, 0.0, 1.0)
        check_choice("warmup_shape", self.warmup_shape, ("linear", "cosine", "1-sqrt"))
        if self.start_factor is not None:
            check_range(
                "start_factor",
                self.start_factor,
                0.0,
                1.0,
                high_open=True,
                fix="Leave it out to start at `min_factor`.",
            )
        if self.resolved and int(self.warmup_steps) + int(self.decay_steps) > int(self.total_steps):
            raise ValueError(
                f"`warmup_steps`={self.warmup_steps} plus `decay_steps`={self.decay_steps} exceed "
                f"`total_steps`={self.total_steps}. Shorten the warmup or the decay."
            )

    def ramp_steps(self) -> int:
        return int(self.warmup_steps)

    def value(self, step: int) -> float:
        total, warmup, decay = int(self.total_steps), int(self.warmup_steps), int(self.decay_steps)
        if step < warmup:
            start = self.min_factor if self.start_factor is None else self.start_factor
            return warmup_ramp(step, warmup, self.warmup_shape, start)
        decay_start = total - decay
        if step < decay_start:
            return 1.0
        progress = min(step - decay_start, decay) / decay
        if self.decay_shape == "linear":
            shape = 1.0 - progress
        elif self.decay_shape == "cosine":
            shape = half_cosine(progress)
        else:
            shape = 1.0 - math.sqrt(progress)
        return self.min_factor + (1.0 - self.min_factor) * shape
