"""The range-test suggestion rules on synthetic curves, checked against numpy references.

The classic curve is flat at tiny LRs, falls along a sigmoid in ``log10(lr)``, bottoms out and blows
up past ``BLOW_UP``; the bowl is ``1 + curvature * (log10(lr) - log10(optimum)) ** 2``.
"""

from __future__ import annotations

import dataclasses
import math
import pickle
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lightning_lr.finder.curve import MIN_FALL, MIN_POINTS, Suggestion, smooth, usable_range
from lightning_lr.finder.rules import RULES, minimum, peak, slide, steepest, suggest_all

NAN, INF = float("nan"), float("inf")
MIDPOINT, BLOW_UP = 1e-4, 1e-1


def classic(
    *, min_lr: float = 1e-7, max_lr: float = 10.0, steps: int = 100, noise: float = 0.0, seed: int = 0
) -> tuple[list[float], list[float]]:
    """``2.5 - 1.5 * sigmoid((u - log10(MIDPOINT)) / 0.4) + exp((u - log10(BLOW_UP)) / 0.2)``.

    With ``u = log10(lr)``: the sigmoid falls from 2.5 to 1.0 around ``MIDPOINT``; past ``BLOW_UP`` the
    loss explodes.
    """
    lrs = np.geomspace(min_lr, max_lr, steps)
    u = np.log10(lrs)
    loss = (
        2.5
        - 1.5 / (1.0 + np.exp(-(u - math.log10(MIDPOINT)) / 0.4))
        + np.exp((u - math.log10(BLOW_UP)) / 0.2)
    )
    loss *= 1.0 + noise * np.random.default_rng(seed).standard_normal(steps)
    return lrs.tolist(), loss.tolist()


def bowl(
    optimum: float,
    *,
    min_lr: float = 1e-7,
    max_lr: float = 10.0,
    steps: int = 100,
    curvature: float = 0.3,
    noise: float = 0.0,
    seed: int = 0,
) -> tuple[list[float], list[float]]:
    lrs = np.geomspace(min_lr, max_lr, steps)
    loss = 1.0 + curvature * (np.log10(lrs) - math.log10(optimum)) ** 2
    loss *= 1.0 + noise * np.random.default_rng(seed).standard_normal(steps)
    return lrs.tolist(), loss.tolist()


def reference_smooth(losses: list[float], beta: float) -> np.ndarray:
    """Each smoothed loss in closed form: the mean of the losses so far, weighted ``beta ** age``."""
    x = np.asarray(losses)
    return np.array([np.average(x[: k + 1], weights=beta ** np.arange(k, -1, -1)) for k in range(len(x))])


def fastai_valley(losses: list[float]) -> int:
    """fastai's ``valley`` loop as it is written there (O(n^2)), returning the index it reads."""
    n = len(losses)
    max_start, max_end = 0, 0
    lds = [1] * n
    for i in range(1, n):
        for j in range(i):
            if losses[i] < losses[j] and lds[i] < lds[j] + 1:
                lds[i] = lds[j] + 1
            if lds[max_end] < lds[i]:
                max_end = i
                max_start = max_end - lds[max_end]
    sections = (max_end - max_start) / 3
    return max_start + int(sections) + int(sections / 2)


def fastai_slide(
    lrs: list[float], losses: list[float], lr_diff: int = 15, thresh: float = 0.005, adjust_value: float = 1.0
) -> float:
    """fastai's ``slide`` as it is written there (numpy's gradient, negative indices), returning its LR."""
    loss_grad = np.gradient(np.asarray(losses))
    r_idx = -1
    l_idx = r_idx - lr_diff
    local_min_lr = lrs[l_idx]
    while (l_idx >= -len(losses)) and (abs(loss_grad[r_idx] - loss_grad[l_idx]) > thresh):
        local_min_lr = lrs[l_idx]
        r_idx -= 1
        l_idx -= 1
    return float(local_min_lr) * adjust_value


