"""The learning-curve rules on synthetic curves: each fires on its own kind, stays silent on a healthy
curve, and reports the numbers it used (recomputed here with numpy as the reference)."""

from __future__ import annotations

import dataclasses
import json
import math
import pickle
import re
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lightning_lr.diagnose import (
    KINDS,
    Diagnosis,
    DiagnosisRules,
    check_action,
    diagnose_evaluations,
    diagnose_training,
)

RULES = DiagnosisRules()
WINDOW = RULES.window
SPAN = RULES.smoothing_steps
NAN, INF = float("nan"), float("inf")
PROPERTY = settings(deadline=None, max_examples=200)


def decay(
    steps: int, *, rate: float, noise: float = 0.0, scale: float = 2.0, floor: float = 0.0, seed: int = 0
) -> list[float]:
    """``(floor + scale * exp(-rate * i)) * (1 + noise * N(0, 1))`` for ``i`` in ``range(steps)``."""
    rng = np.random.default_rng(seed)
    index = np.arange(steps)
    curve = (floor + scale * np.exp(-rate * index)) * (1.0 + noise * rng.standard_normal(steps))
    return [float(value) for value in curve]


def kind(diagnosis: Diagnosis | None) -> str | None:
    return None if diagnosis is None else diagnosis.kind


def train(losses: Any, **kwargs: Any) -> Diagnosis | None:
    """Diagnose ``losses`` as the steps ``0 .. len - 1`` (the last one at ``step``)."""
    kwargs.setdefault("rules", RULES)
    return diagnose_training(losses, step=len(losses) - 1, epoch=0, **kwargs)


def evaluations(train_losses: Any, val_losses: Any, **kwargs: Any) -> Diagnosis | None:
    kwargs.setdefault("rules", RULES)
    return diagnose_evaluations(
        train_losses, val_losses, step=100 * len(val_losses), epoch=len(val_losses), **kwargs
    )


# --- the reference: the window statistics written out with numpy --------------------------------


def reference_curve(
    losses: list[float],
    *,
    start: float | None = None,
    elapsed: float | None = None,
    grad_norms: Any = None,
    alignments: Any = None,
) -> dict[str, float]:
    """Every statistic of :class:`DiagnosisRules`, from its docstring, on the last window of ``losses``."""
    window = np.asarray(losses[-WINDOW:])
    if start is None:
        start = min(losses[0], float(np.median(losses[:SPAN])))
        elapsed = len(losses) - 1 - (SPAN - 1) / 2
    assert elapsed is not None
    index = np.arange(WINDOW)
    slope, intercept = np.polyfit(index, window, 1)
    residual = window - (intercept + slope * index)
    stderr = math.sqrt(residual @ residual / (WINDOW - 2) / np.sum((index - index.mean()) ** 2))
    level = float(np.median(window))
    changes = np.diff(window)
    spread = 1.4826 * np.median(np.abs(changes - np.median(changes)))  # robust std of the changes
    end = intercept + slope * (WINDOW - 1)
    total_fall = 1.0 - end / start
    stats = {
        "level": level,
        "noise": float(spread / (math.sqrt(2.0) * level)),
        "fall": float(-slope * (WINDOW - 1) / level),
        "trend_t": float(np.clip(slope / stderr, -1e6, 1e6)),
        "total_fall": float(total_fall),
        "fall_from_scale": float(total_fall),
        "recent_pace": float(-slope / level),
        "overall_pace": float(total_fall / elapsed),
        "elapsed_steps": float(elapsed),
        "loss_spikes": reference_spikes(window, RULES.spike_factor, RULES.spike_floor * start),
        "peak_to_start": float(window.max() / start),
    }
    if grad_norms is not None:
        norms = np.asarray(grad_norms[-WINDOW:])
        stats["grad_spikes"] = reference_spikes(norms[np.isfinite(norms)], RULES.grad_spike_factor, 0.0)
    if alignments is not None:
        values = np.asarray(alignments)
        stats["alignment"] = float(values.mean())
        stats["alignment_t"] = float(values.mean() / (values.std(ddof=1) / math.sqrt(len(values))))
    return stats


def reference_spikes(values: np.ndarray, factor: float, floor: float, sustain: int = 3) -> float:
    """Steps from which the median of ``sustain`` values clears ``factor`` times the median of the
    ``SPAN`` before them (and ``floor`` above it)."""
    baselines = np.median(np.lib.stride_tricks.sliding_window_view(values, SPAN)[:-1], axis=1)
    held = np.median(np.lib.stride_tricks.sliding_window_view(values[SPAN:], sustain), axis=1)
    baselines = baselines[: len(held)]
    return float(np.sum((held > factor * baselines) & (held - baselines >= floor)))


def assert_evidence(found: Diagnosis, expected: dict[str, float]) -> None:
    assert found.evidence.keys() == expected.keys()
    for name, value in expected.items():
        assert found.evidence[name] == pytest.approx(value, rel=1e-6, abs=1e-12), name


# --- healthy curves ------------------------------------------------------------------------------


@pytest.mark.parametrize("steps", [2 * SPAN - 1, 2 * SPAN, WINDOW, 300])
@pytest.mark.parametrize("with_start", [False, True])
def test_healthy_decay_is_silent(steps: int, with_start: bool) -> None:
    losses = decay(steps, rate=0.02, noise=0.01)
    norms = list(np.exp(0.2 * np.random.default_rng(1).standard_normal(steps)))
    start = {"initial_loss": 2.0} if with_start else {}
    assert train(losses, grad_norms=norms, **start) is None


def test_too_few_losses_are_not_judged() -> None:
    assert diagnose_training([], step=0, epoch=0, rules=RULES) is None
    assert train([5.0]) is None


# --- too_low -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("steps", "start"),
    [
        pytest.param(WINDOW, {}, id="window-only"),
        pytest.param(400, {}, id="whole-history"),
        pytest.param(400, {"initial_loss": 2.0, "initial_step": 0}, id="initial-loss"),
    ],
)
def test_slow_steady_decay_is_too_low(steps: int, start: dict[str, Any]) -> None:
    losses = decay(steps, rate=1e-4, noise=5e-4)
    found = train(losses, **start)
    assert found is not None
    assert (found.kind, found.lr_factor, found.step) == ("too_low", 3.0, steps - 1)
    assert "3 to 10" in found.advice
    reference = (
        reference_curve(losses, start=start["initial_loss"], elapsed=steps - 1)
        if start
        else reference_curve(losses)
    )
    assert_evidence(found, reference)
    assert found.evidence["fall"] < RULES.min_progress
    assert found.evidence["trend_t"] <= -RULES.trend_t
    assert found.evidence["recent_pace"] >= RULES.pace_ratio * found.evidence["overall_pace"]


def test_converged_noisy_curve_is_silent() -> None:
    # Fast decay to a floor, then flat: the window shows no real trend, so neither too_low nor
    # too_high (its noise is small), and the training side never says plateau.
    losses = decay(400, rate=0.05, noise=0.005, floor=0.3)
    assert train(losses) is None
    assert train(losses[-WINDOW:]) is None
    assert train(losses, initial_loss=2.3) is None


