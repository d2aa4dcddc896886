"""LRLogger: the LR each optimizer step actually used, per optimizer and param group."""

from __future__ import annotations

from collections import Counter
from typing import Any, Literal

import lightning.pytorch as pl
import torch
from torch.optim import Optimizer
from typing_extensions import override

from lightning_lr._validate import check_choice, check_int
from lightning_lr.callbacks._host import HostCopy, defers
from lightning_lr.callbacks._lr_state import observe_steps
from lightning_lr.callbacks._norms import total_norm


class LRLogger(pl.Callback):
    """Log the LR used by each optimizer step to every logger of the Trainer.

    It reads ``group["lr"]`` during the update, after any overlay (:class:`Warmup`,
    :class:`WarmRestarts`, diagnostics) has acted: the value Lightning's ``LearningRateMonitor``
    reads at the start of the step's batch. Keys are ``lr-<Optimizer>`` (``/<group name>``, or
    ``/pg<i>`` counted from 1, per param group when there are several), named as Lightning's
    monitor names them, so a key both write holds one value: optimizers of one class after the
    first get ``-1``, ``-2``, ... in the monitor's order, and a scheduler ``name`` (the mixin's
    ``scheduler_name``) names its optimizer (``lr-<name>``; Lightning writes ``<name>``). On
    request also ``momentum-...`` (momentum or beta1, cycled by ``OneCycle`` and ``Cyclic``; the
    monitor's ``...-momentum``), ``weight_decay-...``, the effective LR of optimizers
    that keep ``lr`` fixed (``lr_effective-...``: schedule-free's ``scheduled_lr``,
    Prodigy/D-Adaptation's ``d * lr``) and ``grad_norm`` (the global 2-norm of the gradients,
    measured before the Trainer clips them; on a GPU it is copied to the host without blocking and
    logged, with its own step, at the next log).

    Args:
        logging_interval: ``"step"`` (every ``every_n_steps`` optimizer steps) or ``"epoch"``.
        log_momentum: log momentum or beta1.
        log_weight_decay: log each group's weight decay.
        log_grad_norm: log the gradient norm before clipping.
        every_n_steps: with ``logging_interval="step"``, log one step in this many.

    Raises:
        ValueError: the Trainer has no logger.
    """

    def __init__(
        self,
        logging_interval: Literal["step", "epoch"] = "step",
        log_momentum: bool = True,
        log_weight_decay: bool = False,
        log_grad_norm: bool = False,
        every_n_steps: int = 1,
    ) -> None:
        self.logging_interval = check_choice("logging_interval", logging_interval, ("step", "epoch"))
        self.log_momentum = log_momentum
        self.log_weight_decay = log_weight_decay
        self.log_grad_norm = log_grad_norm
        self.every_n_steps = check_int("every_n_steps", every_n_steps, 1)
        self._prefixes: dict[int, str] = {}
        self._pending: dict[str, Any] = {}
        self._step = 0
        self._in_flight: tuple[int, list[str], HostCopy] | None = None

    @override
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "fit" and not trainer.loggers:
            raise ValueError(
                "`LRLogger` needs a logger, but the Trainer has `logger=False`. Give the Trainer "
                "a logger (e.g. CSVLogger or TensorBoardLogger) or remove LRLogger."
            )

    @override
    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._prefixes = _monitor_names(trainer)
        for optimizer in trainer.optimizers:
            observe_steps(optimizer, "lr_logger", self._observe)

    @override
    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        for optimizer in trainer.optimizers:
            observe_steps(optimizer, "lr_logger", None)

    @override
    def on_before_optimizer_step(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: Optimizer
    ) -> None:
        self._step = trainer.global_step
        logged = self.logging_interval == "epoch" or self._step % self.every_n_steps == 0
        if self.log_grad_norm and logged and optimizer is trainer.optimizers[0]:
            grads = [p.grad.detach() for p in pl_module.parameters() if p.grad is not None]
            if grads:
                self._pending["grad_norm"] = total_norm(grads)  # converted when logged

    def _observe(self, optimizer: Optimizer, used: list[float]) -> None:
        prefix = self._prefixes.get(id(optimizer))
        if prefix is None or (self.logging_interval == "step" and self._step % self.every_n_steps):
            return  # not a step that gets logged
        groups = optimizer.param_groups
        for index, (group, lr) in enumerate(zip(groups, used)):
            suffix = "" if len(groups) == 1 else f"/{group.get('name') or f'pg{index + 1}'}"
            self._pending[f"lr-{prefix}{suffix}"] = lr
            effective = _effective_lr(group, lr)
            if effective is not None:
                self._pending[f"lr_effective-{prefix}{suffix}"] = effective
            if self.log_momentum:
                momentum = group.get("momentum", (group.get("betas") or (None,))[0])
                if isinstance(momentum, (int, float)):
                    self._pending[f"momentum-{prefix}{suffix}"] = float(momentum)
            if self.log_weight_decay and isinstance(group.get("weight_decay"), (int, float)):
                self._pending[f"weight_decay-{prefix}{suffix}"] = float(group["weight_decay"])

    @override
    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self.logging_interval == "step" and self._pending and self._step % self.every_n_steps == 0:
            self._flush(trainer)
        elif self.logging_interval == "step":
            self._pending.clear()

    @override
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.logging_interval == "epoch" and self._pending:
            self._flush(trainer)

    @override
    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._emit_in_flight(trainer)

    def _flush(self, trainer: pl.Trainer) -> None:
        self._emit_in_flight(trainer)  # the device values of the last logged step, read one log late
        metrics = {key: value for key, value in self._pending.items() if not isinstance(value, torch.Tensor)}
        measured = {key: value for key, value in self._pending.items() if isinstance(value, torch.Tensor)}
        self._pending = {}
        if measured:
            self._in_flight = (self._step, list(measured), HostCopy(torch.stack(list(measured.values()))))
            if not defers(None, self._in_flight[2].device):
                metrics.update(zip(self._in_flight[1], self._in_flight[2].values()))
                self._in_flight = None
        self._log(trainer, metrics, self._step)

    def _emit_in_flight(self, trainer: pl.Trainer) -> None:
        if self._in_flight is not None:
            step, keys, copy = self._in_flight
            self._in_flight = None
            self._log(trainer, dict(zip(keys, copy.values())), step)

    @staticmethod
    def _log(trainer: pl.Trainer, metrics: dict[str, float], step: int) -> None:
        if metrics:
            for logger in trainer.loggers:
                logger.log_metrics(metrics, step=step)


