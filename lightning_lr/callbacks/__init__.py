"""Trainer callbacks of lightning_lr, one module each.

Their one public path is the package face: ``from lightning_lr import LRLogger``, and
``class_path: lightning_lr.LRLogger`` in a config.
"""

import warnings
from typing import Any

from lightning_lr.callbacks.diagnostics import LRDiagnostics
from lightning_lr.callbacks.finder import LRFinder
from lightning_lr.callbacks.guard import DivergenceGuard
from lightning_lr.callbacks.lr_logger import LRLogger
from lightning_lr.callbacks.optimizer_mode import OptimizerMode
from lightning_lr.callbacks.overlay import ScheduleOverlay
from lightning_lr.callbacks.plateau_resume import PlateauResume
from lightning_lr.callbacks.restarts import WarmRestarts
from lightning_lr.callbacks.warmup import LRWarmup


def __getattr__(name: str) -> Any:
    if name == "Warmup":  # the callback's name until it became LRWarmup, like LRLogger and LRFinder
        warnings.warn(
            "`lightning_lr.callbacks.Warmup` is deprecated and will be removed: the callback is "
            "`lightning_lr.LRWarmup` (the schedule is `lightning_lr.schedules.Warmup`).",
            DeprecationWarning,
            stacklevel=2,
        )
        return LRWarmup
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DivergenceGuard",
    "LRDiagnostics",
    "LRFinder",
    "LRLogger",
    "LRWarmup",
    "OptimizerMode",
    "PlateauResume",
    "ScheduleOverlay",
    "WarmRestarts",
]
"""What the face re-exports (``lightning_lr.<Name>`` is where they are documented and configured)."""