def test_converged_smooth_curve_is_done_not_slow() -> None:
    # Noiseless approach to a floor: the window still falls significantly and slowly, but far
    # slower than the curve did on average since the start, so it is converging, not starved.
    losses = decay(751, rate=0.01, floor=0.3)
    found = train(losses[-WINDOW:], initial_loss=2.3)
    assert found is None
    stats = reference_curve(losses[-WINDOW:], start=2.3, elapsed=750)
    assert stats["fall"] < RULES.min_progress
    assert stats["trend_t"] <= -RULES.trend_t
    assert stats["recent_pace"] < RULES.pace_ratio * stats["overall_pace"]
    assert train(losses) is None  # the whole history gives the same start


def test_without_a_start_level_a_smooth_approach_reads_as_too_low() -> None:
    # The documented limit: one window and no `initial_loss` cannot tell "done" from "slow".
    losses = decay(751, rate=0.01, floor=0.3)
    found = train(losses[-WINDOW:])
    assert found is not None
    assert found.kind == "too_low"


# --- too_high ------------------------------------------------------------------------------------


def bouncing(steps: int = WINDOW, level: float = 2.0, spread: float = 0.4, seed: int = 0) -> list[float]:
    """A flat loss thrown around multiplicatively: ``level * exp(spread * N(0, 1))``."""
    rng = np.random.default_rng(seed)
    return [float(value) for value in level * np.exp(spread * rng.standard_normal(steps))]


@pytest.mark.parametrize("start", [{}, {"initial_loss": 2.3}])
def test_noisy_flat_curve_at_a_high_level_is_too_high(start: dict[str, Any]) -> None:
    losses = bouncing()
    found = train(losses, **start)
    assert found is not None
    assert (found.kind, found.lr_factor) == ("too_high", 0.3)
    assert "bounces" in found.message
    reference = reference_curve(losses, start=2.3, elapsed=WINDOW - 1) if start else reference_curve(losses)
    assert_evidence(found, reference)
    assert found.evidence["noise"] > RULES.noise_ratio
    assert found.evidence["trend_t"] > -RULES.trend_t
    assert found.evidence["total_fall"] < RULES.stuck_fall


def test_a_bouncing_loss_whose_steps_do_not_overshoot_is_batch_noise() -> None:
    # An MSE over a batch of 32 swings by ~25% from batch to batch at any LR. When the next gradient
    # points back against each step, the updates throw the loss around; when it points nowhere in
    # particular, the bounce is the batches'.
    losses, moving = bouncing(spread=0.35), {"update_ratios": [5e-3] * 5}  # 26% noise, no blow-up
    found = train(losses, **moving, step_alignments=[-0.5, -0.45, -0.6, -0.52])
    assert found is not None and found.kind == "too_high" and "bounces" in found.message
    assert train(losses, **moving, step_alignments=[-0.06, 0.1, 0.03, -0.09]) is None
    assert train(losses, **moving, step_alignments=[-0.3, 0.2, -0.4, 0.1]) is None  # t = -0.7
    assert kind(train(losses, **moving)) == "too_high"  # without alignments, the noise alone decides


@pytest.mark.parametrize(("ratio", "expected"), [(1e-5, "too_low"), (2e-4, "too_low"), (5e-3, "too_high")])
def test_the_update_ratio_tells_stalled_weights_from_a_bouncing_loss(ratio: float, expected: str) -> None:
    # the same flat, noisy loss: sampling noise while the weights stall, or real bouncing
    found = train(bouncing(), update_ratios=[ratio] * 5)
    assert found is not None and found.kind == expected
    assert found.evidence["update_ratio"] == pytest.approx(ratio)
    if expected == "too_low":
        assert found.lr_factor == 3.0 and "barely move" in found.message


def test_stalled_weights_on_a_falling_loss_are_not_too_low_by_the_stall_rule() -> None:
    found = train(decay(WINDOW, rate=0.05), update_ratios=[1e-5] * 5)
    assert found is None or "barely move" not in found.message


def test_a_flat_loss_while_the_weights_move_is_a_stuck_model_too_high() -> None:
    # Adam far too high kills a ReLU network: the loss sits at chance, quietly, weights still moving
    flat = decay(WINDOW, rate=0.0, scale=2.30, noise=0.005)
    later = {"step": 2 * WINDOW, "epoch": 3, "rules": RULES, "initial_loss": 2.30}
    found = diagnose_training(flat, **later, update_ratios=[1e-3] * 5)
    assert found is not None and found.kind == "too_high" and "stuck" in found.message
    # advice only: a lower LR does not revive it, and would slow a model that rests on a saddle
    assert found.lr_factor is None and "Restart from the initial weights" in found.advice
    assert found.evidence["total_fall"] < RULES.dead_fall
    # the same flat loss with stalled weights is too low, and without ratios nothing is claimed
    assert kind(diagnose_training(flat, **later, update_ratios=[1e-5] * 5)) == "too_low"
    assert diagnose_training(flat, **later) is None
    # one window that flat may be the slow start of a deep network: it has to last a second one
    assert train(flat, initial_loss=2.30, update_ratios=[1e-3] * 5) is None


def test_too_low_is_not_reported_while_a_schedule_anneals_the_lr() -> None:
    stalled = dict(initial_loss=2.30, update_ratios=[1e-5] * 5)
    flat = decay(WINDOW, rate=0.0, scale=2.30, noise=0.005)
    assert kind(train(flat, **stalled, lr_to_peak=0.5)) == "too_low"
    assert train(flat, **stalled, lr_to_peak=RULES.annealed_below / 2) is None


# --- the steps' alignment: too short steps keep pointing downhill -------------------------------------

ALIGNED = [0.25, 0.4, 0.5, 0.35]  # MNIST-1D, AdamW at 0.1x the good LR, its first 50 steps
UNALIGNED = [0.14, 0.08, 0.09, 0.2]  # at the good LR: positive here, but below `step_alignment`


def test_steps_that_keep_pointing_downhill_are_too_low() -> None:
    # The loss falls, fast enough for the slow-fall rule, but each next gradient still points
    # along the step taken: longer steps would have gone further.
    losses = decay(WINDOW, rate=0.003, noise=0.005)
    assert train(losses, initial_loss=2.0, update_ratios=[5e-3] * 5) is None
    found = train(losses, initial_loss=2.0, update_ratios=[5e-3] * 5, step_alignments=ALIGNED)
    assert found is not None
    assert (found.kind, found.lr_factor) == ("too_low", 3.0)
    assert "still points" in found.message
    expected = reference_curve(losses, start=2.0, elapsed=WINDOW - 1, alignments=ALIGNED)
    assert_evidence(found, {**expected, "update_ratio": 5e-3})
    assert found.evidence["alignment"] >= RULES.step_alignment
    assert found.evidence["alignment_t"] >= RULES.trend_t


@pytest.mark.parametrize(
    "alignments",
    [
        pytest.param(UNALIGNED, id="weakly-aligned"),
        pytest.param([0.6, -0.4, 0.5, -0.1], id="inconsistent"),
        pytest.param(ALIGNED[:2], id="too-few"),
        pytest.param([-0.1, -0.05, -0.2, 0.02], id="overshooting"),
    ],
)
def test_steps_that_do_not_clearly_point_downhill_say_nothing(alignments: list[float]) -> None:
    losses = decay(WINDOW, rate=0.003, noise=0.005)
    assert train(losses, initial_loss=2.0, update_ratios=[5e-3] * 5, step_alignments=alignments) is None


