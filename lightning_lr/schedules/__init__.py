"""Pure learning-rate schedules: each a picklable, closed-form function of the optimizer step.

``schedule(k)`` multiplies the peak LR at optimizer step ``k``. Lengths may be given in steps,
epochs or fractions of the run (:mod:`lightning_lr.lengths`).
"""

from __future__ import annotations

from typing import Any

from lightning_lr.schedules._base import Schedule, build_from_config
from lightning_lr.schedules.compose import Hold, Join
from lightning_lr.schedules.cosine import CosineDecay, CosineRestarts
from lightning_lr.schedules.cyclic import Cyclic, OneCycle
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
from lightning_lr.schedules.plateau import ReduceOnPlateau
from lightning_lr.schedules.warmup import Warmup, WarmupStableDecay

SCHEDULES: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        Constant,
        StepDecay,
        MultiStepDecay,
        ExponentialDecay,
        InverseTimeDecay,
        InverseSqrt,
        PolynomialDecay,
        LinearSchedule,
        CosineDecay,
        CosineRestarts,
        Cyclic,
        OneCycle,
        WarmupStableDecay,
        Join,
        Warmup,
        Hold,
        ReduceOnPlateau,
    )
}
"""Every schedule by class name, as YAML and checkpoints name them."""

for _cls in (Schedule, *SCHEDULES.values()):
    _cls.__module__ = __name__  # one public path: lightning_lr.schedules.<Name>


def schedule_from_config(config: Any, *, name: str = "schedule") -> Schedule | ReduceOnPlateau | None:
    """A schedule from itself, ``None``, or its ``class_path``/``init_args`` form.

    The class path may be ``lightning_lr.schedules.CosineDecay``, the bare ``CosineDecay``, or the
    import path of your own :class:`Schedule` subclass.

    Raises:
        ValueError: the class is unknown (the message lists the known ones).
        TypeError: ``config`` is neither a schedule nor such a mapping.
    """
    if config is None or isinstance(config, (Schedule, ReduceOnPlateau)):
        return config
    built: Schedule | ReduceOnPlateau = build_from_config(
        config, name=name, registry=SCHEDULES, base=(Schedule, ReduceOnPlateau)
    )
    return built


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
    "ReduceOnPlateau",
    "Schedule",
    "StepDecay",
    "Warmup",
    "WarmupStableDecay",
    "schedule_from_config",
]
