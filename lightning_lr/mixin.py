"""ConfigureOptimizersMixin: hyperparameters (or YAML) in, Lightning's optimizer dict out."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.utilities import rank_zero_info
from lightning.pytorch.utilities.types import OptimizerLRScheduler
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler, ReduceLROnPlateau

from lightning_lr._internals import load_fit_train_data, release_fit_train_data
from lightning_lr.callbacks.optimizer_mode import OptimizerMode
from lightning_lr.callbacks.plateau_monitor import PlateauMonitor
from lightning_lr.callbacks.plateau_resume import PlateauResume
from lightning_lr.lengths import RunLength, cadence, run_length_from_trainer
from lightning_lr.optimizers import (
    build_optimizer,
    effective_weight_decay,
    has_mode_switch,
    lr_scale,
    optimizer_class,
    param_groups,
)
from lightning_lr.plateau import ReduceOnPlateau
from lightning_lr.schedule_lr import ScheduleLR
from lightning_lr.schedules import Hold, Schedule
from lightning_lr.settings import OptimizerSettings


class ConfigureOptimizersMixin:
    """Give a LightningModule its ``configure_optimizers`` from ``self.hparams``.

    Inherit it before ``LightningModule`` and call ``self.save_hyperparameters()``; the hparams
    named in :class:`~lightning_lr.settings.OptimizerSettings` (``lr``, ``optimizer``,
    ``schedule``, ``interval``, ``frequency``, ``monitor``, ``lr_multipliers``, ``no_decay``,
    ``lr_scaling``, ...) configure it, and the rest are the model's own.

    The schedule advances once per optimizer step (gradient accumulation counts once) and
    ``frequency=n`` means every ``n`` optimizer steps. Lengths in epochs or fractions of the run
    resolve against the real run. A plateau schedule is stepped after validation on ``monitor``.

    Example:
        >>> import lightning.pytorch as pl
        >>> import torch
        >>> from lightning_lr.schedules import CosineDecay, Warmup
        >>> class Model(ConfigureOptimizersMixin, pl.LightningModule):
        ...     def __init__(self, lr=1e-3, schedule=Warmup(CosineDecay(100), 10)):
        ...         super().__init__()
        ...         self.save_hyperparameters()
        ...         self.layer = torch.nn.Linear(4, 2)
        >>> config = Model().configure_optimizers()
        >>> type(config["lr_scheduler"]["scheduler"]).__name__, config["lr_scheduler"]["interval"]
        ('ScheduleLR', 'step')
    """

    scheduler_step_every: int = 1
    """Optimizer steps between two steps of a torch scheduler with ``interval="step"`` (Lightning is
    handed ``frequency=1`` and :meth:`lr_scheduler_step` skips the others)."""

    def optimizer_settings(self) -> OptimizerSettings:
        """The validated settings read from ``self.hparams``; override to set them in code."""
        return OptimizerSettings.from_hparams(_module(self).hparams)

    def configure_optimizers(self) -> OptimizerLRScheduler:
        module = _module(self)
        trainer = _trainer(module)
        data_was_loaded = trainer is None or trainer.train_dataloader is not None
        try:
            return self._configure_optimizers(module, trainer)
        finally:
            if not data_was_loaded and trainer is not None and trainer.ckpt_path is not None:
                # the run length was read from train data loaded before the checkpoint is restored;
                # let Lightning load it again after, with the loaders' saved state (mid-epoch resume)
                release_fit_train_data(trainer)

    def _configure_optimizers(
        self, module: pl.LightningModule, trainer: pl.Trainer | None
    ) -> OptimizerLRScheduler:
        settings = self.optimizer_settings()
        scale, batch_sizes = _lr_scale(settings, module, trainer)
        decay = effective_weight_decay(settings.optimizer, settings.weight_decay)
        groups, multipliers = param_groups(
            module, lr_multipliers=settings.lr_multipliers, no_decay=settings.no_decay, weight_decay=decay
        )
        optimizer = build_optimizer(
            settings.optimizer,
            groups,
            multipliers,
            lr=settings.lr,
            weight_decay=settings.weight_decay,
            kwargs=settings.optimizer_kwargs,
            lr_scale=scale,
        )
        if batch_sizes is not None:
            _log_scaled_lr(settings, trainer, optimizer, scale, *batch_sizes)
        self.scheduler_step_every = 1
        if settings.schedule is None:
            return {"optimizer": optimizer}
        scheduler = _build_scheduler(settings, optimizer, trainer)
        steps = cadence(settings.interval, settings.frequency, closed_form=isinstance(scheduler, ScheduleLR))
        self.scheduler_step_every, frequency = steps.step_every, steps.lightning_frequency
        return {  # type: ignore[return-value]
            "optimizer": optimizer,
            "lr_scheduler": {
                "scheduler": scheduler,
                "interval": settings.interval,
                "frequency": frequency,
                "monitor": settings.monitor,
                "name": settings.scheduler_name,
            },
        }

    def lr_scheduler_step(self, scheduler: Any, metric: Any | None) -> None:
        """Step the scheduler, once every ``frequency`` optimizer steps with ``interval="step"``."""
        if self.scheduler_step_every > 1 and _module(self).trainer.global_step % self.scheduler_step_every:
            return
        super().lr_scheduler_step(scheduler, metric)  # type: ignore[misc]

    def configure_callbacks(self) -> list[pl.Callback]:
        """Adds :class:`~lightning_lr.OptimizerMode` for schedule-free optimizers.

        A callable optimizer hides its class, so it gets the callback too; the callback only
        switches optimizers that have ``train()``/``eval()``. A plateau schedule (or a torch
        scheduler built from a callable, which may be one) gets
        :class:`~lightning_lr.PlateauResume`, so that a resumed run
        lowers the LR on the same plateaus as an uninterrupted one, and a plateau schedule
        :class:`~lightning_lr.callbacks.plateau_monitor.PlateauMonitor`, which refuses a ``monitor``
        that was never logged, listing the metrics that were.
        """
        settings = self.optimizer_settings()
        callbacks: list[pl.Callback] = []
        optimizer = settings.optimizer
        if not isinstance(optimizer, (str, type)) or has_mode_switch(optimizer_class(optimizer)):
            callbacks.append(OptimizerMode())
        if settings.schedule is not None and not isinstance(settings.schedule, Schedule):
            callbacks.append(PlateauResume())
        if settings.is_plateau:
            callbacks.append(PlateauMonitor())
        return callbacks

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Store a schedule or optimizer class hparam as plain data.

        Lightning resumes with ``torch.load(weights_only=True)``, which refuses pickled classes.
        """
        key = pl.LightningModule.CHECKPOINT_HYPER_PARAMS_KEY
        hparams = checkpoint.get(key)
        if isinstance(hparams, dict):
            checkpoint[key] = {name: _plain_setting(name, value) for name, value in hparams.items()}
        super().on_save_checkpoint(checkpoint)  # type: ignore[misc]


