"""OptimizerSettings read from hparams, in every form LightningCLI stores them, and every bad input."""

from __future__ import annotations

import dataclasses
import functools
import sys
from collections.abc import Callable
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from torch.optim.lr_scheduler import ReduceLROnPlateau, StepLR

from lightning_lr import OptimizerSettings, ReduceOnPlateau
from lightning_lr.optimizers import OPTIMIZERS
from lightning_lr.schedules import (
    Constant,
    CosineDecay,
    ExponentialDecay,
    Join,
    LinearSchedule,
    Schedule,
    StepDecay,
    Warmup,
)
from lightning_lr.settings import SETTING_NAMES

SPEC_SETTINGS = (
    "lr",
    "optimizer",
    "optimizer_kwargs",
    "weight_decay",
    "schedule",
    "interval",
    "frequency",
    "monitor",
    "lr_multipliers",
    "no_decay",
    "lr_scaling",
    "base_batch_size",
    "scheduler_name",
)


def sgd() -> torch.optim.SGD:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)


# --- reading hparams --------------------------------------------------------------------------


def test_the_mixin_reads_exactly_the_spec_settings() -> None:
    assert set(SETTING_NAMES) == set(SPEC_SETTINGS)


def test_defaults() -> None:
    settings = OptimizerSettings(lr=1e-3)
    assert (settings.optimizer, settings.optimizer_kwargs, settings.weight_decay, settings.schedule) == (
        "adamw",
        {},
        None,
        None,
    )
    assert (settings.interval, settings.frequency, settings.monitor) == ("step", 1, "val_loss")
    assert (settings.lr_multipliers, settings.no_decay, settings.lr_scaling) == ({}, None, "none")
    assert (settings.base_batch_size, settings.scheduler_name, settings.is_plateau) == (None, None, False)


def test_from_hparams_reads_every_setting_and_ignores_the_models_own() -> None:
    hparams = {
        "lr": 0.1,
        "optimizer": "sgd",
        "optimizer_kwargs": {"momentum": 0.9},
        "weight_decay": 0.01,
        "schedule": CosineDecay(10),
        "interval": "epoch",
        "frequency": 2,
        "monitor": "train_loss",
        "lr_multipliers": {"head": 2.0},
        "no_decay": ["bias"],
        "lr_scaling": "sqrt",
        "base_batch_size": 32,
        "scheduler_name": "lr",
        "hidden_size": 64,
        "batch_size": 8,
    }
    settings = OptimizerSettings.from_hparams(hparams)
    for name in SPEC_SETTINGS:
        assert getattr(settings, name) == hparams[name], name
    assert not hasattr(settings, "hidden_size")


def test_from_hparams_without_lr_says_it_is_missing() -> None:
    with pytest.raises(ValueError, match=r"`lr` is missing from the hyperparameters.*save_hyperparameters"):
        OptimizerSettings.from_hparams({"batch_size": 8})


def test_a_callable_optimizer_carries_its_own_lr() -> None:
    optimizer = functools.partial(torch.optim.SGD, lr=0.1)
    settings = OptimizerSettings(optimizer=optimizer)
    assert settings.optimizer is optimizer
    assert settings.lr is None


@pytest.mark.parametrize("spec", ["Adam", "torch.optim.RAdam", torch.optim.Adagrad])
def test_names_paths_and_classes_stay_as_given(spec: object) -> None:
    assert OptimizerSettings(lr=0.1, optimizer=spec).optimizer == spec


def test_optimizer_config_form_as_lightning_cli_stores_it() -> None:
    stored = {
        "class_path": "torch.optim.SGD",
        "init_args": {
            "lr": 0.1,
            "momentum": 0.9,
            "dampening": 0.0,
            "weight_decay": 1e-4,
            "nesterov": False,
        },
    }
    settings = OptimizerSettings.from_hparams({"optimizer": stored})
    assert settings.optimizer is torch.optim.SGD
    assert settings.lr == 0.1
    assert settings.weight_decay == 1e-4
    assert settings.optimizer_kwargs == {"momentum": 0.9, "dampening": 0.0, "nesterov": False}


