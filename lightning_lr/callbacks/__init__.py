"""Trainer callbacks of lightning_lr."""

from lightning_lr.callbacks.diagnostics import LRDiagnostics
from lightning_lr.callbacks.finder import LRFinder
from lightning_lr.callbacks.guard import DivergenceGuard
from lightning_lr.callbacks.lr_logger import LRLogger
from lightning_lr.callbacks.optimizer_mode import OptimizerMode
from lightning_lr.callbacks.overlay import ScheduleOverlay
from lightning_lr.callbacks.plateau_resume import PlateauResume
from lightning_lr.callbacks.restarts import WarmRestarts
from lightning_lr.callbacks.warmup import Warmup

__all__ = [
    "DivergenceGuard",
    "LRDiagnostics",
    "LRFinder",
    "LRLogger",
    "OptimizerMode",
    "PlateauResume",
    "ScheduleOverlay",
    "WarmRestarts",
    "Warmup",
]
