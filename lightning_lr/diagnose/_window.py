"""The statistics of a window of step losses that the training rules read (see ``DiagnosisRules``)."""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass
from itertools import pairwise

from lightning_lr.diagnose._stats import _mean_t, _spikes, _trend
from lightning_lr.diagnose.rules import DiagnosisRules

_MAD_TO_STD = 1.4826
"""Median absolute deviation to standard deviation, for normal noise (1 / Phi^-1(3/4))."""


@dataclass(frozen=True)
class _Curve:
    """The statistics of one window of step losses (defined in :class:`DiagnosisRules`)."""

    level: float
    noise: float
    fall: float
    trend_t: float
    total_fall: float
    fall_from_scale: float
    recent_pace: float
    overall_pace: float
    elapsed_steps: float
    loss_spikes: int
    peak_to_start: float
    grad_spikes: int | None
    update_ratio: float | None
    alignment: float | None
    alignment_t: float | None

    def evidence(self) -> dict[str, float]:
        return {name: float(value) for name, value in asdict(self).items() if value is not None}


def _read_curve(
    window: list[float],
    grad_norms: list[float] | None,
    *,
    rules: DiagnosisRules,
    start: float,
    elapsed: float,
    ratios: list[float] | None = None,
    alignments: list[float] | None = None,
    scale: float | None = None,
) -> _Curve | None:
    level = statistics.median(window)
    if level <= 0 or start <= 0:
        return None
    scale = start if scale is None or scale <= 0 else scale
    slope, end, trend_t = _trend(window)
    changes = [after - before for before, after in pairwise(window)]
    centre = statistics.median(changes)
    spread = _MAD_TO_STD * statistics.median(abs(change - centre) for change in changes)
    total_fall = 1.0 - end / start
    grad_spikes = None
    if grad_norms is not None:
        finite = [norm for norm in grad_norms[-rules.window :] if math.isfinite(norm)]
        grad_spikes = _spikes(
            finite, rules.grad_spike_factor, rules.smoothing_steps, floor=0.0, sustain=rules.spike_sustain
        )
    alignment = alignment_t = None
    if alignments is not None and len(alignments) >= 3:  # fewer leave no spread to judge them by
        alignment, alignment_t = _mean_t(alignments)
    return _Curve(
        level=level,
        noise=spread / (math.sqrt(2.0) * level),
        fall=-slope * (len(window) - 1) / level,
        trend_t=trend_t,
        total_fall=total_fall,
        fall_from_scale=1.0 - end / scale,
        recent_pace=-slope / level,
        overall_pace=total_fall / elapsed,
        elapsed_steps=elapsed,
        loss_spikes=_spikes(
            window,
            rules.spike_factor,
            rules.smoothing_steps,
            floor=rules.spike_floor * scale,
            sustain=rules.spike_sustain,
        ),
        peak_to_start=max(window) / scale,
        grad_spikes=grad_spikes,
        update_ratio=statistics.median(ratios) if ratios else None,
        alignment=alignment,
        alignment_t=alignment_t,
    )
