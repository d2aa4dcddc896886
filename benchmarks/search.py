"""Search efficiency: TPE with pruning against a 16-point grid, in epochs of training spent.

Both search the peak LR of warmup + cosine for the MNIST-1D CNN on a log scale, scoring each trial
by its best validation accuracy. The grid trains all 16 LRs for the full budget; TPE with median
pruning runs trials one after another, and the benchmark counts the epochs it has spent when its
best first comes within 0.5 points of the grid's best. The seed fixes every trial's initial weights
and batch order, so the comparison is made per seed, against that seed's grid. TPE runs twice per
seed: from scratch, and from the LR finder's ``peak`` suggestion as its first trial
(``first_lr``), the sweep's steps counted in the epochs it spent.

``python -m benchmarks.search [--quick]`` runs this benchmark alone.
"""

from __future__ import annotations

import functools
import sys
import tempfile
from pathlib import Path

import lightning.pytorch as pl
import torch

from benchmarks._common import quiet, run_all
from lightning_lr.demo import MNIST1DClassifier, MNIST1DDataModule
from lightning_lr.finder import find_lr
from lightning_lr.schedules import CosineDecay, Warmup
from lightning_lr.search import SearchResult, SearchSpace, search_lr

SPACE_LOW, SPACE_HIGH = 1e-4, 1.0
"""The searched LR range; a finder suggestion above it starts the study at its top."""

TOLERANCE = 0.005
"""Within 0.5 points of the grid's best validation accuracy."""


def study(
    sampler: str,
    n_trials: int,
    epochs: int,
    grid_size: int,
    seeds: int,
    limit: int | None,
    first_lr: float | None = None,
) -> SearchResult:
    model = functools.partial(
        MNIST1DClassifier, optimizer="adamw", weight_decay=0.01, schedule=Warmup(CosineDecay(1.0), 0.05)
    )
    with tempfile.TemporaryDirectory() as folder:
        return search_lr(
            model,
            MNIST1DDataModule(batch_size=100),
            space=SearchSpace(lr=(SPACE_LOW, SPACE_HIGH), grid_size=grid_size),
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
            first_lr=first_lr,
        )


def finder_peak(seed: int, epochs: int) -> tuple[float, float]:
    """The finder's ``peak`` LR for the seed's model (its defaults, told the trials' schedule and
    length), and the length of all its sweeps in epochs."""
    data = MNIST1DDataModule(batch_size=100)
    data.setup("fit")
    pl.seed_everything(seed, verbose=False)  # as each trial of the seed's study builds its model
    schedule = Warmup(CosineDecay(1.0), 0.05)
    model = MNIST1DClassifier(optimizer="adamw", weight_decay=0.01, schedule=schedule)
    steps = epochs * len(data.train_dataloader())
    found = find_lr(model, datamodule=data, total_steps=steps, enable_progress_bar=False)
    peak = found.suggestions["peak"]
    if peak.lr is None:
        raise RuntimeError(f"the finder made no `peak` suggestion for seed {seed}: {peak.reason}")
    swept = sum(len(losses) for losses in found.sweeps)
    return min(peak.lr, SPACE_HIGH), swept / len(data.train_dataloader())


def epochs_until(result: SearchResult, target: float, spent: float = 0.0) -> tuple[float | None, float]:
    """Epochs spent (in trial order, after ``spent``) when the best first reaches ``target``; in all."""
    reached = None
    best = -float("inf")
    for row in sorted(result.trials, key=lambda row: row.number):
        spent += row.epochs or 0
        if row.state == "COMPLETE" and row.value is not None:
            best = max(best, row.value)
        if reached is None and best >= target:
            reached = spent
    return reached, spent


