"""The finder suite's tasks: six small offline classification problems, trained by a plain loop.

Each :class:`SuiteTask` holds its data as tensors and builds its network from a seed. Training runs
are a plain PyTorch loop (:func:`train_and_test`): Lightning adds nothing to what the suite measures
(test accuracy at a peak LR), and the loop is several times faster on these tiny models. The finder
sees the same network, optimizer and data as a LightningModule (:class:`SuiteModule`), so the pick
comes from the library's own ``find_lr``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_lr.demo import make_mnist1d
from lightning_lr.lengths import RunLength
from lightning_lr.schedules import Constant, CosineDecay, OneCycle, Schedule, Warmup

Data = dict[str, torch.Tensor]


@functools.cache
def _mnist1d() -> Data:
    data = make_mnist1d(42)
    return {"x": data["x"], "y": data["y"], "x_test": data["x_test"], "y_test": data["y_test"]}


@functools.cache
def _digits() -> Data:
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.tensor(digits.data, dtype=torch.float32) / 16.0
    y = torch.tensor(digits.target, dtype=torch.long)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    train, test = order[:1297], order[1297:]
    return {"x": x[train], "y": y[train], "x_test": x[test], "y_test": y[test]}


@functools.cache
def _cancer() -> Data:
    from sklearn.datasets import load_breast_cancer

    cancer = load_breast_cancer()
    x = torch.tensor(cancer.data, dtype=torch.float32)
    y = torch.tensor(cancer.target, dtype=torch.long)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    train, test = order[:400], order[400:]
    mean, std = x[train].mean(0), x[train].std(0) + 1e-6
    x = (x - mean) / std
    return {"x": x[train], "y": y[train], "x_test": x[test], "y_test": y[test]}


class _Unsqueeze(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unsqueeze(self.dim)


class _Reshape(nn.Module):
    def __init__(self, *shape: int) -> None:
        super().__init__()
        self.shape = shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(len(x), *self.shape)


class _GRUClassifier(nn.Module):
    """A GRU over MNIST-1D read as a sequence of 40 scalars; the last hidden state is classified."""

    def __init__(self, hidden: int = 48) -> None:
        super().__init__()
        self.gru = nn.GRU(1, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, last = self.gru(x.unsqueeze(-1))
        logits: torch.Tensor = self.head(last[-1])
        return logits


def _mnist1d_cnn() -> nn.Module:
    return nn.Sequential(
        _Unsqueeze(1),
        nn.Conv1d(1, 25, 5, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv1d(25, 25, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv1d(25, 25, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(125, 10),
    )


def _mnist1d_mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(40, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))


def _digits_mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))


def _digits_cnn() -> nn.Module:
    return nn.Sequential(
        _Reshape(1, 8, 8),
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 16, 10),
    )


def _cancer_mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(30, 64), nn.ReLU(), nn.Linear(64, 2))


@dataclass(frozen=True)
class SuiteTask:
    """A dataset (as tensors), its network and its batch size."""

    name: str
    data: Callable[[], Data]
    net: Callable[[], nn.Module]
    batch_size: int

    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.data()["x"]) / self.batch_size)

    def fresh_net(self, seed: int) -> nn.Module:
        torch.manual_seed(seed)
        return self.net()


TASKS = {
    task.name: task
    for task in (
        SuiteTask("MNIST-1D CNN", _mnist1d, _mnist1d_cnn, 100),
        SuiteTask("MNIST-1D MLP", _mnist1d, _mnist1d_mlp, 64),
        SuiteTask("MNIST-1D GRU", _mnist1d, _GRUClassifier, 100),
        SuiteTask("digits MLP", _digits, _digits_mlp, 64),
        SuiteTask("digits CNN", _digits, _digits_cnn, 64),
        SuiteTask("breast cancer MLP", _cancer, _cancer_mlp, 32),
    )
}

SCHEDULES: dict[str, Schedule] = {
    "constant": Constant(),
    "warmup + cosine": Warmup(CosineDecay(1.0), 0.05),
    "one-cycle": OneCycle(1.0),
}


def make_optimizer(name: str, params: Any, lr: float) -> torch.optim.Optimizer:
    """AdamW (weight decay 0.01) or SGD (momentum 0.9, Nesterov, weight decay 5e-4)."""
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    return torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4)


class SuiteModule(pl.LightningModule):
    """A suite task's network and optimizer as Lightning sees them: what ``find_lr`` sweeps."""

    def __init__(self, task: SuiteTask, optimizer: str, seed: int) -> None:
        super().__init__()
        self.task, self.optimizer_name = task, optimizer
        self.net = task.fresh_net(seed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.net(x)
        return logits

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        return nn.functional.cross_entropy(self(x), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return make_optimizer(self.optimizer_name, self.parameters(), 1e-3)

    def train_dataloader(self) -> DataLoader[Any]:
        data = self.task.data()
        return DataLoader(TensorDataset(data["x"], data["y"]), batch_size=self.task.batch_size, shuffle=True)


def train_and_test(task_name: str, optimizer: str, schedule: str, epochs: int, lr: float, seed: int) -> float:
    """Train the task's network of ``seed`` at peak LR ``lr``; its test accuracy.

    The seed fixes the initial weights and the batch order, so the runs of one seed differ only in
    their LR (paired comparisons). A run whose loss turns non-finite scores the accuracy it has.
    """
    task = TASKS[task_name]
    data = task.data()
    net = task.fresh_net(seed)
    opt = make_optimizer(optimizer, net.parameters(), lr)
    per_epoch = task.steps_per_epoch()
    total = per_epoch * epochs
    shape = SCHEDULES[schedule].resolve(RunLength(total, per_epoch))
    order = torch.Generator().manual_seed(1000 + seed)
    x, y = data["x"], data["y"]
    step = 0
    net.train()
    for _ in range(epochs):
        permutation = torch.randperm(len(x), generator=order)
        for start in range(0, len(x), task.batch_size):
            index = permutation[start : start + task.batch_size]
            for group in opt.param_groups:
                group["lr"] = lr * shape(step)
            loss = nn.functional.cross_entropy(net(x[index]), y[index])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
        if not math.isfinite(float(loss.detach())):
            break
    net.eval()
    with torch.no_grad():
        predicted = net(data["x_test"]).argmax(dim=1)
    return float((predicted == data["y_test"]).float().mean())
