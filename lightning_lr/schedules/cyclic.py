"""Cyclical learning rates (Smith, 2017) and the 1cycle policy (Smith & Topin, 2019)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from lightning_lr._validate import check_choice, check_positive, check_range
from lightning_lr.lengths import Length, check_length
from lightning_lr.schedules._base import Schedule
from lightning_lr.schedules.cosine import half_cosine

CyclicMode = Literal["triangular", "triangular2", "exp_range"]
Anneal = Literal["cos", "linear"]


@dataclass(frozen=True)
class Cyclic(Schedule):
    """Cyclical LR between ``base_factor`` and the peak 1 (Smith, 2017, arXiv:1506.01186).

    A cycle rises for ``step_size_up`` steps and falls for ``step_size_down`` (default: the same).
    With ``c = floor(1 + k / L)``, ``x = 1 + k / L - c`` and ``r = up / L`` for the cycle length
    ``L``, the height is ``h = x / r`` rising and ``(x - 1) / (r - 1)`` falling, and
    ``f(k) = b + (1 - b) * h * s`` with ``s = 1`` (triangular), ``1 / 2 ** (c - 1)``
    (triangular2) or ``gamma ** k`` (exp_range). Equals torch's ``CyclicLR`` with
    ``base_lr = base_factor * max_lr``.

    Example:
        >>> schedule = Cyclic(step_size_up=4, base_factor=0.2)
        >>> [round(schedule(k), 6) for k in (0, 2, 4, 8)]
        [0.2, 0.6, 1.0, 0.2]
    """

    step_size_up: Length
    step_size_down: Length | None = None
    base_factor: float = 0.1
    mode: CyclicMode = "triangular"
    gamma: float = 1.0

    _lengths = ("step_size_up", "step_size_down")

    def __post_init__(self) -> None:
        check_length("step_size_up", self.step_size_up)
        if self.step_size_down is None:
            object.__setattr__(self, "step_size_down", self.step_size_up)
        check_length("step_size_down", self.step_size_down)
        check_range(
            "base_factor",
            self.base_factor,
            0.0,
            1.0,
            high_open=True,
            fix="The peak is 1 (the base LR); the floor must lie below it.",
        )
        check_choice("mode", self.mode, ("triangular", "triangular2", "exp_range"))
        check_range("gamma", self.gamma, 0.0, 1.0, low_open=True)

    def value(self, step: int) -> float:
        up, down = int(self.step_size_up), int(self.step_size_down)  # type: ignore[arg-type]
        length = up + down
        cycle = math.floor(1 + step / length)
        x = 1.0 + step / length - cycle
        ratio = up / length
        height = x / ratio if x <= ratio else (x - 1) / (ratio - 1)
        if self.mode == "triangular2":
            height /= 2.0 ** (cycle - 1)
        elif self.mode == "exp_range":
            height *= self.gamma**step
        return self.base_factor + (1.0 - self.base_factor) * height


@dataclass(frozen=True)
class OneCycle(Schedule):
    """The 1cycle policy (Smith & Topin, 2019, arXiv:1708.07120).

    The factor rises from ``1 / div_factor`` to 1 over the first ``pct_start * T`` steps, then
    anneals to ``1 / (div_factor * final_div_factor)`` at step ``T - 1`` and is held there. With
    ``three_phase`` it first comes back down to ``1 / div_factor`` symmetrically, then anneals.
    ``anneal`` is ``"cos"`` (half cosine) or ``"linear"``. Equals torch's ``OneCycleLR``.

    Example:
        >>> schedule = OneCycle(total_steps=100, pct_start=0.25, div_factor=10.0, anneal="linear")
        >>> schedule(0), schedule(24)
        (0.1, 1.0)
    """

    total_steps: Length
    pct_start: float = 0.3
    div_factor: float = 25.0
    final_div_factor: float = 1e4
    anneal: Anneal = "cos"
    three_phase: bool = False

    _lengths = ("total_steps",)

    def __post_init__(self) -> None:
        check_length("total_steps", self.total_steps)
        check_range("pct_start", self.pct_start, 0.0, 1.0, low_open=True, high_open=True)
        check_positive("div_factor", self.div_factor)
        check_positive("final_div_factor", self.final_div_factor)
        check_choice("anneal", self.anneal, ("cos", "linear"))
        if self.resolved:
            ends = [end for end, _, _ in self.phases()]
            starts = [0.0, *ends[:-1]]
            if any(end <= start for start, end in zip(starts, ends)):
                raise ValueError(
                    f"`total_steps`={self.total_steps} is too short for `pct_start`={self.pct_start}"
                    f"{' with three phases' if self.three_phase else ''}: a phase would have no steps. "
                    "Lengthen the run or move `pct_start` towards 0.5."
                )

    def phases(self) -> list[tuple[float, float, float]]:
        """``(end step, start factor, end factor)`` of each phase, as torch's ``OneCycleLR`` has them."""
        total = int(self.total_steps)
        initial = 1.0 / self.div_factor
        floor = initial / self.final_div_factor
        rise_end = self.pct_start * total - 1
        if self.three_phase:
            return [
                (rise_end, initial, 1.0),
                (2 * self.pct_start * total - 2, 1.0, initial),
                (total - 1, initial, floor),
            ]
        return [(rise_end, initial, 1.0), (total - 1, 1.0, floor)]

    def value(self, step: int) -> float:
        *rising, last = self.phases()
        step = min(step, int(self.total_steps) - 1)
        start_step = 0.0
        for end_step, start, end in rising:
            if step <= end_step:
                return self._anneal(start, end, (step - start_step) / (end_step - start_step))
            start_step = end_step
        end_step, start, end = last
        return self._anneal(start, end, (step - start_step) / (end_step - start_step))

    def _anneal(self, start: float, end: float, progress: float) -> float:
        if self.anneal == "cos":
            return end + (start - end) * half_cosine(progress)
        return start + (end - start) * progress
