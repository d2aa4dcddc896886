"""Exact resume after a guard rollback and after a diagnostics adjustment: the same LR at every later step."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from conftest import StopAt, TinyRegression

from lightning_lr import DivergenceGuard, LRDiagnostics, LRWarmup
from lightning_lr.diagnose import DiagnosisRules
from lightning_lr.schedules import CosineDecay

MakeTrainer = Callable[..., pl.Trainer]


class NaNAt(TinyRegression):
    """A NaN loss (logged too) at the given optimizer steps."""

    def __init__(self, steps: tuple[int, ...] = (), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.nan_steps = steps

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        loss = super().training_step(batch, batch_idx)
        if self.trainer.global_step in self.nan_steps:
            loss = loss * math.nan
            self.log("train_loss", loss)
        return loss


def callbacks() -> list[pl.Callback]:
    return [
        LRWarmup(3),
        LRDiagnostics(
            action="adjust",
            check_every_n_steps=1,
            rules=DiagnosisRules(window=8, smoothing_steps=4),
            max_adjustments=1,
        ),
        DivergenceGuard(snapshot_every=2, warmup_steps=2),
    ]


def lrs(model: TinyRegression) -> list[list[float]]:
    return model.seen_lrs


@pytest.mark.parametrize("stop_at", [8, 16])
def test_resume_after_a_rollback_and_an_adjustment_is_exact(
    make_trainer: MakeTrainer, tmp_path: Path, stop_at: int
) -> None:
    settings: dict[str, Any] = {"steps": (6,), "schedule": CosineDecay(1.0), "weight_decay": 0.0}
    full = NaNAt(**settings)
    make_trainer(max_steps=24, callbacks=callbacks(), limit_val_batches=0).fit(full)
    guard, diagnostics = full.trainer.callbacks[2], full.trainer.callbacks[1]  # type: ignore[attr-defined]
    assert [event["step"] for event in guard.events] == [6]
    assert [action["step"] for action in diagnostics.actions] == [6]

    first = NaNAt(**settings)
    path = tmp_path / "stop.ckpt"
    make_trainer(max_steps=24, callbacks=[*callbacks(), StopAt(stop_at, path)], limit_val_batches=0).fit(
        first
    )
    state = torch.load(path, weights_only=True)  # the callbacks' states are plain data
    assert any("DivergenceGuard" in key for key in state["callbacks"])
    resumed = NaNAt(**settings)
    make_trainer(max_steps=24, callbacks=callbacks(), limit_val_batches=0).fit(resumed, ckpt_path=path)
    assert len(lrs(first)) == stop_at
    for k, (expected, got) in enumerate(zip(lrs(full), lrs(first) + lrs(resumed), strict=True)):
        assert got == pytest.approx(expected, rel=1e-12), k
    # the rollback's backoff and the adjustment (x0.5 x0.1) both survive the resume; the rollback
    # took the schedule back one step (to the snapshot after 6 steps), so step 23 runs at 22's value
    assert lrs(resumed)[-1][0] == pytest.approx(0.05 * 0.05 * CosineDecay(24)(22), rel=1e-9)