def usable(lrs: list[float], losses: list[float], beta: float = 0.98) -> tuple[np.ndarray, np.ndarray]:
    """The LRs and the reference-smoothed losses that :func:`suggest_all` reads."""
    count = usable_range(lrs, losses, beta=beta)
    return np.asarray(lrs[:count]), reference_smooth(losses, beta)[:count]


def blow_up_lr(lrs: list[float], losses: list[float]) -> float:
    """First LR at which the raw loss exceeds its start: training there does worse than not training."""
    return next(lr for lr, loss in zip(lrs, losses) if loss > losses[0])


# smooth and usable_range


def test_smooth_is_the_bias_corrected_ema() -> None:
    assert smooth([1.0, 0.0, 0.0], beta=0.5) == pytest.approx([1.0, 1 / 3, 1 / 7])  # 0.5/0.5, 0.25/0.75, ...
    _, losses = classic(noise=0.1)
    assert smooth(losses) == pytest.approx(reference_smooth(losses, 0.98).tolist(), rel=1e-12)
    assert smooth(losses, beta=0.0) == losses
    assert smooth([]) == []


@pytest.mark.parametrize("bad", [NAN, INF, -INF])
def test_smooth_ends_at_the_first_non_finite_loss(bad: float) -> None:
    assert smooth([3.0, 2.0, 1.0, bad, 1.0], beta=0.5) == smooth([3.0, 2.0, 1.0], beta=0.5)
    assert smooth([bad, 1.0]) == []


def test_usable_range_cuts_at_stop_factor_times_the_best() -> None:
    lrs = np.geomspace(1e-6, 1.0, 12).tolist()
    losses = [5, 4, 3, 2, 1, 1.5, 3, 4, 4.5, 3, 2, 1]  # 4.5 > 4 x 1: the first blown-up point is index 8
    assert usable_range(lrs, losses, beta=0.0) == 8
    assert usable_range(lrs, losses, beta=0.0, stop_factor=5.0) == 12
    lrs, losses = classic()
    smoothed = reference_smooth(losses, 0.98)
    expected = next(k for k in range(len(smoothed)) if smoothed[k] > 4.0 * smoothed[: k + 1].min())
    assert usable_range(lrs, losses) == expected < len(lrs)


def test_usable_range_cuts_at_the_first_nan() -> None:
    lrs, losses = classic()
    assert usable_range(lrs, [*losses[:40], NAN, *losses[41:]]) == 40
    assert usable_range(lrs, [NAN, *losses[1:]]) == 0


def test_the_stop_rule_cannot_fire_on_losses_at_or_below_zero() -> None:
    lrs = np.geomspace(1e-6, 1.0, 10).tolist()
    assert usable_range(lrs, [-1.0, -2.0, -3.0, -2.5, -2.0, -1.5, -1.0, -0.5, -0.2, -0.1]) == 10


# the rules on the classic curve


def test_steepest_is_the_steepest_log_lr_fall_of_the_smoothed_curve() -> None:
    lrs, losses = classic()
    xs, smoothed = usable(lrs, losses)
    low = int(np.argmin(smoothed))
    slopes = np.gradient(smoothed, np.log10(xs))
    first = len(xs) // 10
    expected = first + int(np.argmin(slopes[first : low + 1]))
    found = steepest(lrs, losses)
    assert found.index == expected and found.lr == lrs[expected]
    assert suggest_all(lrs, losses)["steepest"] == steepest(lrs[: len(xs)], losses[: len(xs)])
    start, floor = 2.5, 1.0  # the raw sigmoid falls from 2.5 to 1.0
    raw = losses[expected]
    assert floor + 0.05 * (start - floor) < raw < start - 0.05 * (start - floor), "not on the descent"


