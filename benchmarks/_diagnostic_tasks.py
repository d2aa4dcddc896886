"""The tasks the diagnostics benchmark trains: three regressions and three classifiers, seconds a run.

- ``regression``: an 8-16-1 MLP with LayerNorm on ``y = sin(2 x.d) + 0.1 noise``, 2,048 samples,
  batch 32 (the model the ``too_low`` / false-alarm reports were measured on);
- ``diabetes``: scikit-learn's diabetes (442 patients, 10 features, standardised), a 10-32-1 MLP,
  batch 16;
- ``digits``: scikit-learn's 8x8 digits, a 64-128-10 MLP, batch 32;
- ``mnist1d``: MNIST-1D and the demo CNN, batch 100;
- ``cancer``: scikit-learn's breast cancer (569 tumours, 30 features, standardised, 2 classes), a
  30-64-2 MLP, batch 16;
- ``friedman``: scikit-learn's generated Friedman #1 regression (10 features, 5 of them used,
  noise 1.0, 1,500 samples, target standardised), a 10-64-1 MLP, batch 32.

Every task logs ``train_loss``, ``val_loss`` (what the rules read) and ``val_score``, the metric a
user would quote, in points: the accuracy in percent for a classifier, ``100 * R^2`` for a regression.
Variants: ``train_size`` keeps only that many training samples, ``label_noise`` replaces that
fraction of the training targets (a random class; or a target shuffled across samples; not on
MNIST-1D), ``width`` widens the hidden layer (the channels of the CNN), ``lr_scale`` scales the
good LR (a wider model needs a smaller one). The data are fixed per task (seed 0); the run's seed
fixes the weights and the batch order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler, TensorDataset

from lightning_lr import ConfigureOptimizersMixin
from lightning_lr.demo import MNIST1DClassifier, MNIST1DDataModule


@dataclass(frozen=True)
class Variant:
    """How a run's data and model differ from the task's defaults."""

    train_size: int | None = None
    label_noise: float = 0.0
    width: int | None = None
    lr_scale: float = 1.0


@dataclass(frozen=True)
class TaskSpec:
    """A task: its name, whether it classifies, its batch size, and the good LR of each optimizer family.

    ``good_lr`` is the LR at which the family ends best in ``epochs`` (a constant LR, measured on
    seed 0); ``optimizer_kwargs`` are each family's settings (SGD with momentum on the classifiers,
    plain SGD on the small regression).
    """

    name: str
    classifier: bool
    batch_size: int
    epochs: int
    good_lr: dict[str, float]
    optimizer_kwargs: dict[str, dict[str, Any]] = field(default_factory=dict)


TASKS: dict[str, TaskSpec] = {
    "regression": TaskSpec("regression", False, 32, 10, {"sgd": 0.1, "adam": 0.01}),
    "diabetes": TaskSpec(
        "diabetes", False, 16, 10, {"sgd": 0.003, "adam": 0.003}, {"sgd": {"momentum": 0.9}}
    ),
    "digits": TaskSpec("digits", True, 32, 15, {"sgd": 0.1, "adam": 0.01}, {"sgd": {"momentum": 0.9}}),
    "mnist1d": TaskSpec("mnist1d", True, 100, 15, {"sgd": 0.1, "adam": 0.02}, {"sgd": {"momentum": 0.9}}),
    "cancer": TaskSpec("cancer", True, 16, 15, {"sgd": 0.03, "adam": 0.003}, {"sgd": {"momentum": 0.9}}),
    "friedman": TaskSpec("friedman", False, 32, 15, {"sgd": 0.03, "adam": 0.01}, {"sgd": {"momentum": 0.9}}),
}
SIZES: dict[str, tuple[int, int, int]] = {
    "regression": (8, 16, 1),
    "diabetes": (10, 32, 1),
    "digits": (64, 128, 10),
    "cancer": (30, 64, 2),
    "friedman": (10, 64, 1),
}
"""Inputs, hidden units and outputs of each MLP task."""
TRAIN_SIZES = {
    "regression": 2048,
    "diabetes": 332,
    "digits": 1397,
    "mnist1d": 3600,
    "cancer": 400,
    "friedman": 1200,
}
"""Training samples of each task (the rest of its data validates)."""


def _tensors(task: str) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The task's train and validation tensors (fixed, seed 0)."""
    generator = torch.Generator().manual_seed(0)
    if task == "regression":
        direction = torch.randn(8, 1, generator=generator) / 8**0.5

        def sample(count: int) -> tuple[torch.Tensor, torch.Tensor]:
            x = torch.randn(count, 8, generator=generator)
            return x, torch.sin(2 * x @ direction) + 0.1 * torch.randn(count, 1, generator=generator)

        return {"train": sample(2048), "val": sample(512)}
    from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, make_friedman1

    if task == "digits":
        raw = load_digits()
        x, y = torch.tensor(raw.data, dtype=torch.float32) / 16.0, torch.tensor(raw.target)
    elif task == "cancer":
        raw = load_breast_cancer()
        x, y = _standardised(raw.data), torch.tensor(raw.target)
    elif task == "diabetes":
        raw = load_diabetes()
        x, y = _standardised(raw.data), _standardised(raw.target[:, None])
    elif task == "friedman":
        features, target = make_friedman1(n_samples=1500, noise=1.0, random_state=0)
        x, y = _standardised(features), _standardised(target[:, None])
    else:
        raise ValueError(f"unknown task {task!r}")
    cut = TRAIN_SIZES[task]
    order = torch.randperm(len(x), generator=generator)
    return {"train": (x[order[:cut]], y[order[:cut]]), "val": (x[order[cut:]], y[order[cut:]])}


