"""OptimizerSettings: the mixin's hyperparameters, read and validated before anything is built."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from torch.optim.lr_scheduler import LRScheduler, ReduceLROnPlateau

from lightning_lr._validate import (
    check_choice,
    check_int,
    check_non_negative,
    check_positive,
    fail,
)
from lightning_lr.optimizers import LRScaling, optimizer_class
from lightning_lr.plateau import ReduceOnPlateau
from lightning_lr.schedules import SCHEDULES, Schedule
from lightning_lr.schedules._base import build_from_config

"""The hparams the mixin reads; any other hparam belongs to the model and is ignored."""

SchedulerFactory = Callable[[Any], Any]

SCHEDULE_CLASSES: dict[str, type] = {**SCHEDULES, ReduceOnPlateau.__name__: ReduceOnPlateau}
"""What the ``schedule`` setting names by class: every schedule, and ReduceOnPlateau."""


def schedule_from_config(config: Any, *, name: str = "schedule") -> Schedule | ReduceOnPlateau | None:
    """A schedule or ReduceOnPlateau from itself, ``None``, or its ``class_path``/``init_args`` form.

    The class path may be ``lightning_lr.schedules.CosineDecay``, the bare ``CosineDecay``, or the
    import path of your own :class:`~lightning_lr.schedules.Schedule` subclass.

    Raises:
        ValueError: the class is unknown (the message lists the known ones).
        TypeError: ``config`` is neither a schedule nor such a mapping.
    """
    if config is None or isinstance(config, (Schedule, ReduceOnPlateau)):
        return config
    built: Schedule | ReduceOnPlateau = build_from_config(
        config, name=name, registry=SCHEDULE_CLASSES, base=(Schedule, ReduceOnPlateau)
    )
    return built


@dataclass(frozen=True)
class OptimizerSettings:
    """Everything the mixin needs to build the optimizer and its scheduler.

    Args:
        lr: the peak learning rate (before ``lr_scaling`` and multipliers).
        optimizer: a name (``"adamw"``, see :data:`~lightning_lr.optimizers.OPTIMIZERS`), an import
            path, an optimizer class, its ``class_path``/``init_args`` form, or a callable that
            takes the param groups (LightningCLI's ``OptimizerCallable``).
        optimizer_kwargs: extra arguments of the optimizer (momentum, betas, eps, ...).
        weight_decay: weight decay; ``None`` keeps the optimizer's own default.
        schedule: a :class:`~lightning_lr.schedules.Schedule`, a
            :class:`~lightning_lr.ReduceOnPlateau`, their config form, a torch scheduler
            in config form, a callable taking the optimizer (``LRSchedulerCallable``), or ``None``.
        interval: ``"step"`` (every optimizer step) or ``"epoch"``.
        frequency: update the LR every ``frequency`` intervals (optimizer steps, not batches).
        monitor: the metric a plateau schedule watches.
        lr_multipliers: parameter-name pattern -> LR multiplier (layer-wise LR).
        no_decay: patterns of parameters without weight decay; ``None`` = biases and norm layers.
        lr_scaling: ``"none"``, ``"linear"`` or ``"sqrt"`` scaling by the effective batch size.
        base_batch_size: the batch size ``lr`` was tuned at (needed with ``lr_scaling``).
        scheduler_name: the ``name`` Lightning's LR loggers show for the scheduler.
    """

    lr: float | None = None
    optimizer: Any = "adamw"
    optimizer_kwargs: Mapping[str, Any] = field(default_factory=dict)
    weight_decay: float | None = None
    schedule: Schedule | ReduceOnPlateau | SchedulerFactory | None = None
    interval: Literal["step", "epoch"] = "step"
    frequency: int = 1
    monitor: str = "val_loss"
    lr_multipliers: Mapping[str, float] = field(default_factory=dict)
    no_decay: Sequence[str] | None = None
    lr_scaling: LRScaling = "none"
    base_batch_size: int | None = None
    scheduler_name: str | None = None

    def __post_init__(self) -> None:
        for name in ("optimizer_kwargs", "lr_multipliers"):
            if getattr(self, name) is None:  # YAML's way of saying "none"
                object.__setattr__(self, name, {})
        parts = _optimizer_parts(self.optimizer, self.optimizer_kwargs, self.lr, self.weight_decay)
        for name, value in zip(("optimizer", "optimizer_kwargs", "lr", "weight_decay"), parts):
            object.__setattr__(self, name, value)
        if self.lr is not None:
            check_positive("lr", self.lr, "Set the peak learning rate, e.g. lr=1e-3.")
        elif isinstance(self.optimizer, (str, type)):
            raise ValueError(
                "`lr` is missing from the hyperparameters: give the module an `lr` argument "
                "and call self.save_hyperparameters()."
            )
        if self.weight_decay is not None:
            check_non_negative("weight_decay", self.weight_decay)
        object.__setattr__(self, "schedule", _schedule_part(self.schedule))
        check_choice("interval", self.interval, ("step", "epoch"))
        check_int("frequency", self.frequency, 1)
        if not isinstance(self.monitor, str) or not self.monitor:
            raise fail("monitor", self.monitor, "must be the name of a logged metric", "e.g. 'val_loss'.")
        if not isinstance(self.lr_multipliers, Mapping):
            raise TypeError(
                f"`lr_multipliers` must map name patterns to numbers, got {self.lr_multipliers!r}."
            )
        for pattern, multiplier in self.lr_multipliers.items():
            check_non_negative(f"lr_multipliers[{pattern!r}]", multiplier)
        if self.no_decay is not None and (
            isinstance(self.no_decay, str) or not isinstance(self.no_decay, Sequence)
        ):
            raise TypeError(f"`no_decay` must be a list of name patterns, got {self.no_decay!r}.")
        if self.scheduler_name is not None and not isinstance(self.scheduler_name, str):
            raise TypeError(f"`scheduler_name` must be a string or None, got {self.scheduler_name!r}.")
        check_choice("lr_scaling", self.lr_scaling, ("none", "linear", "sqrt"))
        if self.lr_scaling != "none":
            if self.base_batch_size is None:
                raise fail(
                    "base_batch_size",
                    None,
                    f"is needed with `lr_scaling`={self.lr_scaling!r}",
                    "Set it to the batch size `lr` was tuned at.",
                )
            check_int("base_batch_size", self.base_batch_size, 1)
        if self.is_plateau and self.interval == "step" and self.monitor.lower().startswith("val"):
            raise ValueError(
                f"`interval`='step' with a plateau schedule on `monitor`={self.monitor!r} would step "
                "it after every optimizer step, but a validation metric only changes after validation. "
                "Use interval='epoch' (the plateau is then checked after each validation), or monitor "
                "a training metric."
            )

    @property
    def is_plateau(self) -> bool:
        schedule = self.schedule
        return isinstance(schedule, ReduceOnPlateau) or (
            isinstance(schedule, _TorchSchedulerFactory) and issubclass(schedule.cls, ReduceLROnPlateau)
        )

    @classmethod
    def from_hparams(cls, hparams: Mapping[str, Any]) -> OptimizerSettings:
        """Read the settings from a module's ``hparams`` (other keys are the model's own)."""
        return cls(**{name: hparams[name] for name in SETTING_NAMES if name in hparams})

    def replace(self, **changes: Any) -> OptimizerSettings:
        return dataclasses.replace(self, **changes)


SETTING_NAMES: tuple[str, ...] = tuple(setting.name for setting in dataclasses.fields(OptimizerSettings))
"""The hparams the mixin reads (the fields of :class:`OptimizerSettings`); the rest are the model's own."""


