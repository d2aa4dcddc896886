"""Confirmation by short trials: race a few LRs around the finder's pick, successive-halving style.

Pure planning and reading: which LRs race (:func:`candidates`), how many steps each round gives
each of them within a budget (:func:`rounds`), and who goes on (:func:`survivors`). The trials
themselves run in :mod:`lightning_lr.finder.sweep`, each from the same weights.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from lightning_lr._validate import check_int, check_positive

SPACING = 2.0
"""Neighbouring candidates differ by this factor."""


def candidates(pick: float, count: int) -> list[float]:
    """``count`` LRs spaced by :data:`SPACING` in log LR and centred on ``pick``.

    Example:
        >>> candidates(0.01, 3)
        [0.005, 0.01, 0.02]
    """
    check_positive("pick", pick)
    check_int("confirm", count, 2)
    return [pick * SPACING ** (k - (count - 1) / 2) for k in range(count)]


def rounds(count: int, budget: int) -> list[tuple[int, int]]:
    """``(racers, steps)`` of each round: half the racers go on, each round twice as long as the last.

    The steps of the first round are the largest whole number with ``sum(racers * steps) <= budget``;
    an empty list when the budget does not give every racer of the first round at least 5 steps.

    Example:
        >>> rounds(4, 160)
        [(4, 20), (2, 40)]
    """
    check_int("confirm", count, 2)
    check_int("budget", budget, 0)
    plan, racers, weight = [], count, 0
    while racers > 1:
        plan.append(racers)
        weight += racers * 2 ** (len(plan) - 1)
        racers = math.ceil(racers / 2)
    first = budget // weight
    if first < 5:
        return []
    return [(racers, first * 2**index) for index, racers in enumerate(plan)]


def survivors(lrs: Sequence[float], losses: Sequence[float]) -> list[float]:
    """The better half (rounded up) of the racers by final loss; a non-finite loss never survives
    while a finite one is left. Ties keep the lower LR.

    Example:
        >>> survivors([0.01, 0.02, 0.04], [0.5, 0.4, float("nan")])
        [0.02, 0.01]
    """
    keep = math.ceil(len(lrs) / 2)
    scores = [loss if math.isfinite(loss) else math.inf for loss in losses]
    order = sorted(range(len(lrs)), key=lambda k: (scores[k], lrs[k]))
    return [lrs[k] for k in order[:keep]]
