"""The LR finder: wall time against Lightning's ``lr_find``, and what each rule's LR trains to.

1. Wall time: ``find_lr`` against ``Tuner(trainer).lr_find`` on MNIST-1D (the demo CNN, batch 100),
   same sweep (``find_lr``'s default, 1e-7 to 10 in 100 steps), each stopping early as it does by
   default. Target: <= 1.0.
2. Quality: MNIST-1D and scikit-learn's digits, each trained for 20 epochs with AdamW (weight decay
   0.01) under warmup + cosine and under one-cycle, at a log grid of peak LRs, at each rule's
   suggestion (``find_lr``'s defaults, told a warmup + decay schedule of 20 epochs) and at
   Lightning's, three seeds each. The wider suite, on unseen seeds, is ``benchmarks/finder_suite.py``.

``python -m benchmarks.finder [--quick] [--raw PATH]`` runs this benchmark alone; ``--quick`` is a
few-second smoke run, ``--raw`` also writes every measurement as JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.tuner import Tuner
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from benchmarks._common import WORKERS, interleaved, quiet, run_all
from benchmarks._tasks import DIGITS, MNIST1D, Task, quiet_trainer, train_and_test
from lightning_lr.demo import make_mnist1d
from lightning_lr.finder import RULES, FinderSettings, LRFinderResult, find_lr
from lightning_lr.plot import plot_lr_finder
from lightning_lr.schedules import CosineDecay, OneCycle, Schedule, Warmup

MIN_LR, MAX_LR = 1e-7, 10.0
"""The sweep both finders run: ``find_lr``'s default. The rules read the smoothed loss, whose lag
depends on the steps per decade, so the ``peak`` rule is calibrated on the sweep users get."""

SCHEDULES: dict[str, Schedule] = {
    "warmup + cosine": Warmup(CosineDecay(1.0), 0.05),
    "one-cycle": OneCycle(1.0),
}
CANDIDATES = (*RULES, "lightning")
"""What a finder suggests: each of our rules, and Lightning's ``suggestion()``."""

QUANTITIES = {"min-loss LR": "at_min", "steepest": "steepest", "valley": "valley"}
"""Finder quantities a ``peak`` rule could be a multiple of; ``at_min`` is the LR of the smoothed minimum."""

MULTIPLIERS = {
    "min-loss LR": (1.0, 1 / 2, 1 / 3, 1 / 5, 1 / 10),
    "steepest": (1.0, 2.0),
    "valley": (5.0, 8.0, 10.0),
}


@dataclass(frozen=True)
class Budget:
    tasks: tuple[Task, ...]
    seeds: tuple[int, ...]
    grid: tuple[float, ...]
    num_steps: int
    repeats: int
    epochs: int | None = None
    limit_train_batches: int | None = None


def log_grid(low: float, high: float, count: int) -> tuple[float, ...]:
    return tuple(low * (high / low) ** (k / (count - 1)) for k in range(count))


FULL = Budget((MNIST1D, DIGITS), seeds=(0, 1, 2), grid=log_grid(3e-3, 2.5e-1, 8), num_steps=100, repeats=7)
QUICK = Budget(
    (DIGITS,), seeds=(0,), grid=(3e-3, 3e-2), num_steps=20, repeats=1, epochs=1, limit_train_batches=5
)


