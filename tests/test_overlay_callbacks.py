"""Warmup and WarmRestarts as overlays: exact against closed forms and against the scheduler alone."""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from conftest import StopAt, TinyRegression
from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.loggers import CSVLogger

from lightning_lr import LRLogger, LRWarmup, ReduceOnPlateau, ScheduleOverlay, WarmRestarts
from lightning_lr.callbacks._lr_state import lr_state, own_lrs, restore_lr, scale_lr, scale_own_lrs
from lightning_lr.schedules import CosineDecay, CosineRestarts
from lightning_lr.schedules.warmup import warmup_ramp

LR = 0.05
MakeTrainer = Callable[..., pl.Trainer]
COSINE = {"class_path": "torch.optim.lr_scheduler.CosineAnnealingLR", "init_args": {"T_max": 12}}


def first(model: TinyRegression) -> list[float]:
    return [lrs[0] for lrs in model.seen_lrs]


def fit(
    make_trainer: MakeTrainer, callbacks: list[pl.Callback], steps: int = 24, **settings: Any
) -> TinyRegression:
    model = TinyRegression(**settings)
    make_trainer(max_steps=steps, callbacks=callbacks).fit(model)
    return model


def test_overlays_multiply_and_restore_the_schedulers_own_lr() -> None:
    optimizer = torch.optim.SGD(
        [
            {"params": [torch.nn.Parameter(torch.zeros(1))], "lr": 1.0},
            {"params": [torch.nn.Parameter(torch.zeros(1))], "lr": 0.1},
        ]
    )
    scale_lr(optimizer, "a", 0.5)
    scale_lr(optimizer, "b", 0.2)
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([0.1, 0.01])
    assert own_lrs(optimizer) == [1.0, 0.1]
    optimizer.step()  # the post-hook gives the scheduler its values back
    assert [g["lr"] for g in optimizer.param_groups] == [1.0, 0.1]
    scale_lr(optimizer, "a", 0.5)
    restore_lr(optimizer)  # an update that never happened
    assert [g["lr"] for g in optimizer.param_groups] == [1.0, 0.1]


def test_warmup_without_a_scheduler_is_the_ramp_then_the_constant_lr(make_trainer: MakeTrainer) -> None:
    model = fit(make_trainer, [LRWarmup(6)])
    assert first(model)[0] > 0
    assert first(model) == pytest.approx(
        [LR * warmup_ramp(k, 6, "linear", 0.0) for k in range(6)] + [LR] * 18
    )
    assert all(b > a for a, b in zip(first(model)[:6], first(model)[1:7]))


@pytest.mark.parametrize("shape", ["linear", "cosine", "exponential"])
def test_warmup_over_our_schedule_multiplies_it_and_leaves_it_exact_after(
    make_trainer: MakeTrainer, shape: str
) -> None:
    model = fit(make_trainer, [LRWarmup(5, shape=shape)], schedule=CosineDecay(24))
    start = 0.01 if shape == "exponential" else 0.0
    expected = [
        LR * CosineDecay(24)(k) * (warmup_ramp(k, 5, shape, start) if k < 5 else 1.0) for k in range(24)
    ]
    assert first(model) == pytest.approx(expected, rel=1e-12)


def test_warmup_does_not_corrupt_a_chainable_torch_scheduler(make_trainer: MakeTrainer) -> None:
    alone = fit(make_trainer, [], schedule=COSINE)
    warmed = fit(make_trainer, [LRWarmup(6)], schedule=COSINE)
    assert first(warmed)[6:] == pytest.approx(first(alone)[6:], rel=1e-12)
    assert first(warmed)[:6] == pytest.approx(
        [a * warmup_ramp(k, 6, "linear", 0.0) for k, a in enumerate(first(alone)[:6])], rel=1e-12
    )
    assert first(warmed)[5] < first(alone)[5]


def test_warmup_keeps_a_plateau_reduction_decided_during_the_warmup(make_trainer: MakeTrainer) -> None:
    # The model's val_loss never improves enough with a tiny LR, so patience 0 reduces after each epoch
    settings = {
        "lr": 1e-6,
        "schedule": ReduceOnPlateau(factor=0.5, patience=0, threshold=0.5),
        "interval": "epoch",
    }
    alone = fit(make_trainer, [], steps=32, **settings)
    warmed = fit(make_trainer, [LRWarmup(20)], steps=32, **settings)
    # epochs are 8 steps; the first epoch sets the best value, so the plateau halves the LR after
    # epochs 2 and 3 (steps 16 and 24), the first of them inside the 20-step warmup
    assert first(alone)[16] == pytest.approx(first(alone)[15] / 2)
    assert first(alone)[24] == pytest.approx(first(alone)[23] / 2)
    assert first(warmed)[16] == pytest.approx(first(alone)[16] * warmup_ramp(16, 20, "linear", 0.0))
    assert first(warmed)[20:] == pytest.approx(first(alone)[20:], rel=1e-12)


