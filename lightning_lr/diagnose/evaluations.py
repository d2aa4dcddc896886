"""The evaluation rules: one value per validation run.

:func:`diagnose_evaluations` returns ``overfitting``, ``plateau`` or, for a metric that never
improved while the weights stall, ``too_low``, in that priority.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from lightning_lr._validate import check_choice, check_floats, check_int, check_real, fail
from lightning_lr.diagnose.diagnosis import Diagnosis, Mode
from lightning_lr.diagnose.rules import DiagnosisRules, _check_rules


def diagnose_evaluations(
    train_losses: Iterable[float],
    val_losses: Iterable[float],
    *,
    step: int,
    epoch: int,
    rules: DiagnosisRules,
    mode: Mode = "min",
    update_ratio: float | None = None,
    lr_to_peak: float | None = None,
) -> Diagnosis | None:
    """Read one value per validation run; return ``overfitting``, ``plateau``, ``too_low`` or None.

    The rules, in priority order, with ``p = patience``:

    1. ``overfitting`` (``lr_factor`` 0.5): the validation metric's best is ``p`` or more
       evaluations old and the last value is worse than it by more than ``min_delta`` (relative),
       while the training loss is still fitting: at its lowest since the best evaluation, and at
       least ``overfit_fall`` (relative) below its value there. Noise counts on both sides: the
       metric need not get worse at every evaluation, nor the training loss (a mean over the
       epoch's batches) fall at every one. In ``"min"`` mode this widens the gap
       ``val - train``, reported in the evidence. Evidence: ``val_start``, ``val_end``,
       ``train_start``, ``train_end`` (the values at the best evaluation and now) and, in
       ``"min"`` mode, ``gap_start``, ``gap_end``.
    2. ``plateau`` (``lr_factor`` 0.3): no improvement of the best value by more than
       ``min_delta`` (relative) for ``p`` evaluations; as in ``ReduceLROnPlateau``, smaller
       improvements do not move the best. Non-finite values never count as an improvement. Only
       a stall after progress is a plateau: the best must beat the first finite value by at least
       ``plateau_progress`` (relative). Evidence: ``best_value``, ``last_value``,
       ``evaluations_without_improvement``.
    3. ``too_low`` (``lr_factor`` 3.0): a metric that never made that progress in its first
       finite evaluation and the ``p`` or more after it, while ``update_ratio`` (the training rules' median of
       ``||w_new - w_old|| / ||w_old||``) is below ``stall_update_ratio``: the weights barely
       move. Without that evidence a metric that never improved gives no diagnosis here; the
       training rules tell a too-low LR from a too-high one. Evidence: ``first_value``,
       ``best_value``, ``last_value``, ``evaluations``, ``update_ratio``. Not while a schedule
       anneals the LR (``lr_to_peak`` below ``annealed_below``), as in the training rules.

    Args:
        train_losses: training loss averaged since the previous validation run, one per run.
        val_losses: the monitored validation metric, one per run, oldest first.
        step: optimizer step of the last validation run.
        epoch: current epoch.
        rules: the thresholds.
        mode: ``"min"`` when a lower metric is better (a loss), ``"max"`` when higher is (accuracy).
        update_ratio: the median update ratio of the latest training window, when measured.
        lr_to_peak: the current LR over the run's peak LR, when known.

    Returns:
        The diagnosis of the highest priority that applies, or ``None``.

    Raises:
        TypeError: a value or an argument is not a number, or ``rules`` is not a
            :class:`DiagnosisRules`.
        ValueError: the two histories differ in length, ``mode`` is unknown, or ``step``/``epoch``
            is negative.

    Example:
        >>> rules = DiagnosisRules(patience=2)
        >>> train = [1.0, 0.8, 0.7, 0.6]
        >>> diagnose_evaluations(train, [1.0, 0.9, 0.9, 0.9], step=400, epoch=3, rules=rules).kind
        'plateau'
        >>> diagnose_evaluations(train, [0.9] * 4, step=400, epoch=3, rules=rules) is None
        True
        >>> diagnose_evaluations(train, [0.9] * 4, step=400, epoch=3, rules=rules, update_ratio=1e-7).kind
        'too_low'
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
    if update_ratio is not None:
        update_ratio = check_real("update_ratio", update_ratio)
    # a schedule annealing the LR stalls the weights on purpose: that says nothing of a too-low LR
    annealed = lr_to_peak is not None and check_real("lr_to_peak", lr_to_peak) < rules.annealed_below
    return (
        _overfitting(train, val, step=step, epoch=epoch, rules=rules, mode=mode)
        or _plateau(val, step=step, epoch=epoch, rules=rules, mode=mode)
        or _never_improved(
            val, step=step, epoch=epoch, rules=rules, mode=mode, update_ratio=update_ratio, annealed=annealed
        )
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
    # still fitting the training set: at a new low, and by a real margin since the best evaluation
    train_falls = train_end <= min(train[best_index:]) and (
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


def _first(val: list[float]) -> tuple[int, float]:
    """The first finite evaluation: its index and value (there is one once a best exists)."""
    return next((index, value) for index, value in enumerate(val) if math.isfinite(value))


def _progressed(val: list[float], best: float, *, rules: DiagnosisRules, mode: Mode) -> bool:
    """Whether ``best`` beats the first finite value by at least ``plateau_progress`` (relative)."""
    _, first = _first(val)
    sign = 1.0 if mode == "min" else -1.0
    return sign * (first - best) >= rules.plateau_progress * abs(first)


def _plateau(
    val: list[float], *, step: int, epoch: int, rules: DiagnosisRules, mode: Mode
) -> Diagnosis | None:
    best_index = _best_index(val, rules=rules, mode=mode)
    if best_index is None:
        return None
    best = val[best_index]
    waited = len(val) - 1 - best_index
    if waited < rules.patience or not _progressed(val, best, rules=rules, mode=mode):
        return None
    _, first = _first(val)
    message = (
        f"The validation metric has plateaued after improving from {first:.4g} to {best:.4g}: no "
        f"improvement above {rules.min_delta:.2%} on that best for {waited} evaluations (last "
        f"{val[-1]:.4g})."
    )
    advice = "Decay the LR (x0.3), as ReduceLROnPlateau would; if it has been decayed before, stop early."
    evidence = {"best_value": best, "last_value": val[-1], "evaluations_without_improvement": float(waited)}
    return Diagnosis("plateau", step, epoch, message, advice, 0.3, evidence)


def _never_improved(
    val: list[float],
    *,
    step: int,
    epoch: int,
    rules: DiagnosisRules,
    mode: Mode,
    update_ratio: float | None,
    annealed: bool,
) -> Diagnosis | None:
    best_index = _best_index(val, rules=rules, mode=mode)
    if annealed or best_index is None or update_ratio is None or not update_ratio < rules.stall_update_ratio:
        return None
    best = val[best_index]
    start, first = _first(val)
    evaluations = len(val) - start
    if evaluations <= rules.patience or _progressed(val, best, rules=rules, mode=mode):
        return None
    message = (
        f"The LR looks too low: the validation metric has not improved by {rules.plateau_progress:.0%} "
        f"in {evaluations} evaluations ({first:.4g} first, {best:.4g} best) while the weights barely "
        f"move (each step changes them by {update_ratio:.1e} of their norm, below "
        f"{rules.stall_update_ratio:.0e})."
    )
    advice = "Raise the LR 3 to 10 times (x3), or run the LR finder to pick it."
    evidence = {
        "first_value": first,
        "best_value": best,
        "last_value": val[-1],
        "evaluations": float(evaluations),
        "update_ratio": update_ratio,
    }
    return Diagnosis("too_low", step, epoch, message, advice, 3.0, evidence)