def test_the_linear_lr_derivative_suggests_far_lower_than_the_log_lr_one() -> None:
    """Lightning's rule, ``argmin(torch.gradient(loss, spacing=[lrs]))`` past 10 skipped points."""
    lrs, losses = classic()
    xs, smoothed = usable(lrs, losses)
    linear = xs[10 + int(np.argmin(np.gradient(smoothed, xs)[10:-1]))]
    log = steepest(lrs, losses).lr
    assert log is not None and linear < log / 100
    assert linear < 10 * lrs[0], "the linear rule lands on the flat start of the sweep"


def test_valley_is_fastais_valley_of_the_smoothed_curve() -> None:
    for noise, seed in [(0.0, 0), (0.05, 1), (0.2, 2)]:
        lrs, losses = classic(noise=noise, seed=seed)
        _, smoothed = usable(lrs, losses)
        expected = fastai_valley(smoothed.tolist())
        found = suggest_all(lrs, losses)["valley"]
        assert found.index == expected and found.lr == lrs[expected], noise


@pytest.mark.parametrize(("noise", "seed"), [(0.0, 0), (0.02, 1), (0.05, 2), (0.2, 3)])
@pytest.mark.parametrize("steps", [60, 100, 300])
def test_slide_is_fastais_slide_of_the_smoothed_curve(noise: float, seed: int, steps: int) -> None:
    lrs, losses = classic(noise=noise, seed=seed, steps=steps)
    xs, smoothed = usable(lrs, losses)
    found = suggest_all(lrs, losses)["slide"]
    expected = fastai_slide(xs.tolist(), smoothed.tolist())
    assert found.lr == pytest.approx(expected, rel=1e-12) and found.index is not None
    assert lrs[found.index] == found.lr
    # the rule itself, on a curve that stops before the blow-up, with other settings
    count = len(xs)
    options = {"lr_diff": 7, "thresh": 0.02, "adjust_value": 0.5}
    direct = slide(lrs[:count], losses[:count], beta=0.9, **options)  # type: ignore[arg-type]
    expected = fastai_slide(xs.tolist(), reference_smooth(losses[:count], 0.9).tolist(), **options)  # type: ignore[arg-type]
    assert direct.lr == pytest.approx(expected, rel=1e-12)


def test_slide_on_a_bowl_stops_where_its_slope_settles() -> None:
    # On the parabola 1 + c u**2 the slope per point changes by the same 2 c h**2 lr_diff everywhere: the
    # window slides to the start when that exceeds thresh, and stays at the end when it does not.
    lrs, losses = bowl(1e-3, steps=100)
    h = math.log10(10.0 / 1e-7) / 99
    change = 2 * 0.3 * h**2 * 15  # 0.059 (0.057 for the one-sided slope at the last point)
    assert 0.005 < change < 0.1
    assert slide(lrs, losses, beta=0.0).index == 0
    assert slide(lrs, losses, beta=0.0, thresh=0.1).index == 99 - 15


def test_slide_needs_more_points_than_its_window() -> None:
    lrs, losses = classic(steps=15)
    found = slide(lrs, losses, beta=0.0)
    assert found.lr is None and "compares slopes 15 points apart, and only" in found.reason


def test_valley_is_halfway_between_the_start_and_the_minimum_of_a_smooth_descent() -> None:
    lrs, losses = classic()
    _, smoothed = usable(lrs, losses)
    low = int(np.argmin(smoothed))
    found = suggest_all(lrs, losses)["valley"]
    assert found.index is not None and abs(found.index - low / 2) <= 1


def test_valley_lies_between_the_steepest_point_and_the_minimum_when_the_sweep_starts_at_the_shoulder() -> (
    None
):
    """With a long flat start the valley is longer than the descent, and its middle comes before the
    steepest point (the case above); a sweep that starts a decade before the descent shows fastai's
    intended order."""
    lrs, losses = classic(min_lr=1e-5, max_lr=1.0)
    found = suggest_all(lrs, losses)
    assert found["steepest"].lr is not None and found["valley"].lr is not None and found["minimum"].index
    assert found["steepest"].lr < found["valley"].lr < lrs[found["minimum"].index]


