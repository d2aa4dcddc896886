"""LRDiagnostics: read the learning curves as training runs, say what is wrong with the LR, and act."""

from __future__ import annotations

import math
import statistics
from collections import deque
from typing import Any, Literal

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch.optim import Optimizer
from typing_extensions import override

from lightning_lr._validate import check_choice, check_int
from lightning_lr.callbacks._host import read_now
from lightning_lr.callbacks._lr_state import scale_lrs
from lightning_lr.callbacks._packs import LossSum, Pack, PackChannel, as_float32, read_all
from lightning_lr.callbacks._ranks import mean_over_ranks
from lightning_lr.callbacks._step_probe import StepProbe
from lightning_lr.callbacks._train_loss import TrainLossReader, close_match
from lightning_lr.callbacks.warmup import warmup_end
from lightning_lr.diagnose import (
    Diagnosis,
    DiagnosisRules,
    check_action,
    diagnose_evaluations,
    diagnose_training,
)
from lightning_lr.diagnose.report import summarise
from lightning_lr.diagnose.state import DiagnosticsState


class LRDiagnostics(pl.Callback):
    """Diagnose the LR from the learning curves: diverging, too high, too low, plateau, overfitting.

    Every ``check_every_n_steps`` optimizer steps the recent training losses (and gradient norms)
    go through :func:`~lightning_lr.diagnose.diagnose_training`; after each validation the
    per-validation training and validation losses go through
    :func:`~lightning_lr.diagnose.diagnose_evaluations`. A training finding of ``too_high`` or
    ``too_low`` counts once the same kind is found at ``rules.confirm_checks`` checks in a row (two
    by default: one unlucky window is not an alarm); ``diverging`` counts at once. Each finding is a
    :class:`~lightning_lr.diagnose.Diagnosis` with the numbers behind it and advice; the callback
    keeps them in :attr:`diagnoses`, logs ``diagnosis/<kind>`` to the loggers, prints one line
    each (rank zero), and a summary at the end of fit. With ``action="adjust"`` it also applies
    the advice: it multiplies the LR of every group and the schedulers' base LRs by the
    diagnosis' ``lr_factor``, at most ``max_adjustments`` times, and records what it did in
    :attr:`actions`. An action is first checked against the latest training evidence
    (:func:`~lightning_lr.diagnose.check_action`): the LR is never lowered while the training
    rules find it too low or the weights barely move, nor raised while they find it too high or
    the run diverging, nor brought back within 4x of an LR found wrong the other way earlier in the
    run. Such an action is not taken; :attr:`withheld` records it and why.

    What it finds and does is kept in :attr:`state`, a
    :class:`~lightning_lr.diagnose.DiagnosticsState` (plain data; its decisions, such as not
    repeating a finding for a while, are made there), and checkpointed with the recent step values.

    A ``val_metric`` that a validation run did not log gets one warning naming it and the metrics
    that were logged, and the summary says the validation rules never ran.

    Under DDP the window of losses is averaged over ranks and rank 0's decision is broadcast, so
    every rank takes the same decision at the same step.

    Per step, everything stays on the module's device (the loss, the gradient norm, the sums for
    the next validation); the numbers reach the host only at check steps, in one packed copy.

    Args:
        train_metric: the training loss as logged with ``self.log`` (its ``_step`` variant is used
            when logged with ``on_epoch=True`` too).
        val_metric: the validation metric as logged.
        action: ``"advise"`` (diagnose only) or ``"adjust"`` (diagnose and change the LR).
        rules: the thresholds; :class:`~lightning_lr.diagnose.DiagnosisRules` defaults otherwise.
        check_every_n_steps: optimizer steps between two checks of the training curve.
        mode: ``"min"`` when a lower ``val_metric`` is better, ``"max"`` otherwise.
        max_adjustments: most LR changes ``action="adjust"`` makes in one fit.
        track_update_ratio: on the steps it checks, measure how much the step changed the weights
            (``||w_new - w_old|| / ||w_old||``), which tells weights that barely move (LR too low)
            from a noisy loss, and how the next gradient aligns with the step (the sign of the LR's
            own gradient: too short steps keep pointing downhill, too long ones overshoot). Costs
            one copy of the parameters per check and a dot product at the next step.
        deferred: act on a check's numbers at the next check (True) or at once (False); None: at
            the next check on a GPU, where the numbers travel to the host without stalling it
            (so a diagnosis comes one check interval after the step it names), else at once.
    """

    def __init__(
        self,
        train_metric: str = "train_loss",
        val_metric: str = "val_loss",
        action: Literal["advise", "adjust"] = "advise",
        rules: DiagnosisRules | None = None,
        check_every_n_steps: int = 10,
        mode: Literal["min", "max"] = "min",
        max_adjustments: int = 5,
        track_update_ratio: bool = True,
        deferred: bool | None = None,
    ) -> None:
        self.train_metric = train_metric
        self.val_metric = val_metric
        self.action = check_choice("action", action, ("advise", "adjust"))
        self.rules = rules if rules is not None else DiagnosisRules()
        self.check_every_n_steps = check_int("check_every_n_steps", check_every_n_steps, 1)
        check_choice("mode", mode, ("min", "max"))
        self.mode = mode
        self.max_adjustments = check_int("max_adjustments", max_adjustments, 0)
        self.track_update_ratio = track_update_ratio
        self.deferred = deferred
        self.state = DiagnosticsState()  # what is found and done, as plain data
        self._history = max(self.rules.window * 4, 200)
        # the device side: step values on their way to a check, kept as tensors
        self._losses: deque[Any] = deque(maxlen=self._history)
        self._grad_norms: deque[Any] = deque(maxlen=self._history)
        self._probe = StepProbe(self._history)
        # training losses since the last validation, as a running sum: bounded however rare validation is
        self._since_eval = LossSum()
        self._first: list[torch.Tensor] = []  # the run's first losses, for the loss scale
        self._start_step = -1
        self._train_loss = TrainLossReader(train_metric)
        self._packs = PackChannel(deferred)  # each check's values on their way to the host
        self._regime = 0  # counts the LR changes made: a pack read after one is about the old LR

    # --- collecting ------------------------------------------------------------------------------

    @override
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.state.last_step = trainer.global_step  # also right after a resume
        parameters: list[torch.Tensor] = [p for p in pl_module.parameters() if p.requires_grad]
        self._probe.start(parameters)
        self._start_step = warmup_end(trainer)
        self._train_loss.reset()
        # a resumed run restores these on the CPU; the new values are on the module's device
        device = pl_module.device
        self._losses = deque((value.to(device) for value in self._losses), maxlen=self._history)
        self._grad_norms = deque((value.to(device) for value in self._grad_norms), maxlen=self._history)
        self._probe.to(device)
        self._packs.clear()

    @override
    def on_before_optimizer_step(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: Optimizer
    ) -> None:
        if optimizer is trainer.optimizers[0]:
            self._train_loss.check_logged(trainer)  # a misspelt metric stops the run before an update
            norm = self._probe.grad_norm()
            if norm is not None:
                self._grad_norms.append(norm)
            checked = (trainer.global_step + 1) % self.check_every_n_steps == 0
            self._probe.before_update(self.track_update_ratio and checked)

    @override
    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        global_step = trainer.global_step
        if global_step == self.state.last_step:  # an accumulation batch: no optimizer step yet
            return
        self.state.last_step = global_step
        step = global_step - 1  # the optimizer step just taken
        lr = float(trainer.optimizers[0].param_groups[0]["lr"])
        self.state.peak_lr = max(self.state.peak_lr, lr)
        self._probe.after_update(step)
        check = (step + 1) % self.check_every_n_steps == 0
        if check:
            self._receive_pending(trainer, before=step)  # one check interval late on a GPU
        value, same = self._train_loss.read(trainer, outputs, check)
        self._losses.append(value)
        self._since_eval.add(value)
        segments: dict[str, torch.Tensor] = {} if same is None else {"same": same}
        if self.state.scale is None and len(self._first) < self.rules.smoothing_steps:
            self._first.append(value)
            if len(self._first) == self.rules.smoothing_steps:
                segments["scale"] = torch.stack(self._first)
        if step < self._start_step:  # the rules misread a warmup ramp
            self._losses.clear()
            self._grad_norms.clear()
        else:
            if self.state.initial is None and len(self._losses) == self.rules.smoothing_steps:
                segments["start"] = torch.stack(list(self._losses))
            if check and len(self._losses) >= 2:
                segments.update(self._check_segments(step))
        if segments and self._packs.send(trainer, step, segments, lr, self._regime):
            self._receive_pending(trainer, before=step + 1)

    def _check_segments(self, step: int) -> dict[str, torch.Tensor]:
        """What a check reads: the loss window, gradient norms, update ratios and alignments."""
        # once the start level is known, the rules need only the last window
        span = self.rules.window if self.state.initial is not None else len(self._losses)
        segments = {"window": torch.stack(list(self._losses)[-span:])}
        norms = list(self._grad_norms)[-span:]
        if norms:
            segments["norms"] = torch.stack(norms)
        ratios = [ratio for at, ratio in self._probe.ratios if at > step - self.rules.window]
        if ratios:
            segments["ratios"] = torch.stack(ratios)
        aligned = [value for at, value in self._probe.alignments if at > step - self.rules.window]
        if aligned:
            segments["alignments"] = torch.stack(aligned)
        return segments

    def _receive_pending(self, trainer: pl.Trainer, before: int) -> None:
        """Act on the packs sent before step ``before``, oldest first."""
        for pending, parts in self._packs.due(before):
            if "same" in parts:  # the average over ranks is 1 only when every rank found the same
                self._train_loss.settle(parts["same"][0] == 1.0)
            if "scale" in parts:
                self.state.take_scale(as_float32(parts["scale"]))
            if pending.regime != self._regime:  # read before an LR change: the old regime's curve
                continue
            if "start" in parts:
                self.state.take_start(as_float32(parts["start"]), pending.step)
            if "window" in parts:
                self._diagnose(trainer, pending, parts)

    def _diagnose(self, trainer: pl.Trainer, pending: Pack, parts: dict[str, list[float]]) -> None:
        found = None
        ratios = [ratio for ratio in parts.get("ratios", []) if math.isfinite(ratio)]
        self.state.latest_ratio = statistics.median(ratios) if ratios else None
        if trainer.is_global_zero:
            found = diagnose_training(
                as_float32(parts["window"]),
                update_ratios=parts.get("ratios"),
                lr_to_peak=pending.lr / self.state.peak_lr if self.state.peak_lr > 0 else None,
                step=pending.step,
                epoch=pending.epoch,
                rules=self.rules,
                grad_norms=as_float32(parts["norms"]) if "norms" in parts else None,
                initial_loss=self.state.initial,
                initial_step=self.state.initial_step if self.state.initial is not None else 0,
                step_alignments=[v for v in parts.get("alignments", []) if math.isfinite(v)] or None,
                loss_scale=self.state.scale,
            )
            self.state.latest_training = found  # what an action is checked against, confirmed or not
            found = self.state.confirm(found, self.rules)
        self._handle(trainer, found)

    @override
    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or not self._since_eval.count:
            return
        value = trainer.callback_metrics.get(self.val_metric)
        if value is None:
            self._missing_val_metric(trainer)
            return
        self._receive_pending(trainer, before=trainer.global_step)  # a validation waits anyway
        mean = self._since_eval.mean()
        pair = torch.stack([mean, torch.as_tensor(value).float().to(mean.device)])
        pair = mean_over_ranks(trainer, pair)
        train, val = read_now(pair)
        self._since_eval = LossSum()
        self.state.add_evaluation(train, val)
        found = None
        if trainer.is_global_zero:
            found = diagnose_evaluations(
                self.state.eval_train,
                self.state.eval_val,
                step=trainer.global_step,
                epoch=trainer.current_epoch,
                rules=self.rules,
                mode=self.mode,
                update_ratio=self.state.latest_ratio,
                lr_to_peak=self._lr_now(trainer) / self.state.peak_lr if self.state.peak_lr > 0 else None,
            )
        self._handle(trainer, found)

    def _missing_val_metric(self, trainer: pl.Trainer) -> None:
        """Warn once that a validation run did not log ``val_metric``, naming the metrics it did."""
        self.state.validations_without_metric += 1
        self.state.logged_instead = sorted(trainer.callback_metrics)
        if self.state.validations_without_metric > 1:
            return
        guess = close_match(self.val_metric, self.state.logged_instead)
        rank_zero_warn(
            f"LRDiagnostics: `val_metric`={self.val_metric!r} was not logged by this validation run, so "
            f"the validation rules (plateau, overfitting) cannot run.{guess} Pass the name you log "
            f"with self.log(...) in validation_step. "
            f"Logged: {', '.join(self.state.logged_instead) or 'none'}."
        )

    # --- deciding and acting -----------------------------------------------------------------------

    def _handle(self, trainer: pl.Trainer, found: Diagnosis | None) -> None:
        conflict = None
        if found is not None and self.action == "adjust":
            conflict = check_action(
                found,
                latest_training=self.state.latest_training,
                update_ratio=self.state.latest_ratio,
                rules=self.rules,
                lr=self._lr_now(trainer),
                found_high=self.state.found_high,
                found_low=self.state.found_low,
            )
        shared = trainer.strategy.broadcast(None if found is None else (found.to_dict(), conflict), src=0)
        if shared is None:
            return
        diagnosis = Diagnosis.from_dict(shared[0])
        decision = self.state.decide(
            diagnosis,
            conflict=shared[1],
            lr=self._lr_now(trainer),
            rules=self.rules,
            check_every=self.check_every_n_steps,
            adjust=self.action == "adjust",
            max_adjustments=self.max_adjustments,
        )
        if not decision.report:
            return
        for logger in trainer.loggers:
            logger.log_metrics({f"diagnosis/{diagnosis.kind}": 1.0}, step=diagnosis.step)
        rank_zero_info(
            f"LRDiagnostics [{diagnosis.kind}] at step {diagnosis.step}: {diagnosis.message} "
            f"{diagnosis.advice}"
        )
        if decision.withheld is not None:
            rank_zero_info(
                f"LRDiagnostics: did not multiply the LR by {diagnosis.lr_factor:g} at step "
                f"{diagnosis.step} ({diagnosis.kind}): {decision.withheld}."
            )
        factor = decision.factor
        if factor is None:
            return
        scale_lrs(trainer, factor)
        self.state.acted(diagnosis, factor)  # forgets the evidence about the old LR
        self._losses.clear()  # the curve changes regime: judge the new LR on its own steps
        self._grad_norms.clear()
        self._regime += 1
        rank_zero_info(f"LRDiagnostics: multiplied the LR by {factor:g} at step {diagnosis.step}.")

    @staticmethod
    def _lr_now(trainer: pl.Trainer) -> float:
        return float(trainer.optimizers[0].param_groups[0]["lr"])

    @override
    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._receive_pending(trainer, before=trainer.global_step + 1)

    @override
    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        rank_zero_info(self.summary())

    def summary(self) -> str:
        """A short text: what was found, how often, and the latest advice per kind."""
        return summarise(self.diagnoses, self.actions, self.withheld, self._missing_line())

    def _missing_line(self) -> str:
        """What the summary says about a ``val_metric`` it never saw (empty once it has seen it)."""
        if self.state.evaluations or not self.state.validations_without_metric:
            return ""
        logged = ", ".join(self.state.logged_instead) or "none"
        return (
            f"`val_metric`={self.val_metric!r} was never logged ({self.state.validations_without_metric} "
            f"validation runs; logged: {logged}), so the validation curve was never judged."
        )

    # --- resume ------------------------------------------------------------------------------------

    @property
    def diagnoses(self) -> list[Diagnosis]:
        """What was found, oldest first (the latest 200)."""
        return self.state.diagnoses

    @property
    def actions(self) -> list[dict[str, Any]]:
        """The LR changes made: ``{"step", "kind", "lr_factor"}`` each."""
        return self.state.actions

    @property
    def withheld(self) -> list[dict[str, Any]]:
        """The LR changes advised but not made, with the ``"reason"``."""
        return self.state.withheld

    @override
    def state_dict(self) -> dict[str, Any]:
        return {
            **self.state.to_dict(),
            "losses": read_all(self._losses),
            "grad_norms": read_all(self._grad_norms),
            **self._probe.state_dict(),
            **self._since_eval.state_dict(),
        }

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.state = DiagnosticsState.from_dict(state_dict)
        self._losses = deque((torch.tensor(v) for v in state_dict["losses"]), maxlen=self._history)
        self._grad_norms = deque((torch.tensor(v) for v in state_dict["grad_norms"]), maxlen=self._history)
        self._probe.load_state_dict(state_dict)
        # the training losses since the last validation: a mid-epoch resume must judge the same mean
        self._since_eval = LossSum.from_state_dict(state_dict)