def _module(obj: object) -> pl.LightningModule:
    if not isinstance(obj, pl.LightningModule):
        raise TypeError(
            f"ConfigureOptimizersMixin must be mixed into a LightningModule, not "
            f"{type(obj).__name__}: `class Model(ConfigureOptimizersMixin, LightningModule)`."
        )
    return obj


def _trainer(module: pl.LightningModule) -> pl.Trainer | None:
    try:
        return module.trainer
    except RuntimeError:  # not attached: configure_optimizers called by hand
        return None


def _plain_setting(name: str, value: Any) -> Any:
    if name == "schedule" and isinstance(value, (Schedule, ReduceOnPlateau)):
        return value.to_config()
    if name == "optimizer" and isinstance(value, type):
        return f"{value.__module__}.{value.__qualname__}"
    return value


def _lr_scale(
    settings: OptimizerSettings, module: pl.LightningModule, trainer: pl.Trainer | None
) -> tuple[float, tuple[int, int] | None]:
    """The LR scale factor, and the effective and base batch sizes it comes from."""
    if settings.lr_scaling == "none":
        return 1.0, None
    if trainer is None:
        raise ValueError(
            f"`lr_scaling`={settings.lr_scaling!r} needs the Trainer to know the batch size; "
            "attach the module to a Trainer (call trainer.fit)."
        )
    load_fit_train_data(trainer)
    batch_size = module.hparams.get("batch_size", getattr(trainer.train_dataloader, "batch_size", None))
    if not isinstance(batch_size, int) or batch_size <= 0:
        raise ValueError(
            f"`lr_scaling`={settings.lr_scaling!r} could not find the batch size (got "
            f"{batch_size!r}): add a `batch_size` hyperparameter to the module."
        )
    effective = batch_size * trainer.world_size * trainer.accumulate_grad_batches
    base = int(settings.base_batch_size or effective)
    return lr_scale(settings.lr_scaling, effective, base), (effective, base)


def _log_scaled_lr(
    settings: OptimizerSettings,
    trainer: pl.Trainer | None,
    optimizer: Optimizer,
    scale: float,
    effective: int,
    base: int,
) -> None:
    """Log the scaled peak LR, read from the optimizer (a callable optimizer carries its own LR)."""
    scaled_lr = float(optimizer.defaults["lr"])
    rank_zero_info(
        f"lightning_lr: peak LR scaled {settings.lr_scaling} from {scaled_lr / scale:g} at batch "
        f"{base} to {scaled_lr:g} at effective batch {effective}."
    )
    scaled = {
        "lr_scaling": settings.lr_scaling,
        "effective_batch_size": effective,
        "base_batch_size": base,
        "scaled_lr": scaled_lr,
    }
    for logger in [] if trainer is None else trainer.loggers:
        logger.log_hyperparams(scaled)


def _build_scheduler(
    settings: OptimizerSettings, optimizer: Optimizer, trainer: pl.Trainer | None
) -> LRScheduler | ReduceLROnPlateau:
    """The scheduler (its cadence: :func:`~lightning_lr.lengths.cadence`)."""
    schedule = settings.schedule
    if isinstance(schedule, ReduceOnPlateau):
        return ReduceLROnPlateau(optimizer, **schedule.torch_kwargs())
    if isinstance(schedule, Schedule):
        run: RunLength | None = None
        if settings.interval == "step":
            hold = cadence("step", settings.frequency, closed_form=True).hold
            if hold > 1:
                schedule = Hold(schedule, hold)
            if trainer is not None:
                run = run_length_from_trainer(trainer, interval="step")
            return ScheduleLR(optimizer, schedule.resolve(run))
        if trainer is not None:
            run = run_length_from_trainer(trainer, interval="epoch", frequency=settings.frequency)
        return ScheduleLR(optimizer, schedule.resolve(run))
    if schedule is None or not callable(schedule):
        raise TypeError(f"`schedule` cannot build a scheduler from {schedule!r}.")
    scheduler = schedule(optimizer)
    if not isinstance(scheduler, (LRScheduler, ReduceLROnPlateau)):
        raise TypeError(f"`schedule` callable must return a torch LR scheduler, got {scheduler!r}.")
    if (
        isinstance(scheduler, ReduceLROnPlateau)
        and settings.interval == "step"
        and settings.monitor.lower().startswith("val")
    ):
        raise ValueError(
            f"`interval`='step' with ReduceLROnPlateau on `monitor`={settings.monitor!r}: use "
            "interval='epoch', so the plateau is checked after each validation."
        )
    return scheduler
