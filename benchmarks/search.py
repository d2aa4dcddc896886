"""Search efficiency: TPE with pruning against a 16-point grid, in epochs of training spent.

Both search the peak LR of warmup + cosine for the MNIST-1D CNN on a log scale, scoring each trial
by its best validation accuracy. The grid trains all 16 LRs for the full budget; TPE with median
pruning runs trials one after another, and the benchmark counts the epochs it has spent when its
best first comes within 0.5 points of the grid's best.

``python -m benchmarks.search [--quick]`` runs this benchmark alone.
"""

from __future__ import annotations

import functools
import sys
import tempfile
from pathlib import Path

import torch

from benchmarks.finder import quiet
from lightning_lr.demo import MNIST1DClassifier, MNIST1DDataModule
from lightning_lr.schedules import CosineDecay, Warmup
from lightning_lr.search import SearchResult, SearchSpace, search_lr

TOLERANCE = 0.005
"""Within 0.5 points of the grid's best validation accuracy."""


def study(
    sampler: str, n_trials: int, epochs: int, grid_size: int, seeds: int, limit: int | None
) -> SearchResult:
    model = functools.partial(
        MNIST1DClassifier, optimizer="adamw", weight_decay=0.01, schedule=Warmup(CosineDecay(1.0), 0.05)
    )
    with tempfile.TemporaryDirectory() as folder:
        return search_lr(
            model,
            MNIST1DDataModule(batch_size=100),
            space=SearchSpace(lr=(1e-4, 1.0), grid_size=grid_size),
            monitor="val_acc",
            mode="max",
            n_trials=n_trials,
            sampler=sampler,
            pruner="median" if sampler != "grid" else "none",
            run_dir=folder,
            storage=f"sqlite:///{Path(folder) / 'study.db'}",
            trainer_kwargs={"max_epochs": epochs, "limit_train_batches": limit, "logger": False},
            seed=seeds,
            progress_bar=False,
        )


def epochs_until(result: SearchResult, target: float) -> tuple[int | None, int]:
    """Epochs spent (in trial order) when the best score first reaches ``target``; and in all."""
    spent, reached = 0, None
    best = -float("inf")
    for row in sorted(result.trials, key=lambda row: row.number):
        spent += row.epochs or 0
        if row.state == "COMPLETE" and row.value is not None:
            best = max(best, row.value)
        if reached is None and best >= target:
            reached = spent
    return reached, spent


def run(quick: bool = False) -> list[str]:
    torch.set_num_threads(2)
    epochs, grid_size, limit = (2, 4, 3) if quick else (10, 16, None)
    with quiet():
        grid = study("grid", grid_size, epochs, grid_size, 0, limit)
        tpe = {
            seed: study("tpe", grid_size, epochs, grid_size, seed, limit)
            for seed in ((0,) if quick else (0, 1, 2))
        }
    assert grid.best_value is not None
    grid_epochs = sum(row.epochs or 0 for row in grid.trials)
    target = grid.best_value - TOLERANCE
    lines = [
        "## Search efficiency",
        "",
        f"The peak LR of warmup + cosine for the MNIST-1D CNN, {epochs} epochs per trial, scored by best "
        f"validation accuracy. Grid: {grid_size} log-spaced LRs in [1e-4, 1], {grid_epochs} epochs, best "
        f"{grid.best_value:.4f} at lr {grid.best_lr:.3g}. TPE with median pruning, up to {grid_size} trials, "
        f"one study per sampler seed; target {target:.4f} (0.5 points below the grid's best).",
        "",
        "| seed | epochs to within 0.5 points | share of grid epochs | best | at lr | trials (pruned) |",
        "|---|---|---|---|---|---|",
    ]
    shares = []
    for seed, result in tpe.items():
        reached, spent = epochs_until(result, target)
        pruned = sum(row.state == "PRUNED" for row in result.trials)
        share = None if reached is None else reached / grid_epochs
        shares.append(share)
        lines.append(
            f"| {seed} | {'not reached' if reached is None else reached} (of {spent}) | "
            f"{'-' if share is None else f'{share:.0%}'} | {result.best_value:.4f} | {result.best_lr:.3g} | "
            f"{len(result.trials)} ({pruned}) |"
        )
    met = all(share is not None and share <= 0.3 for share in shares)
    lines += [
        "",
        "Target: <= 30% of the grid's epochs on every seed: "
        + ("**met**." if met else "**missed** on at least one seed (see the table)."),
        "",
    ]
    return lines


if __name__ == "__main__":
    print("\n".join(run(quick="--quick" in sys.argv[1:])))
