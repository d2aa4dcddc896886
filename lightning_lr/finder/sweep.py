"""The LR range test: sweep the LR over a few optimizer steps, record the loss, and put everything back."""

from __future__ import annotations

import math
import random
import sys
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_info, rank_zero_only
from torch.optim import Optimizer
from tqdm import tqdm
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


@dataclass(frozen=True)
class FinderSettings:
    """How a range test sweeps and reads its curve; validated on construction.

    Args:
        min_lr: first LR of the sweep.
        max_lr: last LR of the sweep.
        num_steps: optimizer steps of the sweep (at least 10).
        mode: ``"exponential"`` (evenly on a log scale, the usual) or ``"linear"``.
        stop_factor: stop once the smoothed loss exceeds this multiple of its best.
        beta: smoothing of the loss (bias-corrected exponential moving average).
        rule: the rule a result's ``suggestion`` reports (``steepest``, ``valley``, ``minimum``
            or ``peak``); all are computed.

    Example:
        >>> [f"{lr:g}" for lr in FinderSettings(min_lr=1e-4, max_lr=1.0, num_steps=13).lrs()[::3]]
        ['0.0001', '0.001', '0.01', '0.1', '1']
    """

    min_lr: float = 1e-7
    max_lr: float = 10.0
    num_steps: int = 100
    mode: SweepMode = "exponential"
    stop_factor: float = 4.0
    beta: float = 0.98
    rule: str = "valley"

    def __post_init__(self) -> None:
        check_positive("min_lr", self.min_lr)
        check_positive("max_lr", self.max_lr)
        if self.max_lr <= self.min_lr:
            raise fail(
                "max_lr",
                self.max_lr,
                f"must be greater than `min_lr`={self.min_lr!r}",
                "Sweep upwards, e.g. 1e-7 to 10.",
            )
        check_int("num_steps", self.num_steps, 10, "A range test needs at least 10 steps; 100 is usual.")
        check_choice("mode", self.mode, ("exponential", "linear"))
        check_range("stop_factor", self.stop_factor, 1.0, math.inf, low_open=True, high_open=True)
        check_range("beta", self.beta, 0.0, 1.0, high_open=True)
        check_choice("rule", self.rule, tuple(RULES))

    def lrs(self) -> list[float]:
        """The LR of each planned step."""
        return sweep_lrs(self.min_lr, self.max_lr, self.num_steps, self.mode)


@dataclass
class LRFinderResult:
    """What a range test saw and what it suggests.

    Attributes:
        lrs: the LR of each step that ran (of the first param group; the others kept their ratio).
        losses: the training loss each of those optimizer steps saw.
        suggestions: every rule's :class:`~lightning_lr.finder.rules.Suggestion`.
        rule: the rule :attr:`suggestion` reports.
        stopped_early: the loss blew up before the last step.
        smoothed: the smoothed losses the rules read.
        configured_lr: the first group's LR as the model configured it (its scheduler's base LR),
            before the sweep took over; :meth:`factor` relates a suggestion to it.
    """

    lrs: list[float]
    losses: list[float]
    suggestions: dict[str, Suggestion]
    rule: str = "valley"
    stopped_early: bool = False
    smoothed: list[float] = field(default_factory=list)
    configured_lr: float | None = None

    @property
    def suggestion(self) -> float | None:
        """The default rule's LR, or ``None`` when it could make none (see its ``reason``)."""
        return self.suggestions[self.rule].lr

    def factor(self, reference: float | None = None) -> float | None:
        """What to multiply the LRs by to run at the suggestion, or ``None`` without one.

        ``reference`` is the first group's current base LR (default: :attr:`configured_lr`); every
        group scales by the same factor, so LR multipliers and scaling rules keep their ratios.
        """
        reference = self.configured_lr if reference is None else reference
        if self.suggestion is None or not reference:
            return None
        return self.suggestion / reference

    def to_dict(self) -> dict[str, Any]:
        """Plain data (lists, numbers, strings): for logs, checkpoints and broadcasts."""
        data = asdict(self)
        data["suggestions"] = {name: asdict(value) for name, value in self.suggestions.items()}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LRFinderResult:
        """The inverse of :meth:`to_dict`."""
        suggestions = {name: Suggestion(**value) for name, value in data["suggestions"].items()}
        return cls(**{**data, "suggestions": suggestions})

    def plot(self, path: str | Path, *, title: str = "LR range test") -> Path:
        """Draw loss against LR (log scale) with each rule's suggestion marked; write a PNG."""
        from lightning_lr.plot import plot_lr_finder

        return plot_lr_finder(self, path, title=title)


