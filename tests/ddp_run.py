"""2-process CPU DDP (gloo) runs; each rank writes what it saw to OUT/rank<r>.json.

``ddp_run.py OUT`` runs the full stack, ``ddp_run.py OUT finder`` the LRFinder callback. Run by
tests/test_ddp.py as a script (DDP re-launches the script for the second rank).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.loggers import CSVLogger

sys.path.insert(0, str(Path(__file__).parent))
from conftest import TinyRegression

import lightning_lr.plot
from lightning_lr import DivergenceGuard, LRDiagnostics, LRFinder, LRFinderResult, LRLogger, LRWarmup
from lightning_lr.diagnose import DiagnosisRules
from lightning_lr.schedules import CosineDecay


class RankFault(TinyRegression):
    """A NaN loss on rank 1 only, at optimizer step 9: every rank must roll back together."""

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        loss = super().training_step(batch, batch_idx)
        if self.trainer.global_rank == 1 and self.trainer.global_step == 9:
            return loss * math.nan
        return loss


class Measuring(LRDiagnostics):
    """Diagnostics that measure update ratios and alignments, advising only (a state of its own)."""


def main(out: Path) -> None:
    pl.seed_everything(0)
    model = RankFault(lr=0.05, n_samples=128, schedule=CosineDecay(1.0))
    # rules strict enough that the diagnostics decide something on this tiny run: its batch noise
    # reads as a bouncing loss, unless the steps' alignments (not measured here) show no overshoot
    diagnostics = LRDiagnostics(
        action="adjust",
        check_every_n_steps=1,
        track_update_ratio=False,
        rules=DiagnosisRules(window=8, smoothing_steps=4, stuck_fall=1.0),
    )
    measuring = Measuring(check_every_n_steps=2, rules=DiagnosisRules(window=8, smoothing_steps=4))
    guard = DivergenceGuard(snapshot_every=2, warmup_steps=2)
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp",
        max_steps=24,
        logger=CSVLogger(out, name="logs"),
        callbacks=[LRWarmup(5), diagnostics, measuring, guard, LRLogger()],
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        log_every_n_steps=1,
        num_sanity_val_steps=0,
    )
    trainer.fit(model)
    record = {
        "rank": trainer.global_rank,
        "lrs": model.seen_lrs,
        "diagnoses": [[d.step, d.kind] for d in diagnostics.diagnoses],
        "actions": diagnostics.actions,
        "guard_events": [event["step"] for event in guard.events],
        "lr_scale": guard.lr_scale,
        "measured": {key: measuring.state_dict()[key] for key in ("ratios", "alignments")},
    }
    (out / f"rank{trainer.global_rank}.json").write_text(json.dumps(record))


class FitLRs(pl.Callback):
    def __init__(self) -> None:
        self.lrs: list[list[float]] = []

    def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module: Any, optimizer: Any) -> None:
        self.lrs.append([group["lr"] for group in optimizer.param_groups])


def finder(out: Path) -> None:
    """Each rank sweeps its own shard; the ranks must still agree on every number."""
    plots: list[str] = []
    real_plot = lightning_lr.plot.plot_lr_finder

    def counted(result: LRFinderResult, path: Any, **kwargs: Any) -> Path:
        plots.append(str(path))
        return real_plot(result, path, **kwargs)

    lightning_lr.plot.plot_lr_finder = counted  # type: ignore[assignment]
    pl.seed_everything(0)
    model = TinyRegression(lr=1e-3, n_samples=1024, batch_size=64, schedule=CosineDecay(1.0))
    lr_finder, seen = LRFinder(num_steps=30, min_lr=1e-3, max_lr=10.0, plot="finder.png"), FitLRs()
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp",
        max_steps=8,
        logger=CSVLogger(out, name="logs"),
        callbacks=[lr_finder, seen],
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
    )
    trainer.fit(model)
    result = lr_finder.results[0]
    record = {
        "rank": trainer.global_rank,
        "suggestion": result.suggestion,
        "losses": result.losses,
        "swept": sum(len(sweep) for sweep in result.sweeps),
        "lrs": seen.lrs,
        "hparam_lr": model.hparams.lr,
        "plots": plots,
        "sweep_steps": len(model.seen_lrs) - len(seen.lrs),
    }
    (out / f"rank{trainer.global_rank}.json").write_text(json.dumps(record))


if __name__ == "__main__":
    finder(Path(sys.argv[1])) if sys.argv[2:] == ["finder"] else main(Path(sys.argv[1]))
