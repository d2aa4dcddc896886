"""The LR state lightning_lr's callbacks keep about each optimizer: one object, one owner, one lifetime.

Two mechanisms change an optimizer's LR from outside its scheduler, and both need memory:

* **The overlay** (``ScheduleOverlay``, ``LRWarmup``, ``WarmRestarts``): scale the LR for one
  optimizer step, then give the scheduler its own LR back. Callbacks that shape the LR on top of
  *someone else's* scheduler (torch's chainable ones, ReduceLROnPlateau, or none) multiply each
  group's LR from the start of the step's first batch (``on_train_batch_start``, so that
  Lightning's ``LearningRateMonitor`` and any logging there see the LR the step uses) to its
  optimizer update, and the optimizer's step post-hook restores the scheduler's values right after
  the update, before Lightning steps the scheduler. The scheduler never sees the overlay, so
  chainable schedules are not corrupted and a plateau's reductions are kept. While an overlay is
  applied, the optimizer's ``state_dict()`` still holds the scheduler's own LRs (a snapshot or
  checkpoint taken then resumes exactly), ``load_state_dict()`` drops the overlay (the loaded LRs
  are the scheduler's own), and :func:`scale_own_lrs` scales both, so a lasting change made
  meanwhile is kept. Several overlays on one optimizer multiply: each names itself and its
  factor; one post-hook tells the observers (``LRLogger``) the LRs the step used, then restores.
* **Lasting changes** (``LRFinder``, ``LRDiagnostics(action="adjust")``, ``DivergenceGuard``):
  scale every group and every scheduler's base LRs, so the change sticks. Their running product
  is kept, so that a rollback to an older state (``DivergenceGuard``) can re-apply the changes
  made since, instead of silently undoing them (``optimizer.load_state_dict`` brings back the old
  LRs).

All of it lives in one :class:`LRState` per optimizer, made the first time a callback touches the
optimizer (:func:`lr_state`) and dropped with the optimizer (a new fit's optimizer starts fresh);
it is never saved: the overlay is taken out of every ``state_dict()``, and the lasting product
only spans the optimizer's life. The functions below are the only way callbacks reach it.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import lightning.pytorch as pl
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler, ReduceLROnPlateau

Observer = Callable[[Optimizer, list[float]], None]


class LRState:
    """What the callbacks keep about one optimizer's LR (see the module docstring).

    Attributes:
        own_lrs: the scheduler's own LRs while an overlay is applied, else ``None``.
        factors: each applied overlay's factor, by owner.
        observers: called after every update with the LRs it used, by owner.
        lasting: the product of the lasting changes made so far.
    """

    def __init__(self) -> None:
        self.own_lrs: list[float] | None = None
        self.factors: dict[str, float] = {}
        self.observers: dict[str, Observer] = {}
        self.lasting = 1.0
        self._hooks: list[Any] = []

    def hook(self, optimizer: Optimizer) -> None:
        """Register the optimizer hooks an overlay or an observer needs (once; lasting changes need none)."""
        if not self._hooks:
            self._hooks = [
                optimizer.register_step_post_hook(self._after_step),
                optimizer.register_state_dict_post_hook(self._own_state),
                optimizer.register_load_state_dict_post_hook(self._after_load),
            ]

    def scale(self, optimizer: Optimizer, owner: str, factor: float) -> None:
        self.hook(optimizer)
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


_STATES: weakref.WeakKeyDictionary[Optimizer, LRState] = weakref.WeakKeyDictionary()
"""Each optimizer's :class:`LRState`, dropped with the optimizer; reached through :func:`lr_state`."""


def lr_state(optimizer: Optimizer) -> LRState:
    """The optimizer's :class:`LRState`, made on first use."""
    state = _STATES.get(optimizer)
    if state is None:
        state = _STATES[optimizer] = LRState()
    return state


# --- the overlay ---------------------------------------------------------------------------------


def scale_lr(optimizer: Optimizer, owner: str, factor: float) -> None:
    """Multiply the LR of every group by ``factor`` until the coming update (idempotent)."""
    lr_state(optimizer).scale(optimizer, owner, factor)


def restore_lr(optimizer: Optimizer) -> None:
    """Undo any overlay still applied (an update that was skipped, e.g. by AMP's inf check)."""
    state = _STATES.get(optimizer)
    if state is not None:
        state.restore(optimizer)


def own_lrs(optimizer: Optimizer) -> list[float]:
    """The scheduler's own LRs, with any pending overlay taken out."""
    state = _STATES.get(optimizer)
    if state is not None and state.own_lrs is not None:
        return list(state.own_lrs)
    return [float(group["lr"]) for group in optimizer.param_groups]


def scale_own_lrs(optimizer: Optimizer, factor: float) -> None:
    """Scale the scheduler's own LRs kept by a pending overlay (a lasting change made meanwhile)."""
    state = _STATES.get(optimizer)
    if state is not None and state.own_lrs is not None:
        state.own_lrs = [own * factor for own in state.own_lrs]


def observe_steps(optimizer: Optimizer, owner: str, observer: Observer | None) -> None:
    """Call ``observer(optimizer, lrs)`` after every update with the LRs it used (None stops)."""
    state = lr_state(optimizer)
    state.hook(optimizer)
    if observer is None:
        state.observers.pop(owner, None)
    else:
        state.observers[owner] = observer


# --- lasting changes -----------------------------------------------------------------------------


def total_scales(trainer: pl.Trainer) -> list[float]:
    """The product of the lasting changes made to each optimizer's LR so far."""
    return [_STATES[optimizer].lasting if optimizer in _STATES else 1.0 for optimizer in trainer.optimizers]


def scale_lrs(trainer: pl.Trainer, factor: float) -> None:
    """Multiply the LR of every param group, its ``initial_lr`` and the schedulers' base LRs.

    A closed-form scheduler recomputes the LR from its base LRs at its next step, so changing only
    ``group["lr"]`` would be undone; ReduceLROnPlateau and chainable schedulers read the group's LR
    and keep the change.
    """
    for optimizer in trainer.optimizers:
        lr_state(optimizer).lasting *= factor
        _scale(trainer, optimizer, factor)


def reapply_after_restore(trainer: pl.Trainer, saved_totals: Sequence[float]) -> None:
    """After restoring states saved when the totals were ``saved_totals``, bring back the changes since."""
    for optimizer, saved, total in zip(trainer.optimizers, saved_totals, total_scales(trainer)):
        _scale(trainer, optimizer, total / saved)


def _scale(trainer: pl.Trainer, optimizer: Optimizer, factor: float) -> None:
    if factor == 1.0:
        return
    scale_own_lrs(optimizer, factor)  # an overlay applied now would otherwise undo the change
    for group in optimizer.param_groups:
        group["lr"] *= factor
        if "initial_lr" in group:
            group["initial_lr"] *= factor
    for config in trainer.lr_scheduler_configs:
        scheduler = config.scheduler
        # ReduceLROnPlateau (an LRScheduler since torch 2.2) has no base LRs: it reads the group's LR
        if isinstance(scheduler, ReduceLROnPlateau) or not isinstance(scheduler, LRScheduler):
            continue
        if scheduler.optimizer is optimizer:
            scheduler.base_lrs = [base * factor for base in scheduler.base_lrs]
