"""The LR range test: sweep the LR over a few optimizer steps, record the loss, and put everything back."""

from __future__ import annotations

import math
import random
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_info
from torch.optim import Optimizer
from typing_extensions import override

from lightning_lr._validate import check_choice, check_int, check_positive, check_range, fail
from lightning_lr.finder.curve import Suggestion, smooth, usable_count
from lightning_lr.finder.rules import RULES, suggest_all

SweepMode = Literal["exponential", "linear"]


def sweep_lrs(min_lr: float, max_lr: float, num_steps: int, mode: SweepMode = "exponential") -> list[float]:
    """The LR of each sweep step: ``min * (max / min) ** (k / (n - 1))`` (exponential) or linear.

    Example:
        >>> [round(lr, 6) for lr in sweep_lrs(1e-3, 1e-1, 3)]
        [0.001, 0.01, 0.1]
    """
    last = num_steps - 1
    if mode == "linear":
        return [min_lr + (max_lr - min_lr) * k / last for k in range(num_steps)]
    return [min_lr * (max_lr / min_lr) ** (k / last) for k in range(num_steps)]


@dataclass
class LRFinderResult:
    """What a range test saw and what it suggests.

    Attributes:
        lrs: the LR of each step that ran (of the first param group; the others kept their ratio).
        losses: the training loss each of those optimizer steps saw.
        suggestions: every rule's :class:`~lightning_lr.finder.rules.Suggestion`.
        rule: the rule :attr:`suggestion` reports.
        stopped_early: the loss blew up before the last step.
    """

    lrs: list[float]
    losses: list[float]
    suggestions: dict[str, Suggestion]
    rule: str = "valley"
    stopped_early: bool = False
    smoothed: list[float] = field(default_factory=list)

    @property
    def suggestion(self) -> float | None:
        """The default rule's LR, or ``None`` when it could make none (see its ``reason``)."""
        return self.suggestions[self.rule].lr

    def plot(self, path: str | Path, *, title: str = "LR range test") -> Path:
        """Draw loss against LR (log scale) with each rule's suggestion marked; write a PNG."""
        from lightning_lr.plot import plot_lr_finder

        return plot_lr_finder(self, path, title=title)


class _Sweep(pl.Callback):
    """Sets the sweep's LR before each update, records the loss, stops once it blows up."""

    def __init__(self, lrs: list[float], stop_factor: float, beta: float) -> None:
        self.planned = lrs
        self.stop_factor = stop_factor
        self.beta = beta
        self.lrs: list[float] = []
        self.losses: list[float] = []
        self.ratios: list[float] = []
        self.stopped_early = False
        self._loss: torch.Tensor | None = None

    @override
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        groups = trainer.optimizers[0].param_groups
        first = float(groups[0]["lr"]) or 1.0
        self.ratios = [float(group["lr"]) / first for group in groups]  # the groups keep their ratios

    @override
    def on_before_backward(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, loss: torch.Tensor
    ) -> None:
        part = loss.detach()  # divided by accumulate_grad_batches: the parts add up to the step's loss
        self._loss = part if self._loss is None else self._loss + part

    @override
    def on_before_optimizer_step(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: Optimizer
    ) -> None:
        lr = self.planned[min(trainer.global_step, len(self.planned) - 1)]
        for group, ratio in zip(optimizer.param_groups, self.ratios):
            group["lr"] = lr * ratio
        self.lrs.append(lr)

    @override
    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self._loss is None or len(self.losses) == len(self.lrs):
            return  # an accumulation batch
        loss = float(trainer.strategy.reduce(self._loss, reduce_op="mean"))
        self._loss = None
        self.losses.append(loss)
        # the same cut as the rules make: a non-finite loss, or the blow-up past stop_factor x best
        if usable_count(smooth(self.losses, self.beta), self.stop_factor) < len(self.losses):
            self.stopped_early = True
            trainer.should_stop = True


