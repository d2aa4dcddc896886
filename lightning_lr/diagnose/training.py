"""The training rules: one loss (and gradient norm) per optimizer step, read over a window.

:func:`diagnose_training` returns ``diverging``, ``too_high`` or ``too_low``, in that priority; the
window statistics it reads are defined in :class:`~lightning_lr.diagnose.DiagnosisRules`.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable

from lightning_lr._validate import check_floats, check_int, check_number, fail
from lightning_lr.diagnose._stats import _running_medians
from lightning_lr.diagnose._window import _Curve, _read_curve
from lightning_lr.diagnose.diagnosis import Diagnosis
from lightning_lr.diagnose.rules import DiagnosisRules, _check_rules


def diagnose_training(
    losses: Iterable[float],
    *,
    step: int,
    epoch: int,
    rules: DiagnosisRules,
    grad_norms: Iterable[float] | None = None,
    initial_loss: float | None = None,
    initial_step: int = 0,
    update_ratios: Iterable[float] | None = None,
    lr_to_peak: float | None = None,
    step_alignments: Iterable[float] | None = None,
    loss_scale: float | None = None,
) -> Diagnosis | None:
    """Read the training losses of the last steps; return ``diverging``, ``too_high``, ``too_low`` or None.

    The rules, in priority order (see :class:`DiagnosisRules` for the statistics):

    1. ``diverging`` (``lr_factor`` 0.1): a non-finite loss anywhere in ``losses``; or, with at
       least ``2 * smoothing_steps`` losses, the running median of the last ``smoothing_steps``
       above ``divergence_factor`` times its best value in the window, and above it by at least
       ``spike_floor`` times the loss scale (``loss_scale``). Evidence: ``nonfinite_steps`` and
       ``first_nonfinite_step``, or ``smoothed_loss``, ``best_smoothed_loss`` and ``ratio``.
    2. ``too_high``, with a full window: a step loss above ``blowup_factor`` times the loss scale
       while the weights move, ``lr_factor`` 0.3; or the loss bounces (``noise > noise_ratio``)
       without a real fall (``trend_t > -trend_t``) while still near its start
       (``fall_from_scale < stuck_fall``) and, when ``step_alignments`` are given, the steps overshoot
       (``alignment_t <= -trend_t``), ``lr_factor`` 0.3; or ``spike_count`` loss spikes (each held
       for ``spike_sustain`` steps) along steps that do not lean downhill (no positive mean
       ``alignment``, when measured), or
       gradient-norm spikes (advice: clip with ``gradient_clip_val``), ``lr_factor`` 0.5; or, with
       ``update_ratios``, a loss stuck at its start (``fall_from_scale < dead_fall`` after
       ``2 * window`` steps, no real trend) while the weights move and the steps do not point
       downhill (no positive mean ``alignment``), no ``lr_factor`` when that is the only reason
       (advice only: restart at a lower LR).
    3. ``too_low`` (``lr_factor`` 3.0), with a full window: when ``update_ratios`` are given, a
       loss that does not really fall while the weights stall (median update ratio below
       ``stall_update_ratio``, and steps that point downhill when ``step_alignments`` are given;
       stalled weights also keep batch noise from reading as bouncing or a blow-up); or, when
       ``step_alignments`` are given, a real fall (``trend_t <= -trend_t``) along steps that keep
       pointing downhill (``alignment >= step_alignment`` with ``alignment_t >= trend_t``); or a
       real fall that is too small (``fall < min_progress``) and not slowing down
       (``recent_pace >= pace_ratio * overall_pace``).

    The evidence of ``too_high`` and ``too_low`` is the window's statistics: ``level``, ``noise``,
    ``fall``, ``trend_t``, ``total_fall``, ``fall_from_scale``, ``recent_pace``, ``overall_pace``,
    ``elapsed_steps``,
    ``loss_spikes``, ``peak_to_start`` and, when given, ``grad_spikes``, ``update_ratio``,
    ``alignment`` and ``alignment_t`` (those two need 3 alignments in the window).

    Args:
        losses: training loss of each optimizer step, oldest first, the last one at ``step``.
            Older steps than the window only serve as the start level when ``initial_loss`` is
            not given.
        step: optimizer step of the last loss.
        epoch: current epoch.
        rules: the thresholds.
        grad_norms: total gradient norm of each step, oldest first (before clipping); non-finite
            norms, the steps the AMP grad scaler skipped, are ignored.
        initial_loss: smoothed training loss at the start of training (or after warmup). Without
            it the start level is the median of the first ``smoothing_steps`` losses passed, or the
            first loss when lower (an LR far too high blows the loss up within those steps), so a
            smooth curve converging to its floor looks "slow from the start" when only a window
            is passed.
        initial_step: optimizer step at which ``initial_loss`` was taken.
        update_ratios: ``||w_new - w_old|| / ||w_old||`` of the steps where it was measured
            (the median of those in the window's span is used; not every step need be measured).
        lr_to_peak: the current LR over the run's peak LR; below ``annealed_below`` a schedule is
            annealing it on purpose and ``too_low`` is not reported.
        step_alignments: ``cos(-g[t+1], w[t+1] - w[t])`` of the steps ``t`` where it was measured
            (those in the window's span; see :class:`DiagnosisRules`).
        loss_scale: the smoothed loss of the run's first steps, before any warmup: what a blow-up,
            a spike and a divergence are measured against. Defaults to the start level.

    Returns:
        The diagnosis of the highest priority that applies, or ``None`` when the curve looks healthy
        (or there are fewer than ``2 * smoothing_steps`` losses to judge).

    Raises:
        TypeError: a loss, a gradient norm or an argument is not a number, or ``rules`` is not a
            :class:`DiagnosisRules`.
        ValueError: ``step``/``epoch`` is negative, ``initial_loss`` is not finite, or
            ``initial_step`` comes after the first loss passed.

    Example:
        >>> rules = DiagnosisRules()
        >>> diagnose_training([2.0] * 30 + [float("nan")], step=30, epoch=0, rules=rules).kind
        'diverging'
        >>> diagnose_training([2.0 * 0.98**i for i in range(50)], step=49, epoch=0, rules=rules) is None
        True
    """
    values = check_floats("losses", losses)
    norms = None if grad_norms is None else check_floats("grad_norms", grad_norms)
    ratios = None if update_ratios is None else check_floats("update_ratios", update_ratios)
    alignments = None if step_alignments is None else check_floats("step_alignments", step_alignments)
    check_int("step", step)
    check_int("epoch", epoch)
    check_int("initial_step", initial_step)
    _check_rules(rules)
    if initial_loss is None:
        start = min(values[0], statistics.median(values[: rules.smoothing_steps])) if values else 0.0
        elapsed = len(values) - 1 - (rules.smoothing_steps - 1) / 2
    else:
        start = check_number("initial_loss", initial_loss)
        first_step = step - (len(values) - 1)
        if initial_step > first_step:
            raise fail(
                "initial_step",
                initial_step,
                f"must be <= {first_step}, the step of the first loss passed",
                "Take `initial_loss` before the losses you pass, e.g. at the first step.",
            )
        elapsed = step - initial_step

    scale = start if loss_scale is None else check_number("loss_scale", loss_scale)
    found = _diverging(values, step=step, epoch=epoch, rules=rules, floor=rules.spike_floor * max(scale, 0.0))
    if found is not None or len(values) < rules.window:
        return found
    curve = _read_curve(
        values[-rules.window :],
        norms,
        rules=rules,
        start=start,
        elapsed=elapsed,
        ratios=ratios,
        alignments=alignments,
        scale=scale,
    )
    if curve is None:
        return None
    found = _too_high(curve, step=step, epoch=epoch, rules=rules)
    if found is not None or (lr_to_peak is not None and lr_to_peak < rules.annealed_below):
        return found
    return _too_low(curve, step=step, epoch=epoch, rules=rules)


def _diverging(
    losses: list[float], *, step: int, epoch: int, rules: DiagnosisRules, floor: float
) -> Diagnosis | None:
    advice = (
        "Divide the LR by 10 and resume from the last good checkpoint; if it diverges again, clip "
        "gradients (`gradient_clip_val`) or lengthen the warmup."
    )
    bad = [index for index, loss in enumerate(losses) if not math.isfinite(loss)]
    if bad:
        first = step - (len(losses) - 1 - bad[0])
        message = (
            f"The training loss is not finite ({losses[bad[0]]}) on {len(bad)} of the last "
            f"{len(losses)} steps, first at step {first}: training has diverged."
        )
        evidence = {"nonfinite_steps": float(len(bad)), "first_nonfinite_step": float(first)}
        return Diagnosis("diverging", step, epoch, message, advice, 0.1, evidence)
    window = losses[-rules.window :]
    if len(window) < 2 * rules.smoothing_steps:
        return None
    smoothed = _running_medians(window, rules.smoothing_steps)
    best, last = min(smoothed), smoothed[-1]
    # the floor keeps the jitter of a nearly fitted model (0.005 to 0.03) from reading as a blow-up
    if best <= 0 or last <= rules.divergence_factor * best or last - best < floor:
        return None
    message = (
        f"The smoothed training loss rose to {last:.4g}, {last / best:.1f}x its best {best:.4g} "
        f"in the last {len(window)} steps (limit {rules.divergence_factor:g}x): training is diverging."
    )
    evidence = {"smoothed_loss": last, "best_smoothed_loss": best, "ratio": last / best}
    return Diagnosis("diverging", step, epoch, message, advice, 0.1, evidence)


def _too_high(curve: _Curve, *, step: int, epoch: int, rules: DiagnosisRules) -> Diagnosis | None:
    flat = curve.trend_t > -rules.trend_t
    moving = not _stalled(curve, rules)
    # batch noise bounces too (an MSE over 32 samples varies by ~25% from batch to batch); updates that
    # throw the loss around overshoot, so the next gradient points back against the step
    overshooting = curve.alignment_t is None or curve.alignment_t <= -rules.trend_t
    bouncing = (
        curve.noise > rules.noise_ratio
        and flat
        and curve.fall_from_scale < rules.stuck_fall
        and moving
        and overshooting
    )
    # steps that lean downhill (positive mean alignment) would have lowered the loss further if
    # longer: an update that overshoots makes the next gradient point back against it instead. The
    # hard batches of a nearly fitted classifier spike while its steps still lean downhill.
    downhill = curve.alignment is not None and curve.alignment > 0
    loss_spiking = curve.loss_spikes >= rules.spike_count and not downhill
    grad_spiking = curve.grad_spikes is not None and curve.grad_spikes >= rules.spike_count
    blown_up = curve.peak_to_start > rules.blowup_factor and moving  # stalled weights blow nothing up
    # a flat loss at its start while the weights move is stuck, unless the steps still point downhill
    # on average (a stuck model's point nowhere, or back): a slow start near a saddle leans downhill,
    # and cutting its LR would slow it further; a first window that flat may still be the slow start
    # of a deep network, the second is not
    dead = (
        curve.update_ratio is not None
        and moving
        and flat
        and curve.fall_from_scale < rules.dead_fall
        and curve.elapsed_steps >= 2 * rules.window
        and not downhill
    )
    if not (blown_up or bouncing or loss_spiking or grad_spiking or dead):
        return None
    reasons = []
    if blown_up:
        reasons.append(
            f"a training loss in the last {rules.window} steps blew up to {curve.peak_to_start:.1f}x the "
            f"loss at the start of training (limit {rules.blowup_factor:g}x): an update made the model "
            "far worse than its initialisation"
        )
    if dead:
        reasons.append(
            f"the training loss has not come down from its start ({curve.fall_from_scale:+.1%}) although the "
            f"weights move ({curve.update_ratio:.1e} of their norm per step): the model is stuck"
        )
    if bouncing:
        reasons.append(
            f"the training loss bounces by {curve.noise:.0%} of its level {curve.level:.4g} without "
            f"going down ({curve.fall:+.1%} over {rules.window} steps, t = {curve.trend_t:.1f})"
        )
    if loss_spiking:
        reasons.append(
            f"the training loss spiked above {rules.spike_factor:g}x its recent median on "
            f"{curve.loss_spikes} of the last {rules.window} steps"
        )
    if grad_spiking:
        reasons.append(
            f"the gradient norm spiked above {rules.grad_spike_factor:g}x its recent median on "
            f"{curve.grad_spikes} of the last {rules.window} steps"
        )
    # A blow-up or a stuck loss needs a real cut; spikes on a curve that still learns need less. A
    # stuck loss alone is no reason to change the LR of this run: a lower LR does not revive dead
    # units, and a model resting on a saddle (plain SGD on a small regression, steps that point
    # nowhere) only slows down further. It is advised, not acted on (no ``lr_factor``).
    cut = blown_up or bouncing or dead
    lr_factor: float | None = 0.3 if cut else 0.5
    advice = "Lower the LR about 3x (x0.3)" if cut else "Halve the LR (x0.5)"
    if dead:
        advice += "; a stuck model may need restarting from its initial weights"
    if dead and not (blown_up or bouncing or loss_spiking or grad_spiking):  # stuck, and nothing else
        lr_factor = None
        advice = (
            "Restart from the initial weights at a lower LR (x0.3): lowering it now does not revive a "
            "stuck model, and would slow one that only rests on a saddle"
        )
    if grad_spiking:
        advice += " and clip gradients, e.g. `Trainer(gradient_clip_val=1.0)`"
    elif loss_spiking:
        advice += " or lengthen the warmup"
    message = "The LR looks too high: " + "; ".join(reasons) + "."
    return Diagnosis("too_high", step, epoch, message, advice + ".", lr_factor, curve.evidence())


def _too_low(curve: _Curve, *, step: int, epoch: int, rules: DiagnosisRules) -> Diagnosis | None:
    advice = "Raise the LR 3 to 10 times (x3), or run the LR finder to pick it."
    # stalled weights of a model that blew up (dead units) do not point downhill: only slow ones do
    stalled = _stalled(curve, rules) and (curve.alignment is None or _aligned(curve, rules))
    if stalled and curve.trend_t > -rules.trend_t and curve.fall_from_scale < rules.stuck_fall:
        message = (
            f"The LR looks too low: the weights barely move (each step changes them by "
            f"{curve.update_ratio:.1e} of their norm, below {rules.stall_update_ratio:.0e}) and the "
            f"training loss does not go down ({curve.fall:+.1%} over {rules.window} steps)."
        )
        return Diagnosis("too_low", step, epoch, message, advice, 3.0, curve.evidence())
    # steps that point downhill are too short only while the loss is still near its start: one that
    # has already halved fast is not held back, and near a minimum a good LR's steps point on too
    near_start = curve.fall_from_scale < rules.stuck_fall
    if (
        near_start
        and curve.trend_t <= -rules.trend_t
        and _aligned(curve, rules, minimum=rules.step_alignment)
    ):
        message = (
            f"The LR looks too low: the gradient after each step still points the way the step went "
            f"(alignment {curve.alignment:+.2f}, t = {curve.alignment_t:.1f}, at least "
            f"{rules.step_alignment:g}), so longer steps would have lowered the loss further."
        )
        return Diagnosis("too_low", step, epoch, message, advice, 3.0, curve.evidence())
    steady = curve.trend_t <= -rules.trend_t
    slow = curve.fall < rules.min_progress
    not_slowing = curve.recent_pace >= rules.pace_ratio * curve.overall_pace
    if not (steady and slow and not_slowing):
        return None
    message = (
        f"The LR looks too low: the training loss falls steadily (t = {curve.trend_t:.1f}) but only "
        f"{curve.fall:.2%} over {rules.window} steps (below {rules.min_progress:.2%}), and no slower "
        f"than it has since the start."
    )
    return Diagnosis("too_low", step, epoch, message, advice, 3.0, curve.evidence())


def _stalled(curve: _Curve, rules: DiagnosisRules) -> bool:
    return curve.update_ratio is not None and curve.update_ratio < rules.stall_update_ratio


def _aligned(curve: _Curve, rules: DiagnosisRules, *, minimum: float = 0.0) -> bool:
    """The steps point downhill beyond doubt: mean alignment above ``minimum``, with t >= ``trend_t``."""
    return (
        curve.alignment is not None
        and curve.alignment_t is not None
        and curve.alignment >= minimum
        and curve.alignment_t >= rules.trend_t
    )
