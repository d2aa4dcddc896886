"""LRLogger, read back from the files of real CSV and TensorBoard loggers."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from conftest import StopAt, TinyRegression
from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from lightning_lr import LRLogger
from lightning_lr.schedules import CosineDecay, OneCycle, StepDecay

MakeTrainer = Callable[..., pl.Trainer]


def csv_columns(logger: CSVLogger) -> dict[str, dict[int, float]]:
    with open(Path(logger.log_dir) / "metrics.csv") as handle:
        rows = list(csv.DictReader(handle))
    columns: dict[str, dict[int, float]] = {}
    for row in rows:
        for key, value in row.items():
            if key not in ("step", "epoch") and value:
                columns.setdefault(key, {})[int(row["step"])] = float(value)
    return columns


def test_every_group_lr_momentum_and_weight_decay_per_step(make_trainer: MakeTrainer, tmp_path: Path) -> None:
    logger = CSVLogger(tmp_path, name="run")
    model = TinyRegression(
        optimizer="sgd",
        optimizer_kwargs={"momentum": 0.8},
        weight_decay=1e-3,
        lr_multipliers={"head": 0.5},
        schedule=CosineDecay(10),
    )
    make_trainer(max_steps=10, logger=logger, callbacks=[LRLogger(log_weight_decay=True)]).fit(model)
    columns = csv_columns(logger)
    names = [group["name"] for group in model.trainer.optimizers[0].param_groups]
    assert set(names) == {"default", "default/no_decay", "head", "head/no_decay"}
    for index, name in enumerate(names):
        assert columns[f"lr-SGD/{name}"] == pytest.approx(
            {k: lrs[index] for k, lrs in enumerate(model.seen_lrs)}
        )
        assert set(columns[f"momentum-SGD/{name}"].values()) == {0.8}
        assert set(columns[f"weight_decay-SGD/{name}"].values()) == ({0.0} if "no_decay" in name else {1e-3})
    assert columns["lr-SGD/head"][3] == pytest.approx(0.5 * columns["lr-SGD/default"][3])


def test_tensorboard_gets_the_same_values_and_adam_logs_beta1(
    make_trainer: MakeTrainer, tmp_path: Path
) -> None:
    logger = TensorBoardLogger(tmp_path, name="tb")
    model = TinyRegression(optimizer="adam", weight_decay=0.0, schedule=StepDecay(3, 0.5))
    make_trainer(max_steps=7, logger=logger, callbacks=[LRLogger()]).fit(model)
    events = EventAccumulator(logger.log_dir)
    events.Reload()
    lrs = {event.step: event.value for event in events.Scalars("lr-Adam")}
    assert lrs == pytest.approx({k: 0.05 * 0.5 ** (k // 3) for k in range(7)})
    assert [event.value for event in events.Scalars("momentum-Adam")] == pytest.approx([0.9] * 7)


def test_grad_norm_is_measured_before_clipping(make_trainer: MakeTrainer, tmp_path: Path) -> None:
    norms: list[float] = []

    class Probe(pl.Callback):
        def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module: Any, optimizer: Any) -> None:
            grads = [p.grad.norm(2) for p in pl_module.parameters() if p.grad is not None]
            norms.append(float(torch.stack(grads).norm(2)))

    logger = CSVLogger(tmp_path, name="run")
    model = TinyRegression(lr=0.01)
    trainer = make_trainer(
        max_steps=5, logger=logger, gradient_clip_val=1e-4, callbacks=[LRLogger(log_grad_norm=True), Probe()]
    )
    trainer.fit(model)
    logged = csv_columns(logger)["grad_norm"]
    assert [logged[k] for k in range(5)] == pytest.approx(norms, rel=1e-5)
    assert min(norms) > 1e-3  # far above the clipping threshold, so clipping did not shape them


def test_effective_lr_of_learning_rate_free_optimizers(make_trainer: MakeTrainer, tmp_path: Path) -> None:
    logger = CSVLogger(tmp_path, name="run")
    model = TinyRegression(lr=1.0, optimizer="prodigy", weight_decay=0.0)
    make_trainer(max_steps=4, logger=logger, callbacks=[LRLogger()]).fit(model)
    columns = csv_columns(logger)
    d = model.trainer.optimizers[0].param_groups[0]["d"]
    assert set(columns["lr-Prodigy"].values()) == {1.0}
    assert columns["lr_effective-Prodigy"][3] == pytest.approx(d)


def test_schedule_free_logs_its_scheduled_lr(make_trainer: MakeTrainer, tmp_path: Path) -> None:
    logger = CSVLogger(tmp_path, name="run")
    model = TinyRegression(
        lr=0.01, optimizer="schedulefree_adamw", weight_decay=0.0, optimizer_kwargs={"warmup_steps": 4}
    )
    make_trainer(max_steps=6, logger=logger, callbacks=[LRLogger()]).fit(model)
    effective = csv_columns(logger)["lr_effective-AdamWScheduleFree"]
    assert effective[0] < effective[2] < effective[4] == pytest.approx(0.01)


def test_epoch_interval_logs_once_per_epoch(make_trainer: MakeTrainer, tmp_path: Path) -> None:
    logger = CSVLogger(tmp_path, name="run")
    model = TinyRegression(weight_decay=0.0, schedule=StepDecay(8, 0.1))
    make_trainer(max_epochs=3, logger=logger, callbacks=[LRLogger(logging_interval="epoch")]).fit(model)
    lrs = csv_columns(logger)["lr-AdamW"]
    assert lrs == pytest.approx({7: 0.05, 15: 0.005, 23: 0.0005})


def test_every_n_steps_thins_the_log(make_trainer: MakeTrainer, tmp_path: Path) -> None:
    logger = CSVLogger(tmp_path, name="run")
    model = TinyRegression(weight_decay=0.0)
    make_trainer(max_steps=10, logger=logger, callbacks=[LRLogger(every_n_steps=4)]).fit(model)
    assert sorted(csv_columns(logger)["lr-AdamW"]) == [0, 4, 8]


def test_without_a_logger_it_refuses_before_training(make_trainer: MakeTrainer) -> None:
    model = TinyRegression()
    with pytest.raises(ValueError, match=r"`LRLogger` needs a logger"):
        make_trainer(max_steps=2, callbacks=[LRLogger()]).fit(model)
    assert model.seen_lrs == []


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"logging_interval": "batch"}, r"`logging_interval` must be one of 'step', 'epoch', got 'batch'"),
        ({"every_n_steps": 0}, r"`every_n_steps` must be >= 1, got 0"),
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        LRLogger(**kwargs)


def momentums(optimizer: torch.optim.Optimizer) -> float:
    group = optimizer.param_groups[0]
    return float(group["betas"][0] if "betas" in group else group["momentum"])


class MomentumProbe(pl.Callback):
    """The momentum each optimizer step uses."""

    def __init__(self) -> None:
        self.seen: list[float] = []

    def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module: Any, optimizer: Any) -> None:
        self.seen.append(momentums(optimizer))


def torch_one_cycle_momentums(optimizer: torch.optim.Optimizer, steps: int) -> list[float]:
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, 0.05, total_steps=steps, pct_start=0.25)
    seen = []
    for step in range(steps):
        seen.append(momentums(optimizer))
        if step < steps - 1:
            optimizer.step()
            scheduler.step()
    return seen


@pytest.mark.parametrize(("optimizer", "kwargs"), [("sgd", {"momentum": 0.9}), ("adam", {})])
def test_one_cycle_momentum_through_the_mixin_is_torchs_and_logged_by_both_loggers(
    make_trainer: MakeTrainer, tmp_path: Path, optimizer: str, kwargs: dict[str, Any]
) -> None:
    logger = CSVLogger(tmp_path, name="run")
    model = TinyRegression(
        optimizer=optimizer, optimizer_kwargs=kwargs, weight_decay=0.0, schedule=OneCycle(20, pct_start=0.25)
    )
    probe = MomentumProbe()
    callbacks = [LearningRateMonitor(log_momentum=True), LRLogger(), probe]
    make_trainer(max_steps=20, logger=logger, log_every_n_steps=1, callbacks=callbacks).fit(model)
    params = [torch.nn.Parameter(torch.zeros(1))]
    reference = torch.optim.SGD(params, lr=0.05, **kwargs) if optimizer == "sgd" else torch.optim.Adam(params)
    expected = torch_one_cycle_momentums(reference, 20)
    assert probe.seen == pytest.approx(expected, rel=1e-15)
    assert min(expected) == pytest.approx(0.85) and expected[0] == pytest.approx(0.95)
    columns = csv_columns(logger)
    name = type(model.trainer.optimizers[0]).__name__
    ours = columns[f"momentum-{name}"]
    assert [ours[k] for k in range(20)] == pytest.approx(expected, rel=1e-15)
    (lightnings,) = [values for key, values in columns.items() if key.endswith("-momentum")]
    assert [lightnings[k] for k in range(20)] == pytest.approx(expected, rel=1e-15)


def test_one_cycle_momentum_resumes_exactly(make_trainer: MakeTrainer, tmp_path: Path) -> None:
    settings = {"optimizer": "sgd", "optimizer_kwargs": {"momentum": 0.9}, "schedule": OneCycle(24)}
    full = MomentumProbe()
    make_trainer(max_steps=24, callbacks=[full]).fit(TinyRegression(**settings))
    path = tmp_path / "step.ckpt"
    before = MomentumProbe()
    make_trainer(max_steps=24, callbacks=[before, StopAt(10, path)]).fit(TinyRegression(**settings))
    state = torch.load(path, weights_only=True)["lr_schedulers"][0]  # plain data only
    assert state["schedule"]["init_args"]["cycle_momentum"] is True and set(state["base_momentums"]) == {0.9}
    after = MomentumProbe()
    make_trainer(max_steps=24, callbacks=[after]).fit(TinyRegression(**settings), ckpt_path=path)
    assert before.seen + after.seen == full.seen
    assert len(set(full.seen)) > 10


class TwoGroups(pl.LightningModule):
    """No mixin: two unnamed param groups, and optionally a named scheduler."""

    def __init__(self, scheduler_name: str | None) -> None:
        super().__init__()
        self.first, self.second = torch.nn.Linear(4, 1), torch.nn.Linear(4, 1)
        self.scheduler_name = scheduler_name

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x = batch[0]
        return (self.first(x) + self.second(x)).pow(2).mean()

    def train_dataloader(self) -> torch.utils.data.DataLoader[Any]:
        data = torch.utils.data.TensorDataset(torch.randn(32, 4, generator=torch.Generator().manual_seed(0)))
        return torch.utils.data.DataLoader(data, batch_size=4)

    def configure_optimizers(self) -> Any:
        groups = [{"params": self.first.parameters(), "lr": 0.1}, {"params": self.second.parameters()}]
        optimizer = torch.optim.SGD(groups, lr=0.01, momentum=0.5)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 2, 0.5)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step", "name": self.scheduler_name},
        }


@pytest.mark.parametrize(("scheduler_name", "keys"), [(None, "lr-SGD/pg{}"), ("lr-step", "lr-step/pg{}")])
def test_a_key_both_loggers_write_holds_one_value(
    make_trainer: MakeTrainer, tmp_path: Path, scheduler_name: str | None, keys: str
) -> None:
    logger = CSVLogger(tmp_path, name="run")
    callbacks = [LearningRateMonitor(logging_interval="step"), LRLogger()]
    make_trainer(max_steps=6, logger=logger, log_every_n_steps=1, callbacks=callbacks).fit(
        TwoGroups(scheduler_name)
    )
    with open(Path(logger.log_dir) / "metrics.csv") as handle:
        rows = list(csv.DictReader(handle))
    for group, lr in ((1, 0.1), (2, 0.01)):
        key = keys.format(group)  # counted from 1, as Lightning counts them
        written = [(int(row["step"]), float(row[key])) for row in rows if row.get(key)]
        assert len(written) == 12  # each step by both
        assert all(value == pytest.approx(lr * 0.5 ** (step // 2)) for step, value in written)
