"""ConfigureOptimizersMixin in real Trainer runs: every LR an optimizer step sees, against closed forms."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import schedulefree
import torch
import yaml
from conftest import TinyRegression
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningCLI, LRSchedulerCallable, OptimizerCallable
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.strategies import SingleDeviceStrategy
from torch.optim.lr_scheduler import ExponentialLR, ReduceLROnPlateau, StepLR

from lightning_lr import (
    ConfigureOptimizersMixin,
    OptimizerMode,
    OptimizerSettings,
    ReduceOnPlateau,
    ScheduleLR,
)
from lightning_lr.optimizers import OPTIMIZERS, optimizer_class
from lightning_lr.schedules import (
    Constant,
    CosineDecay,
    ExponentialDecay,
    Schedule,
    StepDecay,
    Warmup,
)

LR = 0.05  # TinyRegression's default peak LR
BATCHES = 8  # TinyRegression: 64 samples in batches of 8
TORCH = "torch.optim.lr_scheduler"

MakeTrainer = Callable[..., pl.Trainer]


def first_group(model: TinyRegression) -> list[float]:
    return [lrs[0] for lrs in model.seen_lrs]


def cosine(step: int, total: int, floor: float = 0.0) -> float:
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(step, total) / total))


def linear_ramp(step: int, warmup: int) -> float:
    return (step + 1) / (warmup + 1)


def changes(values: list[float]) -> list[int]:
    """The steps at which the value differs from the step before."""
    return [k for k in range(1, len(values)) if values[k] != values[k - 1]]


# --- what configure_optimizers returns --------------------------------------------------------


def test_the_module_needs_no_configure_optimizers_of_its_own() -> None:
    assert "configure_optimizers" not in vars(TinyRegression)
    assert TinyRegression.configure_optimizers is ConfigureOptimizersMixin.configure_optimizers


def test_it_returns_exactly_lightnings_dict(tiny_model: type[TinyRegression]) -> None:
    model = tiny_model(optimizer="sgd", schedule=StepDecay(step_size=3, gamma=0.5), scheduler_name="lr-sgd")
    config = model.configure_optimizers()
    assert set(config) == {"optimizer", "lr_scheduler"}
    assert type(config["optimizer"]) is torch.optim.SGD
    scheduler = config["lr_scheduler"]
    assert set(scheduler) == {"scheduler", "interval", "frequency", "monitor", "name"}
    assert isinstance(scheduler["scheduler"], ScheduleLR)
    assert scheduler["scheduler"].optimizer is config["optimizer"]
    assert (scheduler["interval"], scheduler["frequency"], scheduler["monitor"], scheduler["name"]) == (
        "step",
        1,
        "val_loss",
        "lr-sgd",
    )


def test_a_plateau_returns_torchs_scheduler_with_its_settings(tiny_model: type[TinyRegression]) -> None:
    plateau = ReduceOnPlateau(factor=0.5, patience=3, mode="max")
    model = tiny_model(schedule=plateau, interval="epoch", frequency=2, monitor="val_acc")
    scheduler = model.configure_optimizers()["lr_scheduler"]
    assert isinstance(scheduler["scheduler"], ReduceLROnPlateau)
    assert (scheduler["scheduler"].factor, scheduler["scheduler"].patience, scheduler["scheduler"].mode) == (
        0.5,
        3,
        "max",
    )
    assert (scheduler["interval"], scheduler["frequency"], scheduler["monitor"]) == ("epoch", 2, "val_acc")


def test_without_a_schedule_it_returns_only_the_optimizer(tiny_model: type[TinyRegression]) -> None:
    config = tiny_model(optimizer="adam").configure_optimizers()
    assert set(config) == {"optimizer"}
    assert type(config["optimizer"]) is torch.optim.Adam


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_every_optimizer_name_builds_its_optimizer(tiny_model: type[TinyRegression], name: str) -> None:
    optimizer = tiny_model(optimizer=name, lr=0.3).configure_optimizers()["optimizer"]
    assert type(optimizer) is optimizer_class(name)
    assert [group["lr"] for group in optimizer.param_groups] == [0.3] * len(optimizer.param_groups)


@pytest.mark.parametrize(
    "spec",
    [
        torch.optim.SGD,
        "torch.optim.SGD",
        {"class_path": "torch.optim.SGD", "init_args": {"momentum": 0.9}},
        functools.partial(torch.optim.SGD, lr=0.3, momentum=0.9),
    ],
    ids=["class", "import-path", "config-form", "optimizer-callable"],
)
def test_every_optimizer_form_builds_the_same_optimizer(tiny_model: type[TinyRegression], spec: Any) -> None:
    kwargs = {} if isinstance(spec, (dict, functools.partial)) else {"optimizer_kwargs": {"momentum": 0.9}}
    lr = None if isinstance(spec, functools.partial) else 0.3
    optimizer = tiny_model(optimizer=spec, lr=lr, **kwargs).configure_optimizers()["optimizer"]
    assert type(optimizer) is torch.optim.SGD
    assert {(g["lr"], g["momentum"]) for g in optimizer.param_groups} == {(0.3, 0.9)}
    # SGD does not decay by default; a callable hides that, so its no-decay group is kept apart.
    groups = ["default", "default/no_decay"] if lr is None else ["default"]
    assert [g["name"] for g in optimizer.param_groups] == groups


# --- the schedule in a real run ---------------------------------------------------------------


@pytest.mark.parametrize(
    "schedule",
    [
        StepDecay(step_size=3, gamma=0.5),
        StepDecay(step_size=3, gamma=0.5).to_config(),
        {"class_path": f"{TORCH}.StepLR", "init_args": {"step_size": 3, "gamma": 0.5}},
        functools.partial(StepLR, step_size=3, gamma=0.5),
    ],
    ids=["schedule", "schedule-config", "torch-config", "scheduler-callable"],
)
def test_every_schedule_form_gives_the_same_lr_at_every_step(
    tiny_model: type[TinyRegression], make_trainer: MakeTrainer, schedule: Any
) -> None:
    model = tiny_model(optimizer="sgd", schedule=schedule)
    make_trainer(max_steps=10, limit_val_batches=0).fit(model)
    assert first_group(model) == pytest.approx([LR * 0.5 ** (k // 3) for k in range(10)], rel=1e-12)


def test_the_schedule_advances_once_per_optimizer_step_under_accumulation(
    tiny_model: type[TinyRegression], make_trainer: MakeTrainer
) -> None:
    accumulate, epochs = 3, 3
    steps_per_epoch = math.ceil(BATCHES / accumulate)  # 8 batches: steps after batches 3, 6 and the last
    total = epochs * steps_per_epoch
    model = tiny_model(schedule=Warmup(CosineDecay(1.0, min_factor=0.1), warmup_steps=2))
    make_trainer(max_epochs=epochs, accumulate_grad_batches=accumulate, limit_val_batches=0).fit(model)
    expected = [LR * (linear_ramp(k, 2) if k < 2 else cosine(k - 2, total - 2, 0.1)) for k in range(total)]
    assert len(model.seen_lrs) == total
    for lrs, lr in zip(model.seen_lrs, expected):
        assert lrs == pytest.approx([lr, lr], rel=1e-12)  # AdamW: a decay and a no-decay group


@pytest.mark.parametrize(
    "schedule",
    [
        ExponentialDecay(0.5),
        {"class_path": f"{TORCH}.ExponentialLR", "init_args": {"gamma": 0.5}},
        functools.partial(ExponentialLR, gamma=0.5),
    ],
    ids=["schedule", "torch-config", "scheduler-callable"],
)
def test_frequency_counts_optimizer_steps_across_epochs(
    tiny_model: type[TinyRegression], make_trainer: MakeTrainer, schedule: Any
) -> None:
    # 8 batches, accumulation 2: 4 optimizer steps per epoch, so epochs start at steps 4 and 8,
    # where Lightning's own batch-counted `frequency` would restart its count.
    model = tiny_model(optimizer="sgd", schedule=schedule, frequency=3)
    make_trainer(max_epochs=3, accumulate_grad_batches=2, limit_val_batches=0).fit(model)
    lrs = first_group(model)
    assert len(lrs) == 12
    assert changes(lrs) == [3, 6, 9]
    assert lrs == pytest.approx([LR * 0.5 ** (k // 3) for k in range(12)], rel=1e-12)


def test_frequency_with_an_epoch_interval_counts_epochs(
    tiny_model: type[TinyRegression], make_trainer: MakeTrainer
) -> None:
    model = tiny_model(
        optimizer="sgd", schedule=StepDecay(step_size=1, gamma=0.5), interval="epoch", frequency=2
    )
    make_trainer(max_epochs=5, limit_train_batches=2, limit_val_batches=0).fit(model)
    assert first_group(model) == pytest.approx([LR * 0.5 ** ((k // 2) // 2) for k in range(10)], rel=1e-12)


# --- lengths resolve against the real run -----------------------------------------------------


@pytest.mark.parametrize(
    ("run", "total"),
    [
        ({"max_steps": 10}, 10),
        ({"max_epochs": 2, "limit_train_batches": 5, "accumulate_grad_batches": 2}, 6),
        ({"max_epochs": 2, "limit_train_batches": 0.5}, 8),
    ],
    ids=["max_steps", "epochs-limit-accumulation", "epochs-fraction-of-batches"],
)
def test_a_fraction_of_the_run_reaches_the_floor_exactly_when_the_run_ends(
    tiny_model: type[TinyRegression], make_trainer: MakeTrainer, run: dict[str, Any], total: int
) -> None:
    floor = 0.1
    model = tiny_model(optimizer="sgd", schedule=CosineDecay(total_steps=1.0, min_factor=floor))
    trainer = make_trainer(limit_val_batches=0, **run)
    trainer.fit(model)
    lrs = first_group(model)
    assert lrs == pytest.approx([LR * cosine(k, total, floor) for k in range(total)], rel=1e-12)
    assert min(lrs) > LR * floor  # not at the floor before the last step...
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(
        LR * floor, rel=1e-12
    )  # ...at it after


def test_one_epoch_of_warmup_is_the_optimizer_steps_of_one_epoch(
    tiny_model: type[TinyRegression], make_trainer: MakeTrainer
) -> None:
    warmup = math.ceil(5 / 2)  # 5 batches per epoch, accumulation 2
    model = tiny_model(optimizer="sgd", schedule=Warmup(Constant(), warmup_steps="1 epoch"))
    make_trainer(max_epochs=2, limit_train_batches=5, accumulate_grad_batches=2, limit_val_batches=0).fit(
        model
    )
    expected = [LR * (linear_ramp(k, warmup) if k < warmup else 1.0) for k in range(2 * warmup)]
    assert first_group(model) == pytest.approx(expected, rel=1e-12)


def test_epochs_resolve_when_the_run_is_set_by_max_steps_only(
    tiny_model: type[TinyRegression], make_trainer: MakeTrainer
) -> None:
    model = tiny_model(optimizer="sgd", schedule=Warmup(Constant(), warmup_steps="0.5 epochs"))
    make_trainer(max_steps=6, limit_val_batches=0).fit(model)
    assert first_group(model) == pytest.approx(
        [LR * min(linear_ramp(k, 4), 1.0) for k in range(6)], rel=1e-12
    )


def test_epochs_inside_a_schedule_hold_after_they_end(
    tiny_model: type[TinyRegression], make_trainer: MakeTrainer
) -> None:
    model = tiny_model(optimizer="sgd", schedule=CosineDecay(total_steps="2 epochs"))
    make_trainer(max_epochs=3, limit_train_batches=4, limit_val_batches=0).fit(model)
    assert first_group(model) == pytest.approx([LR * cosine(k, 8) for k in range(12)], abs=1e-15)


def test_an_epoch_interval_resolves_fractions_in_epochs(
    tiny_model: type[TinyRegression], make_trainer: MakeTrainer
) -> None:
    model = tiny_model(optimizer="sgd", schedule=CosineDecay(total_steps=1.0), interval="epoch")
    make_trainer(max_epochs=4, limit_train_batches=2, limit_val_batches=0).fit(model)
    assert first_group(model) == pytest.approx([LR * cosine(k // 2, 4) for k in range(8)], rel=1e-12)


# --- plateau ----------------------------------------------------------------------------------


class TwoMetrics(TinyRegression):
    """Logs a flat `val_flat` and a falling `val_falling`, so only the monitored one can trigger."""

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self.log("val_flat", 1.0)
        self.log("val_falling", 1.0 / (self.current_epoch + 1))


def plateau_reductions(epoch: int, patience: int) -> int:
    """Reductions torch's ReduceLROnPlateau makes before `epoch` on a metric that never improves.

    The first validation sets the best value; every `patience + 1` validations after it reduce.
    """
    return sum(1 for v in range(epoch) if v > 0 and v % (patience + 1) == 0)


@pytest.mark.parametrize(
    "schedule",
    [
        ReduceOnPlateau(factor=0.5, patience=1),
        ReduceOnPlateau(factor=0.5, patience=1).to_config(),
        {"class_path": f"{TORCH}.ReduceLROnPlateau", "init_args": {"factor": 0.5, "patience": 1}},
    ],
    ids=["plateau", "plateau-config", "torch-config"],
)
def test_a_plateau_reduces_the_lr_after_patience_epochs_of_a_flat_monitor(
    make_trainer: MakeTrainer, schedule: Any
) -> None:
    epochs = 7
    model = TwoMetrics(optimizer="sgd", schedule=schedule, interval="epoch", monitor="val_flat")
    make_trainer(max_epochs=epochs, limit_train_batches=1, limit_val_batches=1).fit(model)
    expected = [LR * 0.5 ** plateau_reductions(e, patience=1) for e in range(epochs)]
    assert first_group(model) == pytest.approx(expected, rel=1e-12)
    assert changes(first_group(model)) == [3, 5]


def test_a_plateau_watches_only_its_monitor(make_trainer: MakeTrainer) -> None:
    model = TwoMetrics(
        optimizer="sgd", schedule=ReduceOnPlateau(0.5, patience=1), interval="epoch", monitor="val_falling"
    )
    make_trainer(max_epochs=7, limit_train_batches=1, limit_val_batches=1).fit(model)
    assert first_group(model) == [LR] * 7


def test_a_monitor_never_logged_names_the_metrics_that_were(
    tiny_model: type[TinyRegression], make_trainer: MakeTrainer
) -> None:
    model = tiny_model(schedule=ReduceOnPlateau(), interval="epoch", monitor="val_acc")
    # the mixin's own message, before Lightning's (whose fix, a `monitor` key, is for hand-written dicts)
    with pytest.raises(
        ValueError,
        match=r"`monitor` was never logged.*got 'val_acc'\. "
        r"Set `monitor` to a logged metric \('train_loss', 'val_loss'\)",
    ):
        make_trainer(max_epochs=2, limit_train_batches=2, limit_val_batches=1).fit(model)


def test_a_plateau_on_a_validation_metric_with_a_step_interval_is_refused_before_training(
    tiny_model: type[TinyRegression], make_trainer: MakeTrainer
) -> None:
    model = tiny_model(schedule=ReduceOnPlateau(), interval="step", monitor="val_loss")
    with pytest.raises(
        ValueError, match=r"`interval`='step' with a plateau schedule on `monitor`='val_loss'"
    ):
        make_trainer(max_steps=3).fit(model)
    assert model.seen_lrs == []


# --- layer-wise LR and weight decay -----------------------------------------------------------

BACKBONE = ["backbone.0.weight", "backbone.0.bias", "backbone.1.weight", "backbone.1.bias"]


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        (
            {"lr_multipliers": {"backbone": 0.1}},
            [
                ("backbone", ["backbone.0.weight"], 0.1, 0.2),
                ("backbone/no_decay", BACKBONE[1:], 0.1, 0.0),
                ("default", ["head.weight"], 1.0, 0.2),
                ("default/no_decay", ["head.bias"], 1.0, 0.0),
            ],
        ),
        (
            {"lr_multipliers": {"backbone.0.*": 0.5, "head": 2.0}, "no_decay": []},
            [
                ("backbone.0.*", BACKBONE[:2], 0.5, 0.2),
                ("default", BACKBONE[2:], 1.0, 0.2),
                ("head", ["head.weight", "head.bias"], 2.0, 0.2),
            ],
        ),
        (
            {"no_decay": ["head", "*.bias"]},
            [
                ("default", ["backbone.0.weight", "backbone.1.weight"], 1.0, 0.2),
                (
                    "default/no_decay",
                    ["backbone.0.bias", "backbone.1.bias", "head.weight", "head.bias"],
                    1.0,
                    0.0,
                ),
            ],
        ),
    ],
    ids=["segments-auto-no-decay", "glob-decay-all", "no-decay-patterns"],
)
def test_param_groups_in_a_real_run(
    tiny_model: type[TinyRegression],
    make_trainer: MakeTrainer,
    settings: dict[str, Any],
    expected: list[tuple[str, list[str], float, float]],
) -> None:
    model = tiny_model(optimizer="adamw", weight_decay=0.2, schedule=ExponentialDecay(0.5), **settings)
    trainer = make_trainer(max_steps=3, limit_val_batches=0)
    trainer.fit(model)
    names = {id(p): name for name, p in model.named_parameters()}
    groups = trainer.optimizers[0].param_groups
    assert [(g["name"], [names[id(p)] for p in g["params"]], g["weight_decay"]) for g in groups] == [
        (name, params, decay) for name, params, _, decay in expected
    ]
    multipliers = [multiplier for _, _, multiplier, _ in expected]
    for k, lrs in enumerate(model.seen_lrs):
        assert lrs == pytest.approx([LR * m * 0.5**k for m in multipliers], rel=1e-12)
    assert len(model.seen_lrs) == 3


# --- LR scaling -------------------------------------------------------------------------------


class CountingCSVLogger(CSVLogger):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.scaled_lr_logs = 0

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        self.scaled_lr_logs += "scaled_lr" in dict(params)
        super().log_hyperparams(params, *args, **kwargs)


class Ranks(SingleDeviceStrategy):
    """One CPU process that reports a world size, as LR scaling sees it."""

    def __init__(self, world_size: int) -> None:
        super().__init__(device=torch.device("cpu"))
        self.world_size = world_size


@pytest.mark.parametrize(
    ("rule", "world_size", "base", "optimizer", "peak"),
    [
        ("linear", 1, 4, "sgd", LR),
        ("sqrt", 1, 4, "sgd", LR),
        ("linear", 3, 16, "sgd", LR),
        ("sqrt", 2, 128, "sgd", LR),
        ("linear", 1, 4, functools.partial(torch.optim.SGD, lr=0.1), 0.1),
    ],
    ids=["linear", "sqrt", "linear-3-ranks", "sqrt-smaller-than-base", "optimizer-callable"],
)
def test_lr_scaling_by_the_effective_batch_is_logged_once(
    tiny_model: type[TinyRegression],
    make_trainer: MakeTrainer,
    tmp_path: Path,
    rule: str,
    world_size: int,
    base: int,
    optimizer: Any,
    peak: float,
) -> None:
    batch_size, accumulate = 8, 2
    effective = batch_size * world_size * accumulate
    scale = effective / base if rule == "linear" else math.sqrt(effective / base)
    lr = None if isinstance(optimizer, functools.partial) else peak
    model = tiny_model(
        lr=lr, optimizer=optimizer, lr_scaling=rule, base_batch_size=base, batch_size=batch_size
    )
    logger = CountingCSVLogger(tmp_path, name="scaling")
    trainer = make_trainer(
        max_steps=2,
        accumulate_grad_batches=accumulate,
        limit_val_batches=0,
        logger=logger,
        strategy=Ranks(world_size),
    )
    trainer.fit(model)
    # unsafe_load: Lightning writes the model's own hparams too, a functools.partial among them
    logged = yaml.unsafe_load(Path(logger.log_dir, "hparams.yaml").read_text())
    assert logged["lr_scaling"] == rule
    assert (logged["effective_batch_size"], logged["base_batch_size"]) == (effective, base)
    assert logged["scaled_lr"] == pytest.approx(peak * scale, rel=1e-12)
    assert logger.scaled_lr_logs == 1
    assert first_group(model) == pytest.approx([peak * scale] * 2, rel=1e-12)


class NoBatchSizeHparam(TinyRegression):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        del self.hparams["batch_size"]

    def train_dataloader(self) -> torch.utils.data.DataLoader[Any]:
        return torch.utils.data.DataLoader(self.data, batch_size=16)


def test_lr_scaling_reads_the_batch_size_from_the_dataloader(make_trainer: MakeTrainer) -> None:
    model = NoBatchSizeHparam(optimizer="sgd", lr_scaling="sqrt", base_batch_size=4)
    assert "batch_size" not in model.hparams
    make_trainer(max_steps=2, limit_val_batches=0).fit(model)
    assert first_group(model) == pytest.approx([LR * 2] * 2, rel=1e-12)


def test_lr_scaling_scales_the_schedules_peak(
    tiny_model: type[TinyRegression], make_trainer: MakeTrainer
) -> None:
    model = tiny_model(
        optimizer="sgd", schedule=ExponentialDecay(0.5), lr_scaling="linear", base_batch_size=4
    )
    make_trainer(max_steps=4, limit_val_batches=0).fit(model)
    assert first_group(model) == pytest.approx([LR * 2 * 0.5**k for k in range(4)], rel=1e-12)


# --- schedule-free and prodigy ----------------------------------------------------------------


class ModeRecorder(TinyRegression):
    """Records the schedule-free optimizer's mode in every training and validation step."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.modes: list[tuple[str, bool]] = []

    def _mode(self) -> bool:
        return bool(self.trainer.optimizers[0].param_groups[0]["train_mode"])

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        self.modes.append(("train", self._mode()))
        return super().training_step(batch, batch_idx)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self.modes.append(("val", self._mode()))
        super().validation_step(batch, batch_idx)