Reduce = Callable[[torch.Tensor], torch.Tensor]
BAR_FORMAT = "{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_noinv_fmt}{postfix}]"
"""Lightning's TQDM progress bar layout."""


class _Sweep(pl.Callback):
    """Sets the sweep's LR before each update, records the loss, stops once it blows up."""

    def __init__(self, settings: FinderSettings, reduce: Reduce | None, progress: bool) -> None:
        self.settings = settings
        self.planned = settings.lrs()
        self.reduce = reduce
        self.progress = progress
        self.lrs: list[float] = []
        self.losses: list[float] = []
        self.ratios: list[float] = []
        self.configured_lr: float | None = None
        self.stopped_early = False
        self._loss: torch.Tensor | None = None
        self._bar: Any = None

    @override
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        groups = trainer.optimizers[0].param_groups
        self.configured_lr = float(groups[0].get("initial_lr", groups[0]["lr"]))
        first = float(groups[0]["lr"]) or 1.0
        self.ratios = [float(group["lr"]) / first for group in groups]  # the groups keep their ratios
        if self.progress and getattr(rank_zero_only, "rank", 0) == 0:  # the process, not the sweep
            self._bar = tqdm(
                total=self.settings.num_steps,
                desc="LR finder",
                file=sys.stdout,
                dynamic_ncols=True,
                leave=False,
                smoothing=0,
                bar_format=BAR_FORMAT,
            )

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
        step_loss = self._loss if self.reduce is None else self.reduce(self._loss)
        loss = float(trainer.strategy.reduce(step_loss, reduce_op="mean"))
        self._loss = None
        self.losses.append(loss)
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix(lr=f"{self.lrs[-1]:.2e}", loss=f"{loss:.4g}", refresh=False)
        # the same cut as the rules make: a non-finite loss, or the blow-up past stop_factor x best
        smoothed = smooth(self.losses, self.settings.beta)
        if usable_count(smoothed, self.settings.stop_factor) < len(self.losses):
            self.stopped_early = True
            trainer.should_stop = True

    @override
    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


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
    Trainer, its callbacks, loggers or optimizers is touched. To run the finder inside a fit (at its
    start, or at given epochs), and under DDP, use the :class:`~lightning_lr.callbacks.LRFinder`
    callback.

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
        update_hparams: scale ``model.hparams["lr"]`` (which the mixin reads) so that the first
            param group runs at the suggestion.
        enable_progress_bar: show the sweep's progress; default: as ``trainer`` does, else yes.

    Returns:
        The sweep's LRs, losses and suggestions.

    Raises:
        ValueError: bad arguments, or no training data to sweep on.
    """
    settings = FinderSettings(min_lr, max_lr, num_steps, mode, stop_factor, beta, rule)
    if train_dataloaders is None and datamodule is None and not _has_own_data(model):
        raise ValueError(
            "`find_lr` has no training data: pass `train_dataloaders` or `datamodule`, or define "
            "`train_dataloader()` in the model."
        )
    result = range_test(model, settings, train_dataloaders, datamodule, trainer, enable_progress_bar)
    factor = result.factor()
    if update_hparams and factor is not None:
        model.hparams["lr"] = model.hparams["lr"] * factor if "lr" in model.hparams else result.suggestion
    report(result)
    return result


def range_test(
    model: pl.LightningModule,
    settings: FinderSettings,
    train_dataloaders: Any = None,
    datamodule: pl.LightningDataModule | None = None,
    trainer: pl.Trainer | None = None,
    enable_progress_bar: bool | None = None,
    reduce: Reduce | None = None,
) -> LRFinderResult:
    """The sweep itself, on validated settings; see :func:`find_lr`.

    ``reduce`` combines each step's loss across processes (the mean over DDP ranks), so that every
    rank records the same curve, stops at the same step and reads the same suggestions.
    """
    saved = _snapshot(model)
    datamodule_trainer = getattr(datamodule, "trainer", None)
    progress = enable_progress_bar
    if progress is None:
        progress = trainer is None or trainer.progress_bar_callback is not None
    sweep = _Sweep(settings, reduce, progress)
    try:
        with tempfile.TemporaryDirectory(prefix="lightning-lr-find-") as scratch:
            runner = pl.Trainer(**_sweep_settings(trainer, scratch, settings.num_steps), callbacks=[sweep])
            with warnings.catch_warnings():  # the sweep validates nothing on purpose
                warnings.filterwarnings("ignore", message=".*`validation_step` but have no `val_dataloader`")
                runner.fit(model, train_dataloaders=train_dataloaders, datamodule=datamodule)
    finally:
        _restore(model, saved)
        if datamodule is not None:
            datamodule.trainer = datamodule_trainer
    lrs, losses = sweep.lrs[: len(sweep.losses)], sweep.losses
    return LRFinderResult(
        lrs,
        losses,
        _suggestions(lrs, losses, settings.stop_factor, settings.beta),
        settings.rule,
        sweep.stopped_early,
        smooth(losses, settings.beta),
        sweep.configured_lr,
    )


def report(result: LRFinderResult) -> None:
    """Print every rule's suggestion and its reason (on rank zero)."""
    for name, suggestion in result.suggestions.items():
        value = "none" if suggestion.lr is None else f"{suggestion.lr:.3g}"
        default = " (default)" if name == result.rule else ""
        rank_zero_info(f"LR finder: {name}{default}: {value} ({suggestion.reason})")