def test_warmup_keeps_every_groups_ratio(make_trainer: MakeTrainer) -> None:
    model = fit(make_trainer, [LRWarmup(4)], steps=8, lr_multipliers={"head": 0.1}, weight_decay=0.0)
    for lrs in model.seen_lrs:
        assert lrs[1] == pytest.approx(lrs[0] * 0.1)


def test_warmup_counts_optimizer_steps_under_accumulation(make_trainer: MakeTrainer) -> None:
    model = TinyRegression()
    make_trainer(max_steps=9, accumulate_grad_batches=3, callbacks=[LRWarmup(6)]).fit(model)
    assert first(model) == pytest.approx([LR * warmup_ramp(k, 6, "linear", 0.0) for k in range(6)] + [LR] * 3)


@pytest.mark.parametrize(("length", "steps"), [("1 epoch", 8), (0.25, 8), ("0.5 epochs", 4)])
def test_warmup_lengths_in_epochs_and_fractions(make_trainer: MakeTrainer, length: Any, steps: int) -> None:
    model = fit(make_trainer, [LRWarmup(length)], steps=32)
    values = first(model)
    assert values[steps - 1] < LR and values[steps] == pytest.approx(LR)


def test_untuned_warmup_lasts_two_over_one_minus_beta2(make_trainer: MakeTrainer) -> None:
    model = fit(
        make_trainer,
        [LRWarmup(shape="untuned")],
        steps=24,
        optimizer="adam",
        optimizer_kwargs={"betas": (0.9, 0.9)},
    )
    steps = math.ceil(2 / (1 - 0.9))  # 20
    assert first(model)[steps - 1] < LR and first(model)[steps] == pytest.approx(LR)
    assert first(model)[:steps] == pytest.approx(
        [LR * warmup_ramp(k, steps, "linear", 0.0) for k in range(steps)]
    )


