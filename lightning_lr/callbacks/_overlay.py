"""The overlay: scale the LR for one optimizer step, then give the scheduler its own LR back.

Callbacks that shape the LR on top of *someone else's* scheduler (torch's chainable ones,
ReduceLROnPlateau, or none) multiply each group's LR just before the optimizer update, in
``on_before_optimizer_step``, and the optimizer's step post-hook restores the scheduler's values
right after the update, before Lightning steps the scheduler. The scheduler never sees the
overlay, so chainable schedules are not corrupted and a plateau's reductions are kept.

Several overlays on one optimizer multiply: each names itself and its factor; one post-hook
tells the observers the LRs the step used, then restores.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable
from typing import Any

from torch.optim import Optimizer

Observer = Callable[[Optimizer, list[float]], None]


class _Overlay:
    def __init__(self, optimizer: Optimizer) -> None:
        self.own_lrs: list[float] | None = None
        self.factors: dict[str, float] = {}
        self.observers: dict[str, Observer] = {}
        self.handle = optimizer.register_step_post_hook(self._after_step)

    def scale(self, optimizer: Optimizer, owner: str, factor: float) -> None:
        if self.own_lrs is None:
            self.own_lrs = [group["lr"] for group in optimizer.param_groups]
        self.factors[owner] = factor
        product = math.prod(self.factors.values())
        for group, own in zip(optimizer.param_groups, self.own_lrs):
            group["lr"] = own * product

    def _after_step(self, optimizer: Optimizer, args: Any, kwargs: Any) -> None:
        used = [float(group["lr"]) for group in optimizer.param_groups]
        for observer in list(self.observers.values()):
            observer(optimizer, used)
        self.restore(optimizer)

    def restore(self, optimizer: Optimizer) -> None:
        if self.own_lrs is not None:
            for group, own in zip(optimizer.param_groups, self.own_lrs):
                group["lr"] = own
        self.own_lrs = None
        self.factors.clear()


_OVERLAYS: weakref.WeakKeyDictionary[Optimizer, _Overlay] = weakref.WeakKeyDictionary()


def _overlay(optimizer: Optimizer) -> _Overlay:
    if optimizer not in _OVERLAYS:
        _OVERLAYS[optimizer] = _Overlay(optimizer)
    return _OVERLAYS[optimizer]


def scale_lr(optimizer: Optimizer, owner: str, factor: float) -> None:
    """Multiply the LR of every group by ``factor`` for the coming update only."""
    _overlay(optimizer).scale(optimizer, owner, factor)


def restore_lr(optimizer: Optimizer) -> None:
    """Undo any overlay still applied (an update that was skipped, e.g. by AMP's inf check)."""
    if optimizer in _OVERLAYS:
        _OVERLAYS[optimizer].restore(optimizer)


def own_lrs(optimizer: Optimizer) -> list[float]:
    """The scheduler's own LRs, with any pending overlay taken out."""
    overlay = _OVERLAYS.get(optimizer)
    if overlay is not None and overlay.own_lrs is not None:
        return list(overlay.own_lrs)
    return [float(group["lr"]) for group in optimizer.param_groups]


def observe_steps(optimizer: Optimizer, owner: str, observer: Observer | None) -> None:
    """Call ``observer(optimizer, lrs)`` after every update with the LRs it used (None stops)."""
    overlay = _overlay(optimizer)
    if observer is None:
        overlay.observers.pop(owner, None)
    else:
        overlay.observers[owner] = observer
