"""Schedules built from other schedules: one after another (Join), or held in blocks (Hold)."""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from lightning_lr._validate import check_int
from lightning_lr.lengths import Length, RunLength, check_length, resolve_length
from lightning_lr.schedules._base import Schedule, as_schedule, check_step_sequence, registered


@registered
@dataclass(frozen=True)
class Join(Schedule):
    """Run ``schedules`` one after another, switching at ``boundaries`` (optax's ``join_schedules``).

    Piece ``i`` runs from ``boundaries[i - 1]`` (0 for the first) and sees the step counted from
    its own start: ``f(k) = schedules[i](k - boundaries[i - 1])``. A fraction inside a piece is a
    fraction of that piece's span.

    Example:
        >>> from lightning_lr.schedules import Constant, LinearSchedule
        >>> schedule = Join([LinearSchedule(0.1, 1.0, 10), Constant()], boundaries=[10])
        >>> round(schedule(5), 2), schedule(10), schedule(99)
        (0.55, 1.0, 1.0)
    """

    schedules: Sequence[Schedule]
    boundaries: Sequence[Length]

    _lengths = ("boundaries",)

    def __post_init__(self) -> None:
        if isinstance(self.schedules, (str, bytes)) or not isinstance(self.schedules, Sequence):
            raise TypeError(f"`schedules` must be a list of schedules, got {self.schedules!r}.")
        if isinstance(self.boundaries, (str, bytes)) or not isinstance(self.boundaries, Sequence):
            raise TypeError(f"`boundaries` must be a list of lengths, got {self.boundaries!r}.")
        pieces = tuple(as_schedule(piece, f"schedules[{i}]") for i, piece in enumerate(self.schedules))
        object.__setattr__(self, "schedules", pieces)
        object.__setattr__(self, "boundaries", tuple(self.boundaries))
        if not self.schedules:
            raise ValueError("`schedules` must hold at least one schedule, got [].")
        if len(self.boundaries) != len(self.schedules) - 1:
            raise ValueError(
                f"`boundaries` must hold one fewer entry than `schedules` ({len(self.schedules) - 1}), "
                f"got {list(self.boundaries)!r}: each boundary is where the next piece starts."
            )
        for i, boundary in enumerate(self.boundaries):
            check_length(f"boundaries[{i}]", boundary)
        if all(isinstance(b, int) for b in self.boundaries):
            check_step_sequence("boundaries", tuple(self.boundaries))

    def children(self) -> tuple[Schedule, ...]:
        return tuple(self.schedules)

    def resolve(self, run: RunLength | None) -> Join:
        bounds = [resolve_length(f"boundaries[{i}]", b, run) for i, b in enumerate(self.boundaries)]
        check_step_sequence("boundaries", tuple(bounds))
        starts = [0, *bounds]
        pieces = []
        for i, piece in enumerate(self.schedules):
            span = None if run is None else run.remaining(starts[i])
            if span is not None and i < len(bounds):
                span = RunLength(bounds[i] - starts[i], span.steps_per_epoch)
            pieces.append(piece.resolve(span))
        return dataclasses.replace(self, schedules=pieces, boundaries=bounds)

    def value(self, step: int) -> float:
        index, local = self._piece_at(step)
        return self.schedules[index].value(local)

    def momentum(self, step: int) -> float | None:
        index, local = self._piece_at(step)
        return self.schedules[index].momentum(local)

    def ramp_steps(self) -> int:
        """The first piece's ramp; a ramp that runs to its piece's end goes on in the next piece."""
        start = 0
        for index, piece in enumerate(self.schedules):
            end = int(self.boundaries[index]) if index < len(self.boundaries) else None
            ramp = start + piece.ramp_steps()
            if end is None or ramp < end:
                return ramp
            start = end
        raise AssertionError("unreachable: the last piece has no end")

    def _piece_at(self, step: int) -> tuple[int, int]:
        """The piece that runs at ``step`` and the step counted from that piece's start."""
        index = bisect.bisect_right(self.boundaries, step)  # type: ignore[arg-type]
        start = int(self.boundaries[index - 1]) if index else 0
        return index, step - start


@registered
@dataclass(frozen=True)
class Hold(Schedule):
    """Update the wrapped schedule only every ``every`` steps: ``f(k) = schedule(k // every)``.

    This is how the mixin gives ``frequency=n`` its meaning, "every n optimizer steps", under
    gradient accumulation. Lengths inside ``schedule`` count blocks of ``every`` steps.

    Example:
        >>> from lightning_lr.schedules import ExponentialDecay
        >>> schedule = Hold(ExponentialDecay(0.5), every=3)
        >>> [schedule(k) for k in range(7)]
        [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25]
    """

    schedule: Schedule
    every: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "schedule", as_schedule(self.schedule, "schedule"))
        check_int("every", self.every, 1)

    def children(self) -> tuple[Schedule, ...]:
        return (self.schedule,)

    def resolve(self, run: RunLength | None) -> Hold:
        inner = None if run is None else run.scaled(self.every)
        return dataclasses.replace(self, schedule=self.schedule.resolve(inner))

    def value(self, step: int) -> float:
        return self.schedule.value(step // self.every)

    def momentum(self, step: int) -> float | None:
        return self.schedule.momentum(step // self.every)

    def ramp_steps(self) -> int:
        return self.schedule.ramp_steps() * self.every
