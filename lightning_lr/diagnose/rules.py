"""The thresholds of every diagnosis rule, validated on construction.

:class:`DiagnosisRules` holds them (and defines the window statistics the training rules read);
:func:`~lightning_lr.diagnose.diagnose_training` and
:func:`~lightning_lr.diagnose.diagnose_evaluations` apply them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from lightning_lr._validate import (
    check_int,
    check_non_negative,
    check_positive,
    check_range,
    fail,
)


@dataclass(frozen=True)
class DiagnosisRules:
    """The thresholds of every rule, validated on construction with the house error format.

    The training rules look at the last ``window`` step losses. Over that window they fit a least-
    squares line ``loss ~ a + b * i`` and read:

    - ``level``: the median loss, and ``noise = std(loss[i+1] - loss[i]) / (sqrt(2) * level)``,
      the step losses' coefficient of variation: for independent noise the change between two
      steps has sqrt(2) times the spread of one step, and the trend cancels out of it. The std is
      estimated robustly, as 1.4826 times the median absolute deviation of the changes, so that a
      few spikes (the spike rule's business) do not read as a bouncing loss;
    - ``fall = -b * (window - 1) / level``, the relative fall of the fitted line, and its t
      statistic ``trend_t = b / stderr(b)``: a fall is real when ``trend_t <= -trend_t``;
    - ``total_fall = 1 - end / start``, how far the fitted end of the window lies below the start
      level, and the paces ``recent_pace = fall / (window - 1)`` and ``overall_pace = total_fall /
      elapsed_steps``; ``fall_from_scale = 1 - end / loss_scale``, the same from the loss of the
      run's first steps (before any warmup; equal to ``total_fall`` without one): how near its
      start a loss still is, for the rules that ask (bouncing, stuck, stalled, too-short steps);
    - spikes: steps whose value exceeds a factor times the median of the ``smoothing_steps``
      values before it, and ``peak_to_start``, the window's highest loss over the start level;
    - ``elapsed_steps``: the steps since the start level was taken;
    - ``alignment``: the mean over the window of ``cos(-g[t+1], w[t+1] - w[t])``, how far the
      gradient after a step still points the way the step went, and its t statistic
      ``alignment_t = mean / (std / sqrt(n))``. Its sign is the sign of the loss's derivative in the
      LR (hypergradient descent, Baydin et al., 2018; Pflug's stationarity test rests on the same
      product): positive when a longer step would have lowered the loss further, negative when the
      step overshot. Batch noise averages out of it, as the next gradient comes from another batch.

    Attributes:
        divergence_factor: ``diverging`` when the smoothed loss (median of the last
            ``smoothing_steps``) exceeds this multiple of its best value in the window. 4 is the
            stop rule of the LR range test (Lightning's ``lr_find``, fastai): a sustained 4x rise
            is far beyond batch noise, which the median removes, and beyond the bump of a warm
            restart.
        window: steps the ``too_high`` and ``too_low`` rules look at. Over 50 steps the fitted
            ``fall`` has a standard error of ``sqrt(12 / 50) = 0.49`` times the relative noise,
            and the rules still react within an epoch. With noisy losses a slow fall needs a
            longer window to stand out.
        smoothing_steps: losses in the running median, and the look-back of the spike baseline.
            10 outvotes up to 4 spikes among them and lags a divergence by only 5 steps.
        min_progress: ``too_low`` when the fitted fall over the window is below this fraction of
            the level. At 1% per 50 steps the loss would take ~3,500 steps to halve, where a
            well-tuned run halves it in a few hundred early on.
        noise_ratio: ``too_high`` (bouncing) when ``noise`` exceeds this. Batch noise on a
            classifier's loss well above its floor is a few percent to ~15% of it; a loss that
            swings by a quarter of its level from step to step is being thrown around by the
            updates. Not always: the mean squared error of a batch of 32 swings by about that much
            at any LR. So when alignments are measured, the updates must also overshoot
            (``alignment_t <= -trend_t``: the next gradient points back against the step), as they
            do on an MLP regression at 3x to 5x its good LR (alignment -0.3 to -0.8) and not at a
            good one (-0.1 to +0.2, |t| < 1).
        trend_t: |t| a fitted slope needs to count as a trend. At 3, a window of pure noise shows
            a downward "trend" in 0.2% of windows (t distribution, 48 degrees of freedom).
        stuck_fall: ``too_high`` (bouncing) and ``too_low`` (stalled) only while ``total_fall`` is
            below this. A loss that has already halved is noisy because it is low (batch noise is
            relative), not because the LR throws it around; 0.5 keeps the rules to losses still
            near where they started.
        pace_ratio: ``too_low`` only while ``recent_pace >= pace_ratio * overall_pace``. A loss held
            back by the LR falls at a steady pace (ratio near 1 or above); a healthy one slows down
            as it nears its floor (ratio ~0 for an exponential approach, ``alpha`` < 0.5 for a power
            law ``t ** -alpha``), so "flat because done" is not mistaken for "slow from the start".
        spike_factor: a step loss above this multiple of the median of the ``smoothing_steps``
            losses before it is a spike. 3 is far outside batch noise (a 3-sigma batch at 15%
            noise is 1.45x). The baseline is local so that a fast fall is not read as spikes.
        grad_spike_factor: the same for the gradient norm, whose batch-to-batch spread is wider;
            10x is where clipping pays off.
        spike_count: spiking steps in the window that make ``too_high``. One is an unlucky batch,
            three in ``window`` steps is a pattern, unless the steps still lean downhill (positive
            mean ``alignment``): a longer step would have lowered the loss, so the LR is not what
            throws it up. Breast cancer with SGD or Adam at a good LR, its training loss at 0.02,
            meets batches of 0.15 to 0.34 in runs of two or three, with alignments of +0.1 to +0.26;
            an LR too high spikes along steps that overshoot (-0.3 to 0).
        spike_sustain: a loss spike must hold: the median of the ``spike_sustain`` step losses from
            its start must clear the spike's bar (with 3: two steps in a row). An update that a too
            high LR made overshoot leaves the model worse for the next batches too; one hard batch
            does not, and the batch losses of a nearly fitted regression are heavy-tailed (single
            batches at 3x to 10x the median MSE, with Adam and SGD at good LRs). 1 counts every step.
        spike_floor: a loss spike, and a divergence, must also rise by this fraction of the loss
            scale (the loss of the run's first steps, before any warmup) above its baseline: a
            jump that undoes a quarter of what training gained. It ignores the heavy-tailed batch
            losses of a nearly fitted model (0.01 to 0.06 on a start of 2.3; on an MLP regression
            at good LRs, held jumps to 0.1 to 0.2 of a start of 0.55) and keeps the jumps of an LR
            raised 30x (past half the start); 0 switches it off.
        patience: ``plateau``/``overfitting`` after this many evaluations without improvement,
            counted as Lightning's ``EarlyStopping`` counts them (torch's ``ReduceLROnPlateau``
            acts one evaluation later). 3 outlasts the noise of a validation metric without
            wasting many epochs.
        min_delta: relative change of the validation metric that counts as an improvement (or a
            worsening), like ``ReduceLROnPlateau``'s ``threshold`` in ``"rel"`` mode. 1e-3 is just
            above the run-to-run jitter of a fixed validation set.
        plateau_progress: ``plateau`` only after the metric's best beat its first evaluation by at
            least this fraction (relative): a plateau is a stall after progress. A metric that
            never got there has not stalled, it never started, and decaying the LR (the plateau
            advice) would make that worse: the training evidence decides whether the LR is too
            low or too high. 1% is ten times ``min_delta``; SGD at 1e-6 on a small regression moves
            its validation MSE by 0.02% in 10 epochs, a run that learns moves its metric by more
            than 1% within its first few evaluations.
        stall_update_ratio: a step that changes the weights by less than this fraction of their
            norm (the median over the window of ``||w_new - w_old|| / ||w_old||``) barely moves
            them. Measured on MNIST-1D, healthy Adam and SGD runs sit between 3e-3 and 3e-2; AdamW
            at 0.01x the good LR moves them by 5e-4 to 7e-4 while its loss has not started to
            fall. A loss that does not fall while the weights stall, and step along directions that
            keep pointing downhill when alignments are measured, is ``too_low``; its batch noise
            is not read as ``too_high``.
        dead_fall: a loss that has fallen by less than this fraction in the ``2 * window`` steps or
            more since the start, with no real trend in the window, while the weights do move (not
            stalled) and the steps do not point downhill, is stuck: the LR threw the model where it
            cannot learn (dead ReLUs, saturated units), ``too_high``. Measured on MNIST-1D, Adam at
            30x the good LR stays at chance (2.30) from the first epoch on; a deep CNN without
            normalisation at a good LR can sit there for the first window before it learns. Steps
            whose mean alignment is positive lean downhill, not nowhere: an MLP regression at a
            good LR that starts slowly sits within 5% of its start for 110 steps with alignments
            of +0.28 on average (t = 2.2), and at a fifth of it for 120 steps with +0.12 (t = 0.5).
        annealed_below: ``too_low`` is not reported while the LR is below this fraction of the
            run's peak: a schedule annealing the LR towards zero is meant to slow training down.
        step_alignment: ``too_low`` when the loss falls along steps whose ``alignment`` is at least
            this, with ``alignment_t >= trend_t``: each next gradient still points along the step,
            so the steps are too short. Measured on MNIST-1D with AdamW over the first 50 steps, the
            window mean is 0.2 at 0.01x the good LR and 0.4 at 0.1x, and at most 0.13 at the good
            LR or above; later in training, the good LR and above sit between -0.3 and 0.
        blowup_factor: ``too_high`` when a step loss in the window exceeds this multiple of the
            loss scale (the loss of the run's first steps, before any warmup; a level taken after a
            warmup has already come down, and batch noise passes twice it) while the weights move:
            an update made the model far worse than its initialisation. Measured on MNIST-1D with
            AdamW, the first step lifts the loss 2.3x to 9x at 10x the good LR and at most 1.1x at
            3x it.
        confirm_checks: ``too_high`` and ``too_low`` are reported (and acted on) only once the
            training rules have found the same kind at this many checks in a row; ``diverging`` is
            reported at once. Two consecutive windows share most of their steps, so a true finding
            holds from one check to the next, while one unlucky window does not: on the benchmark's
            tuning runs (regression, digits and diabetes, seeds 0-1) two checks remove 6 of the 7
            LR alarms on runs at a good LR and lose 4 of the 60 runs at a wrong constant LR, for one
            check interval of delay. 1 reports at once.
        overfit_fall: ``overfitting`` only while the training loss fell by at least this fraction
            since the best evaluation, to its lowest since then. Memorising drives it down by a
            third or more in three evaluations; a loss on the noise floor of a too-high LR moves by
            a few percent while its validation metric drifts up and down.

    Example:
        >>> DiagnosisRules(window=100).window
        100
    """

    divergence_factor: float = 4.0
    window: int = 50
    smoothing_steps: int = 10
    min_progress: float = 0.01
    noise_ratio: float = 0.25
    trend_t: float = 3.0
    stuck_fall: float = 0.5
    pace_ratio: float = 0.5
    spike_factor: float = 3.0
    grad_spike_factor: float = 10.0
    spike_count: int = 3
    spike_sustain: int = 3
    spike_floor: float = 0.25
    patience: int = 3
    min_delta: float = 1e-3
    plateau_progress: float = 0.01
    stall_update_ratio: float = 1e-3
    dead_fall: float = 0.05
    annealed_below: float = 0.1
    step_alignment: float = 0.2
    blowup_factor: float = 2.0
    overfit_fall: float = 0.2
    confirm_checks: int = 2

    def __post_init__(self) -> None:
        check_range("divergence_factor", self.divergence_factor, 1.0, math.inf, low_open=True, high_open=True)
        check_int("smoothing_steps", self.smoothing_steps, 1)
        check_int("window", self.window, 3)
        if self.window < 2 * self.smoothing_steps:
            raise fail(
                "window",
                self.window,
                f"must be >= 2 * `smoothing_steps` = {2 * self.smoothing_steps}",
                "Lengthen the window or shorten the smoothing: the best and the last smoothed "
                "losses must not share steps.",
            )
        check_range("min_progress", self.min_progress, 0.0, 1.0, low_open=True, high_open=True)
        check_positive("noise_ratio", self.noise_ratio)
        check_positive("trend_t", self.trend_t)
        check_range("stuck_fall", self.stuck_fall, 0.0, 1.0, low_open=True)
        check_positive("pace_ratio", self.pace_ratio)
        check_range("spike_factor", self.spike_factor, 1.0, math.inf, low_open=True, high_open=True)
        check_range("grad_spike_factor", self.grad_spike_factor, 1.0, math.inf, low_open=True, high_open=True)
        check_int("spike_count", self.spike_count, 1)
        check_int("spike_sustain", self.spike_sustain, 1)
        check_non_negative("spike_floor", self.spike_floor)
        check_int("patience", self.patience, 1)
        check_range("min_delta", self.min_delta, 0.0, 1.0, high_open=True)
        check_range("plateau_progress", self.plateau_progress, 0.0, 1.0, high_open=True)
        check_range("stall_update_ratio", self.stall_update_ratio, 0.0, 1.0, high_open=True)
        check_range("dead_fall", self.dead_fall, 0.0, 1.0, high_open=True)
        check_range("annealed_below", self.annealed_below, 0.0, 1.0)
        check_range("step_alignment", self.step_alignment, 0.0, 1.0, low_open=True, high_open=True)
        check_range("blowup_factor", self.blowup_factor, 1.0, math.inf, low_open=True, high_open=True)
        check_range("overfit_fall", self.overfit_fall, 0.0, 1.0, high_open=True)
        check_int("confirm_checks", self.confirm_checks, 1)


def _check_rules(rules: Any) -> None:
    if not isinstance(rules, DiagnosisRules):
        raise TypeError(
            f"`rules` must be a DiagnosisRules, got {rules!r} of type {type(rules).__name__}. "
            "Use DiagnosisRules() for the defaults."
        )
