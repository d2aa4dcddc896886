"""Shared fixtures: a tiny regression model with the mixin, and a quiet Trainer factory."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from lightning_lr import ConfigureOptimizersMixin

os.environ.setdefault("MPLBACKEND", "Agg")
torch.set_num_threads(1)


class TinyRegression(ConfigureOptimizersMixin, pl.LightningModule):
    """Two linear layers on random data; every mixin hparam can be passed through."""

    def __init__(self, lr: float = 0.05, n_samples: int = 64, batch_size: int = 8, **settings: Any) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.backbone = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.LayerNorm(8), torch.nn.Tanh())
        self.head = torch.nn.Linear(8, 1)
        generator = torch.Generator().manual_seed(0)
        x = torch.randn(n_samples, 4, generator=generator)
        self.data = TensorDataset(x, x.sum(dim=1, keepdim=True))
        self.seen_lrs: list[list[float]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = torch.nn.functional.mse_loss(self(x), y)
        self.log("train_loss", loss)
        return loss

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        self.seen_lrs.append([group["lr"] for group in optimizer.param_groups])

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self(x), y))

    def train_dataloader(self) -> DataLoader[Any]:
        return DataLoader(self.data, batch_size=self.hparams.batch_size)

    def val_dataloader(self) -> DataLoader[Any]:
        return DataLoader(self.data, batch_size=self.hparams.batch_size)


class StopAt(pl.Callback):
    """Save a checkpoint after optimizer step ``step`` and stop, as a killed run would have."""

    def __init__(self, step: int, path: Any) -> None:
        self.step, self.path = step, path

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        if trainer.global_step == self.step:
            trainer.save_checkpoint(self.path)
            trainer.should_stop = True


@pytest.fixture
def tiny_model() -> type[TinyRegression]:
    return TinyRegression


@pytest.fixture
def make_trainer(tmp_path: Any) -> Callable[..., pl.Trainer]:
    """A CPU Trainer without progress bars or summaries; logs under tmp_path."""

    def make(**overrides: Any) -> pl.Trainer:
        options: dict[str, Any] = {
            "accelerator": "cpu",
            "devices": 1,
            "logger": False,
            "enable_checkpointing": False,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "default_root_dir": str(tmp_path),
            "num_sanity_val_steps": 0,
        }
        options.update(overrides)
        return pl.Trainer(**options)

    return make
