"""The swept curve of an LR range test: the suggestion record, smoothing, the usable range, checks.

Pure functions of plain floats, shared by the rules (:mod:`lightning_lr.finder.rules`) and the sweep.
"""

from __future__ import annotations

import bisect
import itertools
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lightning_lr._validate import check_floats, check_int, check_positive, check_range, fail

MIN_STEPS = 10
"""Points a range test must hand in: fewer cannot show a descent and a blow-up."""

MIN_POINTS = 5
"""Usable points (before the blow-up) a rule needs: a central difference needs 3, a valley more."""

MIN_FALL = 0.05
"""The loss must fall this fraction of ``|start|`` below its start for any rule to answer.

Batch noise on the loss of a fresh model is a few percent; a curve whose lowest point is less than
5% below its start is flat as far as a range test can tell, and any LR read off it is noise. The
fall is measured on a lightly smoothed curve (:data:`FALL_BETA`) from the median of the first
:data:`START_POINTS` losses: the rules' heavy smoothing (``beta=0.98`` averages ~50 steps) lags
so far behind a 100-step sweep that its minimum understates a real fall several times over.
"""

FALL_BETA = 0.8
"""Smoothing of the curve whose fall :data:`MIN_FALL` judges (about 5 steps)."""

START_POINTS = 3
"""Leading losses whose median is the curve's start for :data:`MIN_FALL`."""

NOISE_SIGMAS = 4.0
"""The fall must also exceed this many standard deviations of the lightly smoothed curve's noise.

The minimum of ~100 noisy points lies ~2.5 standard deviations below their mean; four keep batch
noise (different batches have different losses even at a zero LR) from passing for a descent. The
noise ``sigma`` of one loss is read off the successive differences (robustly: 1.4826 x their median
median absolute deviation, over sqrt 2); the smoothing divides it by ``sqrt((1 + beta) / (1 - beta))``.
"""


@dataclass(frozen=True)
class Suggestion:
    """What one rule suggests, and why.

    Attributes:
        rule: the rule's name, a key of :data:`RULES`.
        lr: the suggested LR; ``None`` when the curve supports no suggestion (``reason`` says why).
        index: index into the sweep's ``lrs`` of the point the rule read (for ``minimum`` and
            ``peak`` the smoothed minimum, which ``lr`` is a fraction of); ``None`` with ``lr``.
        reason: one sentence, with the numbers: why this LR, or why none.

    Example:
        >>> Suggestion("minimum", 1e-3, 42, "the smoothed loss is lowest at lr 0.01").lr
        0.001
    """

    rule: str
    lr: float | None
    index: int | None
    reason: str

    def __post_init__(self) -> None:
        if not isinstance(self.rule, str) or not isinstance(self.reason, str):
            raise TypeError(f"`rule` and `reason` must be strings, got {self.rule!r} and {self.reason!r}.")
        if (self.lr is None) != (self.index is None):
            raise fail("index", self.index, f"must be None exactly when `lr` is None (`lr`={self.lr!r})")
        if self.lr is not None:
            object.__setattr__(self, "lr", check_positive("lr", self.lr))
        if self.index is not None:
            check_int("index", self.index)


def smooth(losses: Sequence[float], beta: float = 0.98) -> list[float]:
    """The bias-corrected exponential moving average of the losses (as fastai and Lightning smooth).

    ``avg_k = beta * avg_{k-1} + (1 - beta) * loss_k`` from ``avg_{-1} = 0``, and
    ``smoothed_k = avg_k / (1 - beta ** (k + 1))``, which removes the pull towards the zero start:
    ``smoothed_0 = loss_0`` and every smoothed value is a weighted mean of the losses so far.

    Args:
        losses: the loss of each sweep step, in order (any length, NaN and inf allowed).
        beta: weight of the past, in [0, 1); 0 returns the losses unchanged.

    Returns:
        The smoothed losses up to, not including, the first non-finite loss: a NaN or inf ends the
        usable curve, since every average after it would be non-finite too.

    Raises:
        ValueError: ``beta`` outside [0, 1).
        TypeError: ``losses`` is not a sequence of numbers.

    Example:
        >>> [round(value, 4) for value in smooth([1.0, 0.0, 0.0], beta=0.5)]
        [1.0, 0.3333, 0.1429]
        >>> smooth([2.0, 1.0, float("nan"), 0.5], beta=0.0)
        [2.0, 1.0]
    """
    check_range("beta", beta, 0.0, 1.0, high_open=True)
    average, smoothed = 0.0, []
    for step, loss in enumerate(check_floats("losses", losses)):
        if not math.isfinite(loss):
            break
        average = beta * average + (1.0 - beta) * loss
        smoothed.append(average / (1.0 - beta ** (step + 1)))
    return smoothed


def usable_range(
    lrs: Sequence[float], losses: Sequence[float], *, stop_factor: float = 4.0, beta: float = 0.98
) -> int:
    """How many leading points of the sweep the rules may read: the curve before it blows up.

    The curve ends before the first point whose smoothed loss exceeds ``stop_factor`` times the best
    (lowest) smoothed loss up to it, the stop rule of Lightning's and fastai's range tests, or before
    the first non-finite loss, whichever comes first. The stop rule reads losses as positive, as
    theirs do: while the best smoothed loss is <= 0 it cannot fire.

    Args:
        lrs: the LR of each sweep step, positive and strictly increasing (at least 10 points).
        losses: the loss of each step (NaN and inf allowed: they end the curve).
        stop_factor: blow-up threshold, a multiple of the best smoothed loss so far (> 1).
        beta: smoothing of the loss (:func:`smooth`).

    Returns:
        The number of usable leading points, from 0 to ``len(lrs)``.

    Raises:
        ValueError: a bad curve or argument (see :func:`suggest_all`).
        TypeError: ``lrs`` or ``losses`` is not a sequence of numbers.

    Example:
        >>> lrs = [10 ** (k - 8) for k in range(10)]
        >>> usable_range(lrs, [3, 2, 1, 1, 2, 5, 9, 20, 40, 80], beta=0.0)
        5
        >>> usable_range(lrs, [3, 2, 1, 1, 2, 3, float("nan"), 1, 1, 1], beta=0.0)
        6
    """
    _check_options(stop_factor=stop_factor, beta=beta)
    _, ys = _check_curve(lrs, losses)
    return usable_count(smooth(ys, beta), stop_factor)


