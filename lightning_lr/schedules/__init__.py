"""Pure learning-rate schedules: each a picklable, closed-form function of the optimizer step.

``schedule(k)`` multiplies the peak LR at optimizer step ``k``. Lengths may be given in steps,
epochs or fractions of the run (:mod:`lightning_lr.lengths`). :data:`SCHEDULES` lists every one by
name; a new schedule is a frozen dataclass subclass of :class:`Schedule` with ``@registered``.
"""

from __future__ import annotations

import warnings
from typing import Any

# The modules register their schedules as they are imported, simplest first: the order
# `lightning-lr` lists them in.
from lightning_lr.schedules.decay import (
    Constant,
    ExponentialDecay,
    InverseSqrt,
    InverseTimeDecay,
    LinearSchedule,
    MultiStepDecay,
    PolynomialDecay,
    StepDecay,
)

# isort: split
from lightning_lr.schedules._base import SCHEDULES, Schedule
from lightning_lr.schedules.compose import Hold, Join
from lightning_lr.schedules.cosine import CosineDecay, CosineRestarts
from lightning_lr.schedules.cyclic import Cyclic, OneCycle
from lightning_lr.schedules.warmup import Warmup, WarmupStableDecay


def __getattr__(name: str) -> Any:
    if name == "ReduceOnPlateau":
        from lightning_lr.plateau import ReduceOnPlateau

        warnings.warn(
            "`lightning_lr.schedules.ReduceOnPlateau` is deprecated: ReduceOnPlateau is not a schedule. "
            "Import it as `lightning_lr.ReduceOnPlateau`.",
            DeprecationWarning,
            stacklevel=2,
        )
        return ReduceOnPlateau
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "SCHEDULES",
    "Constant",
    "CosineDecay",
    "CosineRestarts",
    "Cyclic",
    "ExponentialDecay",
    "Hold",
    "InverseSqrt",
    "InverseTimeDecay",
    "Join",
    "LinearSchedule",
    "MultiStepDecay",
    "OneCycle",
    "PolynomialDecay",
    "Schedule",
    "StepDecay",
    "Warmup",
    "WarmupStableDecay",
]