def _standardised(values: Any) -> torch.Tensor:
    tensor = torch.tensor(values, dtype=torch.float32)
    return (tensor - tensor.mean(0)) / tensor.std(0)


def _apply(
    variant: Variant, x: torch.Tensor, y: torch.Tensor, classes: int
) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    if variant.train_size is not None:
        x, y = x[: variant.train_size], y[: variant.train_size]
    if variant.label_noise:
        y = y.clone()
        flip = torch.rand(len(y), generator=generator) < variant.label_noise
        if classes:
            y[flip] = torch.randint(0, classes, (int(flip.sum()),), generator=generator)
        else:
            y[flip] = y[torch.randperm(len(y), generator=generator)[: int(flip.sum())]]
    return x, y


class TaskNet(ConfigureOptimizersMixin, pl.LightningModule):
    """An MLP for ``regression``, ``diabetes`` or ``digits``, logging the loss and the score."""

    def __init__(self, task: str, variant: Variant, **settings: Any) -> None:
        super().__init__()
        self.save_hyperparameters(settings)
        spec = TASKS[task]
        self.spec, self.variant = spec, variant
        sizes = SIZES[task]
        width = variant.width or sizes[1]
        layers: list[nn.Module] = [nn.Linear(sizes[0], width)]
        layers += [nn.LayerNorm(width), nn.Tanh()] if task == "regression" else [nn.ReLU()]
        self.net = nn.Sequential(*layers, nn.Linear(width, sizes[2]))
        data = _tensors(task)
        classes = sizes[2] if spec.classifier else 0
        self.sets = {
            "train": TensorDataset(*_apply(variant, *data["train"], classes)),
            "val": TensorDataset(*data["val"]),
        }
        self.val_variance = float(data["val"][1].var()) if not spec.classifier else 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(x)
        return out

    def _loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.spec.classifier:
            return nn.functional.cross_entropy(out, y)
        return nn.functional.mse_loss(out, y)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = self._loss(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        out = self(x)
        loss = self._loss(out, y)
        self.log("val_loss", loss)
        self.log("val_score", _score(out, y, loss, self.spec.classifier, self.val_variance))

    def train_dataloader(self) -> DataLoader[Any]:
        return _batches(self.sets["train"], self.spec.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader[Any]:
        return _batches(self.sets["val"], 1024, shuffle=False)


def _score(
    out: torch.Tensor, y: torch.Tensor, loss: torch.Tensor, classifier: bool, variance: float
) -> torch.Tensor:
    if classifier:
        return 100.0 * (out.argmax(dim=1) == y).float().mean()
    return 100.0 * (1.0 - loss.detach() / variance)


def _batches(dataset: TensorDataset, batch_size: int, *, shuffle: bool) -> DataLoader[Any]:
    """Whole batches indexed at once (a TensorDataset takes a list of indices), not sample by sample."""
    sampler = RandomSampler(dataset) if shuffle else SequentialSampler(dataset)
    return DataLoader(dataset, sampler=BatchSampler(sampler, batch_size, drop_last=False), batch_size=None)


class MNIST1DNet(MNIST1DClassifier):
    """The demo CNN, also logging ``val_score`` (accuracy in percent)."""

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        logits = self(x)
        self.log("val_loss", nn.functional.cross_entropy(logits, y))
        self.log("val_score", 100.0 * (logits.argmax(dim=1) == y).float().mean())

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = nn.functional.cross_entropy(self(x), y)
        self.log("train_loss", loss)
        return loss


def build(
    task: str, family: str, lr: float, schedule: Any, variant: Variant, seed: int
) -> tuple[pl.LightningModule, pl.LightningDataModule | None]:
    """A fresh model of ``seed`` (and its datamodule for MNIST-1D; the MLPs carry their data)."""
    spec = TASKS[task]
    pl.seed_everything(seed, verbose=False)
    settings: dict[str, Any] = {
        "lr": lr,
        "optimizer": "sgd" if family == "sgd" else "adamw",
        "weight_decay": 0.0,
        "schedule": schedule,
        "optimizer_kwargs": spec.optimizer_kwargs.get(family),
    }
    if task == "mnist1d":
        model = MNIST1DNet(channels=variant.width or 25, **settings)
        return model, MNIST1DDataModule(batch_size=spec.batch_size, train_size=variant.train_size)
    return TaskNet(task, variant, **settings), None


def steps_per_epoch(task: str, variant: Variant) -> int:
    spec = TASKS[task]
    size = TRAIN_SIZES[task]
    if variant.train_size is not None:
        size = min(size, variant.train_size)
    return math.ceil(size / spec.batch_size)
