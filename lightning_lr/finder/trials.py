"""Confirmation by short trials: race LRs around the pick from the same weights, keep the winner."""

from __future__ import annotations

import math
import statistics
from typing import Any

import lightning.pytorch as pl
import torch
from torch.optim import Optimizer
from typing_extensions import override

from lightning_lr.finder._state import restore, snapshot
from lightning_lr.finder.race import candidates, rounds, survivors
from lightning_lr.finder.result import FinderSettings
from lightning_lr.finder.scratch import Reduce, fit_in_scratch
from lightning_lr.lengths import RunLength
from lightning_lr.schedules import Constant, CosineDecay, OneCycle, Schedule, Warmup


class Trial(pl.Callback):
    """Trains at ``lr`` times the schedule's shape (compressed to the trial) and records the loss."""

    def __init__(self, lr: float, shape: Schedule, reduce: Reduce | None) -> None:
        self.lr, self.shape, self.reduce = lr, shape, reduce
        self.ratios: list[float] = []
        self.losses: list[torch.Tensor] = []
        self._loss: torch.Tensor | None = None

    @override
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        groups = trainer.optimizers[0].param_groups
        first = float(groups[0]["lr"]) or 1.0
        self.ratios = [float(group["lr"]) / first for group in groups]

    @override
    def on_before_backward(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, loss: torch.Tensor
    ) -> None:
        part = loss.detach()
        self._loss = part if self._loss is None else self._loss + part

    @override
    def on_before_optimizer_step(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: Optimizer
    ) -> None:
        lr = self.lr * self.shape(trainer.global_step)
        for group, ratio in zip(optimizer.param_groups, self.ratios):
            group["lr"] = lr * ratio
        if self._loss is not None:
            self.losses.append(self._loss)  # device-side; read once, after the trial
            self._loss = None

    def score(self) -> float:
        """The mean loss of the trial's last quarter of steps (inf once any loss is non-finite)."""
        losses = torch.stack(self.losses).float() if self.losses else torch.zeros(0)
        if self.reduce is not None and len(losses):
            losses = self.reduce(losses)
        values = losses.tolist()
        if not values or not all(math.isfinite(value) for value in values):
            return math.inf
        tail = values[-max(1, len(values) // 4) :]
        return statistics.fmean(tail)


SHAPES: dict[str, Schedule] = {
    "constant": Constant(),
    "decay": Warmup(CosineDecay(1.0), 0.05),
    "one-cycle": OneCycle(1.0),
}
"""The schedule a race's trial runs, by kind, compressed to the trial's length."""


def race(
    model: pl.LightningModule,
    settings: FinderSettings,
    pick: float,
    budget: int,
    train_dataloaders: Any,
    datamodule: pl.LightningDataModule | None,
    trainer: pl.Trainer | None,
    reduce: Reduce | None,
) -> list[dict[str, Any]]:
    """Successive halving over LRs around ``pick``, each trial from the same weights and batches."""
    saved = snapshot(model)
    rows: list[dict[str, Any]] = []
    racers = candidates(pick, settings.confirm)
    for number, (_, steps) in enumerate(rounds(settings.confirm, budget)):
        shape = SHAPES[settings.schedule or "decay"].resolve(RunLength(steps))
        scores = []
        for lr in racers:
            restore(model, saved)
            torch.manual_seed(settings.seed)
            trial = Trial(lr, shape, reduce)
            fit_in_scratch(model, trial, steps, trainer, train_dataloaders, datamodule)
            scores.append(trial.score())
            rows.append({"round": number, "lr": lr, "steps": steps, "loss": scores[-1]})
        racers = survivors(racers, scores)
    return rows


def winner(rows: list[dict[str, Any]]) -> float | None:
    """The LR that won the last round of a race (None for a race that ran no round)."""
    last = max((row["round"] for row in rows), default=None)
    finalists = [row for row in rows if row["round"] == last]
    if not finalists:
        return None
    return survivors([row["lr"] for row in finalists], [row["loss"] for row in finalists])[0]
