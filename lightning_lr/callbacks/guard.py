"""DivergenceGuard: roll back to the last good state instead of dying on a NaN or a loss spike."""

from __future__ import annotations

import math
from collections import deque
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch.optim import Optimizer
from typing_extensions import override

from lightning_lr._validate import check_choice, check_int, check_range
from lightning_lr.callbacks._host import LaggedScalars, defers
from lightning_lr.callbacks._lr_state import reapply_after_restore, scale_lrs, total_scales
from lightning_lr.callbacks._ranks import mean_over_ranks
from lightning_lr.callbacks._snapshot import SnapshotMemory, TrainingSnapshot
from lightning_lr.diagnose.divergence import GuardState, LossLevel


class DivergenceGuard(pl.Callback):
    """Skip the update of a step whose loss is non-finite or spikes, roll back, back off, go on.

    Every ``snapshot_every`` steps the guard keeps a copy of the weights, the optimizer state and
    the schedulers' states (see ``snapshot_memory``). A step is bad when its loss is NaN/inf, or
    above ``spike_factor`` times its running level (an exponential moving average of the healthy
    steps' losses), a level never taken below ``level_floor`` times the level at the start (a loss
    near zero varies from batch to batch by more than any fixed factor). Then the guard drops the
    gradients of the step it is at (that batch changes nothing), restores the last snapshot,
    multiplies the LR by ``backoff`` (in the param groups and in the schedulers' base LRs, so the
    scheduler keeps it), and training continues. After ``max_retries`` rollbacks it restores the
    last good state, saves ``divergence_guard.ckpt`` in the log directory and stops the run cleanly.

    The loss reaches the host without stalling the device: on the CPU it is read in the same step,
    so the bad step's own update is skipped; on a GPU it is copied to pinned host memory without
    blocking and judged at the next step, when the copy has long finished, so the bad step's
    update happens, the next step's is skipped, and the rollback undoes both. Either way the run
    goes back to the state before the bad step. ``deferred`` forces one behaviour or the other.

    Each checkpoint saved during training is a snapshot too, so a run resumed from a checkpoint
    rolls back exactly as the uninterrupted run does. Restoring the schedulers' state takes the
    schedule back to the snapshot's step too (``trainer.global_step`` goes on counting), so a run
    with rollbacks ends that many steps short of its schedule's end. LR changes made since the
    snapshot (earlier backoffs, ``LRDiagnostics`` adjustments) are re-applied after the restore.

    Under DDP the loss judged is the mean over the ranks (one all-reduce queued on the device; a
    NaN on any rank makes it NaN), so every rank takes the same decision at the same step. Under
    sharded strategies each rank snapshots and restores the shard it holds. For automatic
    optimization.

    Args:
        spike_factor: a loss above this multiple of its running level is a spike.
        backoff: LR multiplier applied at each rollback.
        max_retries: rollbacks allowed before stopping.
        snapshot_every: optimizer steps between two snapshots of the last good state.
        ema_decay: smoothing of the running loss level.
        warmup_steps: healthy steps seen before spikes are judged (non-finite losses always are).
        level_floor: the running level a spike is judged against stays at or above this fraction
            of the level after ``warmup_steps`` (the start): once the loss has fallen 10x (at the
            default 0.1), only a loss back above ``spike_factor`` x that floor is a spike.
        snapshot_memory: where snapshots live: ``"device"`` (beside the model; no host memory, a
            copy of a few milliseconds even for a billion parameters), ``"host"`` (pinned host
            memory, copied without blocking the host) or ``"auto"`` (the device while the snapshot
            takes at most half of its free memory, else the host).
        deferred: read each step's verdict one step later (True) or in the same step (False);
            None: later on CUDA, where a same-step read would stall the device, else same step.
    """

    def __init__(
        self,
        spike_factor: float = 10.0,
        backoff: float = 0.5,
        max_retries: int = 5,
        snapshot_every: int = 20,
        ema_decay: float = 0.9,
        warmup_steps: int = 10,
        level_floor: float = 0.1,
        snapshot_memory: SnapshotMemory = "auto",
        deferred: bool | None = None,
    ) -> None:
        spike_factor = check_range("spike_factor", spike_factor, 1.0, math.inf, low_open=True, high_open=True)
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
        rule = LossLevel(
            spike_factor=spike_factor,
            ema_decay=check_range("ema_decay", ema_decay, 0.0, 1.0, high_open=True),
            warmup_steps=check_int("warmup_steps", warmup_steps, 0),
            level_floor=check_range("level_floor", level_floor, 0.0, 1.0),
        )
        self.snapshot_memory: SnapshotMemory = check_choice(  # type: ignore[assignment]
            "snapshot_memory", snapshot_memory, ("auto", "device", "host")
        )
        self.deferred = deferred
        self.state = GuardState(rule)  # the host-side memory; the device-side things are below
        self._step_loss: torch.Tensor | None = None
        self._losses = LaggedScalars()  # each step's loss on its way to the host
        self._steps: deque[int] = deque()
        self._rollback = False
        self._snapshot = TrainingSnapshot(snapshot_memory)

    @property
    def rule(self) -> LossLevel:
        """The divergence rule, with its memory."""
        return self.state.rule

    @property
    def retries(self) -> int:
        """Rollbacks made."""
        return self.state.retries

    @property
    def lr_scale(self) -> float:
        """The product of the backoffs applied."""
        return self.state.lr_scale

    @property
    def events(self) -> list[dict[str, Any]]:
        """The latest blow-ups, as ``{"step", "loss", "level", "lr_scale"}``."""
        return self.state.events

    @property
    def level(self) -> float | None:
        """The running level of the healthy steps' loss (None before the first)."""
        return self.rule.level

    @property
    def healthy_steps(self) -> int:
        return self.rule.healthy_steps

    @override
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._losses.clear()
        self._steps.clear()
        self._rollback, self._step_loss = False, None
        self._snapshot = TrainingSnapshot(self._snapshot.memory)
        self._snapshot.take(trainer, pl_module, total_scales(trainer))

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
        loss, self._step_loss = self._step_loss, None
        self._judge_pending()  # the previous step's loss, when deferred
        if not self._rollback:
            step = trainer.global_step
            if step % self.snapshot_every == 0 and self._snapshot.step != step:
                # the state after `step` steps, all judged healthy by now
                self._snapshot.take(trainer, pl_module, total_scales(trainer))
            # under DDP the mean over ranks: every rank judges the same value (NaN and inf carry)
            self._losses.push(mean_over_ranks(trainer, loss))
            self._steps.append(step)
            if not defers(self.deferred, loss.device):
                self._judge_pending()
        if self._rollback:
            for parameter in pl_module.parameters():
                parameter.grad = None  # this batch changes nothing

    def _judge_pending(self) -> None:
        """Judge the losses that reached the host: roll back at the first bad one."""
        while self._steps:
            step, loss = self._steps.popleft(), self._losses.pop()
            if self.state.judge(step, loss, self.backoff):
                self._steps.clear()
                self._losses.clear()
                self._rollback = True
                return

    @override
    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self._rollback:
            self._roll_back(trainer, pl_module)

    @override
    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.state.fn == "fit":  # a deferred verdict on the epoch's last step: validate good weights
            self._settle(trainer, pl_module)

    @override
    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._settle(trainer, pl_module)  # nor end the run on a bad update
        # the snapshot serves training only: free its buffers (on the GPU, a copy of the weights and
        # the optimizer state) rather than hold them through a test run or the next fit's start
        self._snapshot = TrainingSnapshot(self._snapshot.memory)

    def _settle(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._judge_pending()
        if self._rollback:
            self._roll_back(trainer, pl_module)

    def _roll_back(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._rollback = False
        snapshot = self._snapshot
        if not snapshot.taken:
            return
        snapshot.restore(trainer, pl_module)
        reapply_after_restore(trainer, snapshot.totals)  # backoffs and adjustments made since
        if self.retries >= self.max_retries:
            self._stop(trainer)
            return
        self.state.back_off(self.backoff)
        scale_lrs(trainer, self.backoff)
        event = self.events[-1]
        level = event["level"]
        rank_zero_warn(
            f"DivergenceGuard: loss {event['loss']:.4g} at step {event['step']} (running level "
            f"{level if level is None else format(level, '.4g')}); rolled back to the state "
            f"after {snapshot.step} steps and scaled the LR by {self.lr_scale:g} "
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

    @override
    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        # A checkpoint is a snapshot too: a run resumed from it rolls back to it (the snapshot is
        # not saved; the resumed run takes it when training starts), so must the run that saved it.
        self._judge_pending()  # saving a checkpoint waits for the device anyway
        if trainer.training and not self._rollback:
            self._snapshot.take(trainer, pl_module, total_scales(trainer))

    @override
    def state_dict(self) -> dict[str, Any]:
        # a checkpoint waits for the device anyway: judge the loss still on its way, so that the
        # saved level counts every step taken, as the uninterrupted run's does by its next step
        self._judge_pending()
        return self.state.to_dict()

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.state = GuardState.from_dict(state_dict, self.rule)  # the settings stay this guard's own
