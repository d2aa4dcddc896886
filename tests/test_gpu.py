"""On a CUDA device: the deferred paths are exact, and the full stack forces no host sync per step.

Skipped where there is no CUDA device (CI); run on a GPU machine with
``python -m pytest tests/test_gpu.py``.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from conftest import TinyRegression
from lightning.pytorch.loggers import CSVLogger
from test_guard import Faulty, Weights

from lightning_lr import DivergenceGuard, LRDiagnostics, LRLogger, LRWarmup
from lightning_lr.schedules import Constant, CosineDecay

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
MakeTrainer = Callable[..., pl.Trainer]


@pytest.mark.parametrize("strategy", ["auto", "fsdp"])
@pytest.mark.parametrize("memory", ["device", "host"])
def test_the_guard_on_cuda_reads_one_step_late_and_restores_exactly(
    make_trainer: MakeTrainer, strategy: str, memory: str
) -> None:
    guard = DivergenceGuard(snapshot_every=1, warmup_steps=3, snapshot_memory=memory)  # type: ignore[arg-type]
    weights = Weights()
    model = Faulty({6: math.nan}, schedule=Constant(), weight_decay=0.0, optimizer="adam")
    trainer = make_trainer(
        accelerator="cuda",
        strategy=strategy,
        max_steps=16,
        callbacks=[guard, weights],
        precision="bf16-mixed",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(model)
    assert [event["step"] for event in guard.events] == [6] and guard.retries == 1
    for name, value in weights.after[8].items():  # step 6 ran, step 7 was dropped, both undone
        assert torch.equal(value, weights.after[6][name]), name
    assert all(torch.isfinite(value).all() for value in model.state_dict().values())


class SyncCount(pl.Callback):
    """Synchronizing CUDA calls (``set_sync_debug_mode("warn")``) from the 5th batch to the end."""

    def __init__(self) -> None:
        self.count = 0
        self.steps = 0
        self.sites: Counter[str] = Counter()
        self._recorder: Any = None
        self._caught: list[Any] = []

    def on_train_batch_start(self, trainer: pl.Trainer, *args: Any) -> None:
        if trainer.global_step == 5 and self._recorder is None:
            self._recorder = warnings.catch_warnings(record=True)
            self._caught = self._recorder.__enter__()
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            self.steps = -trainer.global_step

    def on_train_end(self, trainer: pl.Trainer, *args: Any) -> None:
        torch.cuda.set_sync_debug_mode("default")
        found = [w for w in self._caught if "synchroniz" in str(w.message)]
        self.count = len(found)
        self.sites = Counter(f"{Path(w.filename).name}:{w.lineno}" for w in found)
        self.steps += trainer.global_step
        self._recorder.__exit__(None, None, None)


def _syncs_per_step(
    make_trainer: MakeTrainer, tmp_path: Any, callbacks: list[pl.Callback]
) -> tuple[float, Counter[str]]:
    torch.manual_seed(0)
    model = TinyRegression(lr=0.01, n_samples=2400, batch_size=8, schedule=CosineDecay(1.0))
    counter = SyncCount()
    trainer = make_trainer(
        accelerator="cuda",
        max_steps=300,
        callbacks=[counter, *callbacks],
        logger=CSVLogger(tmp_path),
        log_every_n_steps=50,
        limit_val_batches=0,
    )
    try:
        trainer.fit(model)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    guards = [callback for callback in callbacks if isinstance(callback, DivergenceGuard)]
    assert all(guard.retries == 0 for guard in guards)  # a rollback, or a stop, saves and syncs
    return counter.count / counter.steps, counter.sites


def test_the_full_stack_adds_almost_no_host_sync_per_step(make_trainer: MakeTrainer, tmp_path: Any) -> None:
    stack = [LRWarmup(20), LRLogger(every_n_steps=50, log_grad_norm=True), LRDiagnostics(), DivergenceGuard()]
    bare, bare_sites = _syncs_per_step(make_trainer, tmp_path / "bare", [])
    ours, our_sites = _syncs_per_step(make_trainer, tmp_path / "ours", stack)
    assert ours - bare <= 0.05, (bare, ours, bare_sites, our_sites)