def test_the_lr_and_weight_decay_hparams_take_precedence_over_init_args() -> None:
    stored = {"class_path": "torch.optim.AdamW", "init_args": {"lr": 1e-3, "weight_decay": 0.01}}
    settings = OptimizerSettings(lr=0.5, weight_decay=0.2, optimizer=stored)
    assert (settings.optimizer, settings.lr, settings.weight_decay) == (torch.optim.AdamW, 0.5, 0.2)


def test_optimizer_kwargs_override_init_args_and_params_is_dropped() -> None:
    stored = {"class_path": "sgd", "init_args": {"params": None, "momentum": 0.9, "nesterov": False}}
    settings = OptimizerSettings(lr=0.1, optimizer=stored, optimizer_kwargs={"momentum": 0.5})
    assert settings.optimizer is torch.optim.SGD
    assert settings.optimizer_kwargs == {"momentum": 0.5, "nesterov": False}


# --- schedules in config form -----------------------------------------------------------------

SCHEDULES: list[Schedule | ReduceOnPlateau] = [
    CosineDecay(total_steps=100, min_factor=0.1),
    Warmup(CosineDecay(1.0), warmup_steps="1 epoch"),
    Join([LinearSchedule(0.1, 1.0, 10), Constant(), ExponentialDecay(0.9)], boundaries=[10, 0.5]),
    StepDecay(step_size=3, gamma=0.5),
    ReduceOnPlateau(factor=0.5, patience=2),
]


@pytest.mark.parametrize("schedule", SCHEDULES, ids=lambda s: type(s).__name__)
def test_a_schedule_in_config_form_builds_the_same_schedule(schedule: Schedule | ReduceOnPlateau) -> None:
    settings = OptimizerSettings(lr=0.1, interval="epoch", schedule=schedule.to_config())
    assert settings.schedule == schedule
    assert settings.is_plateau is isinstance(schedule, ReduceOnPlateau)


def test_a_schedule_may_be_named_by_its_bare_class_name() -> None:
    config = {
        "class_path": "Warmup",
        "init_args": {
            "schedule": {"class_path": "CosineDecay", "init_args": {"total_steps": 90}},
            "warmup_steps": 10,
            "start_factor": None,
        },
    }
    assert OptimizerSettings(lr=0.1, schedule=config).schedule == Warmup(CosineDecay(90), 10)


def test_a_torch_scheduler_in_config_form_waits_for_the_optimizer() -> None:
    config = {
        "class_path": "torch.optim.lr_scheduler.StepLR",
        "init_args": {"step_size": 3, "gamma": 0.5, "last_epoch": -1, "optimizer": None},
    }
    settings = OptimizerSettings(lr=0.1, schedule=config)
    assert not settings.is_plateau
    scheduler = settings.schedule(sgd())  # type: ignore[operator]
    assert isinstance(scheduler, StepLR)
    assert (scheduler.step_size, scheduler.gamma) == (3, 0.5)


def test_a_torch_plateau_scheduler_in_config_form_is_a_plateau() -> None:
    config = {"class_path": "torch.optim.lr_scheduler.ReduceLROnPlateau", "init_args": {"factor": 0.2}}
    settings = OptimizerSettings(lr=0.1, schedule=config, interval="epoch")
    assert settings.is_plateau
    scheduler = settings.schedule(sgd())  # type: ignore[operator]
    assert isinstance(scheduler, ReduceLROnPlateau)
    assert scheduler.factor == 0.2


def test_a_scheduler_callable_is_kept() -> None:
    schedule = functools.partial(torch.optim.lr_scheduler.ExponentialLR, gamma=0.9)
    assert OptimizerSettings(lr=0.1, schedule=schedule).schedule is schedule


def test_a_plateau_on_a_training_metric_may_step_every_optimizer_step() -> None:
    settings = OptimizerSettings(lr=0.1, schedule=ReduceOnPlateau(), interval="step", monitor="train_loss")
    assert settings.is_plateau


