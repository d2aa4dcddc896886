"""The finder's own Trainer: a throwaway fit on the user's device and precision, logging nothing."""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Callable
from typing import Any

import lightning.pytorch as pl
import torch

Reduce = Callable[[torch.Tensor], torch.Tensor]
"""Combines a step's loss across processes (the mean over DDP ranks)."""


def fit_in_scratch(
    model: pl.LightningModule,
    callback: pl.Callback,
    steps: int,
    trainer: pl.Trainer | None,
    train_dataloaders: Any,
    datamodule: pl.LightningDataModule | None,
) -> pl.Trainer:
    """Fit ``model`` for ``steps`` optimizer steps under ``callback``, in a Trainer of its own.

    It takes ``trainer``'s device, precision, accumulation and clipping, and leaves nothing behind
    (its folder is temporary; no logger, checkpoint or validation). Returns the finished Trainer.
    """
    with tempfile.TemporaryDirectory(prefix="lightning-lr-find-") as scratch:
        runner = pl.Trainer(**scratch_settings(trainer, scratch, steps), callbacks=[callback])
        with warnings.catch_warnings():  # the finder validates nothing on purpose
            warnings.filterwarnings("ignore", message=".*`validation_step` but have no `val_dataloader`")
            runner.fit(model, train_dataloaders=train_dataloaders, datamodule=datamodule)
    return runner


def scratch_settings(trainer: pl.Trainer | None, scratch: str, num_steps: int) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "max_steps": num_steps,
        "max_epochs": -1,
        "logger": False,
        "enable_checkpointing": False,
        "enable_model_summary": False,
        "limit_val_batches": 0,
        "num_sanity_val_steps": 0,
        "default_root_dir": scratch,
        "devices": 1,
        "enable_progress_bar": False,  # the sweep draws its own bar
    }
    if trainer is not None:
        device = trainer.strategy.root_device
        settings["accelerator"] = "gpu" if device.type == "cuda" else "cpu"
        if device.type == "cuda":
            settings["devices"] = [device.index or 0]  # this rank's own GPU, not the first one
        settings["precision"] = trainer.precision
        settings["accumulate_grad_batches"] = trainer.accumulate_grad_batches
        settings["gradient_clip_val"] = trainer.gradient_clip_val
        settings["gradient_clip_algorithm"] = trainer.gradient_clip_algorithm
    return settings
