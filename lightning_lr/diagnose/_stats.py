"""Small helpers of the rules: argument checks for histories of plain floats, and window statistics."""

from __future__ import annotations

import math
import statistics

_T_LIMIT = 1e6
"""Cap on the trend's |t|: an exactly straight window has no residual, and evidence stays finite."""


def _running_medians(values: list[float], span: int) -> list[float]:
    """Median of each run of ``span`` consecutive values, one per run end from ``span - 1`` on."""
    return [statistics.median(values[end - span : end]) for end in range(span, len(values) + 1)]


def _trend(values: list[float]) -> tuple[float, float, float]:
    """Least-squares line through ``values`` at 0, 1, ...: its slope, its end value and the slope's t."""
    count = len(values)
    steps = range(count)
    slope, intercept = statistics.linear_regression(steps, values)
    residual = sum((value - intercept - slope * index) ** 2 for index, value in zip(steps, values))
    spread = count * (count * count - 1) / 12  # sum of (index - mean index) ** 2
    stderr = math.sqrt(residual / (count - 2) / spread)
    t = slope / stderr if stderr > 0 else (0.0 if slope == 0 else math.copysign(math.inf, slope))
    return slope, intercept + slope * (count - 1), max(-_T_LIMIT, min(_T_LIMIT, t))


def _mean_t(values: list[float]) -> tuple[float, float]:
    """The mean of ``values`` and its t statistic ``mean / (std / sqrt(n))``, capped like the trend's."""
    mean = statistics.fmean(values)
    stderr = statistics.stdev(values, mean) / math.sqrt(len(values))
    t = mean / stderr if stderr > 0 else (0.0 if mean == 0 else math.copysign(math.inf, mean))
    return mean, max(-_T_LIMIT, min(_T_LIMIT, t))


def _spikes(values: list[float], factor: float, lookback: int, *, floor: float, sustain: int = 1) -> int:
    """Steps that start a jump above ``factor`` times (and ``floor`` above) the median of the ``lookback``
    values before them, held for ``sustain`` steps: the median of the ``sustain`` values from there on
    must clear it (with 3, two steps in a row), so one heavy-tailed batch does not count."""
    count = 0
    for index in range(lookback, len(values) - sustain + 1):
        baseline = statistics.median(values[index - lookback : index])
        value = values[index] if sustain == 1 else statistics.median(values[index : index + sustain])
        if baseline > 0 and value > factor * baseline and value - baseline >= floor:
            count += 1
    return count
