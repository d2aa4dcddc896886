"""LRFinder: run the LR range test inside a fit (at its start, or at given epochs) and use its answer."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch.optim.lr_scheduler import LRScheduler, OneCycleLR
from typing_extensions import override

from lightning_lr._validate import check_int, fail
from lightning_lr.callbacks._lr_state import scale_lrs
from lightning_lr.finder.recipe import schedule_kind
from lightning_lr.finder.result import FinderSettings, LRFinderResult, report
from lightning_lr.finder.sweep import range_test
from lightning_lr.schedules import Schedule


class LRFinder(pl.Callback):
    """Run an LR range test when training starts (or at given epochs) and train at its suggestion.

    At the start of each epoch in ``epochs`` (epoch 0: before the first step, when the optimizer
    and its schedulers exist), the callback sweeps the LR on the fit's own training data from the
    current weights (see :func:`~lightning_lr.finder.find_lr`: a Trainer of its own, everything put
    back afterwards), then, with ``apply=True``, multiplies the LR of every param group, their
    ``initial_lr`` and the schedulers' base LRs by ``suggestion / base LR`` (the first group's base
    LR, i.e. its scheduler's), and ``pl_module.hparams["lr"]`` by the same factor. Ratios between
    groups (LR multipliers, no-decay groups) are kept, and a schedule, ``Warmup`` or
    ``WarmRestarts`` goes on from the new base LR: with a warmup + cosine schedule the suggestion
    is the peak LR.

    Under DDP every rank sweeps its own shard with the step losses averaged over the ranks, so all
    ranks see the same curve; rank 0's result is then broadcast, so every rank applies the same LR.
    Only rank 0 writes the plot. Epochs already swept are kept in the checkpoint, so resuming does
    not sweep them again (and the LRs restored from the checkpoint already carry the change).

    What the LR is for is read from the fit: the kind of its schedule (asked of the schedule, see
    :func:`~lightning_lr.finder.recipe.schedule_kind`) and the optimizer steps left in the run, unless
    ``schedule`` / ``total_steps`` are given. The defaults are the recipe the benchmark measures.

    Args:
        epochs: epochs at whose start to sweep; ``(0,)`` = once, before training.
        settings: the finder's settings (:class:`~lightning_lr.finder.FinderSettings`).
        apply: change the LR to the suggestion; ``False`` only reports it.
        plot: PNG of each sweep, relative to the run's log directory (``{epoch}`` is filled in);
            ``None`` skips it, and so does a run without a logger unless the path is absolute.
        enable_progress_bar: show the sweep's progress; default: as the Trainer does.
        min_lr, max_lr, num_steps, repeats, seed, mode, stop_factor, beta, rule, schedule,
            total_steps, confirm, confirm_share: the fields of
            :class:`~lightning_lr.finder.FinderSettings` (see there), replacing those of ``settings``;
            ``None`` keeps them.

    Example:
        >>> LRFinder(rule="peak").settings.rule
        'peak'
    """

    def __init__(
        self,
        epochs: Sequence[int] = (0,),
        *,
        settings: FinderSettings | None = None,
        min_lr: float | None = None,
        max_lr: float | None = None,
        num_steps: int | None = None,
        repeats: int | None = None,
        seed: int | None = None,
        mode: str | None = None,
        stop_factor: float | None = None,
        beta: float | None = None,
        rule: str | None = None,
        schedule: str | None = None,
        total_steps: int | None = None,
        confirm: int | None = None,
        confirm_share: float | None = None,
        apply: bool = True,
        plot: str | None = "lr_finder_epoch{epoch}.png",
        enable_progress_bar: bool | None = None,
    ) -> None:
        # named one by one (not **options) so that LightningCLI can read them from a config; a
        # None keeps the value of `settings`, whose defaults are written once, in FinderSettings
        given = {
            "min_lr": min_lr,
            "max_lr": max_lr,
            "num_steps": num_steps,
            "repeats": repeats,
            "seed": seed,
            "mode": mode,
            "stop_factor": stop_factor,
            "beta": beta,
            "rule": rule,
            "schedule": schedule,
            "total_steps": total_steps,
            "confirm": confirm,
            "confirm_share": confirm_share,
        }
        self.settings = FinderSettings.build(
            settings, **{name: value for name, value in given.items() if value is not None}
        )
        if isinstance(epochs, (str, bytes)) or not isinstance(epochs, Sequence) or not epochs:
            raise fail("epochs", epochs, "must be a non-empty list of epoch numbers", "E.g. `epochs=[0]`.")
        self.epochs = sorted({check_int("epochs", epoch, 0) for epoch in epochs})
        if not isinstance(apply, bool):
            raise fail("apply", apply, "must be True or False")
        self.apply = apply
        self.plot = plot
        self.enable_progress_bar = enable_progress_bar
        self.results: dict[int, LRFinderResult] = {}
        self.applied: dict[int, float] = {}

    @property
    def suggestion(self) -> float | None:
        """The latest sweep's suggestion (``None`` before any, or when it could make none)."""
        return self.results[max(self.results)].suggestion if self.results else None

    @override
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._maybe_sweep(trainer, pl_module)  # epoch 0 before any step; the data is loaded by now

    @override
    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._maybe_sweep(trainer, pl_module)

    def _maybe_sweep(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        epoch = trainer.current_epoch
        if epoch not in self.epochs or epoch in self.results:
            return
        result = self._sweep(trainer, pl_module)
        self.results[epoch] = result
        reference = _base_lr(trainer)
        factor = result.factor(reference)
        if factor is None:
            why = result.suggestions[result.rule].reason
            rank_zero_warn(f"LRFinder (epoch {epoch}): no `{result.rule}` suggestion, LR unchanged: {why}")
        elif self.apply:
            scale_lrs(trainer, factor)
            if "lr" in pl_module.hparams:
                pl_module.hparams["lr"] = pl_module.hparams["lr"] * factor
            self.applied[epoch] = factor
            rank_zero_info(
                f"LRFinder (epoch {epoch}): base LR {reference:.3g} -> {result.suggestion:.3g} "
                f"(`{result.rule}` rule; every group x{factor:.3g})"
            )
        if result.suggestion is not None:
            for logger in trainer.loggers:
                logger.log_metrics({"lr_finder/suggestion": result.suggestion}, step=trainer.global_step)
        target = Path(self.plot.format(epoch=epoch)) if self.plot else None
        if target is not None and not target.is_absolute():
            # a relative plot belongs in the log directory; a run without a logger has none, and the
            # working directory is no place for it
            folder = trainer.log_dir if trainer.loggers else None  # a collective under DDP: every rank
            target = None if folder is None else Path(folder) / target
        if target is not None and trainer.is_global_zero:
            from lightning_lr.plot import plot_lr_finder  # matplotlib only when a plot is asked for

            path = plot_lr_finder(result, target, title=f"LR range test, epoch {epoch}")
            rank_zero_info(f"LRFinder: plot written to {path}")

    def _sweep(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> LRFinderResult:
        progress = self.enable_progress_bar
        if progress is None:
            progress = trainer.progress_bar_callback is not None
        distributed = trainer.world_size > 1

        def mean_over_ranks(loss: torch.Tensor) -> torch.Tensor:
            on_device = loss.to(trainer.strategy.root_device)
            reduced: torch.Tensor = trainer.strategy.reduce(on_device, reduce_op="mean")
            return reduced

        result = range_test(
            pl_module,
            fit_settings(self.settings, trainer),
            train_dataloaders=trainer.train_dataloader,
            trainer=trainer,
            enable_progress_bar=progress,
            reduce=mean_over_ranks if distributed else None,
        )
        if distributed:
            result = LRFinderResult.from_dict(trainer.strategy.broadcast(result.to_dict(), src=0))
        if trainer.is_global_zero:
            report(result)
        return result

    @override
    def state_dict(self) -> dict[str, Any]:
        return {
            "results": {epoch: result.to_dict() for epoch, result in self.results.items()},
            "applied": dict(self.applied),
        }

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.results = {int(k): LRFinderResult.from_dict(v) for k, v in state_dict["results"].items()}
        self.applied = {int(k): float(v) for k, v in state_dict["applied"].items()}


def _base_lr(trainer: pl.Trainer) -> float | None:
    """The first param group's base LR: its scheduler's, else its ``initial_lr``, else its LR."""
    optimizer = trainer.optimizers[0]
    for config in trainer.lr_scheduler_configs:
        scheduler = config.scheduler
        base_lrs = getattr(scheduler, "base_lrs", None)
        if isinstance(scheduler, LRScheduler) and scheduler.optimizer is optimizer and base_lrs:
            return float(base_lrs[0])
    group = optimizer.param_groups[0]
    return float(group.get("initial_lr", group["lr"]))


def fit_settings(settings: FinderSettings, trainer: pl.Trainer) -> FinderSettings:
    """``settings`` with what the LR is for read from the fit where left open: the optimizer steps
    left in the run and the kind of the first optimizer's schedule."""
    total = trainer.estimated_stepping_batches
    left = int(total) - trainer.global_step if math.isfinite(total) else None
    total_steps = settings.total_steps or (max(left, 1) if left is not None else None)
    kind = settings.schedule
    if kind is None:
        optimizer = trainer.optimizers[0]
        schedulers = [
            c.scheduler
            for c in trainer.lr_scheduler_configs
            if getattr(c.scheduler, "optimizer", None) is optimizer
        ]
        kind = "constant"
        if schedulers:
            schedule = getattr(schedulers[0], "schedule", None)
            if isinstance(schedule, Schedule) and total_steps is not None:
                kind = schedule_kind(schedule, trainer.global_step + total_steps)
            else:
                kind = "one-cycle" if isinstance(schedulers[0], OneCycleLR) else "decay"
    return replace(settings, schedule=kind, total_steps=total_steps)
