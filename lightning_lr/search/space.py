"""What an LR search searches: the peak LR, and optionally weight decay, warmup and schedule family."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lightning_lr._validate import check_int, fail
from lightning_lr.schedules import (
    Constant,
    CosineDecay,
    LinearSchedule,
    OneCycle,
    Schedule,
    Warmup,
    WarmupStableDecay,
)

if TYPE_CHECKING:
    import optuna

SCHEDULE_FAMILIES: dict[str, Schedule] = {
    "constant": Constant(),
    "cosine": CosineDecay(1.0),
    "linear": LinearSchedule(1.0, 0.0, 1.0),
    "onecycle": OneCycle(1.0),
    "wsd": WarmupStableDecay(1.0, 0, 0.2),
}
"""Each schedule family a search may pick, spanning the whole run (after the warmup, if any)."""


@dataclass(frozen=True)
class SearchSpace:
    """The hyperparameters an LR search samples, and how each is mapped onto the mixin's hparams.

    Args:
        lr: ``(low, high)`` of the peak LR, searched on a log scale.
        weight_decay: ``(low, high)`` of the weight decay, on a log scale; ``None`` keeps the model's.
        warmup: ``(low, high)`` of the warmup, as a fraction of the run in ``[0, 1)``, on a linear
            scale; ``None`` searches no warmup.
        schedule: schedule families to choose from (``constant``, ``cosine``, ``linear``,
            ``onecycle``, ``wsd``), each spanning the whole run; ``None`` keeps the model's schedule.
        grid_size: points per continuous axis for the grid sampler (log-spaced for ``lr`` and
            ``weight_decay``, evenly spaced for ``warmup``).

    A searched warmup without ``schedule`` leads into a constant LR. When neither ``warmup`` nor
    ``schedule`` is searched, the hparams carry no ``schedule`` and the model keeps its own.

    Example:
        >>> space = SearchSpace(lr=(1e-3, 1e-1), grid_size=3)
        >>> [round(lr, 6) for lr in space.grid()["lr"]]
        [0.001, 0.01, 0.1]
        >>> space.to_hparams({"lr": 0.01})
        {'lr': 0.01}
    """

    lr: tuple[float, float] = (1e-5, 1.0)
    weight_decay: tuple[float, float] | None = None
    warmup: tuple[float, float] | None = None
    schedule: Sequence[str] | None = None
    grid_size: int = 8

    def __post_init__(self) -> None:
        object.__setattr__(self, "lr", _check_bounds("lr", self.lr, log=True))
        if self.weight_decay is not None:
            object.__setattr__(
                self, "weight_decay", _check_bounds("weight_decay", self.weight_decay, log=True)
            )
        if self.warmup is not None:
            object.__setattr__(self, "warmup", _check_bounds("warmup", self.warmup, log=False))
        if self.schedule is not None:
            object.__setattr__(self, "schedule", _check_families(self.schedule))
        check_int("grid_size", self.grid_size, 2, "A grid needs both ends of each range; 8 is usual.")

    @property
    def continuous(self) -> tuple[str, ...]:
        """The names of the continuous axes searched (``lr`` always)."""
        return tuple(name for name in ("lr", "weight_decay", "warmup") if getattr(self, name) is not None)

    def suggest(self, trial: optuna.trial.BaseTrial) -> dict[str, Any]:
        """Ask ``trial`` for one point of the space: plain data, keyed by axis name."""
        params: dict[str, Any] = {"lr": trial.suggest_float("lr", *self.lr, log=True)}
        if self.weight_decay is not None:
            params["weight_decay"] = trial.suggest_float("weight_decay", *self.weight_decay, log=True)
        if self.warmup is not None:
            params["warmup"] = trial.suggest_float("warmup", *self.warmup)
        if self.schedule is not None:
            params["schedule"] = trial.suggest_categorical("schedule", list(self.schedule))
        return params

    def grid(self) -> dict[str, list[Any]]:
        """Every axis as the values a grid search visits (for ``optuna.samplers.GridSampler``)."""
        points: dict[str, list[Any]] = {"lr": _log_points(*self.lr, self.grid_size)}
        if self.weight_decay is not None:
            points["weight_decay"] = _log_points(*self.weight_decay, self.grid_size)
        if self.warmup is not None:
            low, high = self.warmup
            step = (high - low) / (self.grid_size - 1)
            points["warmup"] = [low + step * index for index in range(self.grid_size - 1)] + [high]
        if self.schedule is not None:
            points["schedule"] = list(self.schedule)
        return points

    def to_hparams(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The mixin's hparams (``lr``, ``weight_decay``, ``schedule``) for a point of the space.

        Example:
            >>> space = SearchSpace(warmup=(0.0, 0.2), schedule=["cosine"])
            >>> schedule = space.to_hparams({"lr": 0.1, "warmup": 0.1, "schedule": "cosine"})["schedule"]
            >>> type(schedule).__name__, schedule.warmup_steps, schedule.schedule
            ('Warmup', 0.1, CosineDecay(total_steps=1.0, min_factor=0.0, num_cycles=0.5, k_decay=1.0))
        """
        hparams: dict[str, Any] = {"lr": float(params["lr"])}
        if "weight_decay" in params:
            hparams["weight_decay"] = float(params["weight_decay"])
        if "warmup" in params or "schedule" in params:
            family = SCHEDULE_FAMILIES[str(params.get("schedule", "constant"))]
            warmup = float(params.get("warmup", 0.0))
            hparams["schedule"] = Warmup(family, warmup) if warmup > 0 else family
        return hparams


