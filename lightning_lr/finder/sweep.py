"""The LR range test: sweep the LR over a few optimizer steps, record the loss, and put everything back."""

from __future__ import annotations

import math
import statistics
import sys
from dataclasses import asdict, replace
from typing import Any

import lightning.pytorch as pl
import torch
from torch.optim import Optimizer
from tqdm import tqdm
from typing_extensions import override

from lightning_lr._internals import process_rank
from lightning_lr.finder._state import restore, snapshot
from lightning_lr.finder.curve import Suggestion, smooth, usable_count
from lightning_lr.finder.recipe import DEFAULT_TOTAL_STEPS, schedule_kind
from lightning_lr.finder.result import FinderSettings, LRFinderResult, median_suggestion, report
from lightning_lr.finder.rules import RULES, suggest_all
from lightning_lr.finder.scratch import Reduce, fit_in_scratch
from lightning_lr.finder.trials import race, winner
from lightning_lr.schedules import Schedule

BAR_FORMAT = "{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_noinv_fmt}{postfix}]"
"""Lightning's TQDM progress bar layout."""


class _Sweep(pl.Callback):
    """Sets the sweep's LR before each update, records the loss, stops once it blows up."""

    def __init__(self, settings: FinderSettings, reduce: Reduce | None, progress: bool, label: str) -> None:
        self.settings = settings
        self.label = label
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
        if self.progress and process_rank() == 0:  # the process, not the sweep
            self._bar = tqdm(
                total=self.settings.num_steps,
                desc=self.label,
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
    settings: FinderSettings | None = None,
    update_hparams: bool = False,
    enable_progress_bar: bool | None = None,
    **options: Any,
) -> LRFinderResult:
    """Run an LR range test (Smith 2017, arXiv:1506.01186) and suggest an LR.

    The LR rises from ``min_lr`` to ``max_lr`` over ``num_steps`` optimizer steps (all param groups
    keep their ratios) while the training loss of each step is recorded; a sweep stops once the
    smoothed loss exceeds ``stop_factor`` times its best. ``repeats`` sweeps run from the same
    weights over the batches in other (seeded) orders, and each rule's pick is the median of its
    picks over the sweeps: one sweep's pick moves by x/÷ 1.5-2 with the batch order alone. The
    default rule, ``peak``, divides the LR at the smoothed minimum by a factor that depends on what
    the LR is for (:mod:`lightning_lr.finder.recipe`): ``schedule`` and ``total_steps``, read from the
    model's ``schedule`` hparam and from ``trainer`` when not given.

    The sweeps run in a Trainer of their own (same accelerator, precision, gradient accumulation
    and clipping as ``trainer`` when given; no logger, no checkpoint, no callback of yours), and
    afterwards the model's weights and the torch, Python and NumPy random states are put back
    exactly as they were. To run the finder inside a fit, and under DDP, use the
    :class:`~lightning_lr.LRFinder` callback.

    Args:
        model: the LightningModule; its ``configure_optimizers`` builds the optimizer swept.
        train_dataloaders: training data, unless ``datamodule`` or the model provides it.
        datamodule: a datamodule providing the training data.
        trainer: the Trainer whose hardware and training settings the sweep copies, and whose
            ``max_steps`` / ``max_epochs`` give the run's length.
        settings: the finder's settings (:class:`FinderSettings`); default: its defaults.
        update_hparams: scale ``model.hparams["lr"]`` (which the mixin reads) so that the first
            param group runs at the suggestion.
        enable_progress_bar: show the sweep's progress; default: as ``trainer`` does, else yes.
        **options: fields of :class:`FinderSettings` replacing those of ``settings`` (``min_lr``,
            ``max_lr``, ``num_steps``, ``repeats``, ``seed``, ``mode``, ``stop_factor``, ``beta``,
            ``rule``, ``schedule``, ``total_steps``).

    Returns:
        The sweeps' LRs, losses and suggestions, and the settings used.

    Raises:
        ValueError: bad settings, or no training data to sweep on.
        TypeError: an option that is not a setting.
    """
    chosen = FinderSettings.build(settings, **options)
    if train_dataloaders is None and datamodule is None and not _has_own_data(model):
        raise ValueError(
            "`find_lr` has no training data: pass `train_dataloaders` or `datamodule`, or define "
            "`train_dataloader()` in the model."
        )
    if chosen.schedule is None:
        chosen = replace(chosen, schedule=_model_schedule(model, chosen.total_steps))
    result = range_test(model, chosen, train_dataloaders, datamodule, trainer, enable_progress_bar)
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
    """The sweeps themselves, on validated settings; see :func:`find_lr`.

    ``reduce`` combines each step's loss across processes (the mean over DDP ranks), so that every
    rank records the same curves, stops at the same step and reads the same suggestions. A
    ``total_steps`` left open is read from ``trainer`` (its ``max_steps``, else ``max_epochs`` times
    the batches the sweep saw per epoch), else the default.
    """
    saved = snapshot(model)
    datamodule_trainer = getattr(datamodule, "trainer", None)
    progress = enable_progress_bar
    if progress is None:
        progress = trainer is None or trainer.progress_bar_callback is not None
    sweeps: list[_Sweep] = []
    batches: float = math.inf
    try:
        for repeat in range(settings.repeats):
            restore(model, saved)
            torch.manual_seed(settings.seed + repeat)  # the batch order; the weights are the same
            sweep = _Sweep(settings, reduce, progress, f"LR finder {repeat + 1}/{settings.repeats}")
            runner = fit_in_scratch(model, sweep, settings.num_steps, trainer, train_dataloaders, datamodule)
            batches = runner.num_training_batches
            sweeps.append(sweep)
    finally:
        restore(model, saved)
        if datamodule is not None:
            datamodule.trainer = datamodule_trainer
    total_steps = settings.total_steps or _run_steps(trainer, batches) or DEFAULT_TOTAL_STEPS
    used = replace(settings, schedule=settings.schedule or "decay", total_steps=total_steps)
    result = combine(sweeps, used)
    pick = result.suggestions[used.rule].lr
    if used.confirm and pick is not None:
        budget = int(used.confirm_share * total_steps)
        try:
            result.race = race(model, used, pick, budget, train_dataloaders, datamodule, trainer, reduce)
        finally:
            restore(model, saved)
            if datamodule is not None:
                datamodule.trainer = datamodule_trainer
        result.confirmed = winner(result.race)
    return result


