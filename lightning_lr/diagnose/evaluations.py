"""The evaluation rules: one value per validation run.

:func:`diagnose_evaluations` returns ``overfitting`` or ``plateau``, in that priority.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from itertools import pairwise

from lightning_lr._validate import check_choice, check_floats, check_int, fail
from lightning_lr.diagnose.diagnosis import Diagnosis, DiagnosisRules, Mode, _check_rules


def diagnose_evaluations(
    train_losses: Iterable[float],
    val_losses: Iterable[float],
    *,
    step: int,
    epoch: int,
    rules: DiagnosisRules,
    mode: Mode = "min",
) -> Diagnosis | None:
    """Read one value per validation run; return ``overfitting``, ``plateau`` or None.

    The rules, in priority order, with ``p = patience``:

    1. ``overfitting`` (``lr_factor`` 0.5): the validation metric's best is ``p`` or more
       evaluations old and the last value is worse than it by more than ``min_delta`` (relative),
       while the training loss fell at each evaluation since the best, and by at least
       ``overfit_fall`` (relative) in all. A noisy rise counts: the metric need not get worse at
       every evaluation. In ``"min"`` mode this widens the gap ``val - train``, reported in the
       evidence. Evidence: ``val_start``, ``val_end``, ``train_start``, ``train_end`` (the values
       at the best evaluation and now) and, in ``"min"`` mode, ``gap_start``, ``gap_end``.
    2. ``plateau`` (``lr_factor`` 0.3): no improvement of the best value by more than
       ``min_delta`` (relative) for ``p`` evaluations; as in ``ReduceLROnPlateau``, smaller
       improvements do not move the best. Non-finite values never count as an improvement.
       Evidence: ``best_value``, ``last_value``, ``evaluations_without_improvement``.

    Args:
        train_losses: training loss averaged since the previous validation run, one per run.
        val_losses: the monitored validation metric, one per run, oldest first.
        step: optimizer step of the last validation run.
        epoch: current epoch.
        rules: the thresholds.
        mode: ``"min"`` when a lower metric is better (a loss), ``"max"`` when higher is (accuracy).

    Returns:
        The diagnosis of the highest priority that applies, or ``None``.

    Raises:
        TypeError: a value or an argument is not a number, or ``rules`` is not a
            :class:`DiagnosisRules`.
        ValueError: the two histories differ in length, ``mode`` is unknown, or ``step``/``epoch``
            is negative.

    Example:
        >>> rules = DiagnosisRules(patience=2)
        >>> diagnose_evaluations([1.0, 0.8, 0.7], [0.9, 0.9, 0.9], step=300, epoch=2, rules=rules).kind
        'plateau'
    """
    train = check_floats("train_losses", train_losses)
    val = check_floats("val_losses", val_losses)
    check_int("step", step)
    check_int("epoch", epoch)
    _check_rules(rules)
    check_choice("mode", mode, ("min", "max"))
    if len(train) != len(val):
        raise fail(
            "train_losses",
            len(train),
            f"must have as many values as `val_losses` ({len(val)})",
            "Pass one training loss per validation run: the mean since the previous run.",
        )
    return _overfitting(train, val, step=step, epoch=epoch, rules=rules, mode=mode) or _plateau(
        val, step=step, epoch=epoch, rules=rules, mode=mode
    )


def _overfitting(
    train: list[float], val: list[float], *, step: int, epoch: int, rules: DiagnosisRules, mode: Mode
) -> Diagnosis | None:
    best_index = _best_index(val, rules=rules, mode=mode)
    if best_index is None or len(val) - 1 - best_index < rules.patience:
        return None
    sign = 1.0 if mode == "min" else -1.0
    best, last = val[best_index], val[-1]
    train_start, train_end = train[best_index], train[-1]
    worse = sign * (last - best) > rules.min_delta * abs(best)
    since = train[best_index:]
    # still fitting the training set: lower at each evaluation, and by a real margin overall
    train_falls = all(after < before for before, after in pairwise(since)) and (
        train_start - train_end >= rules.overfit_fall * abs(train_start)
    )
    if not (worse and train_falls):
        return None
    evidence = {"val_start": best, "val_end": last, "train_start": train_start, "train_end": train_end}
    gap = ""
    if mode == "min":
        evidence |= {"gap_start": best - train_start, "gap_end": last - train_end}
        gap = f"; the gap widened from {evidence['gap_start']:.4g} to {evidence['gap_end']:.4g}"
    waited = len(val) - 1 - best_index
    message = (
        f"The model is overfitting: the validation metric is worse than its best {best:.4g} "
        f"{waited} evaluations on ({last:.4g}) while the training loss fell by "
        f"{1 - train_end / train_start:.0%} ({train_start:.4g} to {train_end:.4g}){gap}."
    )
    advice = (
        "Regularise (weight decay, dropout, data augmentation) or stop early and keep the best "
        "checkpoint; lowering the LR (x0.5) slows the memorisation."
    )
    return Diagnosis("overfitting", step, epoch, message, advice, 0.5, evidence)


def _best_index(val: list[float], *, rules: DiagnosisRules, mode: Mode) -> int | None:
    """Where the best value is: the last evaluation to improve on the best by more than ``min_delta``."""
    sign = 1.0 if mode == "min" else -1.0
    best: float | None = None
    best_index = None
    for index, value in enumerate(val):
        if math.isfinite(value) and (best is None or sign * (best - value) > rules.min_delta * abs(best)):
            best, best_index = value, index
    return best_index


def _plateau(
    val: list[float], *, step: int, epoch: int, rules: DiagnosisRules, mode: Mode
) -> Diagnosis | None:
    best_index = _best_index(val, rules=rules, mode=mode)
    if best_index is None:
        return None
    best = val[best_index]
    waited = len(val) - 1 - best_index
    if waited < rules.patience:
        return None
    message = (
        f"The validation metric has plateaued: no improvement above {rules.min_delta:.2%} on its best "
        f"{best:.4g} for {waited} evaluations (last {val[-1]:.4g})."
    )
    advice = "Decay the LR (x0.3), as ReduceLROnPlateau would; if it has been decayed before, stop early."
    evidence = {"best_value": best, "last_value": val[-1], "evaluations_without_improvement": float(waited)}
    return Diagnosis("plateau", step, epoch, message, advice, 0.3, evidence)