def test_minimum_is_a_tenth_and_peak_a_third_of_the_lr_at_the_smoothed_minimum() -> None:
    lrs, losses = classic()
    _, smoothed = usable(lrs, losses)
    low = int(np.argmin(smoothed))
    found = suggest_all(lrs, losses)
    assert found["minimum"].lr == lrs[low] / 10 and found["minimum"].index == low
    assert found["peak"].lr == lrs[low] / 3 and found["peak"].index == low
    assert peak(lrs, losses, divisor=5.0).lr == lrs[low] / 5
    assert minimum(lrs, losses) == found["minimum"]


def test_a_peak_divisor_below_one_is_capped_where_the_loss_rises_back_above_its_start() -> None:
    lrs, losses = classic(max_lr=1.0)  # never blows up 4x, so the rise above the start stays in
    smoothed = reference_smooth(losses, 0.98)
    low = int(np.argmin(smoothed))
    above = low + int(np.argmax(smoothed[low:] > smoothed[0]))
    assert smoothed[above] > smoothed[0] >= smoothed[above - 1]
    assert lrs[above - 1] < lrs[low] / 0.1
    found = peak(lrs, losses, divisor=0.1)
    assert found.lr == lrs[above - 1] and "capped" in found.reason


@pytest.mark.parametrize("noise", [0.0, 0.05])
def test_every_suggestion_lies_below_the_blow_up(noise: float) -> None:
    lrs, losses = classic(noise=noise, seed=3)
    limit = blow_up_lr(*classic())
    for name, found in suggest_all(lrs, losses).items():
        assert found.lr is not None and lrs[0] <= found.lr < limit, name
        assert found.rule == name and f"{found.lr:.3g}" in found.reason, name


def test_suggest_all_reads_the_usable_curve_with_each_rules_defaults() -> None:
    lrs, losses = classic(max_lr=1e-2)  # no blow-up: the rules see the same curve
    assert usable_range(lrs, losses) == len(lrs)
    assert suggest_all(lrs, losses) == {name: rule(lrs, losses) for name, rule in RULES.items()}
    assert list(RULES) == ["steepest", "valley", "minimum", "peak", "slide"]


# no suggestion


@pytest.mark.parametrize(
    "losses",
    [
        [2.3] * 50,
        np.linspace(2.3, 5.0, 50).tolist(),
        (2.3 * (1 + 0.01 * np.random.default_rng(0).standard_normal(50))).tolist(),
    ],
    ids=["flat", "rising", "flat-noisy"],
)
def test_a_curve_that_never_descends_gets_no_suggestion(losses: list[float]) -> None:
    lrs = np.geomspace(1e-6, 1.0, 50).tolist()
    for name, found in suggest_all(lrs, losses, stop_factor=10.0).items():
        assert found.lr is None and found.index is None, name
        assert found.reason.startswith(f"the loss never fell below its start by {MIN_FALL:.0%}"), name
    for name, rule in RULES.items():
        assert rule(lrs, losses).lr is None, name


def test_a_curve_that_blows_up_within_five_points_gets_no_suggestion() -> None:
    lrs = np.geomspace(1e-6, 1.0, 20).tolist()
    losses = [2.0, 1.0, 0.5, 4.0, 9.0] + [20.0] * 15
    for found in suggest_all(lrs, losses, beta=0.0).values():
        assert found.lr is None and found.reason.startswith(
            f"only 3 points of the sweep are usable (at least {MIN_POINTS}"
        )
        assert "exceeded 4x its best" in found.reason
    nan = [2.0, 1.5, 1.0, NAN] + [1.0] * 16
    assert "non-finite" in suggest_all(lrs, nan, beta=0.0)["valley"].reason
    for rule in RULES.values():
        found = rule(lrs, nan, beta=0.0)
        assert found.lr is None and "non-finite at lr" in found.reason


