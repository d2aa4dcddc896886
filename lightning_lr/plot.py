"""Matplotlib figures, written straight to PNG (no pyplot state, no display needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from lightning_lr.finder.figure import plot_lr_finder as plot_lr_finder  # the finder draws its own figure
from lightning_lr.preview import LRPlan

if TYPE_CHECKING:
    from lightning_lr.search.result import SearchResult


def plot_lr_plan(
    plan: LRPlan, path: str | Path, *, title: str = "Learning rate", log_scale: bool = False
) -> Path:
    """Draw the LR of each param group against the optimizer step and save it as a PNG.

    Epoch boundaries are marked on a secondary axis when the plan knows the epoch length.

    Returns:
        The path written.
    """
    figure = Figure(figsize=(7.0, 4.0), dpi=110)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    curves: dict[tuple[float, ...], list[str]] = {}
    for name, lrs in zip(plan.names, plan.lrs):
        curves.setdefault(tuple(lrs), []).append(name)  # groups on the same curve share one line
    for curve, names in curves.items():
        axes.plot(range(len(curve)), curve, label=", ".join(names), linewidth=1.6)
    axes.set_xlabel("optimizer step")
    axes.set_ylabel("learning rate")
    if log_scale:
        axes.set_yscale("log")
    axes.set_title(title)
    axes.grid(True, alpha=0.3)
    if len(curves) > 1:
        axes.legend(fontsize="small")
    total = max((len(lrs) for lrs in plan.lrs), default=0)
    if plan.steps_per_epoch and total:
        epochs = _epoch_ticks(total, plan.steps_per_epoch)
        twin = axes.secondary_xaxis("top")
        twin.set_xticks([step for step, _ in epochs], labels=[str(epoch) for _, epoch in epochs])
        twin.set_xlabel("epoch")
    for note in plan.notes:
        axes.annotate(note, xy=(0.01, 0.02), xycoords="axes fraction", fontsize="x-small", wrap=True)
    figure.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out)
    return out


def _epoch_ticks(total: int, steps_per_epoch: float) -> Sequence[tuple[float, int]]:
    epochs = int(total // steps_per_epoch)
    stride = max(1, epochs // 10)
    return [(epoch * steps_per_epoch, epoch) for epoch in range(0, epochs + 1, stride)]


def plot_search(result: SearchResult, path: str | Path, *, title: str = "LR search") -> Path:
    """Two panels: each trial's score against its LR (log scale) by state, and the best so far; a PNG.

    Completed trials are dots, pruned ones crosses at the last value they reported, diverged ones
    triangles along the top edge, the best a star.

    Returns:
        The path written.
    """
    figure = Figure(figsize=(10.0, 4.2), dpi=110)
    FigureCanvasAgg(figure)
    by_lr, history = figure.subplots(1, 2)
    scored = [row for row in result.trials if row.value is not None and row.lr is not None]
    values = [float(row.value) for row in scored if row.value is not None]
    top = max(values) if values else 1.0
    styles = {
        "COMPLETE": {"marker": "o", "color": "C0", "label": "complete"},
        "PRUNED": {"marker": "x", "color": "C1", "label": "pruned"},
    }
    for state, style in styles.items():
        rows = [row for row in scored if row.state == state and not row.diverged]
        if rows:
            by_lr.scatter([row.lr for row in rows], [row.value for row in rows], **style)  # type: ignore[arg-type]
    diverged = [row.lr for row in result.trials if row.diverged and row.lr is not None]
    if diverged:
        by_lr.scatter(diverged, [top] * len(diverged), marker="^", color="C3", label="diverged")
    if result.best_lr is not None and result.best_value is not None:
        by_lr.scatter(
            [result.best_lr],
            [result.best_value],
            marker="*",
            s=220,
            color="gold",
            edgecolors="black",
            zorder=3,
            label=f"best: lr={result.best_lr:.3g}",
        )
    by_lr.set_xscale("log")
    by_lr.set_xlabel("learning rate")
    by_lr.set_ylabel(result.monitor)
    by_lr.set_title(title)
    by_lr.grid(True, which="both", alpha=0.25)
    if by_lr.get_legend_handles_labels()[0]:
        by_lr.legend(fontsize="small")
    complete = [row for row in result.trials if row.state == "COMPLETE" and row.value is not None]
    if complete:
        pick = min if result.mode == "min" else max
        numbers = [row.number for row in complete]
        scores = [float(row.value) for row in complete if row.value is not None]
        best_so_far = [pick(scores[: index + 1]) for index in range(len(scores))]
        history.scatter(numbers, scores, color="C0", s=18, label=f"{result.monitor} of a trial")
        history.step(numbers, best_so_far, where="post", color="C2", linewidth=1.8, label="best so far")
        history.legend(fontsize="small")
    history.xaxis.set_major_locator(MaxNLocator(integer=True))
    history.set_xlabel("trial")
    history.set_ylabel(result.monitor)
    history.set_title(
        "optimisation history" if complete else f"optimisation history: {result.reason}",
        fontsize="medium" if complete else "small",
        wrap=True,
    )
    history.grid(True, alpha=0.3)
    if values and min(values) > 0 and max(values) / min(values) > 100:
        by_lr.set_yscale("log")
        history.set_yscale("log")
    figure.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out)
    return out
