"""DivergenceGuard: roll back to the last good state instead of dying on a NaN or a loss spike."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch.optim import Optimizer
from typing_extensions import override

from lightning_lr._validate import check_int, check_range
from lightning_lr.callbacks._adjust import reapply_after_restore, scale_lrs, total_scales
from lightning_lr.diagnose.divergence import is_divergent, update_level


class DivergenceGuard(pl.Callback):
    """Skip the update of a step whose loss is non-finite or spikes, roll back, back off, go on.

    Every ``snapshot_every`` healthy steps the guard keeps a copy (in host memory) of the weights,
    the optimizer state and the schedulers' states. When a step's loss is NaN/inf or above
    ``spike_factor`` times its running level (an exponential moving average), the guard drops that
    step's gradients (the bad batch changes nothing), restores the last snapshot, multiplies the
    LR by ``backoff`` (in the param groups and in the schedulers' base LRs, so the scheduler keeps
    it), and training continues. After ``max_retries`` rollbacks it restores the last good state,
    saves ``divergence_guard.ckpt`` in the log directory and stops the run cleanly. Each checkpoint
    saved during training is a snapshot too, so a run resumed from a checkpoint rolls back exactly
    as the uninterrupted run does. Restoring the
    schedulers' state takes the schedule back to the snapshot's step too (``trainer.global_step``
    goes on counting), so a run with rollbacks ends that many steps short of its schedule's end.
    LR changes made since the snapshot (earlier backoffs, ``LRDiagnostics`` adjustments) are
    re-applied after the restore rather than lost.

    Under DDP every rank rolls back when any rank sees a bad loss. For automatic optimization.

    Args:
        spike_factor: a loss above this multiple of its running level is a spike.
        backoff: LR multiplier applied at each rollback.
        max_retries: rollbacks allowed before stopping.
        snapshot_every: optimizer steps between two snapshots of the last good state.
        ema_decay: smoothing of the running loss level.
        warmup_steps: healthy steps seen before spikes are judged (non-finite losses always are).
    """

    def __init__(
        self,
        spike_factor: float = 10.0,
        backoff: float = 0.5,
        max_retries: int = 5,
        snapshot_every: int = 20,
        ema_decay: float = 0.9,
        warmup_steps: int = 10,
    ) -> None:
        self.spike_factor = check_range(
            "spike_factor", spike_factor, 1.0, math.inf, low_open=True, high_open=True
        )
        self.backoff = check_range(
            "backoff",
            backoff,
            0.0,
            1.0,
            low_open=True,
            high_open=True,
            fix="A backoff lowers the LR, e.g. 0.5.",
        )
        self.max_retries = check_int("max_retries", max_retries, 0)
        self.snapshot_every = check_int("snapshot_every", snapshot_every, 1)
        self.ema_decay = check_range("ema_decay", ema_decay, 0.0, 1.0, high_open=True)
        self.warmup_steps = check_int("warmup_steps", warmup_steps, 0)
        self.retries = 0
        self.lr_scale = 1.0
        self.level: float | None = None
        self.healthy_steps = 0
        self.events: list[dict[str, Any]] = []
        self._step_loss: torch.Tensor | None = None
        self._rollback = False
        self._snapshot: dict[str, Any] | None = None

    @override
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._take_snapshot(trainer, pl_module)

    @override
    def on_before_backward(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, loss: torch.Tensor
    ) -> None:
        # under accumulation each micro-batch loss is already divided: their sum is the step's mean
        part = loss.detach()
        self._step_loss = part if self._step_loss is None else self._step_loss + part

    @override
    def on_before_optimizer_step(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: Optimizer
    ) -> None:
        if optimizer is not trainer.optimizers[0] or self._step_loss is None:
            return
        loss = float(self._step_loss)
        self._step_loss = None
        judged_level = self.level if self.healthy_steps >= self.warmup_steps else None
        bad = trainer.strategy.reduce_boolean_decision(
            is_divergent(loss, judged_level, self.spike_factor), all=False
        )
        if bad:
            for parameter in pl_module.parameters():
                parameter.grad = None  # the bad batch changes nothing
            self._rollback = True
            self.events = [
                *self.events[-99:],
                {
                    "step": trainer.global_step,
                    "loss": loss,
                    "level": self.level,
                    "lr_scale": self.lr_scale * self.backoff,
                },
            ]
            return
        self.healthy_steps += 1
        self.level = update_level(self.level, loss, self.ema_decay)

    @override
    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self._rollback:
            self._rollback = False
            self._roll_back(trainer, pl_module)
        elif trainer.global_step % self.snapshot_every == 0:
            self._take_snapshot(trainer, pl_module)

    def _roll_back(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        snapshot = self._snapshot
        if snapshot is None:
            return
        pl_module.load_state_dict(snapshot["model"])
        for optimizer, state in zip(trainer.optimizers, snapshot["optimizers"]):
            optimizer.load_state_dict(copy.deepcopy(state))
        for config, state in zip(trainer.lr_scheduler_configs, snapshot["schedulers"]):
            config.scheduler.load_state_dict(copy.deepcopy(state))
        reapply_after_restore(trainer, snapshot["totals"])  # backoffs and adjustments made since
        if self.retries >= self.max_retries:
            self._stop(trainer)
            return
        self.retries += 1
        self.lr_scale *= self.backoff
        scale_lrs(trainer, self.backoff)
        event = self.events[-1]
        rank_zero_warn(
            f"DivergenceGuard: loss {event['loss']:.4g} at step {event['step']} (running level "
            f"{self.level if self.level is None else format(self.level, '.4g')}); rolled back to the state "
            f"after {snapshot['step']} steps and scaled the LR by {self.lr_scale:g} "
            f"(retry {self.retries} of {self.max_retries})."
        )

    def _stop(self, trainer: pl.Trainer) -> None:
        path = Path(trainer.log_dir or trainer.default_root_dir) / "divergence_guard.ckpt"
        trainer.save_checkpoint(path)
        trainer.should_stop = True
        rank_zero_warn(
            f"DivergenceGuard: the loss diverged {self.retries + 1} times; stopped with the last good "
            f"state saved to {path}. Lower the LR or add gradient clipping."
        )

    def _take_snapshot(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._snapshot = {
            "step": trainer.global_step,
            "totals": total_scales(trainer),
            "model": {
                name: value.detach().to("cpu", copy=True) for name, value in pl_module.state_dict().items()
            },
            "optimizers": [_to_cpu(optimizer.state_dict()) for optimizer in trainer.optimizers],
            "schedulers": [
                copy.deepcopy(config.scheduler.state_dict()) for config in trainer.lr_scheduler_configs
            ],
        }

    @override
    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        # A checkpoint is a snapshot too: a run resumed from it rolls back to it (the snapshot is
        # not saved; the resumed run takes it when training starts), so must the run that saved it.
        if trainer.training and not self._rollback:
            self._take_snapshot(trainer, pl_module)

    @override
    def state_dict(self) -> dict[str, Any]:
        return {
            "retries": self.retries,
            "lr_scale": self.lr_scale,
            "level": self.level,
            "healthy_steps": self.healthy_steps,
            "events": copy.deepcopy(self.events),
        }

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.retries = int(state_dict["retries"])
        self.lr_scale = float(state_dict["lr_scale"])
        self.level = state_dict["level"]
        self.healthy_steps = int(state_dict["healthy_steps"])
        self.events = list(state_dict["events"])


def _to_cpu(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {key: _to_cpu(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_to_cpu(item) for item in value]
    return copy.deepcopy(value)
