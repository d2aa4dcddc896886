"""Suggestion rules of the LR range test (Smith 2017, arXiv:1506.01186): from a swept curve to an LR.

A range test raises the LR exponentially from ``min_lr`` to ``max_lr`` over N optimizer steps and
records the training loss of each step. The rules here read that curve after smoothing it
(:func:`smooth`) and are pure functions of plain floats; :func:`suggest_all` validates the curve,
cuts off the blow-up (:func:`usable_range`) and applies every rule of :data:`RULES`, the one
registry of rules.

Every rule answers with a :class:`Suggestion`, whose ``lr`` is ``None`` (and ``reason`` says why)
when the curve does not support one: fewer than :data:`MIN_POINTS` usable points, or a smoothed
loss that never falls by :data:`MIN_FALL` below its start (a flat or rising curve).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from lightning_lr._validate import check_int, check_non_negative, check_positive
from lightning_lr.finder._picks import _minimum, _peak, _slide, _steepest, _valley
from lightning_lr.finder.curve import (
    MIN_POINTS,
    Suggestion,
    _check_options,
    _unusable,
    read_curve,
    usable_count,
)


def steepest(
    lrs: Sequence[float],
    losses: Sequence[float],
    *,
    beta: float = 0.98,
    skip_start: int | None = None,
    skip_end: int = 0,
) -> Suggestion:
    """The LR where the smoothed loss falls fastest against ``log10(lr)`` on its way to the minimum.

    With ``u = log10(lr)``, the slope of the smoothed loss ``s`` at each point is the central
    difference of :func:`numpy.gradient` on the uneven grid (``h_l = u_k - u_{k-1}``,
    ``h_r = u_{k+1} - u_k``)::

        s'_k = (h_l**2 * s_{k+1} - h_r**2 * s_{k-1} + (h_r**2 - h_l**2) * s_k) / (h_l * h_r * (h_l + h_r))

    (one-sided at the two ends), and the rule suggests the LR of the most negative slope among the
    points from ``skip_start`` to the smoothed minimum, and at least ``skip_end`` points before the end.
    Past the minimum the loss is blowing up, where a dip in the noise is no advice.

    The slope is taken against the *log* of the LR because the sweep is even in ``log(lr)``: the
    curve's shape on the usual log-scale plot is what the rule reads. Lightning's ``lr_find``
    differentiates against the LR itself (``torch.gradient(losses, spacing=[lrs])``), which divides
    the log slope by ``lr * ln(10)``: the tiny slopes at the tiny LRs of the sweep's flat start win,
    and it suggests LRs orders of magnitude too low (Lightning issue #21141).

    Args:
        lrs: the LR of each sweep step, positive and strictly increasing (at least 10 points).
        losses: the loss of each step; the curve ends at its first non-finite loss.
        beta: smoothing of the loss (:func:`smooth`).
        skip_start: leading points never suggested, where the smoothed loss averages only a few
            noisy steps; default a tenth of the usable points (fastai's ``num_it // 10``).
        skip_end: trailing points never suggested.

    Returns:
        The suggestion, with ``lr=None`` on a curve that does not fall (or falls only where skipped).

    Raises:
        ValueError: a bad curve or argument (see :func:`suggest_all`).

    Example:
        >>> lrs = [10 ** (k / 2 - 6) for k in range(12)]
        >>> losses = [2.0, 2.0, 1.98, 1.9, 1.6, 1.1, 0.8, 0.7, 0.75, 1.2, 3.0, 9.0]
        >>> found = steepest(lrs, losses, beta=0.0)
        >>> found.index, f"{found.lr:.3g}"
        (5, '0.000316')
    """
    if skip_start is not None:
        check_int("skip_start", skip_start)
    check_int("skip_end", skip_end)
    xs, ys, smoothed = read_curve(lrs, losses, beta)
    return _unusable("steepest", xs, ys, smoothed) or _steepest(xs, smoothed, skip_start, skip_end)


def valley(lrs: Sequence[float], losses: Sequence[float], *, beta: float = 0.98) -> Suggestion:
    """fastai's ``valley``: the LR about halfway along the longest descent of the smoothed loss.

    The longest descent is the longest strictly decreasing *subsequence* of the smoothed losses (not
    necessarily contiguous, so a blip of noise does not break it). With ``end`` the first index at
    which such a subsequence of the greatest length ``L`` ends, exactly as fastai computes it::

        start = end - L
        index = max(0, start + floor(L / 3) + floor(L / 6))

    ``floor(L / 3) + floor(L / 6)`` is about ``L / 2``: although fastai's docs speak of "roughly 2/3
    through the longest valley", its arithmetic puts the point about halfway along. ``start`` is one
    before the first point a contiguous run could begin at (fastai's offset, kept so the indices
    agree); the ``max(0, ...)`` only guards a descent of two points from fastai's ``lrs[-1]``.
    fastai applies it to the smoothed losses minus the first tenth and the last five points; here it
    reads the whole (usable) curve.

    Args:
        lrs: the LR of each sweep step, positive and strictly increasing (at least 10 points).
        losses: the loss of each step; the curve ends at its first non-finite loss.
        beta: smoothing of the loss (:func:`smooth`).

    Returns:
        The suggestion, with ``lr=None`` on a curve that does not fall.

    Raises:
        ValueError: a bad curve or argument (see :func:`suggest_all`).

    Example:
        >>> lrs = [10 ** (k / 2 - 6) for k in range(12)]
        >>> losses = [2.0, 2.0, 1.98, 1.9, 1.6, 1.1, 0.8, 0.7, 0.75, 1.2, 3.0, 9.0]
        >>> found = valley(lrs, losses, beta=0.0)
        >>> found.index, f"{found.lr:.3g}"
        (3, '3.16e-05')
    """
    xs, ys, smoothed = read_curve(lrs, losses, beta)
    return _unusable("valley", xs, ys, smoothed) or _valley(xs, smoothed)


def minimum(lrs: Sequence[float], losses: Sequence[float], *, beta: float = 0.98) -> Suggestion:
    """A tenth of the LR at which the smoothed loss is lowest (fastai's ``minimum``).

    ``lr = lrs[m] / 10`` with ``m`` the first index of the smallest smoothed loss: at the minimum the
    LR is already about to blow the loss up, and a tenth of it trains safely (Smith 2017, fastai).

    Args:
        lrs: the LR of each sweep step, positive and strictly increasing (at least 10 points).
        losses: the loss of each step; the curve ends at its first non-finite loss.
        beta: smoothing of the loss (:func:`smooth`).

    Returns:
        The suggestion (``index`` is ``m``), with ``lr=None`` on a curve that does not fall or whose
        minimum lies within a factor 10 of its first LR (the suggestion would not have been swept).

    Raises:
        ValueError: a bad curve or argument (see :func:`suggest_all`).

    Example:
        >>> lrs = [10 ** (k / 2 - 6) for k in range(12)]
        >>> losses = [2.0, 2.0, 1.98, 1.9, 1.6, 1.1, 0.8, 0.7, 0.75, 1.2, 3.0, 9.0]
        >>> found = minimum(lrs, losses, beta=0.0)
        >>> found.index, f"{found.lr:.3g}"
        (7, '0.000316')
    """
    xs, ys, smoothed = read_curve(lrs, losses, beta)
    return _unusable("minimum", xs, ys, smoothed) or _minimum(xs, smoothed)


def peak(
    lrs: Sequence[float], losses: Sequence[float], *, beta: float = 0.98, divisor: float = 3.0
) -> Suggestion:
    """The peak LR of a warmup + cosine or one-cycle schedule: the LR at the smoothed minimum / 3.

    A schedule that warms up and then decays spends only a short time at its peak, and tolerates a
    higher peak than a constant LR would (Smith's cyclical and 1cycle schedules take their largest LR
    near the top of the range test's good region, not a tenth below it). With ``m`` the first index of
    the smallest smoothed loss and ``j`` the first index after it where the smoothed loss rises back
    above its start ``smoothed_0``::

        lr = min(lrs[m] / divisor, lrs[j - 1])       (lrs[-1] in place of lrs[j - 1] if it never does)

    The cap only bites for ``divisor < 1``: the peak never lies past the last LR at which training
    still did better than not training at all.

    Called alone, the divisor is 3 (fitted on 20-epoch warmup + cosine runs of a single 100-step
    sweep). The finder passes the divisor that suits what the LR is for instead, the kind of
    schedule and the run's length (:func:`~lightning_lr.finder.recipe.divisor`), fitted by
    ``benchmarks/finder_suite.py`` on its tuning seeds; the minimum's LR is read rather than the
    valley's because it does not move with where the sweep starts.

    Args:
        lrs: the LR of each sweep step, positive and strictly increasing (at least 10 points).
        losses: the loss of each step; the curve ends at its first non-finite loss.
        beta: smoothing of the loss (:func:`smooth`).
        divisor: the LR at the smoothed minimum is divided by this (> 0); see
            :func:`~lightning_lr.finder.recipe.divisor`.

    Returns:
        The suggestion (``index`` is ``m``), with ``lr=None`` on a curve that does not fall or whose
        suggestion would lie below its first LR.

    Raises:
        ValueError: a bad curve or argument (see :func:`suggest_all`).

    Example:
        >>> lrs = [10 ** (k / 2 - 6) for k in range(12)]
        >>> losses = [2.0, 2.0, 1.98, 1.9, 1.6, 1.1, 0.8, 0.7, 0.75, 1.2, 3.0, 9.0]
        >>> found = peak(lrs, losses, beta=0.0)
        >>> found.index, f"{found.lr:.3g}"
        (7, '0.00105')
    """
    check_positive("divisor", divisor, "3 suits warmup + cosine; 10 gives the `minimum` rule.")
    xs, ys, smoothed = read_curve(lrs, losses, beta)
    return _unusable("peak", xs, ys, smoothed) or _peak(xs, smoothed, float(divisor))


def slide(
    lrs: Sequence[float],
    losses: Sequence[float],
    *,
    beta: float = 0.98,
    lr_diff: int = 15,
    thresh: float = 0.005,
    adjust_value: float = 1.0,
) -> Suggestion:
    """fastai's ``slide`` (A. Chang's interval slide rule): where the descent settles, read from the end.

    With ``g = numpy.gradient(smoothed)`` (the slope per point, not per decade of LR) and ``n`` points,
    two indices ``lr_diff`` apart slide down from the end, ``r = n - 1`` and ``l = r - lr_diff``:
    while ``l >= 0`` and ``|g[r] - g[l]| > thresh``, the suggestion becomes ``lrs[l]`` and both move one
    point left. The answer is ``lrs[l] * adjust_value`` for the last ``l`` that moved (``lrs[n - 1 -
    lr_diff]`` if none did): exactly fastai's arithmetic on the same curve. ``thresh`` is in loss units
    per point, so the rule depends on the loss's scale and the sweep's length, as fastai's does.
    fastai applies it to the smoothed losses minus the first tenth and the last five points; here it
    reads the whole (usable) curve, as :func:`valley` does.

    Args:
        lrs: the LR of each sweep step, positive and strictly increasing (at least 10 points).
        losses: the loss of each step; the curve ends at its first non-finite loss.
        beta: smoothing of the loss (:func:`smooth`).
        lr_diff: points between the two compared slopes (>= 1).
        thresh: the largest change of slope that counts as settled (>= 0).
        adjust_value: the suggestion is multiplied by this (> 0).

    Returns:
        The suggestion, with ``lr=None`` on a curve that does not fall or has no more than ``lr_diff``
        points.

    Raises:
        ValueError: a bad curve or argument (see :func:`suggest_all`).

    Example:
        >>> lrs = [10 ** (k / 4 - 6) for k in range(24)]
        >>> losses = [2.0] * 4 + [2.0 - 0.15 * k for k in range(10)] + [0.6 + 0.1 * k**2 for k in range(10)]
        >>> found = slide(lrs, losses, beta=0.0, lr_diff=5, thresh=0.05)
        >>> found.index, f"{found.lr:.3g}"
        (9, '0.000178')
    """
    check_int("lr_diff", lr_diff, 1)
    check_non_negative("thresh", thresh)
    check_positive("adjust_value", adjust_value)
    xs, ys, smoothed = read_curve(lrs, losses, beta)
    return _unusable("slide", xs, ys, smoothed) or _slide(
        xs, smoothed, lr_diff, float(thresh), float(adjust_value)
    )


@dataclass(frozen=True)
class Rule:
    """One suggestion rule, as the registry holds it.

    Attributes:
        read: reads the LR off a usable, smoothed curve: ``read(lrs, smoothed, divisor)``, where
            ``divisor`` is what the ``peak`` rule divides by (:func:`~lightning_lr.finder.recipe.divisor`).
        marker: the matplotlib marker of its suggestion in the finder's plot.
        summary: one line for help texts and reports.
    """

    read: Callable[[list[float], list[float], float], Suggestion]
    marker: str
    summary: str

    def __call__(
        self, lrs: Sequence[float], losses: Sequence[float], *, beta: float = 0.98, divisor: float = 3.0
    ) -> Suggestion:
        """The rule on a whole curve, with its defaults: checked, smoothed, refused when it does not fall."""
        check_positive("divisor", divisor)
        xs, ys, smoothed = read_curve(lrs, losses, beta)
        name = next(name for name, rule in RULES.items() if rule is self)
        return _unusable(name, xs, ys, smoothed) or self.read(xs, smoothed, float(divisor))


def _read_steepest(lrs: list[float], smoothed: list[float], divisor: float) -> Suggestion:
    return _steepest(lrs, smoothed, None, 0)


def _read_valley(lrs: list[float], smoothed: list[float], divisor: float) -> Suggestion:
    return _valley(lrs, smoothed)


def _read_minimum(lrs: list[float], smoothed: list[float], divisor: float) -> Suggestion:
    return _minimum(lrs, smoothed)


def _read_slide(lrs: list[float], smoothed: list[float], divisor: float) -> Suggestion:
    return _slide(lrs, smoothed, 15, 0.005, 1.0)


RULES: dict[str, Rule] = {
    "steepest": Rule(_read_steepest, "v", "where the smoothed loss falls fastest against log(lr)"),
    "valley": Rule(_read_valley, "o", "about halfway along the longest descent (fastai)"),
    "minimum": Rule(_read_minimum, "s", "a tenth of the LR at the smoothed minimum (fastai)"),
    "peak": Rule(
        _peak, "*", "the LR at the smoothed minimum over a divisor set by the schedule and run length"
    ),
    "slide": Rule(_read_slide, "P", "where the descent settles, read from the end (fastai)"),
}
"""Every rule by name: :func:`suggest_all`, the finder's settings, its
plot and the command line's help all read this. A new rule is one function and one line here."""


def describe_rules() -> str:
    """One line per rule, for help texts: ``name: summary``."""
    return "; ".join(f"{name}: {rule.summary}" for name, rule in RULES.items())


def suggest_all(
    lrs: Sequence[float],
    losses: Sequence[float],
    *,
    stop_factor: float = 4.0,
    beta: float = 0.98,
    divisor: float = 3.0,
) -> dict[str, Suggestion]:
    """Validate a range test's curve, cut off its blow-up and apply every rule of :data:`RULES`.

    The rules read the first :func:`usable_range` points, with their defaults. When fewer than
    :data:`MIN_POINTS` points are usable, or the smoothed loss never falls :data:`MIN_FALL` below its
    start, every suggestion is ``None`` and its ``reason`` says so.

    Args:
        lrs: the LR of each sweep step, positive, finite and strictly increasing (at least 10 points).
        losses: the loss of each step (as many as ``lrs``; NaN and inf allowed: they end the curve).
        stop_factor: the curve ends where the smoothed loss exceeds this multiple of its best (> 1).
        beta: smoothing of the loss (:func:`smooth`), in [0, 1).
        divisor: the ``peak`` rule's divisor of the LR at the smoothed minimum (> 0).

    Returns:
        Each rule's :class:`Suggestion`, by name, in the order of :data:`RULES`.

    Raises:
        ValueError: fewer than 10 points, ``lrs`` and ``losses`` of different lengths, an LR that is
            not positive and finite or not above the one before, ``beta`` outside [0, 1), or
            ``stop_factor`` <= 1.
        TypeError: ``lrs`` or ``losses`` is not a sequence of numbers.

    Example:
        >>> lrs = [10 ** (k / 2 - 6) for k in range(12)]
        >>> losses = [2.0, 2.0, 1.98, 1.9, 1.6, 1.1, 0.8, 0.7, 0.75, 1.2, 3.0, 9.0]
        >>> found = suggest_all(lrs, losses, beta=0.0)
        >>> {name: f"{found.lr:.2g}" for name, found in found.items() if found.lr is not None}
        {'steepest': '0.00032', 'valley': '3.2e-05', 'minimum': '0.00032', 'peak': '0.0011'}
        >>> found["slide"].lr is None  # its 10 usable points are too few for slopes 15 points apart
        True
    """
    _check_options(stop_factor=stop_factor, beta=beta)
    check_positive("divisor", divisor)
    xs, ys, smoothed = read_curve(lrs, losses, beta)
    count = usable_count(smoothed, stop_factor)
    if count < MIN_POINTS:
        cause = (
            f"its smoothed loss exceeded {stop_factor:g}x its best at lr {xs[count]:.3g}"
            if count < len(smoothed)
            else f"its loss turned non-finite at lr {xs[count]:.3g}"
        )
        reason = (
            f"only {count} points of the sweep are usable (at least {MIN_POINTS} are needed) before {cause}; "
            "start the sweep at a lower `min_lr` or sweep more steps"
        )
        return {name: Suggestion(name, None, None, reason) for name in RULES}
    xs, ys, smoothed = xs[:count], ys[:count], smoothed[:count]
    flat = _unusable("steepest", xs, ys, smoothed)
    if flat is not None:
        return {name: Suggestion(name, None, None, flat.reason) for name in RULES}
    return {name: rule.read(xs, smoothed, float(divisor)) for name, rule in RULES.items()}