@dataclass
class TaskResult:
    """Everything measured on one task.

    Attributes:
        task: the task's name.
        grid: the peak LRs of the grid.
        suggestions: per seed, each candidate's LR (``None`` where it made none) and ``at_min``.
        runs: ``[schedule, seed, lr, test accuracy]`` of every training run.
    """

    task: str
    grid: list[float]
    suggestions: dict[int, dict[str, float | None]] = field(default_factory=dict)
    runs: list[tuple[str, int, float, float]] = field(default_factory=list)

    @property
    def seeds(self) -> list[int]:
        return sorted(self.suggestions)

    def accuracy(self, schedule: str, seed: int, lr: float) -> float:
        return next(acc for name, s, rate, acc in self.runs if (name, s, rate) == (schedule, seed, lr))

    def grid_curve(self, schedule: str, seed: int) -> list[float]:
        return [self.accuracy(schedule, seed, lr) for lr in self.grid]

    def grid_means(self, schedule: str) -> list[float]:
        return [
            statistics.fmean(column) for column in zip(*(self.grid_curve(schedule, s) for s in self.seeds))
        ]

    def grid_best(self, schedule: str) -> tuple[float, float]:
        """The grid LR with the best mean accuracy over the seeds, and that mean."""
        means = self.grid_means(schedule)
        best = max(range(len(means)), key=means.__getitem__)
        return self.grid[best], means[best]

    def seed_best(self, schedule: str, seed: int) -> float:
        curve = self.grid_curve(schedule, seed)
        return self.grid[max(range(len(curve)), key=curve.__getitem__)]

    def candidate(self, schedule: str, name: str) -> list[float] | None:
        """The accuracy of each seed at ``name``'s own suggestion, or ``None`` if a seed had none."""
        lrs = [self.suggestions[seed][name] for seed in self.seeds]
        if any(lr is None for lr in lrs):
            return None
        return [self.accuracy(schedule, seed, lr) for seed, lr in zip(self.seeds, lrs) if lr is not None]

    def typical(self, name: str) -> float | None:
        """The geometric mean over the seeds of a candidate's LR."""
        lrs = [self.suggestions[seed][name] for seed in self.seeds]
        if any(lr is None for lr in lrs):
            return None
        return math.exp(statistics.fmean(math.log(lr) for lr in lrs if lr is not None))

    def interpolated(self, schedule: str, seed: int, lr: float) -> float | None:
        """The seed's accuracy at ``lr``, linear in ``log(lr)`` between grid points; ``None`` off the grid."""
        if not self.grid[0] <= lr <= self.grid[-1]:
            return None
        logs = [math.log(rate) for rate in self.grid]
        return float(np.interp(math.log(lr), logs, self.grid_curve(schedule, seed)))


def ours(task: Task, seed: int, num_steps: int) -> LRFinderResult:
    """One sweep as Lightning's finder runs it (same range and steps): the machinery compared."""
    model = task.fresh_model(seed)
    return find_lr(
        model,
        datamodule=task.data(),
        min_lr=MIN_LR,
        max_lr=MAX_LR,
        num_steps=num_steps,
        repeats=1,
        beta=0.98,
        enable_progress_bar=False,
    )


def recipe(task: Task, seed: int, quick: bool) -> LRFinderResult:
    """``find_lr`` with its defaults, told the schedule's kind and the run's length (20 epochs)."""
    model = task.fresh_model(seed)
    data = task.data()
    data.setup("fit")
    steps = task.epochs * len(data.train_dataloader())
    return find_lr(
        model,
        datamodule=data,
        schedule="decay",
        total_steps=steps,
        enable_progress_bar=False,
        **({"num_steps": 20, "repeats": 2} if quick else {}),
    )


def lightnings(task: Task, seed: int, num_steps: int) -> float | None:
    """Lightning's suggestion; its finder saves and reloads a checkpoint, here in a scratch folder."""
    model = task.fresh_model(seed)
    with tempfile.TemporaryDirectory() as folder:
        found = Tuner(quiet_trainer(folder)).lr_find(
            model,
            datamodule=task.data(),
            min_lr=MIN_LR,
            max_lr=MAX_LR,
            num_training=num_steps,
            update_attr=False,
        )
    return None if found is None else found.suggestion()


def wall_time(budget: Budget) -> dict[str, float]:
    """Median seconds of one sweep, each finder on a fresh model, after one discarded warm-up call each."""

    def find() -> None:
        ours(MNIST1D, 0, budget.num_steps)

    def lightning() -> None:
        lightnings(MNIST1D, 0, budget.num_steps)

    def defaults() -> None:
        recipe(MNIST1D, 0, budget.repeats == 1)

    candidates = {"find_lr": find, "Lightning lr_find": lightning, "find_lr, defaults": defaults}
    for call in candidates.values() if budget.repeats > 1 else ():
        call()
    return interleaved(candidates, budget.repeats)


def suggestions_of(result: LRFinderResult, lightning: float | None) -> dict[str, float | None]:
    found: dict[str, float | None] = {name: found.lr for name, found in result.suggestions.items()}
    found["lightning"] = lightning
    indices = [result.suggestions[name].index for name in ("minimum", "peak")]
    low = next((index for index in indices if index is not None), None)
    found["at_min"] = None if low is None else result.lrs[low]
    return found


