"""lightning_lr: the learning rate, solved for PyTorch Lightning.

Schedules live in :mod:`lightning_lr.schedules` (``from lightning_lr.schedules import
CosineDecay``); the names here are the mixin, the torch adapter, the callbacks, the LR finder and the lengths.
"""

import warnings
from typing import Any

from lightning_lr import schedules
from lightning_lr.callbacks.diagnostics import LRDiagnostics
from lightning_lr.callbacks.finder import LRFinder
from lightning_lr.callbacks.guard import DivergenceGuard
from lightning_lr.callbacks.lr_logger import LRLogger
from lightning_lr.callbacks.optimizer_mode import OptimizerMode
from lightning_lr.callbacks.overlay import ScheduleOverlay
from lightning_lr.callbacks.plateau_resume import PlateauResume
from lightning_lr.callbacks.restarts import WarmRestarts
from lightning_lr.callbacks.warmup import LRWarmup
from lightning_lr.checkpoint_io import AtomicCheckpointIO
from lightning_lr.finder import LRFinderResult, find_lr
from lightning_lr.lengths import Length, RunLength, run_length_from_trainer
from lightning_lr.mixin import ConfigureOptimizersMixin
from lightning_lr.optimizers import OPTIMIZERS
from lightning_lr.plateau import ReduceOnPlateau
from lightning_lr.schedule_lr import ScheduleLR
from lightning_lr.settings import OptimizerSettings

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "Warmup":  # the callback's name until it became LRWarmup, like LRLogger and LRFinder
        warnings.warn(
            "`lightning_lr.Warmup` is deprecated and will be removed: the callback is "
            "`lightning_lr.LRWarmup` (the schedule is `lightning_lr.schedules.Warmup`).",
            DeprecationWarning,
            stacklevel=2,
        )
        return LRWarmup
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "OPTIMIZERS",
    "AtomicCheckpointIO",
    "ConfigureOptimizersMixin",
    "DivergenceGuard",
    "LRDiagnostics",
    "LRFinder",
    "LRLogger",
    "LRWarmup",
    "LRFinderResult",
    "Length",
    "OptimizerMode",
    "OptimizerSettings",
    "PlateauResume",
    "ReduceOnPlateau",
    "RunLength",
    "ScheduleLR",
    "ScheduleOverlay",
    "WarmRestarts",
    "find_lr",
    "run_length_from_trainer",
    "schedules",
]