def hparams_to_cli_args(hparams: Mapping[str, Any]) -> list[str]:
    """The hparams as LightningCLI overrides of the model's ``init_args`` (schedules as JSON).

    Example:
        >>> lr, schedule = hparams_to_cli_args({"lr": 0.01, "schedule": CosineDecay(1.0)})
        >>> lr
        '--model.init_args.lr=0.01'
        >>> schedule.split("=", 1)[1][:51]
        '{"class_path": "lightning_lr.schedules.CosineDecay"'
    """
    args = []
    for name, value in hparams.items():
        plain = value.to_config() if isinstance(value, Schedule) else value
        args.append(f"--model.init_args.{name}={json.dumps(plain)}")
    return args


def _check_bounds(name: str, value: Any, *, log: bool) -> tuple[float, float]:
    example = "(1e-5, 1.0)" if log else "(0.0, 0.1)"
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 2:
        raise fail(name, value, "must be a (low, high) pair", f"e.g. {example}.")
    low, high = value
    for bound in (low, high):
        if isinstance(bound, bool) or not isinstance(bound, (int, float)) or not math.isfinite(bound):
            raise fail(name, value, "must hold two finite numbers", f"e.g. {example}.")
    if log and low <= 0:
        raise fail(name, value, "is searched on a log scale, so its bounds must be > 0", f"e.g. {example}.")
    if not log and not (low >= 0 and high < 1):
        raise fail(
            name, value, "is a fraction of the run, so its bounds must lie in [0, 1)", f"e.g. {example}."
        )
    if low >= high:
        raise fail(name, value, "must have low < high", f"Give a range, e.g. {example}.")
    return float(low), float(high)


def _check_families(value: Any) -> tuple[str, ...]:
    known = ", ".join(SCHEDULE_FAMILIES)
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise fail(
            "schedule",
            value,
            "must be a list of schedule families",
            f"e.g. ['cosine', 'onecycle'] of {known}.",
        )
    if not value:
        raise fail("schedule", value, "must name at least one family", f"Pick from {known}, or use None.")
    unknown = [name for name in value if name not in SCHEDULE_FAMILIES]
    if unknown:
        raise fail("schedule", value, f"names unknown families {unknown!r}", f"Pick from {known}.")
    return tuple(dict.fromkeys(value))


def _log_points(low: float, high: float, count: int) -> list[float]:
    """``count`` points evenly spaced in log from ``low`` to ``high``, both ends exact."""
    ratio = math.log(high / low)
    return [low] + [low * math.exp(ratio * index / (count - 1)) for index in range(1, count - 1)] + [high]
