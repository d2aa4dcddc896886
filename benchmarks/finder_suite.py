"""The finder on unseen seeds and tasks: does the default pick train within reach of a same-seed grid?

Fourteen settings (six tasks: MNIST-1D CNN, MLP and GRU, digits MLP and CNN, a breast-cancer MLP;
AdamW and SGD with momentum; constant, warmup + cosine and one-cycle; 5- and 20-epoch runs), six
seeds. Every setting and seed is trained at each LR of a log grid (x2 apart) and swept by the
library's ``find_lr`` with its defaults, told the schedule and the run's length. Seeds 0-2 tune: the
``peak`` rule's divisor (:mod:`lightning_lr.finder.recipe`) is fitted on them, and the fit is printed
against the library's numbers. Seeds 3-5 report: each is trained at the library's pick and at each
peer rule's pick read off the same sweeps, paired with the grid (same initial weights, same batches).

``python -m benchmarks.finder_suite [--quick] [--raw PATH] [--cache PATH] [--tune]``; ``--quick`` is
a smoke run, ``--tune`` prints the recipe's fit on the tuning seeds alone (as JSON), ``--cache``
keeps the accuracies of runs already trained (the grid does not depend on the recipe).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch.tuner.lr_finder import _LRFinder

from benchmarks._common import WORKERS, quiet, run_all
from benchmarks._suite_tasks import SCHEDULES, TASKS, SuiteModule, train_and_test
from lightning_lr.finder import FinderSettings, find_lr, recipe, smooth, usable_range
from lightning_lr.finder.recipe import schedule_kind
from lightning_lr.lengths import RunLength


@dataclass(frozen=True)
class Setting:
    task: str
    optimizer: str
    schedule: str
    epochs: int

    @property
    def label(self) -> str:
        return f"{self.task}, {self.optimizer}, {self.schedule}, {self.epochs} ep"

    @property
    def total_steps(self) -> int:
        return TASKS[self.task].steps_per_epoch() * self.epochs

    @property
    def kind(self) -> str:
        shape = SCHEDULES[self.schedule].resolve(RunLength(self.total_steps))
        return schedule_kind(shape, self.total_steps)


SETTINGS = (
    Setting("MNIST-1D CNN", "adamw", "one-cycle", 20),
    Setting("MNIST-1D CNN", "sgd", "constant", 5),
    Setting("MNIST-1D CNN", "adamw", "warmup + cosine", 5),
    Setting("MNIST-1D MLP", "sgd", "warmup + cosine", 20),
    Setting("MNIST-1D MLP", "adamw", "constant", 5),
    Setting("MNIST-1D GRU", "adamw", "warmup + cosine", 20),
    Setting("MNIST-1D GRU", "adamw", "constant", 5),
    Setting("digits MLP", "adamw", "warmup + cosine", 5),
    Setting("digits MLP", "sgd", "one-cycle", 20),
    Setting("digits MLP", "sgd", "constant", 5),
    Setting("digits CNN", "adamw", "constant", 20),
    Setting("digits CNN", "sgd", "warmup + cosine", 5),
    Setting("breast cancer MLP", "adamw", "one-cycle", 5),
    Setting("breast cancer MLP", "sgd", "constant", 20),
)
TUNE, REPORT = (0, 1, 2), (3, 4, 5)
GRIDS = {
    "adamw": tuple(2.5e-4 * 2**k for k in range(11)),
    "sgd": tuple(2.5e-3 * 2**k for k in range(11)),
}
PEERS = ("valley", "steep", "minimum", "slide", "torch-lr-finder", "lightning")
"""fastai's valley / steep / minimum / slide, torch-lr-finder's steepest, Lightning's ``suggestion()``."""
RACERS = 3
"""LRs a confirmation race starts with (x2 apart around the pick), within 10% of the run's steps."""
CANDIDATES = ("peak", "peak + race", "peak, one sweep", "steepest", *PEERS)
CLIFF = 0.05
"""A grid best is next to a cliff when one grid step up loses more than this (5 points)."""


@dataclass(frozen=True)
class Budget:
    settings: tuple[Setting, ...]
    tune: tuple[int, ...]
    report: tuple[int, ...]
    grid_every: int = 1
    epochs: int | None = None
    finder: dict[str, Any] | None = None


FULL = Budget(SETTINGS, TUNE, REPORT)
QUICK = Budget(
    (SETTINGS[7], SETTINGS[12]), (0,), (3,), grid_every=5, epochs=1, finder={"num_steps": 20, "repeats": 2}
)