@pytest.mark.parametrize(
    ("optimizer", "expected"),
    [
        ("schedulefree_adamw", True),
        ("schedulefree_sgd", True),
        ({"class_path": "schedulefree.SGDScheduleFree", "init_args": {"momentum": 0.8}}, True),
        (functools.partial(schedulefree.AdamWScheduleFree, lr=0.01), True),
        ("adamw", False),
        (torch.optim.SGD, False),
    ],
    ids=["adamw-sf", "sgd-sf", "config-form", "optimizer-callable", "adamw", "sgd-class"],
)
def test_schedule_free_optimizers_get_the_optimizer_mode_callback(
    tiny_model: type[TinyRegression], optimizer: Any, expected: bool
) -> None:
    callbacks = tiny_model(optimizer=optimizer, lr=0.01).configure_callbacks()
    assert any(isinstance(callback, OptimizerMode) for callback in callbacks) is expected


@pytest.mark.parametrize(
    "optimizer", ["schedulefree_adamw", functools.partial(schedulefree.AdamWScheduleFree, lr=0.01)]
)
def test_schedule_free_trains_in_train_mode_and_validates_in_eval_mode(
    make_trainer: MakeTrainer, optimizer: Any
) -> None:
    model = ModeRecorder(optimizer=optimizer, lr=0.01)
    trainer = make_trainer(max_epochs=2, limit_train_batches=3, limit_val_batches=2, num_sanity_val_steps=1)
    trainer.fit(model)
    assert any(isinstance(callback, OptimizerMode) for callback in trainer.callbacks)
    assert [kind for kind, _ in model.modes] == ["val"] + (["train"] * 3 + ["val"] * 2) * 2
    assert all(train_mode is (kind == "train") for kind, train_mode in model.modes)


