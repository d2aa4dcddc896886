"""The divergence guard's rule: is this step's loss a blow-up, judged against its running level."""

from __future__ import annotations

import math


def is_divergent(loss: float, level: float | None, spike_factor: float) -> bool:
    """A loss that is not finite, or above ``spike_factor`` times the running ``level``.

    Example:
        >>> is_divergent(float("nan"), 1.0, 10.0), is_divergent(11.0, 1.0, 10.0), is_divergent(9.0, 1.0, 10.0)
        (True, True, False)
    """
    if not math.isfinite(loss):
        return True
    return level is not None and level > 0 and loss > spike_factor * level


def update_level(level: float | None, loss: float, decay: float) -> float:
    """The running level after a healthy ``loss``: an exponential moving average.

    Example:
        >>> update_level(None, 2.0, 0.9), update_level(2.0, 1.0, 0.9)
        (2.0, 1.9)
    """
    return loss if level is None else decay * level + (1.0 - decay) * loss
