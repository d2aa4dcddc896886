"""Where each rule points on a usable, smoothed range-test curve: the maths under the rules.

:mod:`lightning_lr.finder.rules` validates and smooths the curve, cuts off its blow-up and checks
that it falls; the functions here then read the LR off what is left. Pure functions of floats.
"""

from __future__ import annotations

import math

from lightning_lr.finder.curve import Suggestion, _descent_lengths, _slopes


def _steepest(lrs: list[float], smoothed: list[float], skip_start: int | None, skip_end: int) -> Suggestion:
    count = len(smoothed)
    low = smoothed.index(min(smoothed))
    first = count // 10 if skip_start is None else skip_start
    last = min(low, count - 1 - skip_end)
    if first > last:
        return Suggestion(
            "steepest",
            None,
            None,
            f"skipping the first {first} and the last {skip_end} of {count} points leaves no point up to the "
            f"smoothed minimum at lr {lrs[low]:.3g}; skip fewer points",
        )
    slopes = _slopes([math.log10(lr) for lr in lrs], smoothed)
    index = min(range(first, last + 1), key=slopes.__getitem__)
    if slopes[index] >= 0:
        return Suggestion(
            "steepest",
            None,
            None,
            f"the smoothed loss never falls between lr {lrs[first]:.3g} and lr {lrs[last]:.3g} "
            f"(the first {first} points are skipped); skip fewer points",
        )
    return Suggestion(
        "steepest",
        lrs[index],
        index,
        f"the smoothed loss falls fastest at lr {lrs[index]:.3g}, by {-slopes[index]:.3g} per decade of LR, "
        f"on its way to its minimum at lr {lrs[low]:.3g}",
    )


def _valley(lrs: list[float], smoothed: list[float]) -> Suggestion:
    lengths = _descent_lengths(smoothed)
    length = max(lengths)
    end = lengths.index(length)
    index = max(0, end - length + length // 3 + length // 6)
    return Suggestion(
        "valley",
        lrs[index],
        index,
        f"the longest descent of the smoothed loss has {length} points and ends at lr {lrs[end]:.3g}; "
        f"lr {lrs[index]:.3g} lies about halfway along it (fastai's valley)",
    )


def _minimum(lrs: list[float], smoothed: list[float]) -> Suggestion:
    low = smoothed.index(min(smoothed))
    lr = lrs[low] / 10
    if lr < lrs[0]:
        return Suggestion(
            "minimum",
            None,
            None,
            f"the smoothed loss is lowest ({smoothed[low]:.4g}) at lr {lrs[low]:.3g}, less than 10x the "
            f"first LR {lrs[0]:.3g}, so a tenth of it was never swept; start the sweep at a lower `min_lr`",
        )
    return Suggestion(
        "minimum",
        lr,
        low,
        f"the smoothed loss is lowest ({smoothed[low]:.4g}) at lr {lrs[low]:.3g}; "
        f"a tenth of that is {lr:.3g}",
    )


def _peak(lrs: list[float], smoothed: list[float], divisor: float) -> Suggestion:
    low = smoothed.index(min(smoothed))
    above = [index for index in range(low + 1, len(smoothed)) if smoothed[index] > smoothed[0]]
    cap = lrs[above[0] - 1] if above else lrs[-1]
    lr = min(lrs[low] / divisor, cap)
    if lr < lrs[0]:
        return Suggestion(
            "peak",
            None,
            None,
            f"the smoothed loss is lowest ({smoothed[low]:.4g}) at lr {lrs[low]:.3g}, less than {divisor:g}x "
            f"the first LR {lrs[0]:.3g}, so 1/{divisor:g} of it was never swept; start the sweep at a lower "
            "`min_lr`",
        )
    capped = f", capped at lr {cap:.3g} where the loss rises back above its start" if lr == cap else ""
    return Suggestion(
        "peak",
        lr,
        low,
        f"the smoothed loss is lowest ({smoothed[low]:.4g}) at lr {lrs[low]:.3g}; 1/{divisor:g} of that, "
        f"{lr:.3g}{capped}, is the peak LR for a warmup + decay or one-cycle schedule",
    )


def _slide(
    lrs: list[float], smoothed: list[float], lr_diff: int, thresh: float, adjust_value: float
) -> Suggestion:
    count = len(smoothed)
    if count <= lr_diff:
        return Suggestion(
            "slide",
            None,
            None,
            f"the slide rule compares slopes {lr_diff} points apart, and only {count} points are usable; "
            "sweep more steps or lower `lr_diff`",
        )
    slopes = _slopes([float(k) for k in range(count)], smoothed)  # per point, as numpy.gradient(losses)
    right, left = count - 1, count - 1 - lr_diff
    index = left
    while left >= 0 and abs(slopes[right] - slopes[left]) > thresh:
        index = left
        right, left = right - 1, left - 1
    lr = lrs[index] * adjust_value
    return Suggestion(
        "slide",
        lr,
        index,
        f"sliding a {lr_diff}-point window down from the end of the curve, the smoothed loss's slope changes "
        f"by more than {thresh:g} across it down to lr {lrs[index]:.3g} (fastai's slide)",
    )