def combine(sweeps: list[_Sweep], settings: FinderSettings) -> LRFinderResult:
    """One result from the sweeps: each rule's median pick, the mean curve, the settings used."""
    divisor = settings.divisor()
    per_sweep = [
        _suggestions(
            sweep.lrs[: len(sweep.losses)], sweep.losses, settings.stop_factor, settings.beta, divisor
        )
        for sweep in sweeps
    ]
    longest = max(len(sweep.losses) for sweep in sweeps)
    lrs = settings.lrs()[:longest]
    losses = [
        statistics.fmean(sweep.losses[k] for sweep in sweeps if len(sweep.losses) > k) for k in range(longest)
    ]
    suggestions = {name: median_suggestion(name, [found[name] for found in per_sweep], lrs) for name in RULES}
    return LRFinderResult(
        lrs,
        losses,
        suggestions,
        settings.rule,
        any(sweep.stopped_early for sweep in sweeps),
        smooth(losses, settings.beta),
        sweeps[0].configured_lr,
        [list(sweep.losses) for sweep in sweeps],
        {name: [found[name].lr for found in per_sweep] for name in RULES},
        {**asdict(settings), "divisor": round(divisor, 4)},
    )


def _suggestions(
    lrs: list[float], losses: list[float], stop_factor: float, beta: float, divisor: float
) -> dict[str, Suggestion]:
    if len(losses) < 10:
        reason = f"the sweep ran only {len(losses)} steps before the loss blew up; lower `min_lr`"
        return {name: Suggestion(name, None, None, reason) for name in RULES}
    return suggest_all(lrs, losses, stop_factor=stop_factor, beta=beta, divisor=divisor)


def _model_schedule(model: pl.LightningModule, total_steps: int | None) -> str:
    """The kind of the schedule the mixin's hparams name (``decay`` without one we can read)."""
    read = getattr(model, "optimizer_settings", None)
    if read is None:
        return "decay"
    schedule = read().schedule
    if schedule is None:
        return "constant"
    if not isinstance(schedule, Schedule):
        return "decay"  # a plateau or torch scheduler: it lowers the LR it starts from
    return schedule_kind(schedule, total_steps or DEFAULT_TOTAL_STEPS)


def _run_steps(trainer: pl.Trainer | None, batches: float) -> int | None:
    """The optimizer steps ``trainer`` would run, with ``batches`` training batches per epoch."""
    if trainer is None:
        return None
    if trainer.max_steps and trainer.max_steps > 0:
        return int(trainer.max_steps)
    epochs = trainer.max_epochs
    if not epochs or epochs < 0 or not math.isfinite(batches):
        return None
    return int(epochs * math.ceil(batches / trainer.accumulate_grad_batches))


def _has_own_data(model: pl.LightningModule) -> bool:
    return type(model).train_dataloader is not pl.LightningModule.train_dataloader