def test_settings_are_frozen_and_replace_validates_again() -> None:
    settings = OptimizerSettings(lr=0.1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.lr = 0.2  # type: ignore[misc]
    assert settings.replace(lr=0.2).lr == 0.2
    with pytest.raises(ValueError, match=r"`frequency` must be >= 1, got 0"):
        settings.replace(frequency=0)


def test_an_unknown_optimizer_name_lists_the_valid_names() -> None:
    with pytest.raises(ValueError, match=r"`optimizer` is not a known optimizer, got 'adamz'") as error:
        OptimizerSettings(lr=0.1, optimizer="adamz")
    for name in OPTIMIZERS:
        assert name in str(error.value)


# --- bad inputs -------------------------------------------------------------------------------

TORCH = "torch.optim.lr_scheduler"


def config(class_path: str, **init_args: Any) -> dict[str, Any]:
    return {"class_path": class_path, "init_args": init_args}


def not_an_optimizer(groups: object) -> None:
    """A module-level function, so save_hyperparameters can keep it (it drops lambdas)."""


def not_a_scheduler(optimizer: object) -> str:
    return "x"


def bad(error: type[Exception], argument: str, echo: str, *, hide: str | None = None, **hparams: Any) -> Any:
    """One bad input: the hparams, the error, the argument it names in backticks, the value it echoes."""
    return pytest.param(hparams, error, argument, echo, hide, id=f"{'+'.join(hparams)}:{echo}")


BAD_INPUTS = [
    bad(ValueError, "lr", "got 0", lr=0),
    bad(ValueError, "lr", "got -0.001", lr=-1e-3),
    bad(ValueError, "lr", "missing", lr=None),
    bad(TypeError, "lr", "got '1e-3'", lr="1e-3"),
    bad(TypeError, "lr", "got True", lr=True),
    bad(ValueError, "lr", "got inf", lr=float("inf")),
    bad(ValueError, "optimizer", "got 'adamz'", optimizer="adamz"),
    bad(ValueError, "optimizer", "got 'torch.optim.Adamz'", optimizer="torch.optim.Adamz"),
    bad(TypeError, "optimizer", "Linear", optimizer=torch.nn.Linear),
    bad(TypeError, "optimizer", "got 42", optimizer=42),
    bad(ValueError, "optimizer", "got {'init_args': {'lr': 0.1}}", optimizer={"init_args": {"lr": 0.1}}),
    bad(ImportError, "optimizer", "'prodigy'", hide="prodigyopt", optimizer="prodigy"),
    bad(
        ImportError, "optimizer", "'schedulefree_adamw'", hide="schedulefree", optimizer="schedulefree_adamw"
    ),
    bad(TypeError, "optimizer", "got None", optimizer=not_an_optimizer),
    bad(ValueError, "optimizer_kwargs", "'momentun'", optimizer="sgd", optimizer_kwargs={"momentun": 0.9}),
    bad(ValueError, "optimizer_kwargs['lr']", "got 0.1", optimizer_kwargs={"lr": 0.1}),
    bad(ValueError, "optimizer_kwargs['weight_decay']", "got 0.1", optimizer_kwargs={"weight_decay": 0.1}),
    bad(TypeError, "optimizer_kwargs", "got ['momentum']", optimizer_kwargs=["momentum"]),
    bad(ValueError, "weight_decay", "got -0.1", weight_decay=-0.1),
    bad(ValueError, "interval", "got 'batch'", interval="batch"),
    bad(ValueError, "frequency", "got 0", frequency=0),
    bad(TypeError, "frequency", "got 1.5", frequency=1.5),
    bad(ValueError, "monitor", "got ''", monitor=""),
    bad(ValueError, "monitor", "got None", monitor=None),
    bad(ValueError, "lr_multipliers['backbone']", "got -0.5", lr_multipliers={"backbone": -0.5}),
    bad(TypeError, "lr_multipliers", "got ['backbone']", lr_multipliers=["backbone"]),
    bad(TypeError, "lr_multipliers['backbone']", "got 'x'", lr_multipliers={"backbone": "x"}),
    bad(ValueError, "lr_multipliers", "got 'backbon'", lr_multipliers={"backbon": 0.1}),
    bad(TypeError, "no_decay", "got 'bias'", no_decay="bias"),
    bad(ValueError, "no_decay", "got 'bais'", no_decay=["bais"], weight_decay=0.1),
    bad(ValueError, "lr_scaling", "got 'cubic'", lr_scaling="cubic"),
    bad(ValueError, "base_batch_size", "`lr_scaling`='linear', got None", lr_scaling="linear"),
    bad(ValueError, "base_batch_size", "got 0", lr_scaling="sqrt", base_batch_size=0),
    bad(
        ValueError, "schedule", "class 'CosineDecey'. Known names: Constant,", schedule=config("CosineDecey")
    ),
    bad(
        ValueError,
        "schedule",
        "'lightning_lr.schedules.Cosine'",
        schedule=config("lightning_lr.schedules.Cosine"),
    ),
    bad(ValueError, "total_steps", "got 0", schedule=config("CosineDecay", total_steps=0)),
    bad(ValueError, "schedule.init_args", "['step_sise']", schedule=config(f"{TORCH}.StepLR", step_sise=3)),
    bad(ValueError, "schedule.class_path", f"got '{TORCH}.StepLRR'", schedule=config(f"{TORCH}.StepLRR")),
    bad(
        ValueError,
        "schedule.class_path",
        "got 'torch.nope.Scheduler'",
        schedule=config("torch.nope.Scheduler"),
    ),
    bad(TypeError, "schedule", "got 42", schedule=42),
    bad(TypeError, "schedule", "got 'x'", schedule=not_a_scheduler),
    bad(ValueError, "warmup_steps", "=64 resolves to 64 steps", schedule=Warmup(Constant(), warmup_steps=64)),
    bad(ValueError, "interval", "`monitor`='val_loss'", schedule=ReduceOnPlateau()),
    bad(ValueError, "interval", "`monitor`='val_loss'", schedule=config(f"{TORCH}.ReduceLROnPlateau")),
    bad(ValueError, "interval", "`monitor`='val_loss'", schedule=functools.partial(ReduceLROnPlateau)),
]


@pytest.mark.parametrize(("hparams", "error", "argument", "echo", "hidden_package"), BAD_INPUTS)
def test_a_bad_input_raises_before_any_training_step(
    tiny_model: type[pl.LightningModule],
    make_trainer: Callable[..., pl.Trainer],
    monkeypatch: pytest.MonkeyPatch,
    hparams: dict[str, Any],
    error: type[Exception],
    argument: str,
    echo: str,
    hidden_package: str | None,
) -> None:
    if hidden_package is not None:
        monkeypatch.setitem(sys.modules, hidden_package, None)
    model = tiny_model(**hparams)
    trainer = make_trainer(max_steps=4, limit_val_batches=0)
    with pytest.raises(error) as raised:
        trainer.fit(model)
    message = str(raised.value)
    assert f"`{argument}`" in message, message
    assert echo in message, message
    assert model.seen_lrs == []  # type: ignore[attr-defined]
    assert trainer.global_step == 0


def test_the_bad_input_table_is_large_enough() -> None:
    assert len(BAD_INPUTS) >= 25
    assert len({case.values[2] for case in BAD_INPUTS}) >= 15  # many different arguments, not one many times


def test_a_plateau_stored_as_its_fields_is_rebuilt() -> None:
    # LightningCLI stores a dataclass-typed hparam as the plain mapping of its fields
    settings = OptimizerSettings.from_hparams(
        {"lr": 0.1, "interval": "epoch", "schedule": {"factor": 0.5, "patience": 1, "mode": "max"}}
    )
    assert settings.schedule == ReduceOnPlateau(factor=0.5, patience=1, mode="max")


def test_scheduler_name_must_be_text() -> None:
    with pytest.raises(TypeError, match=r"`scheduler_name` must be a string or None, got 42"):
        OptimizerSettings(lr=0.1, scheduler_name=42)  # type: ignore[arg-type]
