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

from lightning_lr._validate import check_choice, check_int, check_range
from lightning_lr.callbacks._adjust import reapply_after_restore, scale_lrs, total_scales
from lightning_lr.callbacks._host import HostCopy, read_scalar
from lightning_lr.callbacks._snapshot import SnapshotMemory, TrainingSnapshot
from lightning_lr.diagnose.divergence import divergent_on_device, update_level_on_device


class DivergenceGuard(pl.Callback):
    """Skip the update of a step whose loss is non-finite or spikes, roll back, back off, go on.

    Every ``snapshot_every`` steps the guard keeps a copy of the weights, the optimizer state and
    the schedulers' states (see ``snapshot_memory``). Each step's loss is judged on the device:
    NaN/inf, or above ``spike_factor`` times its running level (an exponential moving average of
    the healthy steps' losses). When a step is judged bad, the guard drops the gradients of the
    step it is at (that batch changes nothing), restores the last snapshot, multiplies the LR by
    ``backoff`` (in the param groups and in the schedulers' base LRs, so the scheduler keeps it),
    and training continues. After ``max_retries`` rollbacks it restores the last good state, saves
    ``divergence_guard.ckpt`` in the log directory and stops the run cleanly.

    The verdict reaches the host without stalling the device: on the CPU it is read in the same
    step, so the bad step's own update is skipped; on a GPU it is read at the next step (a copy
    started one step earlier, long finished by then), so the bad step's update happens, the next
    step's is skipped, and the rollback undoes both. Either way the run goes back to the state
    before the bad step. ``deferred`` forces one behaviour or the other.

    Each checkpoint saved during training is a snapshot too, so a run resumed from a checkpoint
    rolls back exactly as the uninterrupted run does. Restoring the schedulers' state takes the
    schedule back to the snapshot's step too (``trainer.global_step`` goes on counting), so a run
    with rollbacks ends that many steps short of its schedule's end. LR changes made since the
    snapshot (earlier backoffs, ``LRDiagnostics`` adjustments) are re-applied after the restore.

    Under DDP every rank rolls back when any rank sees a bad loss (one all-reduce on the device).
    Under sharded strategies each rank snapshots and restores the shard it holds. For automatic
    optimization.

    Args:
        spike_factor: a loss above this multiple of its running level is a spike.
        backoff: LR multiplier applied at each rollback.
        max_retries: rollbacks allowed before stopping.
        snapshot_every: optimizer steps between two snapshots of the last good state.
        ema_decay: smoothing of the running loss level.
        warmup_steps: healthy steps seen before spikes are judged (non-finite losses always are).
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
        snapshot_memory: SnapshotMemory = "auto",
        deferred: bool | None = None,
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
        self.snapshot_memory: SnapshotMemory = check_choice(  # type: ignore[assignment]
            "snapshot_memory", snapshot_memory, ("auto", "device", "host")
        )
        self.deferred = deferred
        self.retries = 0
        self.lr_scale = 1.0
        self.events: list[dict[str, Any]] = []
        # the running level (NaN: none yet) and the healthy-step count live on the module's device
        self._level = torch.tensor(math.nan, dtype=torch.float64)
        self._healthy = torch.tensor(0, dtype=torch.int64)
        self._step_loss: torch.Tensor | None = None
        self._pending: tuple[int, HostCopy] | None = None  # a verdict on its way to the host
        self._rollback = False
        self._snapshot = TrainingSnapshot(snapshot_memory)

    @property
    def level(self) -> float | None:
        """The running level of the healthy steps' losses (None before the first; a host read)."""
        value = read_scalar(self._level)
        return None if math.isnan(value) else value

    @property
    def healthy_steps(self) -> int:
        """Steps judged healthy so far (a host read)."""
        return int(read_scalar(self._healthy))

    @override
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        device = pl_module.device
        dtype = torch.float32 if device.type == "mps" else torch.float64
        self._level = self._level.to(device, dtype)
        self._healthy = self._healthy.to(device)
        self._pending, self._rollback, self._step_loss = None, False, None
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
        self._read_verdict()  # the previous step's, when deferred
        if not self._rollback:
            step = trainer.global_step
            if step % self.snapshot_every == 0 and self._snapshot.step != step:
                # the state after `step` steps, all judged healthy by now
                self._snapshot.take(trainer, pl_module, total_scales(trainer))
            self._judge(trainer, step, loss)
            if not self._deferred(loss):
                self._read_verdict()
        if self._rollback:
            for parameter in pl_module.parameters():
                parameter.grad = None  # this batch changes nothing

    def _deferred(self, loss: torch.Tensor) -> bool:
        return loss.device.type == "cuda" if self.deferred is None else self.deferred

    def _judge(self, trainer: pl.Trainer, step: int, loss: torch.Tensor) -> None:
        """Judge the step's loss on the device and start its verdict's copy to the host."""
        loss = loss.to(self._level.dtype)
        bad = divergent_on_device(loss, self._level, self._healthy, self.spike_factor, self.warmup_steps)
        if trainer.world_size > 1:  # every rank rolls back when any rank saw a bad loss
            bad = trainer.strategy.reduce(bad.to(self._level.dtype), reduce_op="sum") > 0
        previous = self._level
        self._level = update_level_on_device(previous, loss, self.ema_decay, bad)
        self._healthy = self._healthy + (~bad).to(self._healthy.dtype)
        self._pending = (step, HostCopy(torch.stack([bad.to(loss.dtype), loss, previous])))

    def _read_verdict(self) -> None:
        if self._pending is None:
            return
        step, copy_ = self._pending
        self._pending = None
        bad, loss, level = copy_.values()
        if not bad:
            return
        self._rollback = True
        self.events = [
            *self.events[-99:],
            {
                "step": step,
                "loss": loss,
                "level": None if math.isnan(level) else level,
                "lr_scale": self.lr_scale * self.backoff,
            },
        ]

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

    def _settle(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._read_verdict()
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
        self.retries += 1
        self.lr_scale *= self.backoff
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
        self._read_verdict()  # saving a checkpoint waits for the device anyway
        if trainer.training and not self._rollback:
            self._snapshot.take(trainer, pl_module, total_scales(trainer))

    @override
    def state_dict(self) -> dict[str, Any]:
        self._read_verdict()
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
        level = state_dict["level"]
        self._level = torch.tensor(math.nan if level is None else float(level), dtype=torch.float64)
        self._healthy = torch.tensor(int(state_dict["healthy_steps"]), dtype=torch.int64)
        self.events = list(state_dict["events"])
