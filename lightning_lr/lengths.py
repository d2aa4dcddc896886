"""Lengths of schedule phases: optimizer steps, epochs or fractions of the run.

A length is written one of three ways:

* ``int`` — a number of scheduler steps (optimizer steps with ``interval="step"``, the default);
* ``float`` in ``(0, 1]`` — a fraction of the span the schedule runs over (the whole run for a
  top-level schedule; the remaining span for the piece of a ``Warmup`` or ``Join``);
* ``str`` — ``"3 epochs"`` (``"1 epoch"``, ``"0.5 epochs"``) or ``"120 steps"``.

Everything is turned into integer steps here and nowhere else, against a :class:`RunLength`
that :func:`run_length_from_trainer` reads from a real ``Trainer``. The cadence of a scheduler
(how often it steps, and who counts: Lightning, a ``Hold`` or the mixin) is decided here too.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from lightning_lr._internals import load_fit_train_data
from lightning_lr._validate import check_int, fail

if TYPE_CHECKING:
    import lightning.pytorch as pl

Length = int | float | str
"""A length as users write it: steps (int), a fraction of the span (float) or ``"N epochs"``."""

_TEXT = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(epochs?|steps?)\s*$")
_HOW = 'an int for steps, a float in (0, 1] for a fraction of the run, or "N epochs"'
_FIX = f"Write {_HOW}"


@dataclass(frozen=True)
class RunLength:
    """How long the span a schedule runs over is, in scheduler steps.

    Args:
        total_steps: steps in the span, or ``None`` when unknown (no ``max_steps``/``max_epochs``).
        steps_per_epoch: scheduler steps per training epoch, or ``None`` when unknown.
    """

    total_steps: int | None
    steps_per_epoch: float | None = None

    def remaining(self, after: int) -> RunLength:
        """The span that starts ``after`` steps into this one."""
        total = None if self.total_steps is None else max(self.total_steps - after, 0)
        return RunLength(total, self.steps_per_epoch)

    def scaled(self, every: int) -> RunLength:
        """The same span counted in units of ``every`` steps."""
        total = None if self.total_steps is None else math.ceil(self.total_steps / every)
        per_epoch = None if self.steps_per_epoch is None else self.steps_per_epoch / every
        return RunLength(total, per_epoch)


def check_length(name: str, value: object, *, allow_zero: bool = False) -> Length:
    """Validate how a length is written, without resolving it."""
    if isinstance(value, bool):
        raise TypeError(f"`{name}` must be a length ({_HOW}), got {value!r}.")
    if isinstance(value, int):
        return check_int(name, value, 0 if allow_zero else 1)
    if isinstance(value, float):
        if not (math.isfinite(value) and 0.0 < value <= 1.0) and not (allow_zero and value == 0.0):
            raise fail(name, value, "as a float is a fraction of the run and must lie in (0, 1]", _FIX + ".")
        return value
    if isinstance(value, str):
        match = _TEXT.match(value)
        if match is None:
            raise fail(name, value, "is not a length", _FIX + ', e.g. "2 epochs" or "500 steps".')
        amount = float(match.group(1))
        if amount == 0 and not allow_zero:
            raise fail(name, value, "must be longer than zero")
        if match.group(2).startswith("step") and amount != int(amount):
            raise fail(name, value, "must be a whole number of steps")
        return value
    raise TypeError(f"`{name}` must be a length ({_HOW}), got {value!r} of type {type(value).__name__}.")


def is_resolved(value: Length) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def resolve_length(name: str, value: Length, run: RunLength | None) -> int:
    """Turn a length into whole scheduler steps (at least 1 unless it was written as 0)."""
    check_length(name, value, allow_zero=True)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if run is None or run.total_steps is None:
            raise fail(
                name,
                value,
                "is a fraction of the run, but the run length is unknown",
                "Set `max_steps` or `max_epochs` on the Trainer, or give the length in steps.",
            )
        return max(1, _round_half_up(value * run.total_steps)) if value > 0 else 0
    match = _TEXT.match(value)
    if match is None:  # unreachable after check_length; keeps the type checker honest
        raise fail(name, value, "is not a length", _FIX + ".")
    amount = float(match.group(1))
    if match.group(2).startswith("step"):
        return int(amount)
    if run is None or run.steps_per_epoch is None:
        raise fail(
            name,
            value,
            "is given in epochs, but the number of steps per epoch is unknown",
            "Give the length in steps, or use a dataloader with a length.",
        )
    return max(1, _round_half_up(amount * run.steps_per_epoch)) if amount > 0 else 0


def _round_half_up(value: float) -> int:
    return math.floor(value + 0.5)


def run_length_from_trainer(
    trainer: pl.Trainer, *, interval: Literal["step", "epoch"] = "step", frequency: int = 1
) -> RunLength:
    """Read the run's length from a Trainer, in scheduler steps.

    With ``interval="step"`` a scheduler step is an optimizer step (gradient accumulation counts
    once); with ``interval="epoch"`` it is an epoch. ``frequency`` groups that many into one.
    """
    total = trainer.estimated_stepping_batches
    per_epoch = steps_per_epoch(trainer)
    total_steps = int(total) if math.isfinite(total) else None
    if interval == "epoch":
        if per_epoch is None or total_steps is None:
            total_steps = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else None
        else:
            total_steps = math.ceil(total_steps / per_epoch)
        per_epoch = 1.0
    return RunLength(total_steps, per_epoch).scaled(frequency)


def steps_per_epoch(trainer: pl.Trainer) -> float | None:
    """Optimizer steps in one training epoch (gradient accumulation counts once); ``None`` when the
    train data has no length (or none at all). Loads the train data when the fit has not yet."""
    load_fit_train_data(trainer)
    batches = trainer.num_training_batches
    if math.isfinite(batches) and batches > 0:
        return float(math.ceil(batches / trainer.accumulate_grad_batches))
    return None


@dataclass(frozen=True)
class Cadence:
    """How often a scheduler steps, and who counts the optimizer steps or epochs in between.

    Lightning counts a step-interval ``frequency`` in batches and restarts the count each epoch, so
    with ``interval="step"`` it is handed ``frequency=1``: a closed-form schedule holds each value
    for ``hold`` optimizer steps instead (a ``Hold``), and any other scheduler is stepped on every
    ``step_every``-th of Lightning's calls (the mixin's ``lr_scheduler_step``). With
    ``interval="epoch"`` Lightning's own ``frequency`` counts epochs.

    Args:
        hold: optimizer steps a closed-form schedule holds each value (1: none).
        lightning_frequency: the ``frequency`` handed to Lightning, in its ``interval``.
        step_every: Lightning's scheduler calls that make one real step.
    """

    hold: int = 1
    lightning_frequency: int = 1
    step_every: int = 1


def cadence(interval: Literal["step", "epoch"], frequency: int, *, closed_form: bool) -> Cadence:
    """The :class:`Cadence` of a scheduler stepped every ``frequency`` intervals."""
    if interval == "epoch":
        return Cadence(lightning_frequency=frequency)
    return Cadence(hold=frequency) if closed_form else Cadence(step_every=frequency)


def scheduler_steps_before(
    step: int,
    *,
    interval: Literal["step", "epoch"],
    frequency: int,
    steps_per_epoch: float | None,
    step_every: int = 1,
) -> int:
    """How many times a scheduler has really stepped before optimizer step ``step``.

    Lightning calls it every ``frequency`` optimizer steps or epochs (``interval``); ``step_every``
    of those calls make one real step (:class:`Cadence`). An epoch-interval scheduler never steps
    when the epoch length is unknown.
    """
    if interval == "step":
        return step // frequency // step_every
    if steps_per_epoch is None:
        return 0
    return int(step // steps_per_epoch) // frequency // step_every
