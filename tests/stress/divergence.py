"""Inject NaN, inf and 100x loss spikes at seeded random steps under ``DivergenceGuard``.

A run passes when it completes with finite weights, the guard caught exactly the faults it must
(every NaN and inf; a spike when the spiked loss is above ``spike_factor`` times the running
level, which a 100x spike of a batch far below that level is not), the LR ends at
``lr * backoff ** rollbacks`` (every run has at least one NaN or inf, so it ends lower), and after
each rollback the weights equal, bit for bit, those recorded at the snapshot the guard went back
to: the last step ``m <= fault`` with ``m % snapshot_every == 0`` that was not itself a rollback
(or the start).
"""

from __future__ import annotations

import math
import random
import tempfile
import warnings
from dataclasses import dataclass
from typing import Any

import lightning.pytorch as pl
import torch

from lightning_lr import DivergenceGuard
from lightning_lr.schedules import Constant

from .models import ReliabilityModel

LR, BACKOFF, STEPS, GUARD_WARMUP = 0.05, 0.5, 40, 3


class GuardView(pl.Callback):
    """What the guard is about to judge at each step: the loss, its running and start level, healthy steps."""

    def __init__(self, guard: DivergenceGuard) -> None:
        self.guard = guard
        self.seen: dict[int, tuple[float, float | None, float | None, int]] = {}

    def on_before_optimizer_step(self, trainer: pl.Trainer, *args: Any) -> None:
        loss = float(trainer.callback_metrics["train_loss"])
        rule = self.guard.rule
        self.seen[trainer.global_step] = (loss, rule.level, rule.start, rule.healthy_steps)

    def must_catch(self, step: int) -> bool:
        loss, level, start, healthy = self.seen[step]
        rule = self.guard.rule
        if not math.isfinite(loss):
            return True
        if level is None or healthy < rule.warmup_steps:
            return False
        reference = max(level, rule.level_floor * (level if start is None else start))
        return loss > rule.spike_factor * reference


class WeightsAt(pl.Callback):
    """The weights after every optimizer step (after the guard acted), and at the start."""

    def __init__(self) -> None:
        self.after: dict[int, dict[str, torch.Tensor]] = {}

    def _record(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.after[trainer.global_step] = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._record(trainer, pl_module)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        self._record(trainer, pl_module)


@dataclass
class InjectionResult:
    seed: int
    faults: dict[int, float]
    snapshot_every: int
    passed: bool = False
    detail: str = ""

    @property
    def name(self) -> str:
        shown = ", ".join(f"{step}:{factor:g}" for step, factor in sorted(self.faults.items()))
        return f"seed {self.seed} (faults {shown}; snapshot_every {self.snapshot_every})"


def plan(seed: int) -> tuple[dict[int, float], int]:
    """The seed's faults (1 to 3 steps, the first NaN or inf, then any of NaN, inf, a 100x spike)."""
    rng = random.Random(seed)
    steps = sorted(rng.sample(range(GUARD_WARMUP + 3, STEPS - 2), rng.randint(1, 3)))
    kinds = [rng.choice([math.nan, math.inf])] + [rng.choice([math.nan, math.inf, 100.0]) for _ in steps[1:]]
    faults = dict(zip(steps, kinds))
    return faults, rng.choice([1, 2, 3, 5, 7])


def inject(seed: int) -> InjectionResult:
    faults, every = plan(seed)
    result = InjectionResult(seed, faults, every)
    try:
        _inject(result)
    except Exception as error:
        result.detail = f"{type(error).__name__}: {error}"
    return result


def _inject(result: InjectionResult) -> None:
    faults, every = result.faults, result.snapshot_every
    pl.seed_everything(result.seed, verbose=False)
    model = ReliabilityModel(lr=LR, schedule=Constant(), faults=faults)
    guard = DivergenceGuard(backoff=BACKOFF, snapshot_every=every, warmup_steps=GUARD_WARMUP, max_retries=10)
    weights, view = WeightsAt(), GuardView(guard)
    with tempfile.TemporaryDirectory(prefix="divergence-") as root, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = pl.Trainer(
            accelerator="cpu",
            max_steps=STEPS,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            limit_val_batches=0,
            default_root_dir=root,
            callbacks=[view, guard, weights],
        )
        trainer.fit(model)
    problems = []
    if trainer.global_step != STEPS:
        problems.append(f"stopped at step {trainer.global_step} of {STEPS}")
    if not all(torch.isfinite(value).all() for value in model.state_dict().values()):
        problems.append("non-finite weights at the end")
    caught = [event["step"] for event in guard.events]
    expected = [step for step in sorted(view.seen) if view.must_catch(step)]
    if caught != expected or not set(expected) <= set(faults) or not caught:
        problems.append(f"caught faults at {caught}, expected {expected}, injected at {sorted(faults)}")
    expected_lr = LR * BACKOFF ** len(caught)
    if not math.isclose(model.seen_lrs[-1][0], expected_lr, rel_tol=1e-12):
        problems.append(f"final LR {model.seen_lrs[-1][0]!r}, expected {expected_lr!r}")
    rollbacks = {step + 1 for step in caught}  # the batch ends at which the guard rolled back
    for step in caught:
        target = max(m for m in range(0, step + 1) if m == 0 or (m % every == 0 and m not in rollbacks))
        restored, snapshot = weights.after[step + 1], weights.after[target]
        different = [name for name, value in snapshot.items() if not torch.equal(value, restored[name])]
        if different:
            problems.append(f"after the rollback at {step}, {different} differ from the snapshot at {target}")
    result.passed = not problems
    missed = len(faults) - len(caught)
    result.detail = "; ".join(problems) or (
        f"{len(caught)} rollbacks, LR x{BACKOFF ** len(caught):g}"
        + (f"; {missed} spike(s) below spike_factor x level, rightly let through" if missed else "")
    )