def test_no_suggestion_that_was_never_swept() -> None:
    lrs = np.geomspace(1e-3, 1.0, 30).tolist()
    losses = [2.0, 1.5, 1.2, *np.linspace(1.3, 3.0, 27).tolist()]  # lowest at the third LR
    found = suggest_all(lrs, losses, beta=0.0)
    assert found["minimum"].lr is None and "lower `min_lr`" in found["minimum"].reason
    assert found["peak"].lr is None and "lower `min_lr`" in found["peak"].reason
    assert found["steepest"].lr is None and "skipping the first 3" in found["steepest"].reason
    assert found["valley"].index == fastai_valley(losses) == 0  # fastai's arithmetic on a 3-point descent


def test_skipping_every_point_up_to_the_minimum_gets_no_steepest() -> None:
    lrs, losses = classic()
    found = steepest(lrs, losses, skip_start=95)
    assert found.lr is None and "skip fewer points" in found.reason
    assert steepest(lrs, losses, skip_start=0).lr is not None


# validation


LRS = np.geomspace(1e-6, 1.0, 12).tolist()
LOSSES = [2.0] * 12


@pytest.mark.parametrize(
    ("lrs", "losses", "options", "error", "match"),
    [
        (LRS[:9], LOSSES[:9], {}, ValueError, r"`lrs` must hold at least 10 points, got 9\. .*>= 10 steps"),
        (LRS, LOSSES[:11], {}, ValueError, r"`losses` must hold as many points as `lrs` \(12\), got 11"),
        ([0.0, *LRS[1:]], LOSSES, {}, ValueError, r"`lrs` must be positive and finite.*lrs\[0\].*got 0\.0"),
        ([*LRS[:-1], INF], LOSSES, {}, ValueError, r"`lrs` must be positive and finite.*lrs\[11\].*got inf"),
        ([*LRS[:-1], NAN], LOSSES, {}, ValueError, r"`lrs` must be positive and finite.*got nan"),
        (LRS[::-1], LOSSES, {}, ValueError, r"`lrs` must be strictly increasing, but lrs\[1\] is not above"),
        (
            [*LRS[:5], LRS[4], *LRS[6:]],
            LOSSES,
            {},
            ValueError,
            r"`lrs` must be strictly increasing.*lrs\[5\]",
        ),
        ("0.1 0.2", LOSSES, {}, TypeError, r"`lrs` must be a sequence of numbers"),
        ([*LRS[:-1], True], LOSSES, {}, TypeError, r"`lrs\[11\]` must be a number, got True"),
        (LRS, [*LOSSES[:-1], "2.0"], {}, TypeError, r"`losses\[11\]` must be a number, got '2\.0'"),
        (LRS, LOSSES, {"beta": 1.0}, ValueError, r"`beta` must lie in \[0, 1\), got 1\.0"),
        (LRS, LOSSES, {"beta": -0.1}, ValueError, r"`beta` must lie in \[0, 1\)"),
        (LRS, LOSSES, {"stop_factor": 1.0}, ValueError, r"`stop_factor` must lie in \(1, inf\), got 1\.0"),
        (LRS, LOSSES, {"stop_factor": NAN}, ValueError, r"`stop_factor` must be finite"),
    ],
)
def test_bad_curves_and_options_raise(
    lrs: Any, losses: Any, options: dict[str, Any], error: type, match: str
) -> None:
    with pytest.raises(error, match=match):
        suggest_all(lrs, losses, **options)
    if "stop_factor" not in options:
        for rule in RULES.values():
            with pytest.raises(error, match=match):
                rule(lrs, losses, **options)
    with pytest.raises(error, match=match):
        usable_range(lrs, losses, **options)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: smooth([1.0], beta=1.0), r"`beta` must lie in \[0, 1\)"),
        (lambda: smooth([1.0, None]), r"`losses\[1\]` must be a number, got None"),
        (lambda: steepest(LRS, LOSSES, skip_start=-1), r"`skip_start` must be >= 0, got -1"),
        (lambda: steepest(LRS, LOSSES, skip_end=1.5), r"`skip_end` must be an integer"),
        (lambda: peak(LRS, LOSSES, divisor=0.0), r"`divisor` must be > 0, got 0\.0"),
        (lambda: slide(LRS, LOSSES, lr_diff=0), r"`lr_diff` must be >= 1, got 0"),
        (lambda: slide(LRS, LOSSES, thresh=-0.1), r"`thresh` must be >= 0, got -0\.1"),
        (lambda: slide(LRS, LOSSES, adjust_value=0.0), r"`adjust_value` must be > 0, got 0\.0"),
        (lambda: Suggestion("valley", 1e-3, None, "why"), r"`index` must be None exactly when `lr` is None"),
        (lambda: Suggestion("valley", -1e-3, 3, "why"), r"`lr` must be > 0, got -0\.001"),
    ],
)
def test_bad_options_raise(call: Any, match: str) -> None:
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def test_a_suggestion_is_frozen_and_pickles() -> None:
    found = suggest_all(*classic())["valley"]
    assert pickle.loads(pickle.dumps(found)) == found
    with pytest.raises(dataclasses.FrozenInstanceError):
        found.lr = 1.0  # type: ignore[misc]


