"""The overlay: scale the LR for one optimizer step, then give the scheduler its own LR back.

Callbacks that shape the LR on top of *someone else's* scheduler (torch's chainable ones,
ReduceLROnPlateau, or none) multiply each group's LR from the start of the step's first batch
(``on_train_batch_start``, so that Lightning's ``LearningRateMonitor`` and any logging there see
the LR the step uses) to its optimizer update, and the optimizer's step post-hook restores the
scheduler's values right after the update, before Lightning steps the scheduler. The scheduler
never sees the overlay, so chainable schedules are not corrupted and a plateau's reductions are
kept.

While an overlay is applied, the optimizer's ``state_dict()`` still holds the scheduler's own LRs
(a snapshot or checkpoint taken then resumes exactly), ``load_state_dict()`` drops the overlay
(the loaded LRs are the scheduler's own), and :func:`scale_own_lrs` scales both, so a lasting
change made meanwhile is kept.

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
        self.handles = [
            optimizer.register_step_post_hook(self._after_step),
            optimizer.register_state_dict_post_hook(self._own_state),
            optimizer.register_load_state_dict_post_hook(self._after_load),
        ]

    def scale(self, optimizer: Optimizer, owner: str, factor: float) -> None:
        if self.own_lrs is not None and self.factors.get(owner) == factor:
            return  # applied already (the step's batch start), nothing changed since
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

    def _own_state(self, optimizer: Optimizer, state: dict[str, Any]) -> dict[str, Any]:
        if self.own_lrs is not None:
            for group, own in zip(state["param_groups"], self.own_lrs):
                group["lr"] = own
        return state

    def _after_load(self, optimizer: Optimizer) -> None:
        self.own_lrs = None
        self.factors.clear()

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
    """Multiply the LR of every group by ``factor`` until the coming update (idempotent)."""
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


def scale_own_lrs(optimizer: Optimizer, factor: float) -> None:
    """Scale the scheduler's own LRs kept by a pending overlay (a lasting change made meanwhile)."""
    overlay = _OVERLAYS.get(optimizer)
    if overlay is not None and overlay.own_lrs is not None:
        overlay.own_lrs = [own * factor for own in overlay.own_lrs]


def observe_steps(optimizer: Optimizer, owner: str, observer: Observer | None) -> None:
    """Call ``observer(optimizer, lrs)`` after every update with the LRs it used (None stops)."""
    overlay = _overlay(optimizer)
    if observer is None:
        overlay.observers.pop(owner, None)
    else:
        overlay.observers[owner] = observer