def _unusable(rule: str, lrs: list[float], losses: list[float], smoothed: list[float]) -> Suggestion | None:
    """A ``None`` suggestion when the (usable) curve is too short or does not fall; else ``None``."""
    count = len(smoothed)
    if count < MIN_POINTS:
        return Suggestion(
            rule,
            None,
            None,
            f"only {count} points of the sweep are usable (at least {MIN_POINTS} are needed) before its loss "
            f"turned non-finite at lr {lrs[count]:.3g}; start the sweep at a lower `min_lr`",
        )
    light = smooth(losses[:count], FALL_BETA)
    start, lowest = statistics.median(losses[:START_POINTS]), min(light)
    if start - lowest <= max(MIN_FALL * abs(start), NOISE_SIGMAS * _light_noise(losses[:count])):
        low = light.index(lowest)
        return Suggestion(
            rule,
            None,
            None,
            f"the loss never fell below its start by {MIN_FALL:.0%}: {start:.4g} at lr "
            f"{lrs[0]:.3g}, lowest {lowest:.4g} at lr {lrs[low]:.3g}; start the sweep at a lower `min_lr`, "
            "or check that the model trains at all",
        )
    return None


def _light_noise(losses: list[float]) -> float:
    """Standard deviation of the batch noise left on the curve after :data:`FALL_BETA` smoothing."""
    steps = [after - before for before, after in itertools.pairwise(losses)]
    center = statistics.median(steps)
    sigma = 1.4826 * statistics.median(abs(step - center) for step in steps) / math.sqrt(2.0)
    return sigma * math.sqrt((1.0 - FALL_BETA) / (1.0 + FALL_BETA))


def usable_count(smoothed: list[float], stop_factor: float) -> int:
    """Leading smoothed points before one exceeds ``stop_factor`` x the best so far (while best > 0)."""
    best = math.inf
    for index, value in enumerate(smoothed):
        best = min(best, value)
        if best > 0 and value > stop_factor * best:
            return index
    return len(smoothed)


def _slopes(xs: list[float], ys: list[float]) -> list[float]:
    """``numpy.gradient(ys, xs)``: second-order central differences inside, one-sided at the ends."""
    slopes = [(ys[1] - ys[0]) / (xs[1] - xs[0])]
    for k in range(1, len(ys) - 1):
        left, right = xs[k] - xs[k - 1], xs[k + 1] - xs[k]
        slopes.append(
            (left**2 * ys[k + 1] - right**2 * ys[k - 1] + (right**2 - left**2) * ys[k])
            / (left * right * (left + right))
        )
    slopes.append((ys[-1] - ys[-2]) / (xs[-1] - xs[-2]))
    return slopes


def _descent_lengths(values: list[float]) -> list[int]:
    """Length of the longest strictly decreasing subsequence ending at each value (patience sorting).

    ``tails[k]`` holds the largest last value of a decreasing subsequence of length ``k + 1`` seen so
    far, negated so that the list is increasing and :func:`bisect.bisect_left` finds where a value fits.
    """
    tails: list[float] = []
    lengths = []
    for value in values:
        place = bisect.bisect_left(tails, -value)
        if place == len(tails):
            tails.append(-value)
        else:
            tails[place] = -value
        lengths.append(place + 1)
    return lengths


def _check_options(*, stop_factor: float | None = None, beta: float) -> None:
    if stop_factor is not None:
        check_range(
            "stop_factor",
            stop_factor,
            1.0,
            math.inf,
            low_open=True,
            high_open=True,
            fix="4 is the usual blow-up threshold.",
        )
    check_range("beta", beta, 0.0, 1.0, high_open=True, fix="0.98 is the usual smoothing; 0 switches it off.")


def read_curve(lrs: Any, losses: Any, beta: float) -> tuple[list[float], list[float], list[float]]:
    """Check a swept curve and ``beta``; return the LRs, the losses and the smoothed losses."""
    _check_options(beta=beta)
    xs, ys = _check_curve(lrs, losses)
    return xs, ys, smooth(ys, beta)


def _check_curve(lrs: Any, losses: Any) -> tuple[list[float], list[float]]:
    xs, ys = check_floats("lrs", lrs), check_floats("losses", losses)
    if len(xs) < MIN_STEPS:
        raise fail(
            "lrs",
            len(xs),
            f"must hold at least {MIN_STEPS} points",
            f"A range test needs >= {MIN_STEPS} steps; 100 is usual.",
        )
    if len(ys) != len(xs):
        raise fail("losses", len(ys), f"must hold as many points as `lrs` ({len(xs)})")
    for index, lr in enumerate(xs):
        if not (math.isfinite(lr) and lr > 0):
            raise fail("lrs", lr, f"must be positive and finite everywhere, but lrs[{index}] is not")
        if index and lr <= xs[index - 1]:
            raise fail(
                "lrs",
                lr,
                f"must be strictly increasing, but lrs[{index}] is not above "
                f"lrs[{index - 1}]={xs[index - 1]!r}",
                "Pass the points in sweep order, each LR once.",
            )
    return xs, ys