def _number(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def run(quick: bool = False) -> list[str]:
    torch.set_num_threads(2)
    epochs, grid_size, limit = (2, 4, 3) if quick else (10, 16, None)
    seeds = (0,) if quick else (0, 1, 2)
    with quiet():
        peaks = {seed: finder_peak(seed, epochs) for seed in seeds}
    # every grid and TPE study is independent: one job each for the worker processes
    jobs = [("grid", grid_size, epochs, grid_size, seed, limit) for seed in seeds]
    jobs += [("tpe", grid_size, epochs, grid_size, seed, limit) for seed in seeds]
    jobs += [("tpe", grid_size, epochs, grid_size, seed, limit, peaks[seed][0]) for seed in seeds]
    done = run_all(study, jobs)
    grids, studies = dict(zip(seeds, done[: len(seeds)])), done[len(seeds) :]
    grid_epochs = {seed: sum(row.epochs or 0 for row in grid.trials) for seed, grid in grids.items()}
    targets = {seed: (grid.best_value or 0.0) - TOLERANCE for seed, grid in grids.items()}
    grid_rows = ", ".join(
        f"seed {seed}: {_number(grid.best_value, '.4f')} at lr {_number(grid.best_lr, '.3g')}"
        for seed, grid in grids.items()
    )
    lines = [
        "## Search efficiency",
        "",
        f"The peak LR of warmup + cosine for the MNIST-1D CNN, {epochs} epochs per trial, scored by best "
        f"validation accuracy. The seed fixes the initial weights and batch order of every trial of a "
        f"study, so each seed has its grid: {grid_size} log-spaced LRs in [{SPACE_LOW:g}, {SPACE_HIGH:g}], "
        f"{grid_epochs[seeds[0]]} epochs; best {grid_rows}. TPE with median pruning, up to {grid_size} "
        "trials per seed, from scratch and from the finder's `peak` as first trial (its sweep counted in "
        "the epochs); target: within 0.5 points of the same seed's grid best.",
        "",
        "| TPE | seed | epochs to within 0.5 points | share of grid epochs | best | at lr "
        "| trials (pruned) |",
        "|---|---|---|---|---|---|---|",
    ]
    shares: dict[str, list[float | None]] = {"from scratch": [], "from the finder's peak": []}
    variants = [("from scratch", seed, 0.0) for seed in seeds]
    variants += [("from the finder's peak", seed, peaks[seed][1]) for seed in seeds]
    for (variant, seed, sweep), result in zip(variants, studies):
        reached, spent = epochs_until(result, targets[seed], sweep)
        pruned = sum(row.state == "PRUNED" for row in result.trials)
        share = None if reached is None else reached / grid_epochs[seed]
        shares[variant].append(share)
        start = f"{variant} ({peaks[seed][0]:.3g})" if sweep else variant
        lines.append(
            f"| {start} | {seed} | {'not reached' if reached is None else f'{reached:.0f}'} "
            f"(of {spent:.0f}) | {'-' if share is None else f'{share:.0%}'} | "
            f"{_number(result.best_value, '.4f')} | {_number(result.best_lr, '.3g')} | "
            f"{len(result.trials)} ({pruned}) |"
        )
    lines += ["", "Target: <= 30% of the grid's epochs on every seed:"]
    for variant, values in shares.items():
        met = all(share is not None and share <= 0.3 for share in values)
        lines.append(f"- TPE {variant}: " + ("**met**." if met else "**missed** on at least one seed."))
    if not all(share is not None and share <= 0.3 for values in shares.values() for share in values):
        lines += [
            "",
            "Why a seed misses: validation accuracy on 400 sequences moves in steps of 0.25 points and "
            "differs by about a point between neighbouring LRs, so the grid's best is the luckiest of "
            "16 noisy scores, and coming within 0.5 points of it is partly a draw. What would fix it: "
            "a larger validation split, or scoring trials by a less noisy figure (the mean of the last "
            "epochs) than the best epoch.",
        ]
    return [*lines, ""]


if __name__ == "__main__":
    print("\n".join(run(quick="--quick" in sys.argv[1:])))
