"""The two small classification tasks the finder benchmark trains: MNIST-1D and scikit-learn's digits.

Each :class:`Task` builds a fresh model (with the mixin) and a fresh datamodule; :func:`train_and_test`
trains one model at one peak LR under one schedule and returns its test accuracy.
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_lr import ConfigureOptimizersMixin
from lightning_lr.demo import MNIST1DClassifier, MNIST1DDataModule
from lightning_lr.schedules import Schedule

WEIGHT_DECAY = 0.01


class DigitsDataModule(pl.LightningDataModule):
    """scikit-learn's 1797 8x8 digits, pixels scaled to [0, 1], split 1197 / 300 / 300 once and for all."""

    def __init__(self, batch_size: int = 64) -> None:
        super().__init__()
        self.batch_size = batch_size
        self.sets: dict[str, TensorDataset] = {}

    def setup(self, stage: str) -> None:
        if self.sets:
            return
        from sklearn.datasets import load_digits

        digits = load_digits()
        x = torch.tensor(digits.data, dtype=torch.float32) / 16.0
        y = torch.tensor(digits.target, dtype=torch.long)
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
        parts = {"train": order[:1197], "val": order[1197:1497], "test": order[1497:]}
        self.sets = {name: TensorDataset(x[index], y[index]) for name, index in parts.items()}

    def train_dataloader(self) -> DataLoader[Any]:
        return DataLoader(self.sets["train"], batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader[Any]:
        return DataLoader(self.sets["val"], batch_size=500)

    def test_dataloader(self) -> DataLoader[Any]:
        return DataLoader(self.sets["test"], batch_size=500)


class DigitsMLP(ConfigureOptimizersMixin, pl.LightningModule):
    """A one-hidden-layer MLP (64 -> 128 -> 10) for the digits."""

    def __init__(
        self,
        lr: float = 1e-3,
        optimizer: str = "adamw",
        weight_decay: float | None = None,
        schedule: Schedule | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.net(x)
        return logits

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = nn.functional.cross_entropy(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self.log("val_acc", (self(x).argmax(dim=1) == y).float().mean())


@dataclass(frozen=True)
class Task:
    """A dataset, its model and its training length.

    Attributes:
        name: how the tables name it.
        model: builds a fresh model from the mixin's hyperparameters (``lr``, ``schedule``, ...).
        data: builds a fresh datamodule.
        epochs: epochs of one training run.
    """

    name: str
    model: Callable[..., pl.LightningModule]
    data: Callable[[], pl.LightningDataModule]
    epochs: int

    def fresh_model(
        self, seed: int, lr: float = 1e-3, schedule: Schedule | None = None
    ) -> pl.LightningModule:
        """The model of ``seed``: the same initial weights for every LR and schedule."""
        pl.seed_everything(seed, verbose=False)
        return self.model(lr=lr, optimizer="adamw", weight_decay=WEIGHT_DECAY, schedule=schedule)


# partials, not lambdas: a Task travels to the benchmark's worker processes
MNIST1D = Task("MNIST-1D", MNIST1DClassifier, functools.partial(MNIST1DDataModule, batch_size=100), epochs=20)
DIGITS = Task("digits", DigitsMLP, functools.partial(DigitsDataModule, batch_size=64), epochs=20)


def quiet_trainer(folder: str, **settings: Any) -> pl.Trainer:
    """A CPU Trainer that prints, logs and saves nothing."""
    return pl.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=folder,
        **settings,
    )


def train_and_test(
    task: Task,
    lr: float,
    schedule: Schedule,
    seed: int,
    epochs: int | None = None,
    limit_train_batches: int | None = None,
) -> float:
    """Train ``task``'s model of ``seed`` at peak LR ``lr`` under ``schedule``; its test accuracy.

    The seed fixes the initial weights and the order of the batches, so runs of one seed differ
    only in their LR and schedule. No validation runs during training: nothing here reads it.
    """
    model = task.fresh_model(seed, lr, schedule)
    data = task.data()
    with tempfile.TemporaryDirectory() as folder:
        trainer = quiet_trainer(
            folder,
            max_epochs=task.epochs if epochs is None else epochs,
            limit_train_batches=limit_train_batches,
            limit_val_batches=0,
            num_sanity_val_steps=0,
        )
        trainer.fit(model, datamodule=data)
    data.setup("test")
    return accuracy(model, data.test_dataloader())


@torch.no_grad()
def accuracy(model: pl.LightningModule, loader: DataLoader[Any]) -> float:
    model.eval()
    right = total = 0
    for x, y in loader:
        right += int((model(x).argmax(dim=1) == y).sum())
        total += len(y)
    return right / total
