"""lightning_lr: the learning rate, solved for PyTorch Lightning."""

from lightning_lr.callbacks import OptimizerMode
from lightning_lr.lengths import Length, RunLength, run_length_from_trainer
from lightning_lr.mixin import ConfigureOptimizersMixin
from lightning_lr.optimizers import OPTIMIZERS
from lightning_lr.scheduler import ScheduleLR
from lightning_lr.schedules import (
    Constant,
    CosineDecay,
    CosineRestarts,
    Cyclic,
    ExponentialDecay,
    Hold,
    InverseTimeDecay,
    Join,
    LinearSchedule,
    MultiStepDecay,
    OneCycle,
    PolynomialDecay,
    ReduceOnPlateau,
    Schedule,
    StepDecay,
    Warmup,
    WarmupStableDecay,
)
from lightning_lr.settings import OptimizerSettings

__version__ = "0.1.0"

__all__ = [
    "OPTIMIZERS",
    "ConfigureOptimizersMixin",
    "Constant",
    "CosineDecay",
    "CosineRestarts",
    "Cyclic",
    "ExponentialDecay",
    "Hold",
    "InverseTimeDecay",
    "Join",
    "Length",
    "LinearSchedule",
    "MultiStepDecay",
    "OneCycle",
    "OptimizerMode",
    "OptimizerSettings",
    "PolynomialDecay",
    "ReduceOnPlateau",
    "RunLength",
    "Schedule",
    "ScheduleLR",
    "StepDecay",
    "Warmup",
    "WarmupStableDecay",
    "run_length_from_trainer",
]