def test_untuned_warmup_refuses_an_optimizer_without_betas(make_trainer: MakeTrainer) -> None:
    model = TinyRegression(optimizer="sgd")
    with pytest.raises(ValueError, match=r"`shape`='untuned' needs an Adam-family optimizer .*SGD"):
        make_trainer(max_steps=2, callbacks=[LRWarmup(shape="untuned")]).fit(model)
    assert model.seen_lrs == []


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"warmup_steps": -3}, ValueError, r"`warmup_steps` must be >= 1, got -3"),
        ({"warmup_steps": "3 weeks"}, ValueError, r"`warmup_steps` is not a length, got '3 weeks'"),
        ({"warmup_steps": 10, "shape": "cubic"}, ValueError, r"`shape` must be one of .*got 'cubic'"),
        ({}, ValueError, r"`warmup_steps` is required"),
        ({"warmup_steps": 10, "shape": "untuned"}, ValueError, r"`warmup_steps` is derived from beta2"),
        ({"warmup_steps": 10, "shape": "exponential", "start_factor": 0.0}, ValueError, r"`start_factor`"),
        ({"warmup_steps": 1.5}, ValueError, r"`warmup_steps` as a float is a fraction of the run"),
    ],
)
def test_warmup_refuses_bad_arguments(kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        LRWarmup(**kwargs)


def test_a_warmup_as_long_as_the_run_is_refused_before_training(make_trainer: MakeTrainer) -> None:
    model = TinyRegression()
    with pytest.raises(ValueError, match=r"`warmup_steps`=40 resolves to 40 steps, as long as the run"):
        make_trainer(max_steps=40, callbacks=[LRWarmup(40)]).fit(model)
    assert model.seen_lrs == []


def test_warm_restarts_equal_cosine_restarts_step_for_step_and_log_each_restart(
    make_trainer: MakeTrainer, tmp_path: Path
) -> None:
    model = TinyRegression()
    restarts = WarmRestarts(cycle_steps=4, cycle_mult=1.5, peak_decay=0.5)
    logger = CSVLogger(tmp_path, name="run")
    make_trainer(max_steps=30, callbacks=[restarts], logger=logger, log_every_n_steps=1).fit(model)
    reference = CosineRestarts(4, cycle_mult=1.5, peak_decay=0.5)
    assert first(model) == pytest.approx([LR * reference(k) for k in range(30)], rel=1e-12)
    boundaries = [k for k in range(1, 30) if reference.cycle_at(k)[1] == 0]
    assert [step for step, _ in restarts.restarts] == boundaries == [4, 10, 19]
    with open(Path(logger.log_dir) / "metrics.csv") as handle:
        logged = [
            (int(row["step"]), float(row["lr_restart/cycle"]))
            for row in csv.DictReader(handle)
            if row.get("lr_restart/cycle")
        ]
    assert [cycle for _, cycle in logged] == [1.0, 2.0, 3.0]


def test_warm_restarts_in_epochs(make_trainer: MakeTrainer) -> None:
    model = fit(make_trainer, [WarmRestarts(cycle_steps="1 epoch")], steps=24)
    assert first(model)[0] == first(model)[8] == first(model)[16] == pytest.approx(LR)


def test_overlays_compose_warmup_times_restarts(make_trainer: MakeTrainer) -> None:
    model = fit(make_trainer, [LRWarmup(3), WarmRestarts(cycle_steps=8)], steps=16)
    expected = [
        LR * CosineRestarts(8)(k) * (warmup_ramp(k, 3, "linear", 0.0) if k < 3 else 1) for k in range(16)
    ]
    assert first(model) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("stop_at", [3, 8, 13])
def test_resume_reproduces_every_later_lr(make_trainer: MakeTrainer, tmp_path: Path, stop_at: int) -> None:
    def callbacks() -> list[pl.Callback]:
        return [LRWarmup("1 epoch"), WarmRestarts(cycle_steps=5, cycle_mult=2.0, peak_decay=0.7)]

    settings = {"schedule": COSINE}
    full = fit(make_trainer, callbacks(), steps=24, **settings)
    first_half = TinyRegression(**settings)
    path = tmp_path / "step.ckpt"
    make_trainer(max_steps=24, callbacks=[*callbacks(), StopAt(stop_at, path)]).fit(first_half)
    assert len(first_half.seen_lrs) == stop_at
    state = torch.load(path, weights_only=True)
    assert any("Warmup" in key for key in state["callbacks"])
    resumed = TinyRegression(**settings)
    make_trainer(max_steps=24, callbacks=callbacks()).fit(resumed, ckpt_path=path)
    assert first(first_half) + first(resumed) == pytest.approx(first(full), rel=1e-12)


def test_lr_logger_sees_the_overlaid_lr(make_trainer: MakeTrainer, tmp_path: Path) -> None:
    logger = CSVLogger(tmp_path, name="run")
    model = TinyRegression()
    make_trainer(max_steps=6, callbacks=[LRWarmup(4), LRLogger()], logger=logger).fit(model)
    with open(Path(logger.log_dir) / "metrics.csv") as handle:
        rows = [row for row in csv.DictReader(handle) if row.get("lr-AdamW/default")]
    logged = [float(row["lr-AdamW/default"]) for row in sorted(rows, key=lambda row: int(row["step"]))]
    assert logged == pytest.approx(first(model))


# --- what Lightning's LearningRateMonitor sees --------------------------------------------------


class PlainAdam(pl.LightningModule):
    """A module without the mixin: one unnamed param group, Adam at 1e-3, an optional scheduler."""

    def __init__(self, scheduler: str | None = None) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)
        self.scheduler = scheduler
        self.used: dict[int, list[float]] = {}

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x = batch[0]
        return torch.nn.functional.mse_loss(self.layer(x), x.sum(dim=1, keepdim=True))

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        self.used[self.trainer.global_step] = [group["lr"] for group in optimizer.param_groups]

    def train_dataloader(self) -> torch.utils.data.DataLoader[Any]:
        data = torch.utils.data.TensorDataset(torch.randn(64, 4, generator=torch.Generator().manual_seed(0)))
        return torch.utils.data.DataLoader(data, batch_size=4)

    def configure_optimizers(self) -> Any:
        optimizer = torch.optim.Adam(self.parameters(), lr=1e-3)
        if self.scheduler is None:
            return optimizer
        return {
            "optimizer": optimizer,
            "lr_scheduler": torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, 6),
        }


def logged_values(logger: CSVLogger, key: str) -> list[tuple[int, float]]:
    """Every (step, value) written under ``key``, by any callback, in the order written."""
    with open(Path(logger.log_dir) / "metrics.csv") as handle:
        return [(int(row["step"]), float(row[key])) for row in csv.DictReader(handle) if row.get(key)]


def test_lightnings_monitor_and_lr_logger_log_the_lr_each_step_uses(
    make_trainer: MakeTrainer, tmp_path: Path
) -> None:
    logger = CSVLogger(tmp_path, name="run")
    model = PlainAdam()
    callbacks = [LRWarmup(8), LearningRateMonitor(logging_interval="step"), LRLogger()]
    make_trainer(max_steps=12, callbacks=callbacks, logger=logger, log_every_n_steps=1).fit(model)
    assert model.used[0] == pytest.approx([1e-3 * warmup_ramp(0, 8, "linear", 0.0)])  # 1.1e-4
    logged = logged_values(logger, "lr-Adam")
    assert len(logged) == 2 * 12  # the monitor at each batch start, LRLogger after each update
    for step, value in logged:
        assert value == pytest.approx(model.used[step][0], rel=1e-15), step