def sweep_task(task: Task, budget: Budget, out_dir: Path) -> TaskResult:
    """Sweep each seed's fresh model with both finders; plot the first seed's curve."""
    result = TaskResult(task.name, list(budget.grid))
    for seed in budget.seeds:
        sweep = recipe(task, seed, budget.repeats == 1)
        result.suggestions[seed] = suggestions_of(sweep, lightnings(task, seed, budget.num_steps))
        if seed == budget.seeds[0]:
            slug = task.name.lower().replace("-", "")
            title = f"find_lr on {task.name}, seed {seed}"
            plot_lr_finder(sweep, out_dir / f"finder_curve_{slug}.png", title=title)
    return result


def train_at_every_lr(results: list[TaskResult], budget: Budget) -> None:
    """Train every task and seed at every grid LR and every suggestion, under both schedules.

    The runs are independent, so they go to the worker processes all at once.
    """
    jobs: list[tuple[TaskResult, str, int, float]] = []
    for result in results:
        for seed in result.seeds:
            suggested = [result.suggestions[seed][name] for name in CANDIDATES]
            lrs = sorted({*budget.grid, *(lr for lr in suggested if lr is not None)})
            jobs += [(result, name, seed, lr) for name in SCHEDULES for lr in lrs]
    tasks = {task.name: task for task in budget.tasks}
    accuracies = run_all(
        train_and_test,
        [
            (tasks[result.task], lr, SCHEDULES[name], seed, budget.epochs, budget.limit_train_batches)
            for result, name, seed, lr in jobs
        ],
    )
    for (result, name, seed, lr), accuracy in zip(jobs, accuracies):
        result.runs.append((name, seed, lr, accuracy))


def _lr(value: float | None) -> str:
    return "—" if value is None else f"{value:.3g}"


def _points(values: Sequence[float] | None) -> str:
    if values is None:
        return "—"
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * statistics.fmean(values):.1f} ± {100 * spread:.1f}"


def _gap(values: Sequence[float] | None, best: float) -> str:
    return "—" if values is None else f"{100 * (statistics.fmean(values) - best):+.1f}"


def _ratio(numerator: float, denominator: float | None) -> str:
    return "—" if denominator is None else f"{numerator / denominator:.2f}"


def wall_lines(seconds: dict[str, float], budget: Budget) -> list[str]:
    ratio = seconds["find_lr"] / seconds["Lightning lr_find"]
    return [
        "### Wall time",
        "",
        "| finder | median seconds per sweep |",
        "|---|---|",
        *(f"| {name} | {value:.2f} |" for name, value in seconds.items()),
        f"| ratio (find_lr / lr_find) | {ratio:.2f} (target <= 1.0) |",
        "",
        f"MNIST-1D, the demo CNN, batch 100, AdamW; `find_lr` and `lr_find` sweep {MIN_LR:g} to "
        f"{MAX_LR:g} once in {budget.num_steps} steps and stop early by their defaults (smoothed loss > 4x "
        "its best): the machinery compared. `find_lr, defaults` is what users run: "
        f"{FinderSettings().repeats} sweeps of {FinderSettings().num_steps} steps from "
        f"{FinderSettings().min_lr:g}, each stopping early. "
        f"Medians of {budget.repeats} interleaved repetitions after one warm-up call each, every call "
        "on a fresh model and datamodule, Trainer construction included. Lightning's sweep also saves "
        "and reloads a checkpoint and runs the validation loop at each epoch end; ours does neither.",
        "",
    ]


def suggestion_lines(results: list[TaskResult]) -> list[str]:
    lines = [
        "### Suggestions",
        "",
        "| dataset | seed | LR at smoothed min | " + " | ".join(CANDIDATES) + " |",
        "|---|---|---|" + "---|" * len(CANDIDATES),
    ]
    for result in results:
        for seed in result.seeds:
            found = result.suggestions[seed]
            cells = " | ".join(_lr(found[name]) for name in CANDIDATES)
            lines.append(f"| {result.task} | {seed} | {_lr(found['at_min'])} | {cells} |")
    return [*lines, ""]


def quality_lines(result: TaskResult) -> list[str]:
    names = list(SCHEDULES)
    best = {name: result.grid_best(name) for name in names}
    header = " | ".join(f"{name}: test acc % | gap" for name in names)
    lines = [
        f"#### {result.task}",
        "",
        f"| peak LR | {header} |",
        "|---|" + "---|---|" * len(names),
    ]
    for index, lr in enumerate(result.grid):
        cells = []
        for name in names:
            column = [result.grid_curve(name, seed)[index] for seed in result.seeds]
            marker = " **best**" if lr == best[name][0] else ""
            cells.append(f"{_points(column)}{marker} | {_gap(column, best[name][1])}")
        lines.append(f"| {lr:.3g} | {' | '.join(cells)} |")
    for candidate in CANDIDATES:
        lrs = ", ".join(_lr(result.suggestions[seed][candidate]) for seed in result.seeds)
        cells = []
        for name in names:
            values = result.candidate(name, candidate)
            cells.append(f"{_points(values)} | {_gap(values, best[name][1])}")
        lines.append(f"| {candidate} ({lrs}) | {' | '.join(cells)} |")
    return [*lines, ""]


