"""A declarative ReduceLROnPlateau: the one LR policy that is not a function of the step (not a schedule)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from lightning_lr._validate import check_choice, check_int, check_non_negative, check_range


@dataclass(frozen=True)
class ReduceOnPlateau:
    """Reduce the LR by ``factor`` once the monitored metric stops improving.

    Not a :class:`Schedule`: what it does depends on the metric, so it has no closed form. The
    mixin builds torch's ``ReduceLROnPlateau`` from it with these arguments (``min_lr`` is an
    absolute LR, as in torch) and steps it after validation on the configured ``monitor``.

    Example:
        >>> ReduceOnPlateau(factor=0.5, patience=3).torch_kwargs()["factor"]
        0.5
    """

    factor: float = 0.1
    patience: int = 10
    threshold: float = 1e-4
    cooldown: int = 0
    min_lr: float = 0.0
    mode: Literal["min", "max"] = "min"
    threshold_mode: Literal["rel", "abs"] = "rel"

    def __post_init__(self) -> None:
        check_range(
            "factor",
            self.factor,
            0.0,
            1.0,
            low_open=True,
            high_open=True,
            fix="A reduction multiplies the LR by a factor below 1, e.g. 0.1 or 0.5.",
        )
        check_int("patience", self.patience, 0)
        check_non_negative("threshold", self.threshold)
        check_int("cooldown", self.cooldown, 0)
        check_non_negative("min_lr", self.min_lr)
        check_choice("mode", self.mode, ("min", "max"))
        check_choice("threshold_mode", self.threshold_mode, ("rel", "abs"))

    def torch_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``torch.optim.lr_scheduler.ReduceLROnPlateau``."""
        return dataclasses.asdict(self)

    def to_config(self) -> dict[str, Any]:
        return {"class_path": "lightning_lr.ReduceOnPlateau", "init_args": dataclasses.asdict(self)}