@pytest.mark.parametrize("accumulate", [1, 3])
def test_every_overlay_is_visible_from_the_first_micro_batch(
    make_trainer: MakeTrainer, tmp_path: Path, accumulate: int
) -> None:
    def run(callbacks: list[pl.Callback]) -> tuple[PlainAdam, CSVLogger]:
        logger = CSVLogger(tmp_path, name=f"run{len(callbacks)}")
        model = PlainAdam(scheduler="cosine")
        trainer = make_trainer(
            max_steps=12,
            callbacks=callbacks,
            logger=logger,
            log_every_n_steps=1,
            accumulate_grad_batches=accumulate,
        )
        trainer.fit(model)
        return model, logger

    overlays = [LRWarmup(4), WarmRestarts(cycle_steps=5), ScheduleOverlay(CosineDecay(12, min_factor=0.5))]
    model, logger = run([*overlays, LearningRateMonitor(logging_interval="step")])
    alone, _ = run([LearningRateMonitor(logging_interval="step")])
    logged = logged_values(logger, "lr-Adam")
    # the monitor reads at every micro-batch start: 16 batches an epoch, which with accumulation of 3
    # make five steps of 3 micro-batches and one of 1 (the epoch's last batch steps)
    assert sorted({step for step, _ in logged}) == list(range(12))
    assert len(logged) == (12 if accumulate == 1 else 32)
    for step, value in logged:
        assert value == pytest.approx(model.used[step][0], rel=1e-15), step
    factors = [warmup_ramp(k, 4, "linear", 0.0) if k < 4 else 1.0 for k in range(12)]
    expected = [
        alone.used[k][0] * factors[k] * CosineRestarts(5)(k) * CosineDecay(12, min_factor=0.5)(k)
        for k in range(12)
    ]
    # the chainable scheduler underneath computes what it does alone
    assert [model.used[k][0] for k in range(12)] == pytest.approx(expected, rel=1e-12)


def test_an_overlay_listed_after_lightnings_monitor_is_refused(make_trainer: MakeTrainer) -> None:
    model = PlainAdam()
    trainer = make_trainer(max_steps=2, callbacks=[LearningRateMonitor(), LRWarmup(4)], logger=CSVLogger("."))
    with pytest.raises(ValueError, match=r"`LRWarmup` comes after LearningRateMonitor .*Put LRWarmup before"):
        trainer.fit(model)
    assert model.used == {}


def test_a_pending_overlay_stays_out_of_the_state_and_keeps_lasting_changes() -> None:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    saved = optimizer.state_dict()
    scale_lr(optimizer, "warmup", 0.25)
    assert optimizer.param_groups[0]["lr"] == 0.25
    assert optimizer.state_dict()["param_groups"][0]["lr"] == 1.0  # a checkpoint now resumes exactly
    scale_own_lrs(optimizer, 0.5)  # a lasting change made while the overlay is applied ...
    optimizer.param_groups[0]["lr"] *= 0.5
    optimizer.step()
    assert optimizer.param_groups[0]["lr"] == 0.5  # ... survives the restore
    scale_lr(optimizer, "warmup", 0.25)
    optimizer.load_state_dict(saved)  # a rollback: the loaded LR is the scheduler's own
    assert optimizer.param_groups[0]["lr"] == 1.0
    optimizer.step()
    assert optimizer.param_groups[0]["lr"] == 1.0


def test_warm_restarts_over_a_third_of_the_run_tile_it(make_trainer: MakeTrainer) -> None:
    restarts = WarmRestarts(cycle_steps=1 / 3)
    model = fit(make_trainer, [restarts], steps=32)
    assert [step for step, _ in restarts.restarts] == [10, 21]  # cycles of 10, 11 and 11 steps
    assert first(model)[31] == pytest.approx(LR * CosineRestarts(11)(10), rel=1e-12)  # the floor's edge


def test_the_lr_state_is_one_object_per_optimizer_and_goes_with_it() -> None:
    import gc
    import weakref

    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    state = lr_state(optimizer)
    assert lr_state(optimizer) is state
    scale_lr(optimizer, "warmup", 0.5)  # the overlay and ...
    assert state.own_lrs == [1.0] and state.factors == {"warmup": 0.5}
    gone = weakref.ref(state)
    del optimizer, state
    gc.collect()
    assert gone() is None  # ... everything kept about the optimizer goes with it
