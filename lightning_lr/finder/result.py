"""What a range test is asked (its validated settings) and what it answers (its result)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from lightning.pytorch.utilities import rank_zero_info

from lightning_lr._validate import check_choice, check_int, check_positive, check_range, fail
from lightning_lr.finder.curve import Suggestion
from lightning_lr.finder.rules import RULES

SweepMode = Literal["exponential", "linear"]


def sweep_lrs(min_lr: float, max_lr: float, num_steps: int, mode: SweepMode = "exponential") -> list[float]:
    """The LR of each sweep step: ``min * (max / min) ** (k / (n - 1))`` (exponential) or linear.

    Example:
        >>> [round(lr, 6) for lr in sweep_lrs(1e-3, 1e-1, 3)]
        [0.001, 0.01, 0.1]
    """
    last = num_steps - 1
    if mode == "linear":
        return [min_lr + (max_lr - min_lr) * k / last for k in range(num_steps)]
    return [min_lr * (max_lr / min_lr) ** (k / last) for k in range(num_steps)]


@dataclass(frozen=True)
class FinderSettings:
    """How a range test sweeps and reads its curve; validated on construction.

    Args:
        min_lr: first LR of the sweep.
        max_lr: last LR of the sweep.
        num_steps: optimizer steps of the sweep (at least 10).
        mode: ``"exponential"`` (evenly on a log scale, the usual) or ``"linear"``.
        stop_factor: stop once the smoothed loss exceeds this multiple of its best.
        beta: smoothing of the loss (bias-corrected exponential moving average).
        rule: the rule a result's ``suggestion`` reports (``peak``, the default, ``steepest``,
            ``valley``, ``minimum`` or ``slide``); all are computed.

    Example:
        >>> [f"{lr:g}" for lr in FinderSettings(min_lr=1e-4, max_lr=1.0, num_steps=13).lrs()[::3]]
        ['0.0001', '0.001', '0.01', '0.1', '1']
    """

    min_lr: float = 1e-7
    max_lr: float = 10.0
    num_steps: int = 100
    mode: SweepMode = "exponential"
    stop_factor: float = 4.0
    beta: float = 0.98
    rule: str = "peak"

    def __post_init__(self) -> None:
        check_positive("min_lr", self.min_lr)
        check_positive("max_lr", self.max_lr)
        if self.max_lr <= self.min_lr:
            raise fail(
                "max_lr",
                self.max_lr,
                f"must be greater than `min_lr`={self.min_lr!r}",
                "Sweep upwards, e.g. 1e-7 to 10.",
            )
        check_int("num_steps", self.num_steps, 10, "A range test needs at least 10 steps; 100 is usual.")
        check_choice("mode", self.mode, ("exponential", "linear"))
        check_range("stop_factor", self.stop_factor, 1.0, math.inf, low_open=True, high_open=True)
        check_range("beta", self.beta, 0.0, 1.0, high_open=True)
        check_choice("rule", self.rule, tuple(RULES))

    def lrs(self) -> list[float]:
        """The LR of each planned step."""
        return sweep_lrs(self.min_lr, self.max_lr, self.num_steps, self.mode)


@dataclass
class LRFinderResult:
    """What a range test saw and what it suggests.

    Attributes:
        lrs: the LR of each step that ran (of the first param group; the others kept their ratio).
        losses: the training loss each of those optimizer steps saw.
        suggestions: every rule's :class:`~lightning_lr.finder.rules.Suggestion`.
        rule: the rule :attr:`suggestion` reports.
        stopped_early: the loss blew up before the last step.
        smoothed: the smoothed losses the rules read.
        configured_lr: the first group's LR as the model configured it (its scheduler's base LR),
            before the sweep took over; :meth:`factor` relates a suggestion to it.
    """

    lrs: list[float]
    losses: list[float]
    suggestions: dict[str, Suggestion]
    rule: str = "peak"
    stopped_early: bool = False
    smoothed: list[float] = field(default_factory=list)
    configured_lr: float | None = None

    @property
    def suggestion(self) -> float | None:
        """The default rule's LR, or ``None`` when it could make none (see its ``reason``)."""
        return self.suggestions[self.rule].lr

    def factor(self, reference: float | None = None) -> float | None:
        """What to multiply the LRs by to run at the suggestion, or ``None`` without one.

        ``reference`` is the first group's current base LR (default: :attr:`configured_lr`); every
        group scales by the same factor, so LR multipliers and scaling rules keep their ratios.
        """
        reference = self.configured_lr if reference is None else reference
        if self.suggestion is None or not reference:
            return None
        return self.suggestion / reference

    def to_dict(self) -> dict[str, Any]:
        """Plain data (lists, numbers, strings): for logs, checkpoints and broadcasts."""
        data = asdict(self)
        data["suggestions"] = {name: asdict(value) for name, value in self.suggestions.items()}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LRFinderResult:
        """The inverse of :meth:`to_dict`."""
        suggestions = {name: Suggestion(**value) for name, value in data["suggestions"].items()}
        return cls(**{**data, "suggestions": suggestions})


def report(result: LRFinderResult) -> None:
    """Print every rule's suggestion and its reason (on rank zero)."""
    for name, suggestion in result.suggestions.items():
        value = "none" if suggestion.lr is None else f"{suggestion.lr:.3g}"
        default = " (default)" if name == result.rule else ""
        rank_zero_info(f"LR finder: {name}{default}: {value} ({suggestion.reason})")