def _optimizer_parts(
    optimizer: Any, kwargs: Any, lr: float | None, weight_decay: float | None
) -> tuple[Any, dict[str, Any], float | None, float | None]:
    """Split LightningCLI's ``class_path``/``init_args`` form into a class, kwargs and the LR."""
    if not isinstance(kwargs, Mapping):
        raise TypeError(f"`optimizer_kwargs` must be a mapping, got {kwargs!r}.")
    options = dict(kwargs)
    if isinstance(optimizer, Mapping):
        if "class_path" not in optimizer:
            raise fail("optimizer", optimizer, "must name a class with `class_path`")
        init_args = dict(optimizer.get("init_args") or {})
        init_args.pop("params", None)
        given_lr = init_args.pop("lr", None)  # the mixin's own `lr` hparam takes precedence
        given_decay = init_args.pop("weight_decay", None)
        options = {**init_args, **options}
        optimizer = optimizer_class(str(optimizer["class_path"]))
        lr = lr if lr is not None else given_lr
        weight_decay = weight_decay if weight_decay is not None else given_decay
    elif isinstance(optimizer, (str, type)):
        optimizer_class(optimizer)  # fail early on an unknown name or missing package
    elif not callable(optimizer):
        raise TypeError(f"`optimizer` must be a name, a class or a callable, got {optimizer!r}.")
    return optimizer, options, lr, weight_decay


def _schedule_part(schedule: Any) -> Any:
    """A schedule from any of its accepted forms; a torch scheduler class stays a factory."""
    if schedule is None or isinstance(schedule, (Schedule, ReduceOnPlateau)):
        return schedule
    if isinstance(schedule, Mapping) and "class_path" not in schedule and schedule:
        # LightningCLI stores a dataclass-typed argument as the mapping of its fields
        fields = {field.name for field in dataclasses.fields(ReduceOnPlateau)}
        if set(schedule) <= fields:
            return ReduceOnPlateau(**schedule)
    if isinstance(schedule, Mapping):
        path = str(schedule.get("class_path", ""))
        if path.rsplit(".", 1)[-1] in SCHEDULE_CLASSES or not path.startswith("torch."):
            return schedule_from_config(schedule)
        return _torch_scheduler(path, dict(schedule.get("init_args") or {}))
    if callable(schedule):
        return schedule
    raise TypeError(
        f"`schedule` must be a Schedule, ReduceOnPlateau, config mapping, callable or None, got {schedule!r}."
    )


def _torch_scheduler(path: str, init_args: dict[str, Any]) -> SchedulerFactory:
    module_name, _, attribute = path.rpartition(".")
    try:
        found = getattr(importlib.import_module(module_name), attribute, None)
    except ImportError:
        found = None
    if not (isinstance(found, type) and issubclass(found, (LRScheduler, ReduceLROnPlateau))):
        raise fail("schedule.class_path", path, "is not a torch LR scheduler")
    init_args.pop("optimizer", None)
    accepted = set(inspect.signature(found.__init__).parameters)
    unknown = sorted(set(init_args) - accepted)
    if unknown:
        raise ValueError(f"`schedule.init_args` has keys {unknown!r} that {found.__name__} does not take.")
    return _TorchSchedulerFactory(found, init_args)


@dataclass(frozen=True)
class _TorchSchedulerFactory:
    """A torch scheduler class with its arguments, waiting for the optimizer."""

    cls: type
    init_args: dict[str, Any]

    def __call__(self, optimizer: Any) -> Any:
        return self.cls(optimizer, **self.init_args)
