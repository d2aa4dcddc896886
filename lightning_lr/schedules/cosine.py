"""Cosine annealing and its warm restarts (SGDR)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from lightning_lr._validate import check_int, check_range
from lightning_lr.lengths import Length, check_length
from lightning_lr.schedules._base import Schedule


def half_cosine(progress: float) -> float:
    """1 at progress 0, 0 at progress 1, along half a cosine."""
    return 0.5 * (1.0 + math.cos(math.pi * progress))


@dataclass(frozen=True)
class CosineDecay(Schedule):
    """Half a cosine from 1 down to ``min_factor`` over ``T`` steps, **held** after ``T``.

    ``f(k) = m + (1 - m) * (1 + cos(pi * min(k, T) / T)) / 2``; equals torch's
    ``CosineAnnealingLR(T_max=T, eta_min=m * base_lr)`` for ``k <= T`` (torch's cosine comes
    back up after ``T``; this one stays at the floor).

    Example:
        >>> CosineDecay(total_steps=100)(50)
        0.5
    """

    total_steps: Length
    min_factor: float = 0.0

    _lengths = ("total_steps",)

    def __post_init__(self) -> None:
        check_length("total_steps", self.total_steps)
        check_range("min_factor", self.min_factor, 0.0, 1.0)

    def value(self, step: int) -> float:
        total = int(self.total_steps)
        return self.min_factor + (1.0 - self.min_factor) * half_cosine(min(step, total) / total)


@dataclass(frozen=True)
class CosineRestarts(Schedule):
    """Cosine annealing with warm restarts, SGDR (Loshchilov & Hutter, 2017).

    Cycle ``i`` lasts ``T_i = round(cycle_steps * cycle_mult ** i)`` steps and starts at the peak
    ``p_i = max(peak_decay ** i, min_factor)``; at position ``t`` in it,
    ``f = m + (p_i - m) * (1 + cos(pi * t / T_i)) / 2``. After ``max_cycles`` cycles the factor
    stays at ``min_factor``. With an integer ``cycle_mult`` and ``peak_decay=1`` this equals torch's
    ``CosineAnnealingWarmRestarts(T_0=cycle_steps, T_mult=cycle_mult)``; ``cycle_mult`` may be any
    float >= 1 here.

    Example:
        >>> schedule = CosineRestarts(cycle_steps=10, cycle_mult=2.0, peak_decay=0.5)
        >>> schedule(0), schedule(10), schedule(20)
        (1.0, 0.5, 0.25)
    """

    cycle_steps: Length
    cycle_mult: float = 1.0
    peak_decay: float = 1.0
    min_factor: float = 0.0
    max_cycles: int | None = None

    _lengths = ("cycle_steps",)

    def __post_init__(self) -> None:
        check_length("cycle_steps", self.cycle_steps)
        check_range("cycle_mult", self.cycle_mult, 1.0, 1e6, fix="Cycles may only stay equal or grow.")
        check_range("peak_decay", self.peak_decay, 0.0, 1.0, low_open=True)
        check_range("min_factor", self.min_factor, 0.0, 1.0)
        if self.max_cycles is not None:
            check_int("max_cycles", self.max_cycles, 1, "Use None for endless restarts.")

    def cycle_at(self, step: int) -> tuple[int, int, int]:
        """``(cycle index, position in the cycle, cycle length)`` of ``step``."""
        first = int(self.cycle_steps)
        if self.cycle_mult == 1.0:
            return step // first, step % first, first
        index, start, length = 0, 0, first
        while step >= start + length:
            start += length
            index += 1
            length = max(1, round(first * self.cycle_mult**index))
        return index, step - start, length

    def value(self, step: int) -> float:
        index, position, length = self.cycle_at(step)
        if self.max_cycles is not None and index >= self.max_cycles:
            return self.min_factor
        peak = max(self.peak_decay**index, self.min_factor)
        return self.min_factor + (peak - self.min_factor) * half_cosine(position / length)
