"""Four learning rates, one CNN: Adam at 1e-1, 1e-3, 3e-4 and 6.25e-5, from the same initial weights.

    python examples/four_learning_rates.py                       # offline: scikit-learn's digits
    python examples/four_learning_rates.py --data-dir ~/data     # CIFAR-100, if ~/data has it

The classic experiment: too high an LR leaves the model stuck at chance, too low a one barely
starts learning within the budget, and between the two a factor of three still shows. Each run
keeps its LR constant and has `LRDiagnostics` watching, so the table also says what the library
makes of each curve. Writes `four_learning_rates.png` (training loss per step, test accuracy per epoch)
and the CSV logs under `--out`.

Data: with `--data-dir`, CIFAR-100 as torchvision stores it (`<data-dir>/cifar-100-python/`),
never downloaded. Without it, scikit-learn's 8x8 handwritten digits: they ship with
scikit-learn, so nothing is downloaded, they are images (the CNN convolves in 2-D, which rules
out MNIST-1D's sequences), and they are small enough for the four runs to take a minute or two
on two CPU cores. The 7-layer CNN (three blocks of two 3x3 convolutions, then a linear head
after global average pooling) takes either shape; on the digits it is half as wide (16-32-64
channels instead of 32-64-128). The test accuracy is measured after every epoch, as in the
classic figure; nothing is tuned on it.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.loggers import CSVLogger
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from lightning_lr import LRDiagnostics
from lightning_lr.demo.images import DigitsDataModule, ImageClassifier, TorchvisionDataModule
from lightning_lr.demo.logs import read_metrics, series
from lightning_lr.logs import NOISY_WARNINGS, quiet_lightning

LEARNING_RATES = (1e-1, 1e-3, 3e-4, 6.25e-5)


def main(argv: list[str] | None = None) -> dict[float, dict[str, Any]]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", type=Path, default=None, help="folder holding cifar-100-python/")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--limit-train-batches", type=int, default=None)
    parser.add_argument("--out", type=Path, default=Path("examples_out/four_learning_rates"))
    args = parser.parse_args(argv)
    with quiet_lightning(NOISY_WARNINGS):
        results, name = train_all(args)
    figure = plot(results, args.out / "four_learning_rates.png", title=f"Adam on {name}, 7-layer CNN")
    print(f"\n{'LR':>9}  {'last train loss':>15}  {'final test acc':>14}  {'best test acc':>13}  diagnoses")
    for lr, result in results.items():
        losses, accuracies = result["train_loss"][1], result["test_acc"][1]
        last = sum(losses[-10:]) / len(losses[-10:])
        diagnoses = ", ".join(result["diagnoses"]) or "-"
        print(f"{lr:9.3g}  {last:15.4f}  {accuracies[-1]:14.4f}  {max(accuracies):13.4f}  {diagnoses}")
    print(f"figure: {figure}")
    return results


def train_all(args: argparse.Namespace) -> tuple[dict[float, dict[str, Any]], str]:
    """Train the CNN once per LR; each run's training loss, test accuracy and diagnoses."""
    data: DigitsDataModule | TorchvisionDataModule
    if args.data_dir is None:
        data, in_channels, classes, widths, name = DigitsDataModule(), 1, 10, (16, 32, 64), "digits"
    else:
        data = TorchvisionDataModule("cifar100", str(args.data_dir))
        in_channels, classes, widths, name = 3, data.num_classes, (32, 64, 128), "CIFAR-100"
    data.setup("fit")  # a missing data set fails here, before any training
    train, test = data.train_dataloader(), data.test_dataloader()

    results: dict[float, dict[str, Any]] = {}
    for lr in LEARNING_RATES:
        pl.seed_everything(0, verbose=False)  # the same initial weights and batches for every LR
        model = ImageClassifier(
            lr=lr,
            optimizer="adam",
            in_channels=in_channels,
            num_classes=classes,
            widths=widths,
            convs_per_block=2,
            batch_norm=False,
        )
        diagnostics = LRDiagnostics()
        trainer = pl.Trainer(
            max_epochs=args.epochs,
            limit_train_batches=args.limit_train_batches,
            callbacks=[diagnostics],
            logger=CSVLogger(args.out / "logs", name=f"lr_{lr:g}", version=""),
            log_every_n_steps=1,
            num_sanity_val_steps=0,
            enable_checkpointing=False,
            enable_model_summary=False,
            enable_progress_bar=False,
        )
        trainer.fit(model, train, test)  # the test set is evaluated after each epoch
        rows = read_metrics(Path(trainer.log_dir or ".") / "metrics.csv")
        results[lr] = {
            "train_loss": series(rows, "train_loss_step", by="step"),
            "test_acc": series(rows, "val_acc", by="epoch"),
            "diagnoses": sorted({diagnosis.kind for diagnosis in diagnostics.diagnoses}),
        }
        print(f"lr={lr:g}: final test accuracy {results[lr]['test_acc'][1][-1]:.4f}")
    return results, name


def plot(results: dict[float, dict[str, Any]], path: Path, *, title: str) -> Path:
    figure = Figure(figsize=(11.0, 4.2), dpi=110)
    FigureCanvasAgg(figure)
    loss_axes, accuracy_axes = figure.subplots(1, 2)
    for lr, result in results.items():
        steps, losses = result["train_loss"]
        loss_axes.plot(steps, smooth(losses), linewidth=1.4, label=f"lr={lr:g}")
        epochs, accuracies = result["test_acc"]
        accuracy_axes.plot(
            [epoch + 1 for epoch in epochs], accuracies, marker="o", markersize=3, label=f"lr={lr:g}"
        )
    loss_axes.set(xlabel="optimizer step", ylabel="training loss (smoothed)", yscale="log", title=title)
    accuracy_axes.set(xlabel="epoch", ylabel="test accuracy", ylim=(0.0, 1.0), title="Test accuracy")
    for axes in (loss_axes, accuracy_axes):
        axes.grid(True, alpha=0.3)
        axes.legend(fontsize="small")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    return path


def smooth(values: list[float], beta: float = 0.9) -> list[float]:
    """Exponential moving average, bias-corrected, so the first steps are not pulled towards zero."""
    average, smoothed = 0.0, []
    for count, value in enumerate(values, start=1):
        average = beta * average + (1 - beta) * value
        smoothed.append(average / (1 - beta**count))
    return smoothed


if __name__ == "__main__":
    main()
