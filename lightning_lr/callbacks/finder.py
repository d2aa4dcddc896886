"""LRFinder: run the LR range test inside a fit (at its start, or at given epochs) and use its answer."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch.optim.lr_scheduler import LRScheduler
from typing_extensions import override

from lightning_lr._validate import check_int, fail
from lightning_lr.callbacks._lr_state import scale_lrs
from lightning_lr.finder.result import FinderSettings, LRFinderResult, SweepMode, report
from lightning_lr.finder.sweep import range_test


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

    Args:
        epochs: epochs at whose start to sweep; ``(0,)`` = once, before training.
        min_lr: first LR of the sweep.
        max_lr: last LR of the sweep.
        num_steps: optimizer steps of each sweep (at least 10).
        mode: ``"exponential"`` or ``"linear"`` sweep.
        stop_factor: stop once the smoothed loss exceeds this multiple of its best.
        beta: smoothing of the loss.
        rule: the rule whose suggestion is used: ``peak`` (the default: the peak LR of a warmup +
            decay or one-cycle schedule, which tolerates a higher LR), ``steepest``, ``valley``,
            ``minimum`` or ``slide``.
        apply: change the LR to the suggestion; ``False`` only reports it.
        plot: PNG of each sweep, relative to the run's log directory (``{epoch}`` is filled in);
            ``None`` skips it, and so does a run without a logger unless the path is absolute.
        enable_progress_bar: show the sweep's progress; default: as the Trainer does.

    Example:
        >>> LRFinder(rule="peak").settings.rule
        'peak'
    """

    def __init__(
        self,
        epochs: Sequence[int] = (0,),
        *,
        min_lr: float = 1e-7,
        max_lr: float = 10.0,
        num_steps: int = 100,
        mode: SweepMode = "exponential",
        stop_factor: float = 4.0,
        beta: float = 0.98,
        rule: str = "peak",
        apply: bool = True,
        plot: str | None = "lr_finder_epoch{epoch}.png",
        enable_progress_bar: bool | None = None,
    ) -> None:
        self.settings = FinderSettings(min_lr, max_lr, num_steps, mode, stop_factor, beta, rule)
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
            self.settings,
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
