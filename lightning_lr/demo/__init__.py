"""Demo and example support, apart from the library: models and data for ``make demo``, the
configs, the examples and the benchmarks. Nothing in the library imports it.

MNIST-1D here: a datamodule and the small CNN shared by the demo, the examples and the benchmarks.

MNIST-1D (Greydanus, 2020) is generated offline by the ``mnist1d`` package: 4000 training and
1000 test sequences of length 40, ten classes; the published small CNN reaches about 94%.
Image data sets and an image CNN are in :mod:`lightning_lr.demo.images`; reading a run's CSV log
back in :mod:`lightning_lr.demo.logs`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import lightning.pytorch as pl
import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import nn
from torch.utils.data import DataLoader, TensorDataset, random_split

from lightning_lr._validate import check_int, check_range
from lightning_lr.mixin import ConfigureOptimizersMixin
from lightning_lr.optimizers import LRScaling
from lightning_lr.plateau import ReduceOnPlateau
from lightning_lr.schedules import Schedule


@functools.lru_cache(maxsize=4)
def make_mnist1d(seed: int = 42) -> dict[str, torch.Tensor]:
    """Generate MNIST-1D with the package's published settings (no download; cached per seed)."""
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as error:
        raise ImportError("The MNIST-1D demo needs `mnist1d`: `pip install lightning-lr[demo]`.") from error
    args = get_dataset_args()
    args.seed = seed
    data = make_dataset(args)
    return {
        "x": torch.as_tensor(data["x"], dtype=torch.float32),
        "y": torch.as_tensor(data["y"], dtype=torch.long),
        "x_test": torch.as_tensor(data["x_test"], dtype=torch.float32),
        "y_test": torch.as_tensor(data["y_test"], dtype=torch.long),
    }


class MNIST1DDataModule(pl.LightningDataModule):
    """MNIST-1D: the 4000 training sequences split into train and validation, and the 1000 test.

    Args:
        batch_size: samples per batch.
        val_fraction: share of the training set held out for validation.
        seed: seed of the generator and of the split.
        train_size: use only this many training samples (``None``: all), e.g. to provoke overfitting.
    """

    def __init__(
        self, batch_size: int = 100, val_fraction: float = 0.1, seed: int = 42, train_size: int | None = None
    ) -> None:
        super().__init__()
        check_int("batch_size", batch_size, 1)
        check_range("val_fraction", val_fraction, 0.0, 1.0, low_open=True, high_open=True)
        if train_size is not None:
            check_int("train_size", train_size, 1)
        self.save_hyperparameters()
        self.batch_size, self.val_fraction, self.seed, self.train_size = (
            batch_size,
            val_fraction,
            seed,
            train_size,
        )
        self.train_set: Any = None
        self.val_set: Any = None
        self.test_set: Any = None

    def setup(self, stage: str) -> None:
        if self.train_set is not None:
            return
        data = make_mnist1d(self.seed)
        full = TensorDataset(data["x"], data["y"])
        n_val = round(len(full) * self.val_fraction)
        split = torch.Generator().manual_seed(self.seed)
        self.train_set, self.val_set = random_split(full, [len(full) - n_val, n_val], generator=split)
        if self.train_size is not None:
            self.train_set = torch.utils.data.Subset(self.train_set, range(self.train_size))
        self.test_set = TensorDataset(data["x_test"], data["y_test"])

    def train_dataloader(self) -> DataLoader[Any]:
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader[Any]:
        return DataLoader(self.val_set, batch_size=500)

    def test_dataloader(self) -> DataLoader[Any]:
        return DataLoader(self.test_set, batch_size=500)


class ClassificationSteps(pl.LightningModule):
    """Training, validation and test steps of a classifier: cross-entropy, and accuracy logged.

    Logs ``<stage>_loss`` (per step and epoch in training) and ``<stage>_acc`` (per epoch).
    """

    def _step(self, batch: Any, stage: str) -> torch.Tensor:
        x, y = batch
        logits = self(x)
        loss = nn.functional.cross_entropy(logits, y)
        accuracy = (logits.argmax(dim=1) == y).float().mean()
        on_step = stage == "train"
        self.log(f"{stage}_loss", loss, on_step=on_step, on_epoch=True, prog_bar=stage != "train")
        self.log(f"{stage}_acc", accuracy, on_step=False, on_epoch=True, prog_bar=stage != "train")
        return loss

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._step(batch, "test")


class MNIST1DClassifier(ConfigureOptimizersMixin, ClassificationSteps):
    """The published MNIST-1D CNN: three strided 1-D convolutions and a linear head.

    Every optimizer/schedule argument is read by :class:`ConfigureOptimizersMixin`; ``optimizer``
    and ``schedule`` also take LightningCLI's ``class_path`` form of any torch optimizer/scheduler.
    """

    def __init__(
        self,
        lr: float = 1e-2,
        optimizer: str | OptimizerCallable = "adamw",
        optimizer_kwargs: Mapping[str, Any] | None = None,
        weight_decay: float | None = None,
        schedule: Schedule | ReduceOnPlateau | LRSchedulerCallable | None = None,
        interval: Literal["step", "epoch"] = "step",
        frequency: int = 1,
        monitor: str = "val_loss",
        lr_multipliers: Mapping[str, float] | None = None,
        no_decay: Sequence[str] | None = None,
        lr_scaling: LRScaling = "none",
        base_batch_size: int | None = None,
        channels: int = 25,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.features = nn.Sequential(
            nn.Conv1d(1, channels, 5, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv1d(channels, channels, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv1d(channels, channels, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Flatten(),
        )
        self.head = nn.Linear(channels * 5, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.head(self.features(x.unsqueeze(1)))
        return logits
