"""The mixin in plain Python: scikit-learn's digits, an MLP, SGD with per-layer LR and 1cycle.

    python examples/digits_mixin.py --max-epochs 15

Runs offline (the digits ship with scikit-learn) in a few seconds on a CPU.
"""

from __future__ import annotations

import argparse
from typing import Any

import lightning.pytorch as pl
import torch
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader, TensorDataset

from lightning_lr import ConfigureOptimizersMixin
from lightning_lr.schedules import OneCycle


class DigitsMLP(ConfigureOptimizersMixin, pl.LightningModule):
    def __init__(
        self,
        lr: float = 0.3,
        optimizer: str = "sgd",
        optimizer_kwargs: dict[str, Any] | None = None,
        weight_decay: float = 5e-4,
        lr_multipliers: dict[str, float] | None = None,
        schedule: Any = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.body = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.BatchNorm1d(128), torch.nn.ReLU())
        self.head = torch.nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = torch.nn.functional.cross_entropy(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self.log("val_acc", (self(x).argmax(dim=1) == y).float().mean(), prog_bar=True)


def digits_loaders(batch_size: int = 64) -> tuple[DataLoader[Any], DataLoader[Any]]:
    digits = load_digits()
    x = torch.tensor(digits.data, dtype=torch.float32) / 16.0
    y = torch.tensor(digits.target)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    train, val = order[:1500], order[1500:]
    return (
        DataLoader(TensorDataset(x[train], y[train]), batch_size=batch_size, shuffle=True),
        DataLoader(TensorDataset(x[val], y[val]), batch_size=512),
    )


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--max-epochs", type=int, default=15)
    parser.add_argument("--limit-train-batches", type=int, default=None)
    args = parser.parse_args(argv)
    pl.seed_everything(0)
    model = DigitsMLP(
        optimizer_kwargs={"momentum": 0.9, "nesterov": True},
        lr_multipliers={"head": 0.3},  # the head learns at 30% of the body's LR
        schedule=OneCycle(total_steps=1.0, pct_start=0.25),
    )
    trainer = pl.Trainer(
        max_epochs=args.max_epochs,
        limit_train_batches=args.limit_train_batches,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
    )
    train, val = digits_loaders()
    trainer.fit(model, train, val)
    accuracy = float(trainer.callback_metrics["val_acc"])
    groups = {group["name"]: group["initial_lr"] for group in trainer.optimizers[0].param_groups}
    print(f"peak LR per param group: {groups}")
    print(f"validation accuracy: {accuracy:.4f}")
    return accuracy


if __name__ == "__main__":
    main()
