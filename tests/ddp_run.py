"""A 2-process CPU DDP (gloo) run of the full stack; each rank writes what it saw to OUT/rank<r>.json.

Run by tests/test_ddp.py as a script (DDP re-launches the script for the second rank).
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

from lightning_lr import DivergenceGuard, LRDiagnostics, LRLogger, Warmup
from lightning_lr.diagnose import DiagnosisRules
from lightning_lr.schedules import CosineDecay


class RankFault(TinyRegression):
    """A NaN loss on rank 1 only, at optimizer step 9: every rank must roll back together."""

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        loss = super().training_step(batch, batch_idx)
        if self.trainer.global_rank == 1 and self.trainer.global_step == 9:
            return loss * math.nan
        return loss


def main(out: Path) -> None:
    pl.seed_everything(0)
    model = RankFault(lr=0.05, n_samples=128, schedule=CosineDecay(1.0))
    # rules strict enough that the diagnostics decide something on this tiny run
    diagnostics = LRDiagnostics(action="adjust", check_every_n_steps=1,
                                rules=DiagnosisRules(window=8, smoothing_steps=4))
    guard = DivergenceGuard(snapshot_every=2, warmup_steps=2)
    trainer = pl.Trainer(
        accelerator="cpu", devices=2, strategy="ddp", max_steps=24, logger=CSVLogger(out, name="logs"),
        callbacks=[Warmup(5), diagnostics, guard, LRLogger()], enable_progress_bar=False,
        enable_model_summary=False, enable_checkpointing=False, log_every_n_steps=1,
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
    }
    (out / f"rank{trainer.global_rank}.json").write_text(json.dumps(record))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