def _suggestions(
    lrs: list[float], losses: list[float], stop_factor: float, beta: float
) -> dict[str, Suggestion]:
    if len(losses) < 10:
        reason = f"the sweep ran only {len(losses)} steps before the loss blew up; lower `min_lr`"
        return {name: Suggestion(name, None, None, reason) for name in RULES}
    return suggest_all(lrs, losses, stop_factor=stop_factor, beta=beta)


def _has_own_data(model: pl.LightningModule) -> bool:
    return type(model).train_dataloader is not pl.LightningModule.train_dataloader


def _sweep_settings(trainer: pl.Trainer | None, scratch: str, num_steps: int) -> dict[str, Any]:
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
        "enable_progress_bar": False,  # the sweep draws its own bar
    }
    if trainer is not None:
        device = trainer.strategy.root_device
        settings["accelerator"] = "gpu" if device.type == "cuda" else "cpu"
        if device.type == "cuda":
            settings["devices"] = [device.index or 0]  # this rank's own GPU, not the first one
        settings["precision"] = trainer.precision
        settings["accumulate_grad_batches"] = trainer.accumulate_grad_batches
        settings["gradient_clip_val"] = trainer.gradient_clip_val
        settings["gradient_clip_algorithm"] = trainer.gradient_clip_algorithm
    return settings


def _snapshot(model: pl.LightningModule) -> dict[str, Any]:
    try:
        attached = model.trainer
    except RuntimeError:
        attached = None
    return {
        "weights": {name: value.detach().clone() for name, value in model.state_dict().items()},
        "device": next((p.device for p in model.parameters()), None),
        "training": model.training,
        "trainer": attached,
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        "python": random.getstate(),
        "numpy": np.random.get_state(),
    }


def _restore(model: pl.LightningModule, saved: dict[str, Any]) -> None:
    if saved["device"] is not None:
        model.to(saved["device"])  # the sweep's Trainer moves the model to the CPU when it ends
    model.load_state_dict(saved["weights"])
    model.train(saved["training"])
    model.trainer = saved["trainer"]
    torch.set_rng_state(saved["torch"])
    if saved["cuda"] is not None:
        torch.cuda.set_rng_state_all(saved["cuda"])
    random.setstate(saved["python"])
    np.random.set_state(saved["numpy"])
