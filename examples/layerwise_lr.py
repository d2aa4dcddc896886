"""Layer-wise learning rates and no-decay groups from two hparams: `lr_multipliers` and `no_decay`.

    python examples/layerwise_lr.py                 # 5 epochs on scikit-learn's digits, offline
    python examples/layerwise_lr.py --max-epochs 1

A CNN backbone (`features`, three blocks) and a linear `head`, fine-tuning style: the head
learns at the peak LR, the backbone at 0.3x, its first block at 0.1x. The first pattern that
matches a parameter's name decides its multiplier, so the narrower pattern comes first. Biases
and batch-norm parameters get no weight decay. The mixin turns this into six AdamW param groups,
one per (multiplier, decay) pair; a warmup + cosine schedule then scales every group by the same
factor, so the ratios hold at every step. The example prints the groups (name, peak LR, weight
decay, tensors), trains briefly with `LRLogger`, prints the per-group LRs it logged, and writes
`group_lrs.png` (each group's LR per optimizer step) and the CSV log into `--out`.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.loggers import CSVLogger
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from lightning_lr import LRLogger
from lightning_lr.demo.images import DigitsDataModule, ImageClassifier
from lightning_lr.schedules import CosineDecay, Warmup

PEAK_LR = 3e-3
WEIGHT_DECAY = 0.05
LR_MULTIPLIERS = {"features.block1": 0.1, "features": 0.3}  # the head matches neither: 1x
NO_DECAY = ["bias", "*norm*"]  # "bias": any parameter named bias; "*norm*": a glob over the full name


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--max-epochs", type=int, default=5)
    parser.add_argument("--limit-train-batches", type=int, default=None)
    parser.add_argument("--out", type=Path, default=Path("examples_out/layerwise_lr"))
    args = parser.parse_args(argv)
    pl.seed_everything(0)

    model = ImageClassifier(
        lr=PEAK_LR,
        optimizer="adamw",
        weight_decay=WEIGHT_DECAY,
        lr_multipliers=LR_MULTIPLIERS,
        no_decay=NO_DECAY,
        schedule=Warmup(CosineDecay(total_steps=1.0), warmup_steps=0.1),
        widths=(16, 32, 64),
    )
    trainer = pl.Trainer(
        max_epochs=args.max_epochs,
        limit_train_batches=args.limit_train_batches,
        callbacks=[LRLogger(log_weight_decay=True)],
        logger=CSVLogger(args.out, name="", version=""),
        enable_checkpointing=False,
        enable_progress_bar=False,
    )
    trainer.fit(model, datamodule=DigitsDataModule())

    groups = describe_groups(model, trainer.optimizers[0])
    print(f"\n{'param group':26} {'peak LR':>9} {'weight decay':>12} {'tensors':>7}  first tensor")
    for group in groups:
        name, lr, decay, tensors, first = group.values()
        print(f"{name:26} {lr:9.2g} {decay:12g} {tensors:7d}  {first}")

    # LRLogger logs lr-AdamW/<group name> and weight_decay-AdamW/<group name> at every optimizer step
    with (args.out / "metrics.csv").open() as file:
        rows = list(csv.DictReader(file))
    logged = {group["name"]: column(rows, f"lr-AdamW/{group['name']}") for group in groups}
    print(f"\nLogged by LRLogger per group ({len(logged['default'])} optimizer steps):")
    header = ("first LR", "peak LR", "last LR", "peak / head", "weight decay")
    print(f"{'param group':26} " + " ".join(f"{title:>12}" for title in header))
    head_peak = max(lr for _, lr in logged["default"])
    for name, curve in logged.items():
        lrs = [lr for _, lr in curve]
        decays = ", ".join(
            f"{wd:g}" for wd in sorted({wd for _, wd in column(rows, f"weight_decay-AdamW/{name}")})
        )
        row = (f"{lrs[0]:.3g}", f"{max(lrs):.3g}", f"{lrs[-1]:.3g}", f"{max(lrs) / head_peak:.3g}", decays)
        print(f"{name:26} " + " ".join(f"{cell:>12}" for cell in row))
    figure = plot(logged, args.out / "group_lrs.png")
    val_acc = float(trainer.callback_metrics["val_acc"])
    print(f"\nvalidation accuracy at the end of epoch {trainer.current_epoch}: {val_acc:.4f}")
    print(f"figure: {figure}")
    return {"groups": groups, "logged": logged, "val_acc": val_acc}


def describe_groups(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> list[dict[str, Any]]:
    """Each param group's name, peak LR, weight decay, number of tensors and first tensor's name."""
    names = {id(parameter): name for name, parameter in model.named_parameters()}
    return [
        {
            "name": group["name"],
            "lr": group["initial_lr"],  # the peak; group["lr"] is where the schedule has got to
            "weight_decay": group["weight_decay"],
            "tensors": len(group["params"]),
            "first": names[id(group["params"][0])],
        }
        for group in optimizer.param_groups
    ]


def column(rows: list[dict[str, str]], key: str) -> list[tuple[int, float]]:
    """``(step, value)`` of every row of a CSV log that has a value for ``key``."""
    return [(int(row["step"]), float(row[key])) for row in rows if row.get(key)]


def plot(logged: dict[str, list[tuple[int, float]]], path: Path) -> Path:
    figure = Figure(figsize=(7.0, 4.2), dpi=110)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    curves: dict[tuple[float, ...], list[str]] = {}
    for name, curve in logged.items():  # a group and its no-decay twin share one curve
        curves.setdefault(tuple(lr for _, lr in curve), []).append(name)
    steps = [step for step, _ in next(iter(logged.values()))]
    for lrs, names in curves.items():
        axes.plot(steps, lrs, linewidth=1.6, label=" = ".join(names))
    axes.set(xlabel="optimizer step", ylabel="learning rate", yscale="log", title="LR of each param group")
    axes.grid(True, which="both", alpha=0.25)
    axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path)
    return path


if __name__ == "__main__":
    main()