def _fastai_steep(lrs: list[float], smoothed: list[float]) -> float:
    """fastai's ``steep``: the steepest fall per log LR over the curve, first tenth and last five cut."""
    cut = slice(len(smoothed) // 10, max(len(smoothed) - 5, len(smoothed) // 10 + 2))
    xs, ys = lrs[cut], smoothed[cut]
    slopes = [(ys[k + 1] - ys[k]) / math.log(xs[k + 1] / xs[k]) for k in range(len(ys) - 1)]
    return xs[int(np.argmin(slopes))]


def _torch_lr_finder(lrs: list[float], smoothed: list[float]) -> float:
    """torch-lr-finder's ``steepest``: ``argmin(numpy.gradient(losses))``, 10 points and the last 5 cut."""
    cut = slice(10, max(len(smoothed) - 5, 12))
    return lrs[cut][int(np.argmin(np.gradient(np.array(smoothed[cut]))))]


def _lightning(lrs: list[float], smoothed: list[float]) -> float | None:
    """Lightning's ``suggestion()`` (its own code), on the smoothed curve its finder would record."""
    finder = _LRFinder("exponential", lrs[0], lrs[-1], len(lrs))
    finder.results = {"lr": lrs, "loss": smoothed}
    found = finder.suggestion()
    return None if found is None else float(found)


PEER_RULES = {"steep": _fastai_steep, "torch-lr-finder": _torch_lr_finder, "lightning": _lightning}
PEER_BETA = {"steep": 0.98, "torch-lr-finder": 0.95, "lightning": 0.98}
"""Each peer's own smoothing (fastai and Lightning: 0.98; torch-lr-finder: ``smooth_f=0.05``)."""


def _median(values: Sequence[float | None]) -> float | None:
    found = [math.log(value) for value in values if value is not None]
    return math.exp(statistics.median(found)) if found else None


def sweep(setting: Setting, seed: int, options: dict[str, Any], race: bool) -> dict[str, Any]:
    """``find_lr`` with its defaults on the setting's model of ``seed``, told what the LR is for;
    with ``race``, ``find_lr`` again with a confirmation race of :data:`RACERS` LRs."""
    model = SuiteModule(TASKS[setting.task], setting.optimizer, seed)
    began = time.perf_counter()
    result = find_lr(
        model,
        settings=FinderSettings(schedule=setting.kind, total_steps=setting.total_steps, **options),
        enable_progress_bar=False,
    )
    seconds = time.perf_counter() - began
    divisor = float(result.settings["divisor"])
    picks: dict[str, float | None] = {
        name: result.suggestions[name].lr for name in ("peak", "steepest", "valley", "minimum", "slide")
    }
    picks["peak, one sweep"] = result.picks["peak"][0]
    at_min = [None if lr is None else lr * divisor for lr in result.picks["peak"]]
    for name, rule in PEER_RULES.items():
        found = []
        for losses in result.sweeps:
            count = usable_range(result.lrs[: len(losses)], losses, beta=PEER_BETA[name])
            smoothed = smooth(losses, PEER_BETA[name])[:count]
            found.append(rule(result.lrs[:count], smoothed) if count >= 17 else None)
        picks[name] = _median(found)
    race_steps = 0
    if race:
        raced = find_lr(
            SuiteModule(TASKS[setting.task], setting.optimizer, seed),
            settings=FinderSettings(
                schedule=setting.kind, total_steps=setting.total_steps, confirm=RACERS, **options
            ),
            enable_progress_bar=False,
        )
        picks["peak + race"] = raced.suggestion
        race_steps = sum(row["steps"] for row in raced.race)
    return {
        "picks": picks,
        "race_steps": race_steps,
        "at_min": _median(at_min),
        "sweep_steps": sum(len(losses) for losses in result.sweeps),
        "spread": result.spread,
        "seconds": seconds,
    }


def run_seconds(setting: Setting) -> float:
    began = time.perf_counter()
    train_and_test(setting.task, setting.optimizer, setting.schedule, setting.epochs, 1e-3, 0)
    return time.perf_counter() - began


@dataclass
class Outcome:
    """Everything measured on one setting."""

    setting: Setting
    grid: list[float]
    accuracy: dict[int, dict[float, float]]
    sweeps: dict[int, dict[str, Any]]

    def curve(self, seed: int) -> list[float]:
        return [self.accuracy[seed][lr] for lr in self.grid]

    def means(self, seeds: Sequence[int]) -> list[float]:
        return [statistics.fmean(self.accuracy[seed][lr] for seed in seeds) for lr in self.grid]

    def best(self, seeds: Sequence[int]) -> int:
        means = self.means(seeds)
        return max(range(len(means)), key=means.__getitem__)

    def interpolated(self, seed: int, lr: float) -> float:
        logs = [math.log(rate) for rate in self.grid]
        return float(np.interp(math.log(lr), logs, self.curve(seed)))  # clamped at the ends

    def at(self, seeds: Sequence[int], name: str) -> list[float] | None:
        lrs = [self.sweeps[seed]["picks"][name] for seed in seeds]
        if any(lr is None for lr in lrs):
            return None
        return [self.accuracy[seed][lr] for seed, lr in zip(seeds, lrs)]

    def gap(self, seeds: Sequence[int], name: str) -> float | None:
        values = self.at(seeds, name)
        best = self.means(seeds)[self.best(seeds)]
        return None if values is None else 100 * (statistics.fmean(values) - best)


def fit(outcomes: list[Outcome], seeds: Sequence[int]) -> tuple[dict[str, float], float, float]:
    """The intercepts (by kind) and slope of ``log10(pick / LR at the smoothed minimum)`` that give
    the best mean accuracy gap on ``seeds``, read off each seed's grid curve; and that mean gap."""
    offsets = [round(-2.5 + 0.05 * k, 2) for k in range(61)]
    best: tuple[float, dict[str, float], float] | None = None
    for slope in [round(-0.6 + 0.1 * k, 1) for k in range(13)]:
        intercepts, total = {}, 0.0
        for kind in recipe.SCHEDULE_KINDS:
            mine = [o for o in outcomes if o.setting.kind == kind]
            if not mine:
                intercepts[kind] = recipe.INTERCEPTS[kind]
                continue

            def score(offset: float, mine: list[Outcome] = mine, slope: float = slope) -> float:
                gaps = []
                for outcome in mine:
                    length = math.log10(outcome.setting.total_steps / recipe.REFERENCE_STEPS)
                    top = outcome.means(seeds)[outcome.best(seeds)]
                    reached = [
                        outcome.interpolated(
                            seed, outcome.sweeps[seed]["at_min"] * 10 ** (offset + slope * length)
                        )
                        for seed in seeds
                        if outcome.sweeps[seed]["at_min"] is not None
                    ]
                    gaps.append(100 * (statistics.fmean(reached) - top) if reached else -100.0)
                return sum(gaps)

            chosen = max(offsets, key=score)
            intercepts[kind], total = chosen, total + score(chosen)
        if best is None or total > best[0]:
            best = (total, intercepts, slope)
    assert best is not None
    return best[1], best[2], best[0] / len(outcomes)


def _lr(value: float | None) -> str:
    return "—" if value is None else f"{value:.3g}"


def _signed(value: float | None) -> str:
    return "—" if value is None else f"{value:+.1f}"


def _spread(lrs: Sequence[float | None]) -> float | None:
    logs = [math.log(lr) for lr in lrs if lr is not None]
    return math.exp(statistics.stdev(logs)) if len(logs) > 1 else None


def _key(setting: Setting, epochs: int, lr: float, seed: int) -> str:
    return f"{setting.task}|{setting.optimizer}|{setting.schedule}|{epochs}|{lr!r}|{seed}"


def measure(budget: Budget, cache: dict[str, float] | None = None) -> list[Outcome]:
    """Sweep and train every setting and seed; ``cache`` holds test accuracies already measured
    (a run is a deterministic function of its key), and receives the new ones."""
    cache = {} if cache is None else cache
    options = budget.finder or {}
    seeds = (*budget.tune, *budget.report)
    jobs = [(setting, seed, options, seed in budget.report) for setting in budget.settings for seed in seeds]
    found = run_all(sweep, jobs)
    sweeps = {(setting, seed): result for (setting, seed, _, _), result in zip(jobs, found)}
    runs: set[tuple[Setting, int, float]] = set()
    grids = {setting: list(GRIDS[setting.optimizer][:: budget.grid_every]) for setting in budget.settings}
    for setting in budget.settings:
        for seed in seeds:
            runs.update((setting, seed, lr) for lr in grids[setting])
        for seed in budget.report:
            picks = sweeps[setting, seed]["picks"]
            runs.update((setting, seed, lr) for lr in picks.values() if lr is not None)
    ordered = sorted(runs, key=lambda run: (run[0].label, run[1], run[2]))
    keys = [_key(s, budget.epochs or s.epochs, lr, seed) for s, seed, lr in ordered]
    missing = [(run, key) for run, key in zip(ordered, keys) if key not in cache]
    fresh = run_all(
        train_and_test,
        [
            (s.task, s.optimizer, s.schedule, budget.epochs or s.epochs, lr, seed)
            for (s, seed, lr), _ in missing
        ],
    )
    cache.update({key: value for (_, key), value in zip(missing, fresh)})
    accuracies = [cache[key] for key in keys]
    outcomes = []
    for setting in budget.settings:
        accuracy: dict[int, dict[float, float]] = {seed: {} for seed in seeds}
        for (s, seed, lr), value in zip(ordered, accuracies):
            if s == setting:
                accuracy[seed][lr] = value
        outcomes.append(
            Outcome(setting, grids[setting], accuracy, {seed: sweeps[setting, seed] for seed in seeds})
        )
    return outcomes


def table_lines(outcomes: list[Outcome], seeds: Sequence[int]) -> list[str]:
    lines = [
        "| setting | steps | grid best LR (acc %) | cliff above? | peak LR by seed | spread across seeds | "
        + " | ".join(CANDIDATES)
        + " |",
        "|---|---|---|---|---|---|" + "---|" * len(CANDIDATES),
    ]
    for outcome in outcomes:
        means = outcome.means(seeds)
        best = outcome.best(seeds)
        cliff = "—"
        if best + 1 < len(means) and means[best] - means[best + 1] > CLIFF:
            below = f"; one step below: {100 * (means[best - 1] - means[best]):+.1f}" if best else ""
            cliff = f"yes, {100 * (means[best + 1] - means[best]):+.1f} one step up{below}"
        lrs = [outcome.sweeps[seed]["picks"]["peak"] for seed in seeds]
        gaps = " | ".join(_signed(outcome.gap(seeds, name)) for name in CANDIDATES)
        spread = _spread(lrs)
        lines.append(
            f"| {outcome.setting.label} | {outcome.setting.total_steps} | {outcome.grid[best]:.3g} "
            f"({100 * means[best]:.1f}) | {cliff} | {', '.join(_lr(lr) for lr in lrs)} | "
            f"{'—' if spread is None else f'x/÷ {spread:.2f}'} | {gaps} |"
        )
    summary = []
    for name in CANDIDATES:
        gaps = [outcome.gap(seeds, name) for outcome in outcomes]
        known = [gap for gap in gaps if gap is not None]
        mean = f"{statistics.fmean(known):+.2f}" if known else "—"
        worst = f"{min(known):+.1f}" if known else "—"
        missing = f" ({len(gaps) - len(known)} settings without a pick)" if len(known) < len(gaps) else ""
        summary.append(
            f"| {name} | {mean} | {worst} | {sum(gap >= -0.5 for gap in known)} / {len(gaps)}{missing} |"
        )
    return [
        *lines,
        "",
        "| rule | mean gap (points) | worst gap | settings within 0.5 |",
        "|---|---|---|---|",
        *summary,
        "",
    ]


def cost_lines(outcomes: list[Outcome], seconds: dict[Setting, float], seeds: Sequence[int]) -> list[str]:
    lines = [
        "| setting | run steps | sweep steps (mean) | x 100-step sweep | sweeps' share of the run | "
        "race steps | sweeps + race, share of the run | find_lr s | one run s (plain loop) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for outcome in outcomes:
        steps = statistics.fmean(outcome.sweeps[seed]["sweep_steps"] for seed in seeds)
        raced = statistics.fmean(outcome.sweeps[seed]["race_steps"] for seed in seeds)
        wall = statistics.fmean(outcome.sweeps[seed]["seconds"] for seed in seeds)
        total = outcome.setting.total_steps
        lines.append(
            f"| {outcome.setting.label} | {total} | {steps:.0f} | {steps / 100:.2f} | "
            f"{100 * steps / total:.0f}% | {raced:.0f} | {100 * (steps + raced) / total:.0f}% | "
            f"{wall:.1f} | {seconds[outcome.setting]:.1f} |"
        )
    return [*lines, ""]


def tune(quick: bool = False) -> dict[str, Any]:
    """The tuning seeds alone: the recipe's fit, as plain data (``intercepts``, ``slope``, ``gap``)."""
    budget = QUICK if quick else FULL
    torch.set_num_threads(1)
    with quiet():
        outcomes = measure(
            Budget(budget.settings, budget.tune, (), budget.grid_every, budget.epochs, budget.finder)
        )
    intercepts, slope, gap = fit(outcomes, budget.tune)
    return {"intercepts": intercepts, "slope": slope, "gap": gap}


def run(quick: bool = False, *, raw: Path | None = None, cache: Path | None = None) -> list[str]:
    """Run the suite; its ``## LR finder on unseen seeds and tasks`` section of RESULTS.md, as lines.

    Args:
        quick: a smoke run (two settings, one seed each way, a 3-point grid, one epoch).
        raw: also write every measurement to this JSON file.
        cache: a JSON file of test accuracies by run, read if it exists and written back: the grid
            does not depend on the recipe, so a refit need not train it again.
    """
    start = time.perf_counter()
    budget = QUICK if quick else FULL
    torch.set_num_threads(1)
    known: dict[str, float] = json.loads(cache.read_text()) if cache is not None and cache.exists() else {}
    with quiet():
        outcomes = measure(budget, known)
        seconds = {setting: run_seconds(setting) for setting in budget.settings}
    if cache is not None:
        cache.write_text(json.dumps(known))
    intercepts, slope, tuned_gap = fit(outcomes, budget.tune)
    library = ", ".join(f"{kind} {value:+.2f}" for kind, value in recipe.INTERCEPTS.items())
    fitted = ", ".join(f"{kind} {value:+.2f}" for kind, value in intercepts.items())
    if raw is not None:
        raw.write_text(
            json.dumps(
                [
                    {"setting": o.setting.label, "grid": o.grid, "accuracy": o.accuracy, "sweeps": o.sweeps}
                    for o in outcomes
                ],
                indent=1,
                default=str,
            )
        )
    total = (time.perf_counter() - start) / 60
    seeds = ", ".join(map(str, budget.report))
    lines = [
        "## LR finder on unseen seeds and tasks",
        "",
        f"Reporting seeds {seeds} only (the recipe was fitted on seeds {', '.join(map(str, budget.tune))}). "
        "Each cell: mean test accuracy at the rule's pick minus the best mean of the same-seed grid "
        "(x2 apart), in points; every run is paired with the grid (same initial weights, same batch order). "
        "`peak` is the library's default pick (`find_lr()` told the schedule and the run's length: "
        f"{FinderSettings().repeats} sweeps x {FinderSettings().num_steps} steps, median); `peak, one sweep` "
        "is the same rule on the first sweep alone; `peak + race` races 3 LRs x2 apart around it in short "
        "trials (successive halving within 10% of the run's steps) and keeps the winner; the peers' rules "
        "read the same sweeps (median over "
        "them): fastai's valley / steep / minimum / slide, torch-lr-finder's steepest, Lightning's "
        "`suggestion()`; `steepest` is ours. A cliff: one grid step above the best loses over "
        f"{100 * CLIFF:.0f} points.",
        "",
        *table_lines(outcomes, budget.report),
        "### The recipe's fit",
        "",
        f"`log10(pick / LR at the smoothed minimum) = intercept[kind] + slope * log10(steps / "
        f"{recipe.REFERENCE_STEPS})`, fitted on the tuning seeds by the best mean gap read off each "
        f"seed's grid curve: intercepts {fitted}, slope {slope:+.1f} (mean gap {tuned_gap:+.2f} points on "
        f"the tuning seeds). The library uses: intercepts {library}, slope {recipe.SLOPE:+.1f}.",
        "",
        "### Cost of the finder",
        "",
        *cost_lines(outcomes, seconds, budget.report),
        f"{sum(len(o.grid) for o in outcomes) * len(budget.tune + budget.report)} grid runs, "
        f"{WORKERS} at a time (one torch thread each); this section took {total:.1f} min.",
        "",
    ]
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run")
    parser.add_argument("--raw", type=Path, default=None, help="also write every measurement as JSON here")
    parser.add_argument("--tune", action="store_true", help="only fit the recipe on the tuning seeds")
    parser.add_argument("--cache", type=Path, default=None, help="JSON of accuracies already measured")
    args = parser.parse_args(argv)
    if args.tune:
        print(json.dumps(tune(args.quick)), flush=True)
        return
    with contextlib.suppress(BrokenPipeError):
        print("\n".join(run(args.quick, raw=args.raw, cache=args.cache)), flush=True)


if __name__ == "__main__":
    main()
