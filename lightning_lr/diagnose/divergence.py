"""The divergence guard's rule: is this step's loss a blow-up, judged against its running level."""

from __future__ import annotations

import math

import torch


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


def divergent_on_device(
    loss: torch.Tensor, level: torch.Tensor, healthy: torch.Tensor, spike_factor: float, warmup_steps: int
) -> torch.Tensor:
    """:func:`is_divergent` on tensors, without a host read: a 0-d bool tensor.

    ``level`` is NaN while there is none; spikes are judged once ``healthy >= warmup_steps``.

    Example:
        >>> nan = torch.tensor(float("nan"), dtype=torch.float64)
        >>> bool(divergent_on_device(torch.tensor(50.0), nan, torch.tensor(9), 10.0, 0))
        False
        >>> bool(divergent_on_device(torch.tensor(11.0), torch.tensor(1.0), torch.tensor(3), 10.0, 3))
        True
    """
    judged = (healthy >= warmup_steps) & (level > 0)  # NaN > 0 is False: no level yet
    return ~torch.isfinite(loss) | (judged & (loss > spike_factor * level))


def update_level_on_device(
    level: torch.Tensor, loss: torch.Tensor, decay: float, divergent: torch.Tensor
) -> torch.Tensor:
    """:func:`update_level` on tensors: the level after ``loss``, kept as it was on a ``divergent`` step.

    Example:
        >>> nan, two, one = torch.tensor([float("nan"), 2.0, 1.0], dtype=torch.float64)
        >>> level = update_level_on_device(nan, two, 0.9, torch.tensor(False))
        >>> float(update_level_on_device(level, one, 0.9, torch.tensor(False)))
        1.9
    """
    moved = torch.where(torch.isnan(level), loss, decay * level + (1.0 - decay) * loss)
    return torch.where(divergent, level, moved)