def test_prodigy_builds_and_trains(tiny_model: type[TinyRegression], make_trainer: MakeTrainer) -> None:
    model = tiny_model(optimizer="prodigy", lr=1.0)
    before = [p.detach().clone() for p in model.parameters()]
    trainer = make_trainer(max_steps=5, limit_val_batches=0)
    trainer.fit(model)
    assert type(trainer.optimizers[0]) is optimizer_class("prodigy")
    assert len(model.seen_lrs) == 5
    assert all(not torch.equal(old, new) for old, new in zip(before, model.parameters()))
    assert all(torch.isfinite(p).all() for p in model.parameters())


# --- exact resume -----------------------------------------------------------------------------

RESUMES = {
    "warmup-cosine": (
        {"optimizer": "adamw", "schedule": Warmup(CosineDecay(1.0, min_factor=0.1), warmup_steps=4)},
        {"accumulate_grad_batches": 1},
        lambda k: LR * (linear_ramp(k, 4) if k < 4 else cosine(k - 4, 10, 0.1)),
    ),
    "torch-steplr-frequency-accumulation": (
        {
            "optimizer": torch.optim.SGD,
            "schedule": {"class_path": f"{TORCH}.StepLR", "init_args": {"step_size": 1, "gamma": 0.5}},
            "frequency": 3,
        },
        {"accumulate_grad_batches": 3},
        lambda k: LR * 0.5 ** (k // 3),
    ),
}


@pytest.mark.filterwarnings("ignore:Be aware that when using `ckpt_path`")
@pytest.mark.filterwarnings("ignore:You're resuming from a checkpoint that ended before the epoch ended")
@pytest.mark.parametrize("case", list(RESUMES))
def test_resume_from_any_checkpoint_gives_the_same_lr_at_every_later_step(
    make_trainer: MakeTrainer, tmp_path: Path, case: str
) -> None:
    settings, run, closed_form = RESUMES[case]
    total = 14
    full = TinyRegression(**settings)
    checkpoints = ModelCheckpoint(tmp_path / "ckpt", filename="{step}", every_n_train_steps=2, save_top_k=-1)
    make_trainer(
        max_steps=total, limit_val_batches=0, enable_checkpointing=True, callbacks=[checkpoints], **run
    ).fit(full)
    assert first_group(full) == pytest.approx([closed_form(k) for k in range(total)], rel=1e-12)

    for step in (2, 6, 8, 12):  # mid-warmup, mid-epoch, at an epoch boundary (8 batches), near the end
        path = tmp_path / "ckpt" / f"step={step}.ckpt"
        saved = torch.load(path, weights_only=True)
        assert saved["global_step"] == step
        stored = OptimizerSettings.from_hparams(saved["hyper_parameters"])
        expected = OptimizerSettings(lr=LR, **settings)
        assert stored.schedule == expected.schedule
        assert optimizer_class(stored.optimizer) is optimizer_class(expected.optimizer)
        resumed = TinyRegression(**settings)
        make_trainer(max_steps=total, limit_val_batches=0, **run).fit(resumed, ckpt_path=path)
        assert resumed.seen_lrs == full.seen_lrs[step:], step


def test_a_checkpoint_rebuilds_the_model_with_load_from_checkpoint(
    make_trainer: MakeTrainer, tmp_path: Path
) -> None:
    schedule = Warmup(CosineDecay(1.0), warmup_steps="1 epoch")
    trainer = make_trainer(max_steps=10, limit_val_batches=0)
    trainer.fit(TinyRegression(schedule=schedule, optimizer=torch.optim.RAdam))
    trainer.save_checkpoint(tmp_path / "last.ckpt")
    loaded = TinyRegression.load_from_checkpoint(tmp_path / "last.ckpt", weights_only=True)
    settings = loaded.optimizer_settings()
    assert settings.schedule == schedule
    assert optimizer_class(settings.optimizer) is torch.optim.RAdam


# --- LightningCLI -----------------------------------------------------------------------------


class CLIModel(TinyRegression):
    """The mixin's settings as typed arguments, the way LightningCLI sees a model."""

    def __init__(
        self,
        lr: float | None = None,
        optimizer: OptimizerCallable = torch.optim.Adam,
        schedule: Schedule | ReduceOnPlateau | LRSchedulerCallable | None = None,
        frequency: int = 1,
        batch_size: int = 8,
    ) -> None:
        super().__init__(
            lr=lr, optimizer=optimizer, schedule=schedule, frequency=frequency, batch_size=batch_size
        )


@pytest.mark.parametrize(
    ("schedule", "closed_form"),
    [
        (
            {
                "class_path": "lightning_lr.schedules.Warmup",
                "init_args": {
                    "schedule": {
                        "class_path": "lightning_lr.schedules.CosineDecay",
                        "init_args": {"total_steps": 1.0},
                    },
                    "warmup_steps": 2,
                },
            },
            lambda k: 0.1 * (linear_ramp(k, 2) if k < 2 else cosine(k - 2, 4)),
        ),
        (
            {"class_path": f"{TORCH}.StepLR", "init_args": {"step_size": 2, "gamma": 0.5}},
            lambda k: 0.1 * 0.5 ** (k // 2),
        ),
    ],
    ids=["lightning-lr-schedule", "torch-scheduler"],
)
def test_lightning_cli_config_forms_in_hparams(
    tmp_path: Path, schedule: dict[str, Any], closed_form: Callable[[int], float]
) -> None:
    cli = LightningCLI(
        CLIModel,
        run=False,
        save_config_callback=None,
        seed_everything_default=False,
        args={
            "model": {
                "optimizer": {"class_path": "torch.optim.SGD", "init_args": {"lr": 0.1, "momentum": 0.9}},
                "schedule": schedule,
            },
            "trainer": {
                "accelerator": "cpu",
                "max_steps": 6,
                "limit_val_batches": 0,
                "logger": False,
                "enable_checkpointing": False,
                "enable_progress_bar": False,
                "enable_model_summary": False,
                "default_root_dir": str(tmp_path),
            },
        },
    )
    assert cli.model.hparams["schedule"]["class_path"] == schedule["class_path"]  # stored in config form
    assert cli.model.hparams["optimizer"]["class_path"] == "torch.optim.SGD"
    cli.trainer.fit(cli.model)
    assert type(cli.trainer.optimizers[0]) is torch.optim.SGD
    assert cli.trainer.optimizers[0].param_groups[0]["momentum"] == 0.9
    assert first_group(cli.model) == pytest.approx([closed_form(k) for k in range(6)], rel=1e-12)
