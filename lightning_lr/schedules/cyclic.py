"""Cyclical learning rates (Smith, 2017) and the 1cycle policy (Smith & Topin, 2019)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from lightning_lr._validate import check_choice, check_positive, check_range
from lightning_lr.lengths import Length, check_length
from lightning_lr.schedules._base import Schedule, registered
from lightning_lr.schedules.cosine import half_cosine

CyclicMode = Literal["triangular", "triangular2", "exp_range"]
Anneal = Literal["cos", "linear"]


def check_momentum_cycle(cycle_momentum: object, base_momentum: object, max_momentum: object) -> None:
    """Validate the momentum a schedule cycles between (SGD's ``momentum``, Adam's ``beta1``)."""
    if not isinstance(cycle_momentum, bool):
        raise TypeError(f"`cycle_momentum` must be True or False, got {cycle_momentum!r}.")
    fix = "Momentum and beta1 lie below 1."
    check_range("base_momentum", base_momentum, 0.0, 1.0, high_open=True, fix=fix)
    check_range("max_momentum", max_momentum, 0.0, 1.0, high_open=True, fix=fix)


@registered
@dataclass(frozen=True)
class Cyclic(Schedule):
    """Cyclical LR between ``base_factor`` and the peak 1 (Smith, 2017, arXiv:1506.01186).

    A cycle rises for ``step_size_up`` steps and falls for ``step_size_down`` (default: the same).
    With ``c = floor(1 + k / L)``, ``x = 1 + k / L - c`` and ``r = up / L`` for the cycle length
    ``L``, the height is ``h = x / r`` rising and ``(x - 1) / (r - 1)`` falling, and
    ``f(k) = b + (1 - b) * h * s`` with ``s = 1`` (triangular), ``1 / 2 ** (c - 1)``
    (triangular2) or ``gamma ** k`` (exp_range). With ``cycle_momentum`` the momentum moves the
    other way, ``max_momentum - (max_momentum - base_momentum) * h * s``. Equals torch's
    ``CyclicLR`` with ``base_lr = base_factor * max_lr``, momentum included (torch's defaults:
    cycled between 0.8 and 0.9).

    Example:
        >>> schedule = Cyclic(step_size_up=4, base_factor=0.2)
        >>> [round(schedule(k), 6) for k in (0, 2, 4, 8)]
        [0.2, 0.6, 1.0, 0.2]
        >>> [round(schedule.momentum(k), 6) for k in (0, 2, 4)]
        [0.9, 0.85, 0.8]
    """

    step_size_up: Length
    step_size_down: Length | None = None
    base_factor: float = 0.1
    mode: CyclicMode = "triangular"
    gamma: float = 1.0
    cycle_momentum: bool = True
    base_momentum: float = 0.8
    max_momentum: float = 0.9

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
        check_momentum_cycle(self.cycle_momentum, self.base_momentum, self.max_momentum)

    @property
    def sets_momentum(self) -> bool:
        return self.cycle_momentum

    def value(self, step: int) -> float:
        return self.base_factor + (1.0 - self.base_factor) * self._height(step)

    def ramp_steps(self) -> int:
        """The first cycle's rise: ``step_size_up``, where the first peak is."""
        return int(self.step_size_up)

    def momentum(self, step: int) -> float | None:
        if not self.cycle_momentum:
            return None
        return self.max_momentum - (self.max_momentum - self.base_momentum) * self._height(step)

    def _height(self, step: int) -> float:
        """``h * s``: 0 at the floor, 1 at the peak of the first cycle."""
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
        return height


@registered
@dataclass(frozen=True)
class OneCycle(Schedule):
    """The 1cycle policy (Smith & Topin, 2019, arXiv:1708.07120).

    The factor rises from ``1 / div_factor`` to 1 until step ``pct_start * T - 1``, then anneals
    to ``1 / (div_factor * final_div_factor)`` at step ``T - 1`` and is held there. With
    ``three_phase`` it first comes back down to ``1 / div_factor`` at step ``2 * pct_start * T - 2``,
    then anneals. ``anneal`` is ``"cos"`` (half cosine) or ``"linear"``. With ``cycle_momentum``
    the momentum goes the other way: from ``max_momentum`` down to ``base_momentum`` while the LR
    rises, and back up while it falls (held at ``max_momentum`` in a third phase).

    Equals torch's ``OneCycleLR`` in every setting it accepts, momentum included: a step belongs
    to the first phase that has not ended by it, else to the last, so with three phases and
    ``pct_start > 0.5`` the second phase runs to the end, as in torch.

    Example:
        >>> schedule = OneCycle(total_steps=100, pct_start=0.25, div_factor=10.0, anneal="linear")
        >>> schedule(0), schedule(24), schedule.momentum(0), schedule.momentum(24)
        (0.1, 1.0, 0.95, 0.85)
    """

    total_steps: Length
    pct_start: float = 0.3
    div_factor: float = 25.0
    final_div_factor: float = 1e4
    anneal: Anneal = "cos"
    three_phase: bool = False
    cycle_momentum: bool = True
    base_momentum: float = 0.85
    max_momentum: float = 0.95

    _lengths = ("total_steps",)

    def __post_init__(self) -> None:
        check_length("total_steps", self.total_steps)
        check_range("pct_start", self.pct_start, 0.0, 1.0)
        check_positive("div_factor", self.div_factor)
        check_positive("final_div_factor", self.final_div_factor)
        check_choice("anneal", self.anneal, ("cos", "linear"))
        check_momentum_cycle(self.cycle_momentum, self.base_momentum, self.max_momentum)
        if self.resolved and self.phases()[0][0] == 0.0:
            # the first step would sit in a rise of zero length (torch divides by zero there)
            raise ValueError(
                f"`total_steps`={self.total_steps} is too short for `pct_start`={self.pct_start}: the "
                "rise would end where it starts (`pct_start` * `total_steps` = 1). Lengthen the run "
                "or change `pct_start`."
            )

    @property
    def sets_momentum(self) -> bool:
        return self.cycle_momentum

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
        index, progress = self._phase_at(step)
        _, start, end = self.phases()[index]
        return self._anneal(start, end, progress)

    def ramp_steps(self) -> int:
        """The rise of the first phase: the step nearest its end ``pct_start * T - 1`` with the higher LR."""
        rise_end = self.phases()[0][0]
        if self.div_factor <= 1.0 or rise_end <= 0:  # no rise: it starts at (or above) its peak
            return 0
        return max(sorted({math.floor(rise_end), math.ceil(rise_end)}), key=self.value)

    def momentum(self, step: int) -> float | None:
        if not self.cycle_momentum:
            return None
        low, high = self.base_momentum, self.max_momentum
        ends = [(high, low), (low, high), (high, high)]
        index, progress = self._phase_at(step)
        start, end = ends[index]
        return self._anneal(start, end, progress)

    def _phase_at(self, step: int) -> tuple[int, float]:
        """The phase of ``step`` and the progress through it, by torch's rule (held after ``T - 1``)."""
        step = min(step, int(self.total_steps) - 1)
        phases = self.phases()
        start_step = 0.0
        for index, (end_step, _, _) in enumerate(phases):
            if step <= end_step or index == len(phases) - 1:
                return index, (step - start_step) / (end_step - start_step)
            start_step = end_step
        raise AssertionError("unreachable: the last phase takes every step left")

    def _anneal(self, start: float, end: float, progress: float) -> float:
        if self.anneal == "cos":
            return end + (start - end) * half_cosine(progress)
        return start + (end - start) * progress