def find_lr(
    model: pl.LightningModule,
    train_dataloaders: Any = None,
    datamodule: pl.LightningDataModule | None = None,
    *,
    trainer: pl.Trainer | None = None,
    min_lr: float = 1e-7,
    max_lr: float = 10.0,
    num_steps: int = 100,
    mode: SweepMode = "exponential",
    stop_factor: float = 4.0,
    beta: float = 0.98,
    rule: str = "valley",
    update_hparams: bool = False,
    enable_progress_bar: bool | None = None,
) -> LRFinderResult:
    """Run an LR range test (Smith 2017, arXiv:1506.01186) and suggest an LR.

    The LR rises from ``min_lr`` to ``max_lr`` over ``num_steps`` optimizer steps (all param groups
    keep their ratios) while the training loss of each step is recorded; the sweep stops once the
    smoothed loss exceeds ``stop_factor`` times its best. The sweep runs in a Trainer of its own
    (same accelerator, precision, gradient accumulation and clipping as ``trainer`` when given; no
    logger, no checkpoint, no callback of yours), and afterwards the model's weights and the torch,
    Python and NumPy random states are put back exactly as they were: nothing on disk, in your
    Trainer, its callbacks, loggers or optimizers is touched.

    Args:
        model: the LightningModule; its ``configure_optimizers`` builds the optimizer swept.
        train_dataloaders: training data, unless ``datamodule`` or the model provides it.
        datamodule: a datamodule providing the training data.
        trainer: the Trainer whose hardware and training settings the sweep copies.
        min_lr: first LR of the sweep.
        max_lr: last LR of the sweep.
        num_steps: optimizer steps of the sweep (at least 10).
        mode: ``"exponential"`` (evenly on a log scale, the usual) or ``"linear"``.
        stop_factor: stop once the smoothed loss exceeds this multiple of its best.
        beta: smoothing of the loss (bias-corrected exponential moving average).
        rule: the rule :attr:`LRFinderResult.suggestion` reports (``steepest``, ``valley``,
            ``minimum`` or ``peak``); all are computed.
        update_hparams: write the suggestion into ``model.hparams["lr"]`` (the mixin reads it).
        enable_progress_bar: show the sweep's progress; default: as ``trainer`` does, else yes.

    Returns:
        The sweep's LRs, losses and suggestions.

    Raises:
        ValueError: bad arguments, or no training data to sweep on.
    """
    check_positive("min_lr", min_lr)
    check_positive("max_lr", max_lr)
    if max_lr <= min_lr:
        raise fail(
            "max_lr", max_lr, f"must be greater than `min_lr`={min_lr!r}", "Sweep upwards, e.g. 1e-7 to 10."
        )
    check_int("num_steps", num_steps, 10, "A range test needs at least 10 steps; 100 is usual.")
    check_choice("mode", mode, ("exponential", "linear"))
    check_range("stop_factor", stop_factor, 1.0, math.inf, low_open=True, high_open=True)
    check_range("beta", beta, 0.0, 1.0, high_open=True)
    check_choice("rule", rule, tuple(RULES))
    if train_dataloaders is None and datamodule is None and not _has_own_data(model):
        raise ValueError(
            "`find_lr` has no training data: pass `train_dataloaders` or `datamodule`, or define "
            "`train_dataloader()` in the model."
        )
    saved = _snapshot(model)
    sweep = _Sweep(sweep_lrs(min_lr, max_lr, num_steps, mode), stop_factor, beta)
    try:
        with tempfile.TemporaryDirectory(prefix="lightning-lr-find-") as scratch:
            runner = pl.Trainer(
                **_sweep_settings(trainer, scratch, num_steps, enable_progress_bar), callbacks=[sweep]
            )
            runner.fit(model, train_dataloaders=train_dataloaders, datamodule=datamodule)
    finally:
        _restore(model, saved)
    lrs, losses = sweep.lrs[: len(sweep.losses)], sweep.losses
    result = LRFinderResult(
        lrs,
        losses,
        _suggestions(lrs, losses, stop_factor, beta),
        rule,
        sweep.stopped_early,
        smooth(losses, beta),
    )
    if update_hparams and result.suggestion is not None:
        model.hparams["lr"] = result.suggestion
    for name, suggestion in result.suggestions.items():
        rank_zero_info(
            f"find_lr: {name}: {suggestion.lr if suggestion.lr is None else f'{suggestion.lr:.3g}'} "
            f"({suggestion.reason})"
        )
    return result


def _suggestions(
    lrs: list[float], losses: list[float], stop_factor: float, beta: float
) -> dict[str, Suggestion]:
    if len(losses) < 10:
        reason = f"the sweep ran only {len(losses)} steps before the loss blew up; lower `min_lr`"
        return {name: Suggestion(name, None, None, reason) for name in RULES}
    return suggest_all(lrs, losses, stop_factor=stop_factor, beta=beta)


def _has_own_data(model: pl.LightningModule) -> bool:
    return type(model).train_dataloader is not pl.LightningModule.train_dataloader


def _sweep_settings(
    trainer: pl.Trainer | None, scratch: str, num_steps: int, progress: bool | None
) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "max_steps": num_steps,
        "max_epochs": -1,
        "logger": False,
        "enable_checkpointing": False,
        "enable_model_summary": False,
        "limit_val_batches": 0,
        "num_sanity_val_steps": 0,
        "default_root_dir": scratch,
        "devices": 1,
    }
    if trainer is not None:
        settings["accelerator"] = "gpu" if trainer.strategy.root_device.type == "cuda" else "cpu"
        settings["precision"] = trainer.precision
        settings["accumulate_grad_batches"] = trainer.accumulate_grad_batches
        settings["gradient_clip_val"] = trainer.gradient_clip_val
        settings["gradient_clip_algorithm"] = trainer.gradient_clip_algorithm
        settings["enable_progress_bar"] = trainer.progress_bar_callback is not None
    if progress is not None:
        settings["enable_progress_bar"] = progress
    return settings


def _snapshot(model: pl.LightningModule) -> dict[str, Any]:
    try:
        attached = model.trainer
    except RuntimeError:
        attached = None
    return {
        "weights": {name: value.detach().clone() for name, value in model.state_dict().items()},
        "training": model.training,
        "trainer": attached,
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        "python": random.getstate(),
        "numpy": np.random.get_state(),
    }


def _restore(model: pl.LightningModule, saved: dict[str, Any]) -> None:
    model.load_state_dict(saved["weights"])
    model.train(saved["training"])
    model.trainer = saved["trainer"]
    torch.set_rng_state(saved["torch"])
    if saved["cuda"] is not None:
        torch.cuda.set_rng_state_all(saved["cuda"])
    random.setstate(saved["python"])
    np.random.set_state(saved["numpy"])
