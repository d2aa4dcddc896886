"""Cosine annealing and its warm restarts (SGDR)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from lightning_lr._validate import check_int, check_positive, check_range, fail
from lightning_lr.lengths import Length, RunLength, check_length, resolve_length
from lightning_lr.schedules._base import Schedule, registered


def half_cosine(progress: float) -> float:
    """1 at progress 0, 0 at progress 1, along half a cosine."""
    return 0.5 * (1.0 + math.cos(math.pi * progress))


@registered
@dataclass(frozen=True)
class CosineDecay(Schedule):
    """A cosine from 1 down to ``min_factor`` over ``T`` steps, **held** after ``T``.

    With progress ``p = (min(k, T) / T) ** k_decay`` and ``c = num_cycles``,
    ``f(k) = m + (1 - m) * (1 + cos(2 pi c p)) / 2``. The default ``c = 1/2`` is half a cosine,
    equal to torch's ``CosineAnnealingLR(T_max=T, eta_min=m * base_lr)`` for ``k <= T`` (torch's
    cosine comes back up after ``T``; this one stays at the floor). Other ``num_cycles`` equal
    Hugging Face's ``get_cosine_schedule_with_warmup(num_cycles=c)`` (held at ``f(T)`` after ``T``,
    where Hugging Face's keeps oscillating); ``k_decay`` equals timm's ``CosineLRScheduler(k_decay=...)``
    (Zhang & Li, k-decay, arXiv:2004.05909): above 1 it stays high longer and falls faster at the end.

    Example:
        >>> CosineDecay(total_steps=100)(50)
        0.5
        >>> round(CosineDecay(total_steps=100, num_cycles=1.0)(50), 12)
        0.0
    """

    total_steps: Length
    min_factor: float = 0.0
    num_cycles: float = 0.5
    k_decay: float = 1.0

    _lengths = ("total_steps",)

    def __post_init__(self) -> None:
        check_length("total_steps", self.total_steps)
        check_range("min_factor", self.min_factor, 0.0, 1.0)
        check_positive("num_cycles", self.num_cycles, "0.5 is half a cosine, from the peak to the floor.")
        check_positive("k_decay", self.k_decay, "1 is the plain cosine.")

    def value(self, step: int) -> float:
        total = int(self.total_steps)
        progress = (min(step, total) / total) ** self.k_decay
        return self.min_factor + (1.0 - self.min_factor) * half_cosine(2.0 * self.num_cycles * progress)


@registered
@dataclass(frozen=True)
class CosineRestarts(Schedule):
    """Cosine annealing with warm restarts, SGDR (Loshchilov & Hutter, 2017).

    Cycle ``i`` lasts ``T_i = round(cycle_steps * cycle_mult ** i)`` steps and starts at the peak
    ``p_i = max(peak_decay ** i, min_factor)``; at position ``t`` in it,
    ``f = m + (p_i - m) * (1 + cos(pi * t / T_i)) / 2``. After ``max_cycles`` cycles the factor
    stays at ``min_factor``. With an integer ``cycle_mult`` and ``peak_decay=1`` this equals torch's
    ``CosineAnnealingWarmRestarts(T_0=cycle_steps, T_mult=cycle_mult)``; ``cycle_mult`` may be any
    float >= 1 here.

    A fraction of the run with ``cycle_mult=1`` tiles the run: ``cycle_steps=1/n`` resolves to
    ``n = round(1 / cycle_steps)`` cycles over the run's ``S`` steps, cycle ``i`` spanning steps
    ``floor(i * S / n)`` to ``floor((i + 1) * S / n) - 1``, so the last one ends at the run's last
    step and the factor stays at the floor after it (``tiled_steps`` and ``tiled_cycles`` record
    this). When ``n`` divides ``S`` this equals Hugging Face's
    ``get_cosine_with_hard_restarts_schedule_with_warmup(num_cycles=n)`` after its warmup; otherwise
    each restart is at most one step from Hugging Face's (whose cycles last ``S / n`` steps, not whole ones).

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
    tiled_steps: int | None = None
    tiled_cycles: int | None = None

    _lengths = ("cycle_steps",)

    def __post_init__(self) -> None:
        check_length("cycle_steps", self.cycle_steps)
        check_range("cycle_mult", self.cycle_mult, 1.0, 1e6, fix="Cycles may only stay equal or grow.")
        check_range("peak_decay", self.peak_decay, 0.0, 1.0, low_open=True)
        check_range("min_factor", self.min_factor, 0.0, 1.0)
        if self.max_cycles is not None:
            check_int("max_cycles", self.max_cycles, 1, "Use None for endless restarts.")
        if (self.tiled_steps is None) != (self.tiled_cycles is None):
            raise ValueError(
                f"`tiled_steps`={self.tiled_steps!r} and `tiled_cycles`={self.tiled_cycles!r} must be "
                "given together or not at all. Give `cycle_steps` as a fraction of the run instead."
            )
        if self.tiled_steps is not None and self.tiled_cycles is not None:
            check_int("tiled_cycles", self.tiled_cycles, 1)
            check_int("tiled_steps", self.tiled_steps, self.tiled_cycles, "Each cycle needs a step.")
            if self.cycle_mult != 1.0:
                raise fail("cycle_mult", self.cycle_mult, "must be 1 when the cycles tile the run", _TILE_FIX)

    def resolve(self, run: RunLength | None) -> CosineRestarts:
        if not isinstance(self.cycle_steps, float) or self.cycle_mult != 1.0 or self.tiled_steps is not None:
            return super().resolve(run)
        resolve_length("cycle_steps", self.cycle_steps, run)  # the usual error when the run is unknown
        total = int(run.total_steps)  # type: ignore[union-attr, arg-type]
        cycles = min(max(1, round(1.0 / self.cycle_steps)), total)
        max_cycles = cycles if self.max_cycles is None else min(self.max_cycles, cycles)
        return dataclasses.replace(
            self, cycle_steps=total // cycles, max_cycles=max_cycles, tiled_steps=total, tiled_cycles=cycles
        )

    def cycle_at(self, step: int) -> tuple[int, int, int]:
        """``(cycle index, position in the cycle, cycle length)`` of ``step``."""
        if self.tiled_steps is not None and self.tiled_cycles is not None:
            return _tile_at(step, self.tiled_steps, self.tiled_cycles)
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


_TILE_FIX = "Give `cycle_steps` in steps to combine growing cycles with restarts."


def _tile_at(step: int, total: int, cycles: int) -> tuple[int, int, int]:
    """Where ``step`` falls when ``cycles`` cycles tile ``total`` steps (past the end: cycle ``cycles``)."""

    def start(index: int) -> int:
        return index * total // cycles

    if step >= total:
        return cycles, step - total, total - start(cycles - 1)
    index = step * cycles // total
    while start(index + 1) <= step:
        index += 1
    return index, step - start(index), start(index + 1) - start(index)