def test_aligned_steps_on_a_flat_loss_are_not_a_stuck_model() -> None:
    # Flat at its start while the weights move: stuck, unless the steps still point downhill
    # (an LR so low that the loss has not started to fall yet); then nothing is claimed.
    flat = decay(WINDOW, rate=0.0, scale=2.30, noise=0.005)
    moving = {
        "step": 2 * WINDOW,
        "epoch": 3,
        "rules": RULES,
        "initial_loss": 2.30,
        "update_ratios": [2e-3] * 5,
    }
    assert kind(diagnose_training(flat, **moving, step_alignments=[-0.05, 0.02, -0.1, 0.04])) == "too_high"
    assert diagnose_training(flat, **moving, step_alignments=[0.16, 0.25, 0.18, 0.15]) is None


def test_steps_pointing_downhill_on_average_are_not_a_stuck_model() -> None:
    # A slow start at a good LR: flat for two windows, and the steps lean downhill on average
    # (mean 0.28, or 0.18), though not beyond doubt (t = 2.4): slow, not stuck. Steps that point
    # nowhere or back (mean <= 0) are those of a stuck model.
    flat = decay(WINDOW, rate=0.0, scale=2.30, noise=0.005)
    later = {
        "step": 2 * WINDOW,
        "epoch": 3,
        "rules": RULES,
        "initial_loss": 2.30,
        "update_ratios": [8e-3] * 5,
    }
    assert diagnose_training(flat, **later, step_alignments=[0.5, 0.05, 0.45, 0.1]) is None
    assert diagnose_training(flat, **later, step_alignments=[0.3, 0.05, 0.25, 0.1]) is None
    assert kind(diagnose_training(flat, **later, step_alignments=[0.1, -0.15, 0.05, -0.1])) == "too_high"


def test_stalled_weights_are_too_low_only_when_their_steps_point_downhill() -> None:
    # A model that blew up can have stalled weights too (dead units, weights grown huge): its steps
    # point nowhere in particular, where those of an LR far too low keep pointing downhill.
    flat = decay(WINDOW, rate=0.0, scale=2.30, noise=0.005)
    stalled = {"initial_loss": 2.30, "update_ratios": [5e-4] * 5}
    assert kind(train(flat, **stalled)) == "too_low"
    assert kind(train(flat, **stalled, step_alignments=[0.2, 0.22, 0.28, 0.18])) == "too_low"
    assert train(flat, **stalled, step_alignments=[0.12, -0.31, -0.45, 0.48]) is None


# --- a blow-up: an update made the model far worse than its initialisation -----------------------------


def blown_up(height: float) -> list[float]:
    """A healthy fall from 2.3 whose second step jumps to ``height`` times the start, then back."""
    losses = decay(WINDOW, rate=0.02, scale=2.3, noise=0.01)
    losses[1] = height * 2.3
    return losses


def test_a_loss_thrown_far_above_its_start_is_too_high() -> None:
    # MNIST-1D, AdamW: the first step at 10x the good LR lifts the loss 2.3x to 9x, at 3x it 1.1x
    found = train(blown_up(2.3), update_ratios=[1e-2] * 5)
    assert found is not None
    assert (found.kind, found.lr_factor) == ("too_high", 0.3)
    assert "blew up" in found.message and "x0.3" in found.advice
    assert_evidence(found, {**reference_curve(blown_up(2.3)), "update_ratio": 1e-2})
    assert found.evidence["peak_to_start"] > RULES.blowup_factor
    assert train(blown_up(1.5), update_ratios=[1e-2] * 5) is None


def test_a_blow_up_needs_weights_that_move() -> None:
    # With stalled weights no update threw the loss up: an excursion is the batch's, not the LR's.
    assert kind(train(blown_up(3.0), update_ratios=[1e-2] * 5)) == "too_high"
    assert train(blown_up(3.0), update_ratios=[1e-5] * 5) is None


def test_the_start_level_is_the_first_loss_when_the_first_steps_blow_up() -> None:
    # An LR far too high blows the loss up within the first steps; the median of those steps would
    # put the start above chance and hide a model stuck at chance ever since.
    losses = [2.3, 11860.0, 592.0, 393.0, 20.7, 5.6, 3.4, 2.9, 3.0, 3.0]
    losses += decay(2 * WINDOW, rate=0.0, scale=2.3, noise=0.005, seed=4)
    found = train(losses, update_ratios=[1e-2] * 5)
    assert found is not None
    assert found.kind == "too_high"
    assert found.evidence["total_fall"] < RULES.dead_fall
    assert "stuck" in found.message


def test_noise_of_a_loss_that_already_fell_is_not_too_high() -> None:
    # The same relative noise around 0.2, on a run that started at 2.3: batch noise is relative,
    # a low loss is noisy because it is low.
    losses = bouncing(level=0.2, spread=0.45)
    assert train(losses, initial_loss=2.3) is None
    assert reference_curve(losses, start=2.3, elapsed=WINDOW - 1)["noise"] > RULES.noise_ratio