def ratio_lines(results: list[TaskResult]) -> list[str]:
    columns = ("at_min", "minimum", "valley", "steepest", "peak")
    lines = [
        "### Where the best grid LR lies against each finder quantity",
        "",
        "Best grid LR of each seed (its own accuracy curve) divided by that seed's finder quantity.",
        "",
        "| dataset | schedule | seed | best grid LR | / LR at smoothed min | / minimum | / valley | "
        "/ steepest | / peak |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    logs: dict[str, list[float]] = {name: [] for name in columns}
    for result in results:
        for schedule in SCHEDULES:
            for seed in result.seeds:
                best = result.seed_best(schedule, seed)
                found = result.suggestions[seed]
                cells = " | ".join(_ratio(best, found[name]) for name in columns)
                lines.append(f"| {result.task} | {schedule} | {seed} | {best:.3g} | {cells} |")
                for name in columns:
                    if found[name] is not None:
                        logs[name].append(math.log(best / found[name]))  # type: ignore[operator]
    summary = []
    for name, values in logs.items():
        if len(values) > 1:
            summary.append(
                f"{name}: geometric mean {math.exp(statistics.fmean(values)):.2f}, "
                f"spread x/÷ {math.exp(statistics.stdev(values)):.2f}"
            )
    return [*lines, "", "Over all rows: " + "; ".join(summary) + ".", ""]


def calibration_lines(results: list[TaskResult]) -> list[str]:
    """Accuracy gaps of candidate ``peak`` rules, read off each seed's grid curve by interpolation."""
    pairs = [(result, schedule) for result in results for schedule in SCHEDULES]
    lines = [
        "### Candidate `peak` rules, read off the grid",
        "",
        "Mean test accuracy minus the grid's best mean, in points; each seed's accuracy at the rule's LR "
        "is interpolated linearly in log(LR) between its grid points (— where the LR falls off the grid).",
        "",
        "| rule | " + " | ".join(f"{r.task}, {s}" for r, s in pairs) + " | worst |",
        "|---|" + "---|" * (len(pairs) + 1),
    ]
    for label, key in QUANTITIES.items():
        for multiple in MULTIPLIERS[label]:
            gaps: list[float | None] = []
            for result, schedule in pairs:
                values = []
                for seed in result.seeds:
                    base = result.suggestions[seed][key]
                    values.append(
                        None if base is None else result.interpolated(schedule, seed, base * multiple)
                    )
                present = [value for value in values if value is not None]
                gaps.append(
                    None
                    if len(present) < len(values)
                    else 100 * (statistics.fmean(present) - result.grid_best(schedule)[1])
                )
            name = f"{label} / {1 / multiple:.3g}" if multiple < 1 else f"{label} x {multiple:g}"
            cells = " | ".join("—" if gap is None else f"{gap:+.1f}" for gap in gaps)
            known = [gap for gap in gaps if gap is not None]
            worst = f"{min(known):+.1f}" if len(known) == len(gaps) else "—"
            lines.append(f"| {name} | {cells} | {worst} |")
    return [*lines, ""]


def plot_quality(results: list[TaskResult], path: Path) -> Path:
    """Mean test accuracy against peak LR per task and schedule, each finder's LR marked."""
    figure = Figure(figsize=(11.0, 4.0 * len(results)), dpi=110)
    FigureCanvasAgg(figure)
    panels = figure.subplots(len(results), len(SCHEDULES), squeeze=False)
    markers = {"steepest": "v", "valley": "o", "minimum": "s", "peak": "*", "slide": "P", "lightning": "D"}
    for row, result in zip(panels, results):
        for axes, schedule in zip(row, SCHEDULES):
            curves = np.array([result.grid_curve(schedule, seed) for seed in result.seeds]) * 100
            mean, spread = curves.mean(axis=0), curves.std(axis=0)
            axes.plot(result.grid, mean, color="k", marker=".", label="grid, mean of seeds")
            axes.fill_between(result.grid, mean - spread, mean + spread, color="k", alpha=0.12)
            for index, name in enumerate(CANDIDATES):
                lr, values = result.typical(name), result.candidate(schedule, name)
                if lr is None or values is None:
                    continue
                color = f"C{index}"
                axes.axvline(lr, color=color, linestyle="--", linewidth=0.9)
                axes.plot(
                    [lr],
                    [100 * statistics.fmean(values)],
                    marker=markers[name],
                    color=color,
                    markersize=9,
                    linestyle="none",
                    label=f"{name}: {lr:.2g}",
                )
            top = float(mean.max())
            axes.set_ylim(max(float(mean.min()) - 1.0, top - 12.0), top + 2.0)
            axes.set_xscale("log")
            axes.set_xlabel("peak learning rate")
            axes.set_ylabel("test accuracy (%)")
            axes.set_title(f"{result.task}, {schedule}")
            axes.grid(True, which="both", alpha=0.25)
            axes.legend(fontsize="x-small", loc="lower left")
    figure.tight_layout()
    figure.savefig(path)
    return path


def run(quick: bool = False, *, out_dir: Path | None = None, raw: Path | None = None) -> list[str]:
    """Run the finder benchmark; its ``## LR finder`` section of RESULTS.md, as lines.

    Args:
        quick: a smoke run of a few seconds: 20-step sweeps, and digits alone trained for five steps
            at two grid LRs and the suggestions, one seed.
        out_dir: where the PNGs go; default ``benchmarks/``, or a scratch folder when ``quick``.
        raw: also write every measurement to this JSON file.
    """
    start = time.perf_counter()
    budget = QUICK if quick else FULL
    torch.set_num_threads(2)
    make_mnist1d()  # generated once, outside every timing
    with contextlib.ExitStack() as stack:
        if out_dir is None:
            out_dir = (
                Path(stack.enter_context(tempfile.TemporaryDirectory())) if quick else Path(__file__).parent
            )
        stack.enter_context(quiet())
        seconds = wall_time(budget)
        wall = wall_lines(seconds, budget)
        print("\n".join(wall), flush=True)
        results = [sweep_task(task, budget, out_dir) for task in budget.tasks]
        train_at_every_lr(results, budget)
        plot_quality(results, out_dir / "finder_quality.png")
    if raw is not None:
        raw.write_text(
            json.dumps({"seconds": seconds, "tasks": [asdict(result) for result in results]}, indent=1)
        )
    quality = ["### Test accuracy at each peak LR", ""]
    for result in results:
        quality += quality_lines(result)
    body = [*suggestion_lines(results), *quality, *ratio_lines(results), *calibration_lines(results)]
    print("\n".join(body), flush=True)
    epochs = budget.epochs or MNIST1D.epochs
    total = time.perf_counter() - start
    return [
        "## LR finder",
        "",
        *wall,
        *body,
        f"Protocol: {epochs} epochs, AdamW (weight decay 0.01), seeds {', '.join(map(str, budget.seeds))} "
        "(each seed fixes the initial weights and the batch order, so its runs differ only in LR and "
        "schedule); warmup + cosine is `Warmup(CosineDecay(1.0), 0.05)`, one-cycle `OneCycle(1.0)`. "
        "MNIST-1D: the demo CNN, batch 100, 3600 / 400 / 1000 train / val / test. digits: a 64-128-10 MLP, "
        "batch 64, 1197 / 300 / 300. Our rules read `find_lr`'s default sweeps of each seed's freshly "
        "initialised model (told a warmup + decay schedule of 20 epochs); Lightning's finder sweeps once "
        f"({MIN_LR:g} to {MAX_LR:g}, {budget.num_steps} steps); their LRs serve both schedules. Gaps are "
        "mean test accuracy minus the grid's best mean, in points (target for `peak`: within 0.5).",
        "",
        "![test accuracy against peak LR](finder_quality.png)",
        "",
        f"{sum(len(result.runs) for result in results)} training runs, "
        f"{WORKERS} at a time (one torch thread each); this section took {total / 60:.1f} min.",
        "",
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    parser.add_argument("--raw", type=Path, default=None, help="also write every measurement as JSON here")
    args = parser.parse_args(argv)
    pl.seed_everything(0, verbose=False)
    print("\n".join(run(args.quick, raw=args.raw)))


if __name__ == "__main__":
    main()
