"""Monotone decays: constant, step, multistep, exponential, inverse-time, polynomial, linear, inverse sqrt."""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass

from lightning_lr._validate import check_non_negative, check_positive, check_range
from lightning_lr.lengths import Length, check_length
from lightning_lr.schedules._base import Schedule, check_step_sequence, registered


@registered
@dataclass(frozen=True)
class Constant(Schedule):
    """A constant multiplier: ``f(k) = factor``.

    Example:
        >>> Constant(0.5)(1000)
        0.5
    """

    factor: float = 1.0

    def __post_init__(self) -> None:
        check_positive("factor", self.factor)

    def value(self, step: int) -> float:
        return float(self.factor)


@registered
@dataclass(frozen=True)
class StepDecay(Schedule):
    """Decay by ``gamma`` every ``step_size`` steps: ``f(k) = gamma ** (k // step_size)``.

    Equals torch's ``StepLR``.

    Example:
        >>> StepDecay(step_size=10, gamma=0.5)(25)
        0.25
    """

    step_size: Length
    gamma: float = 0.1

    _lengths = ("step_size",)

    def __post_init__(self) -> None:
        check_length("step_size", self.step_size)
        check_range("gamma", self.gamma, 0.0, 1.0, low_open=True, fix="A decay needs 0 < gamma <= 1.")

    def value(self, step: int) -> float:
        return float(self.gamma ** (step // int(self.step_size)))


@registered
@dataclass(frozen=True)
class MultiStepDecay(Schedule):
    """Decay by ``gamma`` at each milestone: ``f(k) = gamma ** #{m in milestones : m <= k}``.

    Equals torch's ``MultiStepLR``.

    Example:
        >>> MultiStepDecay(milestones=[30, 80], gamma=0.1)(50)
        0.1
    """

    milestones: Sequence[Length]
    gamma: float = 0.1

    _lengths = ("milestones",)

    def __post_init__(self) -> None:
        if isinstance(self.milestones, (str, bytes)) or not isinstance(self.milestones, Sequence):
            raise TypeError(f"`milestones` must be a list of lengths, got {self.milestones!r}.")
        if not self.milestones:
            raise ValueError("`milestones` must not be empty, got []. Use Constant() for no decay.")
        object.__setattr__(self, "milestones", tuple(self.milestones))
        for i, milestone in enumerate(self.milestones):
            check_length(f"milestones[{i}]", milestone)
        if all(isinstance(m, int) for m in self.milestones):
            check_step_sequence("milestones", tuple(self.milestones))
        check_range("gamma", self.gamma, 0.0, 1.0, low_open=True, fix="A decay needs 0 < gamma <= 1.")

    def value(self, step: int) -> float:
        return float(self.gamma ** bisect.bisect_right(self.milestones, step))  # type: ignore[arg-type]


@registered
@dataclass(frozen=True)
class ExponentialDecay(Schedule):
    """Decay by ``gamma`` every step: ``f(k) = gamma ** k``. Equals torch's ``ExponentialLR``.

    Example:
        >>> round(ExponentialDecay(gamma=0.9)(2), 6)
        0.81
    """

    gamma: float

    def __post_init__(self) -> None:
        check_range("gamma", self.gamma, 0.0, 1.0, low_open=True, fix="A decay needs 0 < gamma <= 1.")

    def value(self, step: int) -> float:
        return float(self.gamma**step)


@registered
@dataclass(frozen=True)
class InverseTimeDecay(Schedule):
    """``f(k) = 1 / (1 + decay_rate * k / decay_steps)``, with ``k / decay_steps`` floored when
    ``staircase``. Equals Keras' ``InverseTimeDecay``.

    Example:
        >>> InverseTimeDecay(decay_rate=0.5, decay_steps=10)(20)
        0.5
    """

    decay_rate: float
    decay_steps: Length = 1
    staircase: bool = False

    _lengths = ("decay_steps",)

    def __post_init__(self) -> None:
        check_non_negative("decay_rate", self.decay_rate)
        check_length("decay_steps", self.decay_steps)

    def value(self, step: int) -> float:
        progress = step / int(self.decay_steps)
        if self.staircase:
            progress = float(int(progress))
        return 1.0 / (1.0 + self.decay_rate * progress)


@registered
@dataclass(frozen=True)
class PolynomialDecay(Schedule):
    """``f(k) = (1 - end_factor) * (1 - min(k, T) / T) ** power + end_factor``, held after ``T``.

    With ``end_factor=0`` equals torch's ``PolynomialLR(total_iters=T, power=power)``.

    Example:
        >>> PolynomialDecay(total_steps=10, power=2.0)(5)
        0.25
    """

    total_steps: Length
    power: float = 1.0
    end_factor: float = 0.0

    _lengths = ("total_steps",)

    def __post_init__(self) -> None:
        check_length("total_steps", self.total_steps)
        check_positive("power", self.power)
        check_range("end_factor", self.end_factor, 0.0, 1.0)

    def value(self, step: int) -> float:
        total = int(self.total_steps)
        remaining = 1.0 - min(step, total) / total
        return float((1.0 - self.end_factor) * remaining**self.power + self.end_factor)


@registered
@dataclass(frozen=True)
class LinearSchedule(Schedule):
    """A linear ramp from ``start_factor`` to ``end_factor`` over ``T`` steps, held after.

    ``f(k) = start_factor + (end_factor - start_factor) * min(k, T) / T``; equals torch's
    ``LinearLR(start_factor, end_factor, total_iters=T)``.

    Example:
        >>> LinearSchedule(start_factor=1.0, end_factor=0.0, total_steps=4)(1)
        0.75
    """

    start_factor: float
    end_factor: float
    total_steps: Length

    _lengths = ("total_steps",)

    def __post_init__(self) -> None:
        check_non_negative("start_factor", self.start_factor)
        check_non_negative("end_factor", self.end_factor)
        check_length("total_steps", self.total_steps)

    def value(self, step: int) -> float:
        total = int(self.total_steps)
        return self.start_factor + (self.end_factor - self.start_factor) * min(step, total) / total

    def ramp_steps(self) -> int:
        """``T`` for a rising line (a warmup written as a piece of a :class:`Join`), else 0."""
        return int(self.total_steps) if self.end_factor > self.start_factor else 0


@registered
@dataclass(frozen=True)
class InverseSqrt(Schedule):
    """The inverse square root decay of transformer training (Vaswani et al. 2017, arXiv:1706.03762).

    ``f(k) = 1 / sqrt(1 + k / timescale)``: 1 at step 0, half the peak at ``k = 3 * timescale``,
    never reaching zero. ``Warmup(InverseSqrt(timescale=t), warmup_steps=W)`` equals Hugging Face's
    ``get_inverse_sqrt_schedule(num_warmup_steps=W, timescale=t)`` from step ``W`` on (its default
    ``timescale`` is ``W``, which gives the original ``sqrt(W / k)``; 10000 without a warmup).

    Example:
        >>> InverseSqrt(timescale=100)(300)
        0.5
    """

    timescale: Length = 10_000

    _lengths = ("timescale",)

    def __post_init__(self) -> None:
        check_length("timescale", self.timescale)

    def value(self, step: int) -> float:
        return 1.0 / math.sqrt(1.0 + step / int(self.timescale))