def _monitor_names(trainer: pl.Trainer) -> dict[int, str]:
    """Each optimizer's name as Lightning's ``LearningRateMonitor`` derives it, less its ``lr-``.

    The monitor names the optimizers of the schedulers first, in their order, then the others: a
    scheduler's ``name`` if it has one, else the class, with ``-<n>`` for the n-th further one of
    a class.
    """
    named: list[tuple[Optimizer, str | None]] = [
        (config.scheduler.optimizer, config.name) for config in trainer.lr_scheduler_configs
    ]
    named += [(optimizer, None) for optimizer in trainer.optimizers]
    counts: Counter[type] = Counter()
    names: dict[int, str] = {}
    for optimizer, scheduler_name in named:
        if id(optimizer) in names:
            continue
        cls = type(optimizer)
        if scheduler_name is None:
            counts[cls] += 1
        name = cls.__name__ if scheduler_name is None else scheduler_name.removeprefix("lr-")
        names[id(optimizer)] = name if counts[cls] <= 1 else f"{name}-{counts[cls] - 1}"
    return names


def _effective_lr(group: dict[str, Any], lr: float) -> float | None:
    """The LR an optimizer really applies when its ``lr`` stays fixed, if it says so."""
    if isinstance(group.get("scheduled_lr"), (int, float)):  # schedule-free
        return float(group["scheduled_lr"])
    if isinstance(group.get("d"), (int, float)):  # Prodigy, D-Adaptation
        return float(group["d"]) * lr
    return None
