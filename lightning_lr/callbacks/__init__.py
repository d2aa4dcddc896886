"""Trainer callbacks of lightning_lr."""

from lightning_lr.callbacks.optimizer_mode import OptimizerMode

__all__ = ["OptimizerMode"]