def spiky(steps: int = 100, every: int = 10, height: float = 5.0, held: int = 2) -> list[float]:
    losses = decay(steps, rate=0.02, noise=0.01)
    for index in range(every // 2, steps, every):
        for offset in range(held):
            losses[min(index + offset, steps - 1)] *= height
    return losses


def test_periodic_spikes_are_too_high() -> None:
    losses = spiky()
    found = train(losses)
    assert found is not None
    assert (found.kind, found.lr_factor) == ("too_high", 0.5)
    assert "spiked" in found.message
    assert_evidence(found, reference_curve(losses))
    # Jumps held for two steps at 55, 65, ..., 95: each counts from the step before it (the median
    # of three from there holds two high losses); the first sits within the baseline's look-back.
    assert found.evidence["loss_spikes"] == 8


def test_spikes_along_steps_that_lean_downhill_are_hard_batches_not_a_high_lr() -> None:
    losses = spiky()
    overshooting = [-0.2 + 0.05 * (i % 3 - 1) for i in range(20)]  # mean -0.2: the steps overshoot
    found = train(losses, step_alignments=overshooting)
    assert found is not None and found.kind == "too_high" and "spiked" in found.message
    downhill = [0.15 + 0.05 * (i % 3 - 1) for i in range(20)]  # mean +0.15: longer steps would help
    assert train(losses, step_alignments=downhill) is None
    flat = [0.05 * (i % 3 - 1) for i in range(20)]  # mean 0: nothing says the steps are too short
    assert kind(train(losses, step_alignments=flat)) == "too_high"


def test_single_batch_spikes_are_not_a_pattern() -> None:
    # One high batch loss at a time, however many, is the heavy tail of batch noise (a hard batch):
    # the next batches are back at the level, so the update did not throw the model off.
    losses = spiky(every=5, held=1)
    assert reference_curve(losses)["loss_spikes"] == 0
    assert train(losses) is None
    found = diagnose_training(losses, step=99, epoch=0, rules=DiagnosisRules(spike_sustain=1))
    assert kind(found) == "too_high"


def test_fewer_spikes_than_spike_count_are_silent() -> None:
    losses = spiky(every=30)
    assert reference_curve(losses)["loss_spikes"] == RULES.spike_count - 1
    assert train(losses) is None


def test_small_spikes_of_a_nearly_fitted_model_are_ignored() -> None:
    # Batch losses of a model that fits nearly every sample: mostly 0.01, and 0.06 whenever a batch
    # holds a misclassified sample; 6x the median, but tiny next to the start level of 2.3.
    rng = np.random.default_rng(3)
    losses = [0.01 + 0.05 * float(count) for count in rng.poisson(0.4, WINDOW)]
    assert reference_curve(losses, start=2.3, elapsed=1000)["loss_spikes"] == 0
    late = {"step": 1000, "epoch": 9, "initial_loss": 2.3}
    assert diagnose_training(losses, rules=RULES, **late) is None
    found = diagnose_training(losses, rules=DiagnosisRules(spike_floor=0.0), **late)
    assert found is not None
    assert found.kind == "too_high"


def test_gradient_norm_spikes_are_too_high_and_suggest_clipping() -> None:
    losses = decay(100, rate=0.02, noise=0.01)
    norms = [float(norm) for norm in np.exp(0.2 * np.random.default_rng(2).standard_normal(100))]
    for index in (60, 70, 80, 90):
        norms[index] *= 30.0
        norms[index + 1] *= 30.0
    norms[75] = INF  # a step the AMP grad scaler skipped: ignored, not a spike
    found = train(losses, grad_norms=norms)
    assert found is not None
    assert (found.kind, found.lr_factor) == ("too_high", 0.5)
    assert "gradient_clip_val" in found.advice
    assert "gradient norm" in found.message
    assert_evidence(found, reference_curve(losses, grad_norms=norms))
    assert found.evidence["grad_spikes"] == 7  # as the reference counts them, the skipped step dropped first
    assert train(losses, grad_norms=norms[:60]) is None  # the spikes are the only finding


def test_too_high_outranks_too_low() -> None:
    losses = decay(WINDOW, rate=1e-4, noise=5e-4)
    assert kind(train(losses)) == "too_low"
    norms = [1.0] * WINDOW
    for index in (20, 21, 30, 31, 40, 41):
        norms[index] = 50.0
    found = train(losses, grad_norms=norms)
    assert found is not None
    assert found.kind == "too_high"


# --- diverging -----------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [NAN, INF, -INF])
@pytest.mark.parametrize("position", [5, 40, 60])
def test_nonfinite_loss_is_diverging(bad: float, position: int) -> None:
    losses = decay(61, rate=0.02, noise=0.01)
    losses[position] = bad
    found = diagnose_training(losses, step=1000, epoch=4, rules=RULES)
    assert found is not None
    assert (found.kind, found.lr_factor, found.step, found.epoch) == ("diverging", 0.1, 1000, 4)
    assert found.evidence == {"nonfinite_steps": 1.0, "first_nonfinite_step": 1000.0 - (60 - position)}
    assert "by 10" in found.advice


def reference_divergence(losses: list[float]) -> dict[str, float]:
    smoothed = np.median(np.lib.stride_tricks.sliding_window_view(losses[-WINDOW:], SPAN), axis=1)
    return {
        "smoothed_loss": float(smoothed[-1]),
        "best_smoothed_loss": float(smoothed.min()),
        "ratio": float(smoothed[-1] / smoothed.min()),
    }


@pytest.mark.parametrize("steps", [2 * SPAN + 6, WINDOW, 120])
def test_exploding_curve_is_diverging(steps: int) -> None:
    losses = decay(steps, rate=-0.1, noise=0.05, scale=1.0)
    found = train(losses)
    assert found is not None
    assert (found.kind, found.lr_factor) == ("diverging", 0.1)
    assert_evidence(found, reference_divergence(losses))
    assert found.evidence["ratio"] > RULES.divergence_factor


def test_rise_after_a_fall_is_diverging() -> None:
    # Down from 2 to ~0.5, then back up: judged against the best level, not the start.
    losses = decay(30, rate=0.05, noise=0.01) + [0.5 * 1.15**i for i in range(1, 21)]
    found = train(losses)
    assert found is not None
    assert found.kind == "diverging"
    assert_evidence(found, reference_divergence(losses))


def test_divergence_needs_two_spans_of_history() -> None:
    losses = decay(2 * SPAN - 1, rate=-0.3, scale=1.0)
    assert train(losses) is None
    assert train([*losses, losses[-1] * 1.3]) is not None


def test_a_single_huge_spike_is_not_diverging() -> None:
    losses = decay(WINDOW, rate=0.02, noise=0.01)
    losses[-1] *= 100.0  # the running median outvotes one step
    found = train(losses)
    assert found is not None
    assert found.kind == "too_high"  # a blow-up, not a divergence
    assert "blew up" in found.message
    losses[-1] = 1.5 * losses[0]  # a spike that stays below twice the start
    assert train(losses) is None


def test_the_jitter_of_a_nearly_fitted_model_is_not_diverging() -> None:
    # 0.005 to 0.03 is 6x, but a rise of 1% of the start level: no blow-up
    losses = [0.005] * 30 + [0.03] * 20
    assert diagnose_training(losses, step=1000, epoch=9, rules=RULES, initial_loss=2.3) is None
    found = diagnose_training(
        losses, step=1000, epoch=9, rules=DiagnosisRules(spike_floor=0.0), initial_loss=2.3
    )
    assert kind(found) == "diverging"


def test_diverging_outranks_too_high() -> None:
    losses = [value * math.exp(0.08 * index) for index, value in enumerate(bouncing(WINDOW, 1.0, 0.4))]
    found = train(losses)
    assert found is not None
    assert found.kind == "diverging"


# --- evaluations: plateau and overfitting --------------------------------------------------------

FALLING = [1.0, 0.8, 0.65, 0.55, 0.47, 0.41, 0.36]


def test_improving_evaluations_are_silent() -> None:
    assert evaluations(FALLING, [1.1, 0.9, 0.8, 0.72, 0.66, 0.61, 0.57]) is None
    assert evaluations([], []) is None
    assert evaluations([1.0], [1.0]) is None


def test_flat_validation_is_a_plateau() -> None:
    val = [1.1, 0.9, 0.7, 0.7, 0.7001, 0.6996, 0.7]  # 0.6996 improves by 0.06%, below min_delta
    found = evaluations(FALLING, val)
    assert found is not None
    assert (found.kind, found.lr_factor) == ("plateau", 0.3)
    assert found.evidence == {"best_value": 0.7, "last_value": 0.7, "evaluations_without_improvement": 4.0}
    assert "x0.3" in found.advice


def test_plateau_waits_for_patience() -> None:
    val = [1.1, 0.9, 0.7, 0.7, 0.7]
    assert evaluations(FALLING[:5], val) is None
    assert evaluations(FALLING[:6], [*val, 0.71]) is not None
    assert evaluations(FALLING[:5], val, rules=DiagnosisRules(patience=2)) is not None


def test_converged_training_with_improving_validation_is_not_a_plateau() -> None:
    # A flat training loss is not a plateau: the rule reads the validation metric only.
    assert evaluations([0.3] * 7, [1.1, 0.9, 0.8, 0.72, 0.66, 0.61, 0.57]) is None


def test_nonfinite_validation_never_improves() -> None:
    found = evaluations(FALLING[:5], [NAN, 0.9, 0.8, NAN, INF])
    assert found is None  # best 0.8 at evaluation 2, two without improvement
    found = evaluations(FALLING[:6], [NAN, 0.9, 0.8, NAN, INF, NAN])
    assert found is not None
    assert found.kind == "plateau"
    assert found.evidence["best_value"] == 0.8
    assert math.isnan(found.evidence["last_value"])
    assert evaluations([1.0, 0.9, 0.8, 0.7], [NAN] * 4) is None


def test_validation_rising_while_training_falls_is_overfitting() -> None:
    val = [1.1, 0.9, 0.7, 0.72, 0.75, 0.8]
    found = evaluations(FALLING[:6], val)
    assert found is not None
    assert (found.kind, found.lr_factor) == ("overfitting", 0.5)
    assert found.evidence == pytest.approx(
        {
            "val_start": 0.7,
            "val_end": 0.8,
            "train_start": 0.65,
            "train_end": 0.41,
            "gap_start": 0.7 - 0.65,
            "gap_end": 0.8 - 0.41,
        }
    )
    assert found.evidence["gap_end"] > found.evidence["gap_start"]
    assert "weight decay" in found.advice
    assert "stop early" in found.advice


def test_validation_rising_with_training_rising_is_not_overfitting() -> None:
    val = [1.1, 0.9, 0.7, 0.72, 0.75, 0.8]
    rising_train = [1.0, 0.8, 0.6, 0.62, 0.66, 0.7]
    found = evaluations(rising_train, val)
    assert found is not None
    assert found.kind == "plateau"


def test_a_noisy_rise_is_overfitting_without_waiting_for_a_steady_one() -> None:
    # A dip on the way up (validation noise) does not hide it: no improvement for `patience`
    # evaluations, worse than the best, while the training loss keeps falling.
    val = [1.1, 0.9, 0.7, 0.75, 0.74, 0.8]
    found = evaluations(FALLING[:6], val)
    assert found is not None
    assert found.kind == "overfitting"
    assert (found.evidence["val_start"], found.evidence["val_end"]) == (0.7, 0.8)
    tiny = [1.1, 0.9, 0.7, 0.70001, 0.70002, 0.70003]  # worse, but by less than min_delta
    assert kind(evaluations(FALLING[:6], tiny)) == "plateau"


@pytest.mark.parametrize(
    "train_losses",
    [
        pytest.param([1.0, 0.8, 0.65, 0.6, 0.58, 0.56], id="falls-too-little"),
        pytest.param([1.0, 0.8, 0.65, 0.45, 0.41, 0.48], id="falls-but-bounced-back"),
    ],
)
def test_overfitting_needs_a_training_loss_that_keeps_falling(train_losses: list[float]) -> None:
    # A too-high LR's noise floor: the validation metric drifts up and down while the training loss
    # moves by a few percent, or bounces back; that is a plateau, not memorisation.
    val = [1.1, 0.9, 0.7, 0.72, 0.75, 0.8]
    assert kind(evaluations(train_losses, val)) == "plateau"
    assert kind(evaluations(train_losses, val, rules=DiagnosisRules(overfit_fall=0.0))) == (
        "overfitting" if train_losses[-1] == min(train_losses) else "plateau"
    )


def test_overfitting_reads_through_the_noise_of_the_training_loss() -> None:
    # diabetes with a quarter of the targets shuffled: the epoch means rise by 0.2% to 0.6% now and
    # then while they fall by 22% from the best evaluation (0.642, the seventh) on, to a new low
    train = [1.129, 0.765, 0.701, 0.656, 0.610, 0.571, 0.539, 0.519, 0.520, 0.500, 0.484, 0.487, 0.451]
    val = [0.906, 0.679, 0.674, 0.688, 0.726, 0.682, 0.642, 0.667, 0.694, 0.718, 0.738, 0.745, 0.715]
    train, val = [*train, 0.447, 0.438, 0.422], [*val, 0.718, 0.763, 0.736]
    found = evaluations(train, val)
    assert found is not None and found.kind == "overfitting"
    assert (found.evidence["train_start"], found.evidence["train_end"]) == (0.539, 0.422)
    assert kind(evaluations([*train[:-1], 0.44], val)) == "plateau"  # not a new low


STUCK = [0.6391, 0.6391, 0.6390, 0.6390, 0.6390]  # SGD at 1e-6 on an MLP regression: 0.02% in all


def test_a_metric_that_never_improved_is_not_a_plateau() -> None:
    assert evaluations(FALLING[:5], STUCK) is None
    assert evaluations(FALLING[:5], [1.0, 1.001, 0.999, 1.0, 1.002]) is None
    assert evaluations(FALLING[:5], [0.5] * 5, mode="max") is None


def test_a_plateau_is_a_stall_after_progress_of_at_least_plateau_progress() -> None:
    small = [1.0, 0.995, 0.995, 0.995, 0.995]  # 0.5% better than the first, then flat
    assert evaluations(FALLING[:5], small) is None
    assert kind(evaluations(FALLING[:5], small, rules=DiagnosisRules(plateau_progress=0.004))) == "plateau"
    found = evaluations(FALLING[:5], [1.0, 0.98, 0.98, 0.98, 0.98])
    assert found is not None and found.kind == "plateau"
    assert "after improving from 1 to 0.98" in found.message
    assert kind(evaluations(FALLING[:5], [0.5, 0.52, 0.52, 0.52, 0.52], mode="max")) == "plateau"
    # the old rule, a stall without progress, is plateau_progress=0
    assert kind(evaluations(FALLING[:5], STUCK, rules=DiagnosisRules(plateau_progress=0.0))) == "plateau"


def test_a_metric_that_never_improved_while_the_weights_stall_is_too_low() -> None:
    found = evaluations(FALLING[:5], STUCK, update_ratio=2e-7)
    assert found is not None
    assert (found.kind, found.lr_factor) == ("too_low", 3.0)
    assert found.evidence == {
        "first_value": 0.6391,
        "best_value": 0.6391,
        "last_value": 0.639,
        "evaluations": 5.0,
        "update_ratio": 2e-7,
    }
    assert "has not improved by 1%" in found.message and "barely move" in found.message
    assert evaluations(FALLING[:5], STUCK, update_ratio=5e-3) is None  # moving weights: not this rule's call
    assert (
        evaluations(FALLING[:3], STUCK[:3], update_ratio=2e-7) is None
    )  # needs the first and `patience` more
    assert evaluations(FALLING[:5], [1.0, 0.9, 0.9, 0.9, 0.9], update_ratio=2e-7).kind == "plateau"  # type: ignore[union-attr]
    # a schedule that anneals the LR to zero stalls the weights on purpose: no too_low then
    assert evaluations(FALLING[:5], STUCK, update_ratio=2e-7, lr_to_peak=0.05) is None
    assert kind(evaluations(FALLING[:5], STUCK, update_ratio=2e-7, lr_to_peak=0.5)) == "too_low"


def test_max_mode_reads_accuracy() -> None:
    accuracy = [0.5, 0.6, 0.7, 0.68, 0.66, 0.63]
    found = evaluations(FALLING[:6], accuracy, mode="max")
    assert found is not None
    assert found.kind == "overfitting"
    assert "gap_start" not in found.evidence  # accuracy and loss do not subtract
    assert kind(evaluations(FALLING[:6], [0.5, 0.6, 0.7, 0.7, 0.7, 0.7], mode="max")) == "plateau"
    assert evaluations(FALLING[:6], [0.5, 0.6, 0.7, 0.75, 0.8, 0.85], mode="max") is None


# --- properties ----------------------------------------------------------------------------------


@PROPERTY
@given(
    rate=st.floats(0.01, 0.05),
    noise=st.floats(0.0, 0.02),
    scale=st.floats(0.1, 10.0),
    offset=st.integers(0, 100),
    steps=st.integers(WINDOW, 3 * WINDOW),
    with_start=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_healthy_decays_never_fire(
    rate: float, noise: float, scale: float, offset: int, steps: int, with_start: bool, seed: int
) -> None:
    losses = decay(offset + steps, rate=rate, noise=noise, scale=scale, seed=seed)[offset:]
    start = {"initial_loss": scale, "initial_step": 0} if with_start else {}
    assert diagnose_training(losses, step=offset + steps - 1, epoch=0, rules=RULES, **start) is None


@PROPERTY
@given(
    rate=st.floats(0.05, 0.5),
    evaluations_run=st.integers(1, 20),
    seed=st.integers(0, 2**32 - 1),
)
def test_steadily_improving_evaluations_never_fire(rate: float, evaluations_run: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    index = np.arange(evaluations_run)
    jitter = (rate / 10) * rng.uniform(-1.0, 1.0, (2, evaluations_run))
    train_losses = list(np.exp(-rate * index) * (1 + jitter[0]))
    val_losses = list(1.2 * np.exp(-rate * index) * (1 + jitter[1]))
    assert evaluations(train_losses, val_losses) is None
    score = [1.0 / value for value in val_losses]  # higher is better, improving as steadily
    assert evaluations(train_losses, score, mode="max") is None


# --- Diagnosis as plain data ---------------------------------------------------------------------


def found_by_every_rule() -> list[Diagnosis]:
    found = [
        train(decay(WINDOW, rate=-0.1, scale=1.0)),
        train(bouncing()),
        train(decay(WINDOW, rate=1e-4, noise=5e-4)),
        evaluations(FALLING, [1.1, 0.9, 0.7, 0.7, 0.7, 0.7, 0.7]),
        evaluations(FALLING[:6], [1.1, 0.9, 0.7, 0.72, 0.75, 0.8]),
    ]
    assert [diagnosis.kind if diagnosis else None for diagnosis in found] == [
        "diverging",
        "too_high",
        "too_low",
        "plateau",
        "overfitting",
    ]
    return [diagnosis for diagnosis in found if diagnosis is not None]


def assert_plain(value: Any) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            assert type(key) is str
            assert_plain(item)
    else:
        assert value is None or type(value) in (int, float, str), repr(value)


def test_every_kind_is_found() -> None:
    assert sorted(diagnosis.kind for diagnosis in found_by_every_rule()) == sorted(KINDS)


@pytest.mark.parametrize("diagnosis", found_by_every_rule(), ids=lambda diagnosis: diagnosis.kind)
def test_to_dict_is_plain_data_and_round_trips(diagnosis: Diagnosis) -> None:
    data = diagnosis.to_dict()
    assert_plain(data)
    assert all(type(value) is float for value in data["evidence"].values())
    assert Diagnosis.from_dict(data) == diagnosis
    assert Diagnosis.from_dict(json.loads(json.dumps(data))) == diagnosis
    assert pickle.loads(pickle.dumps(diagnosis)) == diagnosis
    assert hash(diagnosis) == hash(Diagnosis.from_dict(data))
    assert diagnosis.message.endswith(".") and diagnosis.advice.endswith(".")


def test_evidence_is_copied_into_plain_floats() -> None:
    evidence: dict[str, Any] = {"ratio": np.float32(2.5), "count": 3}
    diagnosis = Diagnosis("diverging", 1, 0, "Up.", "Down.", 1, evidence)
    evidence["ratio"] = 0.0
    assert diagnosis.evidence == {"ratio": 2.5, "count": 3.0}
    assert type(diagnosis.lr_factor) is float
    assert all(type(value) is float for value in diagnosis.to_dict()["evidence"].values())


GOOD: dict[str, Any] = {
    "kind": "plateau",
    "step": 1,
    "epoch": 0,
    "message": "m.",
    "advice": "a.",
    "lr_factor": None,
    "evidence": {},
}


@pytest.mark.parametrize(
    ("data", "error", "match"),
    [
        ([("kind", "plateau")], TypeError, r"`data` must be a mapping"),
        ({**GOOD, "extra": 1}, ValueError, r"`data` must hold exactly the keys kind, step, epoch"),
        ({key: GOOD[key] for key in GOOD if key != "advice"}, ValueError, r"`data` must hold exactly"),
        ({**GOOD, "kind": "bored"}, ValueError, r"`kind` must be one of 'diverging', .*, got 'bored'"),
        ({**GOOD, "step": -1}, ValueError, r"`step` must be >= 0, got -1"),
        ({**GOOD, "epoch": "0"}, TypeError, r"`epoch` must be an integer, got '0'"),
        ({**GOOD, "message": None}, TypeError, r"`message` must be a string, got None"),
        ({**GOOD, "lr_factor": 0.0}, ValueError, r"`lr_factor` must be > 0, got 0.0"),
        ({**GOOD, "evidence": [1.0]}, TypeError, r"`evidence` must be a mapping"),
        ({**GOOD, "evidence": {"x": "1"}}, TypeError, r"`evidence\['x'\]` must be a number, got '1'"),
    ],
)
def test_from_dict_refuses_bad_data(data: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        Diagnosis.from_dict(data)


# --- validation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "error", "match"),
    [
        ({"divergence_factor": 1.0}, ValueError, r"`divergence_factor` must lie in \(1, inf\), got 1\.0"),
        ({"divergence_factor": NAN}, ValueError, r"`divergence_factor` must be finite, got nan"),
        ({"divergence_factor": "4"}, TypeError, r"`divergence_factor` must be a number, got '4'"),
        ({"window": 2}, ValueError, r"`window` must be >= 3, got 2"),
        ({"window": 50.0}, TypeError, r"`window` must be an integer, got 50\.0"),
        ({"window": 19}, ValueError, r"`window` must be >= 2 \* `smoothing_steps` = 20, got 19\. Lengthen"),
        ({"smoothing_steps": 0}, ValueError, r"`smoothing_steps` must be >= 1, got 0"),
        ({"smoothing_steps": True}, TypeError, r"`smoothing_steps` must be an integer, got True"),
        ({"min_progress": 0.0}, ValueError, r"`min_progress` must lie in \(0, 1\), got 0\.0"),
        ({"min_progress": 1.0}, ValueError, r"`min_progress` must lie in \(0, 1\), got 1\.0"),
        ({"noise_ratio": -0.1}, ValueError, r"`noise_ratio` must be > 0, got -0\.1"),
        ({"trend_t": 0}, ValueError, r"`trend_t` must be > 0, got 0"),
        ({"stuck_fall": 0.0}, ValueError, r"`stuck_fall` must lie in \(0, 1\], got 0\.0"),
        ({"stuck_fall": 1.5}, ValueError, r"`stuck_fall` must lie in \(0, 1\], got 1\.5"),
        ({"pace_ratio": 0.0}, ValueError, r"`pace_ratio` must be > 0, got 0\.0"),
        ({"spike_factor": 0.5}, ValueError, r"`spike_factor` must lie in \(1, inf\), got 0\.5"),
        ({"grad_spike_factor": INF}, ValueError, r"`grad_spike_factor` must be finite, got inf"),
        ({"spike_count": 0}, ValueError, r"`spike_count` must be >= 1, got 0"),
        ({"spike_floor": -0.1}, ValueError, r"`spike_floor` must be >= 0, got -0\.1"),
        ({"patience": 0}, ValueError, r"`patience` must be >= 1, got 0"),
        ({"patience": 2.5}, TypeError, r"`patience` must be an integer, got 2\.5"),
        ({"min_delta": -1e-3}, ValueError, r"`min_delta` must lie in \[0, 1\), got -0\.001"),
        ({"min_delta": None}, TypeError, r"`min_delta` must be a number, got None"),
        ({"plateau_progress": -0.01}, ValueError, r"`plateau_progress` must lie in \[0, 1\), got -0\.01"),
        ({"step_alignment": 0.0}, ValueError, r"`step_alignment` must lie in \(0, 1\), got 0\.0"),
        ({"step_alignment": 1.0}, ValueError, r"`step_alignment` must lie in \(0, 1\), got 1\.0"),
        ({"blowup_factor": 1.0}, ValueError, r"`blowup_factor` must lie in \(1, inf\), got 1\.0"),
        ({"overfit_fall": 1.0}, ValueError, r"`overfit_fall` must lie in \[0, 1\), got 1\.0"),
        ({"overfit_fall": "0.2"}, TypeError, r"`overfit_fall` must be a number, got '0.2'"),
        ({"confirm_checks": 0}, ValueError, r"`confirm_checks` must be >= 1, got 0"),
    ],
)
def test_bad_rules_are_refused(arguments: dict[str, Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        DiagnosisRules(**arguments)


def test_rules_are_frozen_and_picklable() -> None:
    rules = DiagnosisRules(window=80, patience=5)
    assert pickle.loads(pickle.dumps(rules)) == rules
    with pytest.raises(dataclasses.FrozenInstanceError):
        rules.window = 10  # type: ignore[misc]


HISTORY = decay(WINDOW, rate=0.02)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: train("abc"), TypeError, r"`losses` must be a sequence of numbers, got 'abc'"),
        (
            lambda: diagnose_training(3.0, step=0, epoch=0, rules=RULES),
            TypeError,
            r"`losses` must be a sequence of numbers, got 3\.0",
        ),
        (lambda: train([1.0, "x"]), TypeError, r"`losses\[1\]` must be a number, got 'x' of type str"),
        (lambda: train([1.0, True]), TypeError, r"`losses\[1\]` must be a number, got True"),
        (
            lambda: train(HISTORY, grad_norms=[None]),
            TypeError,
            r"`grad_norms\[0\]` must be a number, got None",
        ),
        (lambda: train(HISTORY, rules=None), TypeError, r"`rules` must be a DiagnosisRules, got None"),
        (
            lambda: train(HISTORY, step_alignments=[0.1, "x"]),
            TypeError,
            r"`step_alignments\[1\]` must be a number, got 'x'",
        ),
        (lambda: train(HISTORY, initial_loss=NAN), ValueError, r"`initial_loss` must be finite, got nan"),
        (
            lambda: diagnose_training(
                HISTORY, step=99, epoch=0, rules=RULES, initial_loss=2.0, initial_step=60
            ),
            ValueError,
            r"`initial_step` must be <= 50, the step of the first loss passed, got 60\. Take `initial_loss`",
        ),
        (lambda: train(HISTORY, initial_step=-1), ValueError, r"`initial_step` must be >= 0, got -1"),
        (
            lambda: diagnose_training(HISTORY, step=-1, epoch=0, rules=RULES),
            ValueError,
            r"`step` must be >= 0, got -1",
        ),
        (
            lambda: diagnose_training(HISTORY, step=1, epoch=0.5, rules=RULES),
            TypeError,
            r"`epoch` must be an integer, got 0\.5",
        ),
        (
            lambda: evaluations([1.0, 0.9], [1.0, 0.9, 0.8]),
            ValueError,
            r"`train_losses` must have as many values as `val_losses` \(3\), got 2\. Pass one",
        ),
        (
            lambda: evaluations([1.0], [1.0], mode="mean"),
            ValueError,
            r"`mode` must be one of 'min', 'max', got 'mean'",
        ),
        (lambda: evaluations([1.0], ["1"]), TypeError, r"`val_losses\[0\]` must be a number, got '1'"),
        (
            lambda: evaluations([1.0], [1.0], rules={}),
            TypeError,
            r"`rules` must be a DiagnosisRules, got \{\}",
        ),
    ],
)
def test_bad_arguments_are_refused(call: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        call()


def test_histories_may_be_any_iterable_of_numbers() -> None:
    losses = decay(WINDOW, rate=1e-4, noise=5e-4)
    expected = train(losses)
    assert expected is not None
    assert train(np.asarray(losses)) == expected
    assert diagnose_training(iter(losses), step=WINDOW - 1, epoch=0, rules=RULES) == expected


# --- actions checked against the evidence --------------------------------------------------------


def finding(kind_: str, lr_factor: float | None, step: int = 50) -> Diagnosis:
    return Diagnosis(kind_, step, 1, "Found.", "Act.", lr_factor, {})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("diagnosis", "latest", "ratio", "reason"),
    [
        (finding("plateau", 0.3), finding("too_low", 3.0, 40), None, "found the LR too low at step 40"),
        (finding("plateau", 0.3), None, 2e-7, "barely move .*2\\.0e-07.*below 1e-03"),
        (finding("overfitting", 0.5), None, 2e-7, "barely move"),
        (finding("too_high", 0.5), finding("too_low", 3.0, 40), None, "too low at step 40"),
        (finding("too_low", 3.0), finding("too_high", 0.3, 40), None, "found the LR too high at step 40"),
        (finding("too_low", 3.0), finding("diverging", 0.1, 40), 2e-7, "found the run diverging at step 40"),
        (finding("plateau", 0.3), None, 5e-3, None),
        (finding("plateau", 0.3), finding("too_high", 0.3), 5e-3, None),
        (finding("too_low", 3.0), finding("too_low", 3.0), 2e-7, None),
        (finding("diverging", 0.1), None, 2e-7, None),  # a blow-up is brought down whatever the weights do
        (finding("plateau", None), finding("too_low", 3.0), 2e-7, None),
    ],
)
def test_an_action_against_the_training_evidence_is_named(
    diagnosis: Diagnosis, latest: Diagnosis | None, ratio: float | None, reason: str | None
) -> None:
    found = check_action(diagnosis, latest_training=latest, update_ratio=ratio, rules=RULES)
    if reason is None:
        assert found is None
    else:
        assert found is not None and re.search(reason, found), found


def test_check_action_refuses_bad_arguments() -> None:
    with pytest.raises(TypeError, match=r"`rules` must be a DiagnosisRules"):
        check_action(finding("plateau", 0.3), latest_training=None, update_ratio=None, rules=None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"`update_ratio` must be a number, got '1'"):
        check_action(finding("plateau", 0.3), latest_training=None, update_ratio="1", rules=RULES)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("diagnosis", "lr", "high", "low", "reason"),
    [
        # cut from 0.1 to 0.03 for too_high: raising it x3 to 0.09 comes back within 4x of 0.1
        (
            finding("too_low", 3.0),
            0.03,
            0.1,
            None,
            r"found too high at 0\.1 in this run, and 0\.09 is within 4x",
        ),
        # two cuts, to 0.009: raising it x3 to 0.027 still comes within 4x of 0.1
        (finding("too_low", 3.0), 0.009, 0.1, None, r"0\.027 is within 4x"),
        (finding("too_low", 3.0), 0.003, 0.1, None, None),  # 0.009: more than 4x below
        (finding("plateau", 0.3), 0.01, None, 0.005, r"found too low at 0\.005 in this run, and 0\.003 is"),
        (finding("plateau", 0.3), 0.1, None, 0.005, None),
        (finding("diverging", 0.1), 0.01, None, 0.005, None),  # a blow-up is brought down regardless
        (finding("too_high", 0.5), 0.01, 0.02, None, None),  # a cut never nears an LR found too high
    ],
)
def test_an_action_may_not_bring_the_lr_back_near_one_found_wrong_the_other_way(
    diagnosis: Diagnosis, lr: float, high: float | None, low: float | None, reason: str | None
) -> None:
    found = check_action(
        diagnosis, latest_training=None, update_ratio=None, rules=RULES, lr=lr, found_high=high, found_low=low
    )
    if reason is None:
        assert found is None
    else:
        assert found is not None and re.search(reason, found), found


def test_a_blow_up_is_measured_against_the_loss_at_the_start_of_training() -> None:
    # After a warmup the start level (0.1) is already far below the loss of the untrained model
    # (2.3): batch losses of 3x that level are noise, not an update that undid training.
    rng = np.random.default_rng(4)
    losses = [0.1 * float(value) for value in np.exp(0.35 * rng.standard_normal(WINDOW))]
    losses[20] = 0.35
    after_warmup = {"step": 1000, "epoch": 5, "initial_loss": 0.1, "initial_step": 900}
    found = diagnose_training(losses, rules=RULES, **after_warmup)
    assert found is not None and found.kind == "too_high" and "blew up" in found.message  # against 0.1
    assert diagnose_training(losses, rules=RULES, loss_scale=2.3, **after_warmup) is None
    high = [*losses[:-5], *[5.0] * 5]  # a jump past 2x the untrained loss still is one
    assert kind(diagnose_training(high, rules=RULES, loss_scale=2.3, **after_warmup)) in (
        "too_high",
        "diverging",
    )


def test_a_training_finding_is_reported_once_the_next_check_finds_the_same_kind() -> None:
    from lightning_lr.diagnose.state import DiagnosticsState

    state = DiagnosticsState()
    high, low = finding("too_high", 0.3, 49), finding("too_low", 3.0, 59)
    assert state.confirm(high, RULES) is None  # one window
    assert state.confirm(None, RULES) is None  # a healthy check starts the count again
    assert state.confirm(high, RULES) is None
    assert state.confirm(low, RULES) is None  # so does another kind
    assert state.confirm(low, RULES) is low
    assert state.confirm(low, RULES) is low  # still found: still confirmed
    assert (state.streak_kind, state.streak) == ("too_low", 3)
    assert state.confirm(finding("diverging", 0.1, 69), RULES) is not None  # a divergence is not held back
    state.acted(low, 3.0)  # a new LR: the evidence about the old one is forgotten
    assert (state.streak_kind, state.streak) == (None, 0)
    assert state.confirm(low, RULES) is None
    three = DiagnosisRules(confirm_checks=3)
    assert [DiagnosticsState().confirm(high, three)] == [None]
    state = DiagnosticsState()
    assert [state.confirm(high, three) for _ in range(3)] == [None, None, high]
    assert DiagnosticsState().confirm(high, DiagnosisRules(confirm_checks=1)) is high


def test_the_state_decides_what_to_report_and_which_lr_change_to_make() -> None:
    from lightning_lr.diagnose.state import DiagnosticsState

    def decide(state: DiagnosticsState, found: Diagnosis, **kwargs: Any) -> tuple[Any, ...]:
        settings = {"conflict": None, "lr": 0.1, "adjust": True, "max_adjustments": 2, **kwargs}
        return tuple(state.decide(found, rules=RULES, check_every=10, **settings))

    state = DiagnosticsState()
    assert decide(state, finding("too_high", 0.3, 49)) == (True, 0.3, None)
    assert decide(state, finding("too_high", 0.3, 59)) == (False, None, None)  # quiet for a window
    assert decide(DiagnosticsState(), finding("too_high", 0.3, 49), adjust=False) == (True, None, None)
    assert decide(DiagnosticsState(), finding("plateau", None, 49)) == (True, None, None)  # no LR advice
    withheld = DiagnosticsState()
    assert decide(withheld, finding("plateau", 0.3, 300), conflict="the weights barely move") == (
        True,
        None,
        "the weights barely move",
    )
    assert withheld.withheld == [
        {"step": 300, "kind": "plateau", "lr_factor": 0.3, "reason": "the weights barely move"}
    ]
    spent = DiagnosticsState()
    spent.acted(finding("too_high", 0.3, 49), 0.3)
    spent.acted(finding("too_high", 0.3, 99), 0.3)
    assert decide(spent, finding("too_high", 0.3, 149), lr=0.01) == (True, None, None)  # none left


def test_the_state_takes_its_levels_once_from_the_first_losses() -> None:
    from lightning_lr.diagnose.state import DiagnosticsState

    state = DiagnosticsState()
    state.take_scale([NAN, 2.3, 2.3])
    assert state.scale is None  # not finite: wait for a finite one
    state.take_scale([2.3, 2.4, 2.2])
    state.take_scale([0.1, 0.1, 0.1])
    assert state.scale == 2.3
    state.take_start([50.0, 2.0, 2.0, 2.0], step=13)  # the median, below the first loss
    assert (state.initial, state.initial_step) == (2.0, 10)
    state.take_start([1.0] * 4, step=40)
    assert state.initial == 2.0  # kept until an LR change forgets it
    state.acted(finding("too_high", 0.3, 40), 0.3)
    state.take_start([1.0] * 4, step=60)
    assert (state.initial, state.initial_step) == (1.0, 57)


def test_the_state_is_plain_data_that_torch_loads_with_weights_only() -> None:
    import io

    import torch

    from lightning_lr.diagnose.state import DiagnosticsState

    state = DiagnosticsState()
    assert state.note(finding("too_high", 0.3, 40), lr=0.1, rules=RULES, check_every=10)
    assert not state.note(finding("too_high", 0.3, 60), lr=0.1, rules=RULES, check_every=10)  # quiet
    assert state.note(finding("too_high", 0.3, 90), lr=0.05, rules=RULES, check_every=10)  # a window on
    assert state.note(finding("too_low", 3.0, 95), lr=0.01, rules=RULES, check_every=10)
    state.withhold(finding("too_low", 3.0, 95), 3.0, "the LR was found too high")
    state.add_evaluation(1.5, 1.7)
    state.scale, state.initial = 2.3, 1.9
    state.confirm(finding("too_low", 3.0, 99), RULES)  # a finding not yet confirmed is kept too
    assert (state.found_high, state.found_low) == (0.05, 0.01)  # the lowest too high, highest too low
    # the LR cannot be both: too low within 4x of an LR found too high is not reported, nor the reverse
    assert not state.note(finding("too_low", 3.0, 400), lr=0.02, rules=RULES, check_every=10)
    assert not state.note(finding("too_low", 3.0, 400), lr=0.015, rules=RULES, check_every=10)  # x0.3 below
    assert not state.note(finding("too_high", 0.3, 400), lr=0.025, rules=RULES, check_every=10)
    assert [d.step for d in state.diagnoses] == [40, 90, 95]
    buffer = io.BytesIO()
    torch.save(state.to_dict(), buffer)
    buffer.seek(0)
    loaded = DiagnosticsState.from_dict(torch.load(buffer, weights_only=True))
    assert loaded == state
    assert DiagnosticsState.from_dict({}) == DiagnosticsState()  # an older checkpoint's missing keys
    with pytest.raises(TypeError, match="must be a mapping"):
        DiagnosticsState.from_dict([1])  # type: ignore[arg-type]
