"""The divergence guard's rule: is this step's loss a blow-up, judged against its running level.

:class:`LossLevel` is the rule with its memory; :class:`GuardState` is all that the guard
remembers on the host (the rule, the rollbacks made, the LR scale they set, the latest events),
as plain data that a checkpoint stores and ``torch.load(weights_only=True)`` reads back.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

KEEP_EVENTS = 100
"""Rollback events kept (the latest)."""


def is_divergent(loss: float, level: float | None, spike_factor: float) -> bool:
    """A loss that is not finite, or above ``spike_factor`` times the running ``level``.

    Example:
        >>> is_divergent(float("nan"), 1.0, 10.0), is_divergent(11.0, 1.0, 10.0), is_divergent(9.0, 1.0, 10.0)
        (True, True, False)
    """
    if not math.isfinite(loss):
        return True
    return level is not None and level > 0 and loss > spike_factor * level


def spike_reference(level: float | None, start: float | None, floor: float) -> float | None:
    """The level a spike is measured against: the running ``level``, but never below ``floor`` x ``start``.

    As a loss approaches zero (a classifier that has learnt its training set, a regression that
    fits), its batches differ by more than any fixed factor: a batch at 0.02 after a level of
    0.001 is noise, not a blow-up. Once the level has fallen below ``floor`` times the loss's
    ``start`` level, a spike is judged against that floor instead, so that only a loss that undoes
    most of the progress counts (a NaN or inf always does).

    Example:
        >>> spike_reference(0.5, 2.0, 0.1), spike_reference(0.001, 2.0, 0.1), spike_reference(0.3, None, 0.1)
        (0.5, 0.2, 0.3)
    """
    if level is None or start is None:
        return level
    return max(level, floor * start)


def update_level(level: float | None, loss: float, decay: float) -> float:
    """The running level after a healthy ``loss``: an exponential moving average.

    Example:
        >>> update_level(None, 2.0, 0.9), update_level(2.0, 1.0, 0.9)
        (2.0, 1.9)
    """
    return loss if level is None else decay * level + (1.0 - decay) * loss


@dataclass
class LossLevel:
    """The divergence rule with its memory: judges each step's loss, learns from the healthy ones.

    The first ``warmup_steps`` finite losses only set the running level; the level then reached
    is the start level. From there on a loss is a spike when it is above ``spike_factor`` times
    :func:`spike_reference` (the running level, floored at ``level_floor`` x the start level).
    Plain data: :meth:`to_dict` / :meth:`load` round-trip its memory through a checkpoint.

    Example:
        >>> rule = LossLevel(warmup_steps=2)
        >>> [rule.judge(loss) for loss in (1.0, 1.0, 5.0, 20.0, float("nan"))]
        [False, False, False, True, True]
    """

    spike_factor: float = 10.0
    ema_decay: float = 0.9
    warmup_steps: int = 10
    level_floor: float = 0.1
    level: float | None = None
    start: float | None = None
    healthy_steps: int = 0

    def judge(self, loss: float) -> bool:
        """Whether ``loss`` is a blow-up; a healthy one updates the running level."""
        reference = None
        if self.healthy_steps >= self.warmup_steps:
            if self.start is None:
                self.start = self.level
            reference = spike_reference(self.level, self.start, self.level_floor)
        if is_divergent(loss, reference, self.spike_factor):
            return True
        self.healthy_steps += 1
        self.level = update_level(self.level, loss, self.ema_decay)
        return False

    def to_dict(self) -> dict[str, float | int | None]:
        return {"level": self.level, "start_level": self.start, "healthy_steps": self.healthy_steps}

    def load(self, state: dict[str, float | int | None]) -> None:
        """Take the memory from :meth:`to_dict` (the settings stay this rule's own)."""
        level, start = state.get("level"), state.get("start_level")
        self.level = None if level is None else float(level)
        self.start = None if start is None else float(start)
        self.healthy_steps = int(state.get("healthy_steps") or 0)


@dataclass
class GuardState:
    """What the divergence guard remembers on the host, as plain data.

    Attributes:
        rule: the divergence rule, with the running level of the healthy steps' loss.
        retries: rollbacks made.
        lr_scale: the product of the backoffs applied.
        events: the latest ``KEEP_EVENTS`` blow-ups, as ``{"step", "loss", "level", "lr_scale"}``
            (``lr_scale``: the scale after the rollback that answers it).

    Example:
        >>> state = GuardState(LossLevel(warmup_steps=1))
        >>> [state.judge(step, loss, backoff=0.5) for step, loss in enumerate((1.0, 1.0, float("inf")))]
        [False, False, True]
        >>> state.back_off(0.5)
        >>> state.retries, state.lr_scale, state.events[-1]["step"]
        (1, 0.5, 2)
    """

    rule: LossLevel = field(default_factory=LossLevel)
    retries: int = 0
    lr_scale: float = 1.0
    events: list[dict[str, Any]] = field(default_factory=list)

    def judge(self, step: int, loss: float, backoff: float) -> bool:
        """Whether the loss of ``step`` is a blow-up; one is recorded as an event."""
        if not self.rule.judge(loss):
            return False
        event = {"step": step, "loss": loss, "level": self.rule.level, "lr_scale": self.lr_scale * backoff}
        self.events = [*self.events[-(KEEP_EVENTS - 1) :], event]
        return True

    def back_off(self, backoff: float) -> None:
        """Count a rollback, and the LR scaled by ``backoff`` after it."""
        self.retries += 1
        self.lr_scale *= backoff

    def to_dict(self) -> dict[str, Any]:
        """Plain data, one flat dict: ``retries``, ``lr_scale``, the rule's memory, ``events``."""
        return {
            "retries": self.retries,
            "lr_scale": self.lr_scale,
            **self.rule.to_dict(),
            "events": copy.deepcopy(self.events),
        }

    @classmethod
    def from_dict(cls, state: Mapping[str, Any], rule: LossLevel | None = None) -> GuardState:
        """The state that :meth:`to_dict` saved, judging by ``rule``'s settings (its memory is not used)."""
        loaded = replace(rule) if rule is not None else LossLevel()
        loaded.load(dict(state))
        return cls(
            rule=loaded,
            retries=int(state["retries"]),
            lr_scale=float(state["lr_scale"]),
            events=list(state["events"]),
        )
