"""Six LR schedulers, one model: step, exponential, cosine, cyclic, one-cycle and reduce-on-plateau.

    python examples/compare_schedulers.py                      # offline: scikit-learn's digits
    python examples/compare_schedulers.py --data-dir ~/data    # MNIST, if ~/data/MNIST/raw/ has it

The same small CNN, the same initial weights and the same peak LR (AdamW, 3e-3); only the
mixin's `schedule=` hparam changes, and with it `interval` for the two schedulers that act once
per epoch (exponential decay, and the plateau rule, which watches `val_acc`). Every run logs
the LR each optimizer step used with `LRLogger` into a CSV log; the figures are drawn from those
logs: `lr_curves.png` (one panel per scheduler) and `val_accuracy.png` (validation accuracy per
epoch). The table gives the final and best validation accuracy and the test accuracy.

Data: with `--data-dir`, MNIST as torchvision stores it (`<data-dir>/MNIST/raw/`), never
downloaded. Without it, scikit-learn's 8x8 handwritten digits, which ship with scikit-learn and
make the six runs take a minute or two on two CPU cores.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.loggers import CSVLogger
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from lightning_lr import LRLogger, ReduceOnPlateau
from lightning_lr.demo.images import DigitsDataModule, ImageClassifier, TorchvisionDataModule
from lightning_lr.demo.logs import read_metrics, series
from lightning_lr.logs import NOISY_WARNINGS, quiet_lightning
from lightning_lr.schedules import (
    CosineDecay,
    Cyclic,
    ExponentialDecay,
    OneCycle,
    StepDecay,
)

PEAK_LR = 3e-3

SCHEDULERS: dict[str, dict[str, Any]] = {
    # x0.3 after 30%, 60% and 90% of the optimizer steps
    "step": {"schedule": StepDecay(step_size=0.3, gamma=0.3)},
    # x0.85 per epoch: about a tenth of the peak after 15 epochs
    "exponential": {"schedule": ExponentialDecay(gamma=0.85), "interval": "epoch"},
    "cosine": {"schedule": CosineDecay(total_steps=1.0)},
    # five triangular cycles, each half as high as the one before
    "cyclic": {"schedule": Cyclic(step_size_up=0.1, mode="triangular2")},
    "one-cycle": {"schedule": OneCycle(total_steps=1.0)},
    # x0.3 once val_acc has not improved for 2 validations (val_loss here improves every epoch)
    "plateau": {
        "schedule": ReduceOnPlateau(factor=0.3, patience=1, mode="max"),
        "interval": "epoch",
        "monitor": "val_acc",
    },
}


def main(argv: list[str] | None = None) -> dict[str, dict[str, Any]]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", type=Path, default=None, help="folder holding MNIST/raw/")
    parser.add_argument("--max-epochs", type=int, default=15)
    parser.add_argument("--limit-train-batches", type=int, default=None)
    parser.add_argument("--schedulers", nargs="+", choices=list(SCHEDULERS), default=list(SCHEDULERS))
    parser.add_argument("--out", type=Path, default=Path("examples_out/compare_schedulers"))
    args = parser.parse_args(argv)

    data: DigitsDataModule | TorchvisionDataModule  # both one-channel images of ten classes
    data = DigitsDataModule() if args.data_dir is None else TorchvisionDataModule("mnist", str(args.data_dir))
    data.setup("fit")  # a missing data set fails here, before any training

    results: dict[str, dict[str, Any]] = {}
    with quiet_lightning(NOISY_WARNINGS):
        for name in args.schedulers:
            pl.seed_everything(0, verbose=False)  # the same initial weights and batches for every run
            model = ImageClassifier(lr=PEAK_LR, optimizer="adamw", **SCHEDULERS[name])
            trainer = pl.Trainer(
                max_epochs=args.max_epochs,
                limit_train_batches=args.limit_train_batches,
                callbacks=[LRLogger()],
                logger=CSVLogger(args.out / "logs", name=name, version=""),
                num_sanity_val_steps=0,
                enable_checkpointing=False,
                enable_model_summary=False,
                enable_progress_bar=False,
            )
            trainer.fit(model, datamodule=data)
            test_acc = trainer.test(model, datamodule=data, verbose=False)[0]["test_acc"]
            rows = read_metrics(Path(trainer.log_dir or ".") / "metrics.csv")
            lr_key = next(key for key in rows[0] if key.startswith("lr-"))  # lr-AdamW/<first param group>
            results[name] = {
                "lr": series(rows, lr_key, by="step"),
                "val_acc": series(rows, "val_acc", by="epoch"),
                "test_acc": test_acc,
            }
            print(f"{name}: test accuracy {test_acc:.4f}")

    figures = (
        plot_lrs(results, args.out / "lr_curves.png"),
        plot_accuracy(results, args.out / "val_accuracy.png"),
    )
    print(f"\n{'scheduler':12} {'final val acc':>13} {'best val acc':>12} {'test acc':>8} {'last LR':>9}")
    for name, result in results.items():
        accuracies, last_lr, test_acc = result["val_acc"][1], result["lr"][1][-1], result["test_acc"]
        print(f"{name:12} {accuracies[-1]:13.4f} {max(accuracies):12.4f} {test_acc:8.4f} {last_lr:9.3g}")
    print("figures: " + ", ".join(str(figure) for figure in figures))
    return results


def plot_lrs(results: dict[str, dict[str, Any]], path: Path) -> Path:
    columns = min(3, len(results))
    rows = math.ceil(len(results) / columns)
    figure = Figure(figsize=(4.0 * columns, 2.8 * rows), dpi=110)
    FigureCanvasAgg(figure)
    panels = figure.subplots(rows, columns, squeeze=False, sharey=True).ravel()
    for axes, (name, result) in zip(panels, results.items()):
        axes.plot(*result["lr"], linewidth=1.4)
        axes.set_title(name)
        axes.set_xlabel("optimizer step")
        axes.grid(True, alpha=0.3)
    for axes in panels[::columns]:
        axes.set_ylabel("learning rate")
    for axes in panels[len(results) :]:
        axes.set_visible(False)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    return path


def plot_accuracy(results: dict[str, dict[str, Any]], path: Path) -> Path:
    figure = Figure(figsize=(7.0, 4.2), dpi=110)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for name, result in results.items():
        epochs, accuracies = result["val_acc"]
        axes.plot([epoch + 1 for epoch in epochs], accuracies, marker="o", markersize=3, label=name)
    axes.set(
        xlabel="epoch",
        ylabel="validation accuracy",
        title=f"Validation accuracy, AdamW at peak LR {PEAK_LR:g}",
    )
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize="small")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    return path


if __name__ == "__main__":
    main()
