"""The range test's figure: every sweep's loss against the LR, their mean, and each rule's pick."""

from __future__ import annotations

import math
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from lightning_lr.finder.curve import smooth
from lightning_lr.finder.result import LRFinderResult
from lightning_lr.finder.rules import RULES


def plot_lr_finder(result: LRFinderResult, path: str | Path, *, title: str = "LR range test") -> Path:
    """Loss against LR (log scale), each sweep and the smoothed mean, every rule's pick marked; a PNG.

    The default rule's picks of the single sweeps are shaded (from the lowest to the highest), so the
    figure shows how far one sweep alone could have landed from the median.

    Returns:
        The path written.
    """
    figure = Figure(figsize=(7.0, 4.2), dpi=110)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    beta = float(result.settings.get("beta", 0.98))
    for number, losses in enumerate(result.sweeps):
        shown = smooth(losses, beta)
        axes.plot(
            result.lrs[: len(shown)],
            shown,
            color="0.7",
            linewidth=0.8,
            label="each sweep, smoothed" if number == 0 else None,
        )
    smoothed = result.smoothed[: len(result.lrs)]
    axes.plot(result.lrs[: len(smoothed)], smoothed, color="C0", linewidth=1.8, label="mean loss, smoothed")
    picks = [lr for lr in result.picks.get(result.rule, []) if lr is not None]
    if len(picks) > 1:
        axes.axvspan(min(picks), max(picks), color="C1", alpha=0.12, label=f"{result.rule} of each sweep")
    for name, suggestion in result.suggestions.items():
        if suggestion.lr is None or suggestion.index is None or suggestion.index >= len(smoothed):
            continue
        axes.axvline(suggestion.lr, color="0.6", linewidth=0.6, linestyle=":")
        spread = result.spread if name == result.rule else None
        label = f"{name}: {suggestion.lr:.2g}" + (" (default" if name == result.rule else "")
        if name == result.rule:
            label += f", x/÷ {spread:.2f})" if spread is not None else ")"
        axes.plot(
            [suggestion.lr],
            [smoothed[suggestion.index]],
            marker=RULES[name].marker if name in RULES else "o",
            markersize=9,
            linestyle="none",
            label=label,
        )
    axes.set_xscale("log")
    axes.set_xlabel("learning rate")
    axes.set_ylabel("training loss")
    finite = [value for value in smoothed if math.isfinite(value)]
    if finite:  # from the best loss to a little above the starting one: the blow-up is cut off
        low, start = min(finite), finite[0]
        span = max(start - low, 1e-12)
        axes.set_ylim(low - 0.1 * span, start + 0.4 * span)
    settings = result.settings
    if settings:
        axes.annotate(
            f"{settings.get('repeats')} sweeps x {settings.get('num_steps')} steps; LR for "
            f"{settings.get('schedule')}, {settings.get('total_steps')} steps",
            xy=(0.01, 0.02),
            xycoords="axes fraction",
            fontsize="x-small",
        )
    axes.set_title(title)
    axes.grid(True, which="both", alpha=0.25)
    axes.legend(fontsize="small")
    figure.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out)
    return out
