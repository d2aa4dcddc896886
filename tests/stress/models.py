"""The model, data and probe the reliability checks drive, importable by ``lightning-lr`` by class path.

``stress.models.ReliabilityModel`` is conftest's ``TinyRegression`` with every argument the checks
set from YAML spelled out (LightningCLI reads the signature), losses multiplied at chosen steps, and
a training loader that resumes mid-epoch exactly. ``stress.models.StepProbe`` tells a watching
process how far a run got and can hold the run at a step so that it is killed exactly there.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import lightning.pytorch as pl
import torch
from torch.optim.lr_scheduler import ReduceLROnPlateau
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from conftest import TinyRegression

from lightning_lr import DivergenceGuard, LRDiagnostics, ReduceOnPlateau, WarmRestarts
from lightning_lr.schedules import Schedule

PAUSE_AT = "RELIABILITY_PAUSE_AT"
"""Environment variable: the optimizer step at whose start a probed run stops and waits to be killed."""


class ResumableLoader(DataLoader[Any]):
    """A DataLoader that Lightning can resume mid-epoch: it skips the batches the checkpoint had seen.

    Lightning saves and restores the state of loaders with ``state_dict``/``load_state_dict``; a
    plain DataLoader restarts its epoch from the first batch after a resume (Lightning warns), so a
    resumed run would see other batches than an uninterrupted one.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.yielded = 0
        self.skip = 0

    def __iter__(self) -> Iterator[Any]:
        skip, self.skip = self.skip, 0
        self.yielded = skip
        for index, batch in enumerate(super().__iter__()):
            if index >= skip:
                self.yielded += 1
                yield batch

    def state_dict(self) -> dict[str, Any]:
        return {"yielded": self.yielded}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.skip = int(state_dict["yielded"])


class ReliabilityModel(TinyRegression):
    """TinyRegression for YAML: the loss is multiplied by ``faults[k]`` at optimizer step ``k``.

    Args:
        ballast: floats of a buffer saved with the weights, to make checkpoints slow to write.
    """

    def __init__(
        self,
        lr: float = 0.05,
        optimizer: str = "adamw",
        optimizer_kwargs: dict[str, Any] | None = None,
        weight_decay: float | None = 0.0,
        schedule: Schedule | ReduceOnPlateau | None = None,
        interval: Literal["step", "epoch"] = "step",
        monitor: str = "val_loss",
        faults: dict[int, float] | None = None,
        n_samples: int = 64,
        batch_size: int = 8,
        ballast: int = 0,
    ) -> None:
        super().__init__(
            lr=lr,
            n_samples=n_samples,
            batch_size=batch_size,
            optimizer=optimizer,
            optimizer_kwargs=optimizer_kwargs or {},
            weight_decay=weight_decay,
            schedule=schedule,
            interval=interval,
            monitor=monitor,
        )
        self.faults = {int(step): float(factor) for step, factor in (faults or {}).items()}
        self.register_buffer("ballast", torch.zeros(ballast))

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        loss = super().training_step(batch, batch_idx)
        factor = self.faults.get(self.trainer.global_step)
        if factor is not None:
            loss = loss * factor
            self.log("train_loss", loss)
        return loss

    def train_dataloader(self) -> DataLoader[Any]:
        return ResumableLoader(self.data, batch_size=self.hparams.batch_size)


class StepProbe(pl.Callback):
    """Writes the number of optimizer steps done to ``step_file`` and, at fit end, what happened.

    With the environment variable ``RELIABILITY_PAUSE_AT=k`` the run writes ``k held`` and then
    sleeps at the start of step ``k`` (``k`` steps done, their checkpoints written): the watcher
    kills it exactly there. ``events_file`` gets the diagnostics' adjustments, the guard's rollbacks, the
    restarts and, per epoch, the plateau scheduler's cooldown counter.
    """

    def __init__(self, step_file: str, events_file: str | None = None) -> None:
        self.step_file = Path(step_file)
        self.events_file = None if events_file is None else Path(events_file)
        pause = os.environ.get(PAUSE_AT)
        self.pause_at = int(pause) if pause else None
        self.cooldowns: list[list[int]] = []

    def on_train_batch_start(self, trainer: pl.Trainer, *args: Any) -> None:
        if trainer.global_step == self.pause_at:
            self.step_file.write_text(f"{trainer.global_step} held")
            time.sleep(600)  # killed long before

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        self.step_file.write_text(str(trainer.global_step))

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        for config in trainer.lr_scheduler_configs:
            if isinstance(config.scheduler, ReduceLROnPlateau):
                self.cooldowns.append([trainer.global_step, int(config.scheduler.cooldown_counter)])

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.events_file is None:
            return
        events: dict[str, Any] = {"global_step": trainer.global_step, "cooldowns": self.cooldowns}
        for callback in trainer.callbacks:  # type: ignore[attr-defined]
            if isinstance(callback, LRDiagnostics):
                events["adjustments"] = [action["step"] for action in callback.actions]
            elif isinstance(callback, DivergenceGuard):
                events["rollbacks"] = [event["step"] for event in callback.events]
            elif isinstance(callback, WarmRestarts):
                events["restarts"] = [step for step, _ in callback.restarts]
        self.events_file.write_text(json.dumps(events))
