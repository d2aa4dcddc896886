"""What a diagnostics run remembers between checks, as plain data, and the decisions made on it.

:class:`DiagnosticsState` is the host-side memory of ``LRDiagnostics``: what it found and did, the
curves of its validations, and the levels its rules are measured against. Its ``to_dict`` is plain
data (str, int, float, None, lists and dicts of them), which a checkpoint stores and
``torch.load(weights_only=True)`` reads back. :func:`start_level` and :meth:`DiagnosticsState.note`
are the decisions the callback would otherwise repeat: where a curve starts, and whether a finding
is new enough to report.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, NamedTuple

from lightning_lr.diagnose.actions import REVISIT
from lightning_lr.diagnose.diagnosis import Diagnosis
from lightning_lr.diagnose.rules import DiagnosisRules

KEEP = 200
"""Diagnoses, actions and withheld actions kept (the latest), and twice the evaluations kept."""

EVALUATION_KINDS = ("plateau", "overfitting")


def start_level(first: Sequence[float]) -> float:
    """The level a curve starts from: the median of its first losses, or the first when lower.

    An LR far too high blows the loss up within those steps, so the first loss, taken before any
    update, is the fairer level then.

    Example:
        >>> start_level([2.0, 2.1, 1.9, 50.0, 80.0])
        2.0
    """
    return min(first[0], statistics.median(first))


def contradicts(kind: str, lr: float, *, found_high: float | None, found_low: float | None) -> bool:
    """Whether a finding of ``kind`` at ``lr`` says the opposite of one made within 4x of ``lr``.

    Example:
        >>> contradicts("too_low", 0.5, found_high=1.0, found_low=None)
        True
        >>> contradicts("too_high", 1.0, found_high=None, found_low=0.01)
        False
    """
    if kind == "too_low" and found_high is not None:
        return lr * REVISIT > found_high
    if kind == "too_high" and found_low is not None:
        return lr < found_low * REVISIT
    return False


class Decision(NamedTuple):
    """What :meth:`DiagnosticsState.decide` made of a diagnosis.

    Attributes:
        report: whether to log and print it (new enough to report).
        factor: the LR factor to apply now, or ``None`` for no change.
        withheld: why a change it advised is not made, or ``None``.
    """

    report: bool
    factor: float | None
    withheld: str | None


@dataclass
class DiagnosticsState:
    """The memory of one diagnostics run (see the module docstring for what it is for).

    Attributes:
        diagnoses: what was found (the latest ``KEEP``).
        actions: the LR changes made, as ``{"step", "kind", "lr_factor"}``.
        withheld: the LR changes not made, with their ``"reason"`` too.
        latest_training: what the training rules said at their latest check, confirmed or not.
        streak_kind, streak: the kind the training rules found at the latest checks, and at how
            many checks in a row (see :meth:`confirm`).
        latest_ratio: the median update ratio of that check's window.
        validations_without_metric: validation runs that did not log ``val_metric``.
        logged_instead: what the last of them logged.
        eval_train, eval_val: the training loss (mean since the previous validation) and the
            validation metric of each validation (the latest 100).
        quiet_until: per kind, the clock (step, or evaluations for plateau and overfitting) before
            which the same finding is not reported again.
        evaluations: validations judged.
        peak_lr: the highest LR seen.
        last_step: the trainer's global step at the last optimizer step seen.
        initial, initial_step: the start level of the current training curve, and its step.
        scale: the loss of the run's first steps, before any warmup.
        found_high: the lowest LR found too high or diverging; ``found_low``: the highest found too low.
    """

    diagnoses: list[Diagnosis] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)
    withheld: list[dict[str, Any]] = field(default_factory=list)
    latest_training: Diagnosis | None = None
    streak_kind: str | None = None
    streak: int = 0
    latest_ratio: float | None = None
    validations_without_metric: int = 0
    logged_instead: list[str] = field(default_factory=list)
    eval_train: list[float] = field(default_factory=list)
    eval_val: list[float] = field(default_factory=list)
    quiet_until: dict[str, int] = field(default_factory=dict)
    evaluations: int = 0
    peak_lr: float = 0.0
    last_step: int = -1
    initial: float | None = None
    initial_step: int = 0
    scale: float | None = None
    found_high: float | None = None
    found_low: float | None = None

    def confirm(self, found: Diagnosis | None, rules: DiagnosisRules) -> Diagnosis | None:
        """What a training check found, kept back until the next checks find it too.

        ``found`` (what :func:`~lightning_lr.diagnose.diagnose_training` said at this check) is
        returned once the same kind has been found at ``rules.confirm_checks`` checks in a row;
        ``diverging`` at once. Any other check (healthy, or another kind) starts the count again.

        Example:
            >>> state, rules = DiagnosticsState(), DiagnosisRules()
            >>> high = Diagnosis("too_high", 49, 0, "Bouncing.", "Lower the LR.", 0.3, {})
            >>> state.confirm(high, rules) is None
            True
            >>> state.confirm(high, rules).kind
            'too_high'
        """
        kind = None if found is None else found.kind
        repeated = kind is not None and kind == self.streak_kind
        self.streak = self.streak + 1 if repeated else int(kind is not None)
        self.streak_kind = kind
        if found is None or (found.kind != "diverging" and self.streak < rules.confirm_checks):
            return None
        return found

    def note(self, diagnosis: Diagnosis, *, lr: float, rules: DiagnosisRules, check_every: int) -> bool:
        """Record ``diagnosis``, found at ``lr``; whether it is new enough to report and act on.

        The same kind is not reported again for a while: a window of steps (at least one check
        interval) for the training kinds, twice the patience in evaluations for plateau and
        overfitting. Nor is ``too_low`` at an LR within ``REVISIT`` (4x) of one already found too
        high, or ``too_high`` within 4x of one found too low: the LR cannot be both, and the first
        finding came first from the LR (a model an LR far too high has thrown into dead units then
        barely moves its weights, which reads as too low). Every other finding moves
        ``found_high`` / ``found_low``.
        """
        if contradicts(diagnosis.kind, lr, found_high=self.found_high, found_low=self.found_low):
            return False
        if diagnosis.kind in ("too_high", "diverging"):
            self.found_high = lr if self.found_high is None else min(self.found_high, lr)
        elif diagnosis.kind == "too_low":
            self.found_low = lr if self.found_low is None else max(self.found_low, lr)
        evaluation_kind = diagnosis.kind in EVALUATION_KINDS
        clock = self.evaluations if evaluation_kind else diagnosis.step
        if self.quiet_until.get(diagnosis.kind, -1) > clock:
            return False
        pause = 2 * rules.patience if evaluation_kind else max(rules.window, check_every)
        self.quiet_until[diagnosis.kind] = clock + pause
        self.diagnoses = [*self.diagnoses[-(KEEP - 1) :], diagnosis]
        return True

    def decide(
        self,
        diagnosis: Diagnosis,
        *,
        conflict: str | None,
        lr: float,
        rules: DiagnosisRules,
        check_every: int,
        adjust: bool,
        max_adjustments: int,
    ) -> Decision:
        """What to do with ``diagnosis``, found at ``lr``: report it, and change the LR or not.

        It is reported when :meth:`note` finds it new enough. The LR changes by its ``lr_factor``
        only when adjusting, with adjustments left, and no ``conflict`` (the reason
        :func:`~lightning_lr.diagnose.check_action` gave against the change); a conflicting
        change is recorded in ``withheld``. The caller applies the factor, then calls :meth:`acted`.

        Example:
            >>> state, rules = DiagnosticsState(), DiagnosisRules()
            >>> low = Diagnosis("too_low", 59, 0, "Slow.", "Raise the LR.", 3.0, {})
            >>> state.decide(low, conflict=None, lr=1e-4, rules=rules, check_every=10, adjust=True,
            ...              max_adjustments=5)
            Decision(report=True, factor=3.0, withheld=None)
            >>> state.decide(low, conflict=None, lr=1e-4, rules=rules, check_every=10, adjust=True,
            ...              max_adjustments=5).report  # the same kind, a check later: quiet
            False
        """
        if not self.note(diagnosis, lr=lr, rules=rules, check_every=check_every):
            return Decision(False, None, None)
        factor = diagnosis.lr_factor
        if not adjust or factor is None or len(self.actions) >= max_adjustments:
            return Decision(True, None, None)
        if conflict is not None:
            self.withhold(diagnosis, factor, conflict)
            return Decision(True, None, conflict)
        return Decision(True, factor, None)

    def take_scale(self, first: Sequence[float]) -> None:
        """The loss scale, once: the :func:`start_level` of the run's first losses, if finite and positive."""
        level = start_level(first)
        if self.scale is None and math.isfinite(level) and level > 0:
            self.scale = level

    def take_start(self, first: Sequence[float], step: int) -> None:
        """The start level of the current curve, once: the :func:`start_level` of its first losses,
        the last at ``step``, so that "slow from the start" is told apart from "converged".

        Example:
            >>> state = DiagnosticsState()
            >>> state.take_start([2.0, 2.1, 1.9], step=12)
            >>> (state.initial, state.initial_step)
            (2.0, 10)
        """
        level = start_level(first)
        if self.initial is None and math.isfinite(level):
            self.initial, self.initial_step = level, step - len(first) + 1

    def add_evaluation(self, train: float, val: float) -> None:
        self.eval_train = [*self.eval_train[-99:], train]
        self.eval_val = [*self.eval_val[-99:], val]
        self.evaluations += 1

    def acted(self, diagnosis: Diagnosis, factor: float) -> None:
        """An LR change was made: record it and forget the evidence about the old LR."""
        self.actions.append({"step": diagnosis.step, "kind": diagnosis.kind, "lr_factor": factor})
        self.initial = None
        self.latest_training, self.latest_ratio = None, None
        self.streak_kind, self.streak = None, 0

    def withhold(self, diagnosis: Diagnosis, factor: float, reason: str) -> None:
        entry = {"step": diagnosis.step, "kind": diagnosis.kind, "lr_factor": factor, "reason": reason}
        self.withheld = [*self.withheld[-(KEEP - 1) :], entry]

    def to_dict(self) -> dict[str, Any]:
        """Plain data: every field, diagnoses as their own ``to_dict``."""
        data = {item.name: getattr(self, item.name) for item in fields(self)}
        data["diagnoses"] = [diagnosis.to_dict() for diagnosis in self.diagnoses]
        data["latest_training"] = None if self.latest_training is None else self.latest_training.to_dict()
        data["actions"] = [dict(action) for action in self.actions]
        data["withheld"] = [dict(action) for action in self.withheld]
        for name in ("logged_instead", "eval_train", "eval_val"):
            data[name] = list(data[name])
        data["quiet_until"] = dict(self.quiet_until)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DiagnosticsState:
        """The state :meth:`to_dict` wrote; keys it does not know are ignored, missing ones default.

        Raises:
            TypeError: ``data`` is not a mapping.
            ValueError: a diagnosis in it is not valid.
        """
        if not isinstance(data, Mapping):
            raise TypeError(f"`data` must be a mapping written by DiagnosticsState.to_dict(), got {data!r}.")
        state = cls()
        latest = data.get("latest_training")

        def optional(name: str) -> float | None:
            value = data.get(name)
            return None if value is None else float(value)

        state.diagnoses = [Diagnosis.from_dict(item) for item in data.get("diagnoses", [])]
        state.actions = [dict(action) for action in data.get("actions", [])]
        state.withheld = [dict(action) for action in data.get("withheld", [])]
        state.latest_training = None if latest is None else Diagnosis.from_dict(latest)
        state.latest_ratio = optional("latest_ratio")
        streak_kind = data.get("streak_kind")
        state.streak_kind = None if streak_kind is None else str(streak_kind)
        state.streak = int(data.get("streak", 0))
        state.validations_without_metric = int(data.get("validations_without_metric", 0))
        state.logged_instead = [str(name) for name in data.get("logged_instead", [])]
        state.eval_train = [float(value) for value in data.get("eval_train", [])]
        state.eval_val = [float(value) for value in data.get("eval_val", [])]
        state.quiet_until = {str(k): int(v) for k, v in data.get("quiet_until", {}).items()}
        state.evaluations = int(data.get("evaluations", 0))
        state.peak_lr = float(data.get("peak_lr", 0.0))
        state.last_step = int(data.get("last_step", -1))
        state.initial = optional("initial")
        state.initial_step = int(data.get("initial_step", 0))
        state.scale = optional("scale")
        state.found_high = optional("found_high")
        state.found_low = optional("found_low")
        return state