# property


@settings(deadline=None, max_examples=60)
@given(
    optimum_exponent=st.floats(-4.0, -1.0),
    min_exponent=st.floats(-8.0, -5.0),
    max_exponent=st.floats(0.0, 2.0),
    steps=st.integers(10, 200),
    curvature=st.floats(0.05, 2.0),
    noise=st.floats(0.0, 0.03),
    beta=st.sampled_from([0.0, 0.9, 0.98]),
    seed=st.integers(0, 1000),
)
def test_every_suggestion_of_a_bowl_is_swept_and_finite(
    optimum_exponent: float,
    min_exponent: float,
    max_exponent: float,
    steps: int,
    curvature: float,
    noise: float,
    beta: float,
    seed: int,
) -> None:
    min_lr, max_lr = 10**min_exponent, 10**max_exponent
    lrs, losses = bowl(
        10**optimum_exponent,
        min_lr=min_lr,
        max_lr=max_lr,
        steps=steps,
        curvature=curvature,
        noise=noise,
        seed=seed,
    )
    for name, found in suggest_all(lrs, losses, beta=beta).items():
        assert found.rule == name and found.reason
        if found.lr is None:
            assert found.index is None
        else:
            assert math.isfinite(found.lr) and lrs[0] <= found.lr <= lrs[-1], name
            assert found.index is not None and 0 <= found.index < len(lrs)


def adam_like(noise: float, seed: int = 0) -> tuple[list[float], list[float]]:
    """100 steps: flat at 2.3, down to 1.75 over steps 80-92, back up to 2.4 (Adam's bounded blow-up)."""
    rng = np.random.default_rng(seed)
    lrs = np.geomspace(1e-7, 10.0, 100).tolist()
    shape = np.concatenate([np.full(80, 2.3), np.linspace(2.3, 1.75, 12), np.linspace(1.75, 2.4, 8)])
    return lrs, (shape + noise * rng.standard_normal(100)).tolist()


def test_a_late_fall_counts_although_the_heavy_smoothing_lags_behind_it() -> None:
    lrs, losses = adam_like(noise=0.03)
    heavy = smooth(losses, 0.98)
    assert heavy[0] - min(heavy) < 0.05 * heavy[0]  # the rules' smoothing alone would call it flat
    found = suggest_all(lrs, losses)
    for name, suggestion in found.items():
        assert suggestion.lr is not None and 1e-3 < suggestion.lr < 10.0, (name, suggestion.reason)


def test_batch_noise_is_not_a_descent() -> None:
    lrs = np.geomspace(1e-7, 1e-5, 100).tolist()
    losses = [3.0 + (1.0 if k % 2 else -1.0) + 0.2 * math.sin(k) for k in range(100)]  # batches differ
    for name, suggestion in suggest_all(lrs, losses).items():
        assert suggestion.lr is None and "never fell below its start" in suggestion.reason, name
