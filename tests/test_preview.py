"""LR plans: closed form for ScheduleLR, stepped copies for torch schedulers, and the PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.image
import pytest
import torch
from lightning.pytorch.utilities.types import LRSchedulerConfig

from lightning_lr import ScheduleLR
from lightning_lr.callbacks.plan_recorder import PlanAtTrainStart
from lightning_lr.plot import plot_lr_plan
from lightning_lr.preview import LRPlan, plan_lrs
from lightning_lr.schedules import CosineDecay, Warmup


def _optimizer() -> torch.optim.Optimizer:
    return torch.optim.SGD(
        [
            {"params": [torch.nn.Parameter(torch.zeros(2))], "name": "body"},
            {"params": [torch.nn.Parameter(torch.zeros(1))], "lr": 0.01, "name": "head"},
        ],
        lr=0.1,
        momentum=0.9,
    )


def test_schedule_lr_plan_is_the_closed_form_per_group() -> None:
    optimizer = _optimizer()
    schedule = Warmup(CosineDecay(40), 10)
    config = LRSchedulerConfig(ScheduleLR(optimizer, schedule), interval="step")
    plan = plan_lrs(optimizer, config, total_steps=50)
    assert plan.names == ["body", "head"]
    assert plan.lrs[0] == pytest.approx([0.1 * schedule(k) for k in range(50)])
    assert plan.lrs[1] == pytest.approx([0.01 * schedule(k) for k in range(50)])


def test_torch_scheduler_plan_matches_stepping_it_and_leaves_the_original_untouched() -> None:
    optimizer = _optimizer()
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=7)
    config = LRSchedulerConfig(scheduler, interval="step", frequency=2)
    plan = plan_lrs(optimizer, config, total_steps=30)
    reference_optimizer = _optimizer()
    reference = torch.optim.lr_scheduler.CosineAnnealingLR(reference_optimizer, T_max=7)
    expected: list[float] = []
    for k in range(30):
        expected.append(reference_optimizer.param_groups[0]["lr"])
        if (k + 1) % 2 == 0:
            reference_optimizer.step()
            reference.step()
    assert plan.lrs[0] == pytest.approx(expected)
    assert scheduler.last_epoch == 0 and optimizer.param_groups[0]["lr"] == pytest.approx(0.1)


def test_epoch_interval_steps_once_per_epoch() -> None:
    optimizer = _optimizer()
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    plan = plan_lrs(
        optimizer, LRSchedulerConfig(scheduler, interval="epoch"), total_steps=12, steps_per_epoch=4
    )
    assert plan.lrs[0] == pytest.approx([0.1] * 4 + [0.05] * 4 + [0.025] * 4)


def test_plateau_plan_is_flat_with_a_note() -> None:
    optimizer = _optimizer()
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer)
    plan = plan_lrs(
        optimizer,
        LRSchedulerConfig(scheduler, interval="epoch", monitor="val_acc", reduce_on_plateau=True),
        total_steps=5,
    )
    assert plan.lrs == [[0.1] * 5, [0.01] * 5]
    assert "val_acc" in plan.notes[0]


def test_plot_writes_a_png_with_one_line_per_distinct_curve(tmp_path: Path) -> None:
    plan = LRPlan(["a", "b", "c"], [[1.0, 0.5], [1.0, 0.5], [0.1, 0.05]], steps_per_epoch=1)
    path = plot_lr_plan(plan, tmp_path / "nested" / "plan.png", log_scale=True)
    image = matplotlib.image.imread(path)
    assert image.shape[0] > 100 and image.shape[1] > 100


def test_plan_at_train_start_stops_before_any_optimizer_step(tiny_model: Any, make_trainer: Any) -> None:
    recorder = PlanAtTrainStart(stop=True)
    model = tiny_model(schedule=Warmup(CosineDecay(1.0), 4))
    trainer = make_trainer(max_epochs=3, callbacks=[recorder])
    trainer.fit(model)
    assert model.seen_lrs == [] and trainer.global_step == 0
    assert recorder.plan is not None and len(recorder.plan.lrs[0]) == 24  # 8 batches x 3 epochs
    assert recorder.plan.steps_per_epoch == 8


def test_the_plan_of_a_torch_scheduler_under_the_mixins_frequency_matches_the_run(
    tiny_model: Any, make_trainer: Any
) -> None:
    recorder = PlanAtTrainStart(stop=False)
    step_lr = {"class_path": "torch.optim.lr_scheduler.StepLR", "init_args": {"step_size": 1, "gamma": 0.5}}
    model = tiny_model(schedule=step_lr, frequency=3, weight_decay=0.0)
    make_trainer(max_steps=12, callbacks=[recorder]).fit(model)
    assert recorder.plan is not None
    assert recorder.plan.lrs[0][:12] == pytest.approx([lrs[0] for lrs in model.seen_lrs])
    assert len(set(recorder.plan.lrs[0][:12])) == 4  # the LR halves every 3 optimizer steps
