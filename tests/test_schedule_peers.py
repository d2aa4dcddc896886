"""Schedules against the peers users compare them with: Hugging Face, timm and torch.

Hugging Face and timm are not dependencies: their schedules are written out here as closed forms,
phase by phase as the libraries write them, and checked against values the libraries printed
(transformers 5.2x, timm 1.0.31; "lr@k" = the LR optimizer step k uses, base LR 1). torch's
schedulers run live.

The warmup convention differs on purpose: our ramp of ``W`` steps reaches the peak at step ``W``
and starts above zero at step 0 (progress ``(k + 1) / (W + 1)``), where theirs starts at the start
value on step 0 (progress ``k / W``). So our step ``k`` of a ramp is their step ``k + 1`` of a ramp
one step longer, and after the ramp the steps line up.
"""

from __future__ import annotations

import json
import math
import pickle
import random
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.optim import lr_scheduler

from lightning_lr.lengths import RunLength
from lightning_lr.schedule_lr import ScheduleLR
from lightning_lr.schedules import (
    Constant,
    CosineDecay,
    CosineRestarts,
    Cyclic,
    Hold,
    InverseSqrt,
    Join,
    LinearSchedule,
    OneCycle,
    Warmup,
    WarmupStableDecay,
)
from lightning_lr.settings import schedule_from_config

PROPERTY = settings(deadline=None, max_examples=60)


# --- Hugging Face, as transformers.optimization writes each lambda ---------------------------------


def hf_inverse_sqrt(step: int, *, warmup: int, timescale: int) -> float:
    """``_get_inverse_sqrt_schedule_lr_lambda``."""
    if step < warmup:
        return step / max(1, warmup)
    shift = timescale - warmup
    return 1.0 / math.sqrt((step + shift) / timescale)


def hf_cosine(step: int, *, warmup: int, total: int, cycles: float) -> float:
    """``_get_cosine_schedule_with_warmup_lr_lambda``."""
    if step < warmup:
        return step / max(1, warmup)
    progress = (step - warmup) / max(1, total - warmup)
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * cycles * 2.0 * progress)))


def hf_hard_restarts(step: int, *, warmup: int, total: int, cycles: int) -> float:
    """``_get_cosine_with_hard_restarts_schedule_with_warmup_lr_lambda``."""
    if step < warmup:
        return step / max(1, warmup)
    progress = (step - warmup) / max(1, total - warmup)
    if progress >= 1.0:
        return 0.0
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * ((cycles * progress) % 1.0))))


def hf_wsd(
    step: int, *, warmup: int, stable: int, decay: int, warmup_type: str, decay_type: str, min_ratio: float
) -> float:
    """``_get_wsd_scheduler_lambda`` (``num_cycles=0.5``)."""
    if step < warmup:
        progress = step / max(1, warmup)
        if warmup_type == "linear":
            factor = progress
        elif warmup_type == "cosine":
            factor = 0.5 * (1.0 - math.cos(math.pi * progress))
        else:
            factor = 1.0 - math.sqrt(1.0 - progress)
        return max(0.0, factor * (1.0 - min_ratio) + min_ratio)
    if step < warmup + stable:
        return 1.0
    if step < warmup + stable + decay:
        progress = (step - warmup - stable) / max(1, decay)
        if decay_type == "linear":
            factor = 1.0 - progress
        elif decay_type == "cosine":
            factor = 0.5 * (1.0 + math.cos(math.pi * 0.5 * 2.0 * progress))
        else:
            factor = 1.0 - math.sqrt(progress)
        return max(0.0, factor * (1.0 - min_ratio) + min_ratio)
    return min_ratio


def test_the_closed_forms_print_the_libraries_values() -> None:
    inverse = [hf_inverse_sqrt(k, warmup=0, timescale=100) for k in (0, 1, 50, 99, 100, 500, 999)]
    assert inverse == pytest.approx(
        [1.0, 0.9950371902099893, 0.8164965809277261, 0.7088812050083358, 0.7071067811865475,
         0.4082482904638631, 0.30164848870338085], rel=1e-15
    )  # fmt: skip
    one = [hf_cosine(k, warmup=0, total=1000, cycles=1.0) for k in (0, 250, 500, 750, 999)]
    assert one == pytest.approx([1.0, 0.5, 0.0, 0.5, 0.9999901304280685], rel=1e-12, abs=1e-15)
    restarts = [hf_hard_restarts(k, warmup=10, total=100, cycles=3) for k in (25, 39, 40, 41, 70, 100)]
    # values printed to 10 decimals: abs=1e-10 checks every digit
    assert restarts == pytest.approx([0.5, 0.0027390523, 1.0, 0.9972609477, 1.0, 0.0], abs=1e-10)
    wsd = {"warmup": 10, "stable": 70, "decay": 20, "warmup_type": "linear", "decay_type": "1-sqrt"}
    values = [hf_wsd(k, **wsd, min_ratio=0.1) for k in (0, 1, 5, 9, 10, 50, 80, 85, 90, 99, 100)]  # type: ignore[arg-type]
    assert values == pytest.approx(
        [0.1, 0.19, 0.55, 0.91, 1.0, 1.0, 1.0, 0.55, 0.36360389693210715, 0.1227885089671933, 0.1], rel=1e-14
    )


# --- InverseSqrt = Hugging Face's get_inverse_sqrt_schedule after its warmup -----------------------


def test_inverse_sqrt_prints_hugging_faces_values() -> None:
    schedule = InverseSqrt(timescale=100)
    values = [schedule(k) for k in (0, 1, 50, 99, 100, 500, 999)]
    assert values == pytest.approx(
        [1.0, 0.9950371902099893, 0.8164965809277261, 0.7088812050083358, 0.7071067811865475,
         0.4082482904638631, 0.30164848870338085], rel=1e-15
    )  # fmt: skip


@pytest.mark.parametrize(("warmup", "timescale"), [(0, 10_000), (10, 10), (100, 100), (40, 7), (5, 300)])
def test_inverse_sqrt_behind_a_warmup_is_hugging_faces_after_it(warmup: int, timescale: int) -> None:
    schedule = Warmup(InverseSqrt(timescale), warmup)
    for step in range(warmup, 3000, 7):
        expected = hf_inverse_sqrt(step, warmup=warmup, timescale=timescale)
        assert schedule(step) == pytest.approx(expected, rel=1e-14), step


def test_inverse_sqrt_timescale_as_a_fraction_of_the_run() -> None:
    assert InverseSqrt(0.1).resolve(RunLength(1000)) == InverseSqrt(100)


# --- CosineDecay(num_cycles) = Hugging Face's cosine; k_decay = timm's ------------------------------


@pytest.mark.parametrize(
    ("cycles", "expected"),
    [
        (1.0, {0: 1.0, 250: 0.5, 500: 0.0, 750: 0.5, 999: 0.9999901304280685}),
        (2.0, {0: 1.0, 125: 0.5, 250: 0.0, 500: 1.0, 999: 0.9999605221019081}),
    ],
)
def test_cosine_cycles_print_hugging_faces_values(cycles: float, expected: dict[int, float]) -> None:
    schedule = CosineDecay(1000, num_cycles=cycles)
    for step, value in expected.items():
        assert schedule(step) == pytest.approx(value, rel=1e-12, abs=1e-15), step


@pytest.mark.parametrize("cycles", [0.5, 0.25, 1.0, 1.5, 3.0])
@pytest.mark.parametrize(("warmup", "total"), [(0, 100), (10, 250)])
def test_cosine_cycles_behind_a_warmup_are_hugging_faces_after_it(
    cycles: float, warmup: int, total: int
) -> None:
    schedule = Warmup(CosineDecay(1.0, num_cycles=cycles), warmup).resolve(RunLength(total))
    for step in range(warmup, total + 1):
        expected = hf_cosine(step, warmup=warmup, total=total, cycles=cycles)
        assert schedule(step) == pytest.approx(expected, rel=1e-12, abs=1e-15), step
    # held after the run, where Hugging Face's keeps oscillating
    assert schedule(total + 17) == schedule(total)


def test_cosine_with_a_floor_and_cycles_is_hugging_faces_min_lr_form() -> None:
    schedule = CosineDecay(100, min_factor=0.1, num_cycles=1.5)
    for step in range(101):
        expected = 0.1 + 0.9 * hf_cosine(step, warmup=0, total=100, cycles=1.5)
        assert schedule(step) == pytest.approx(expected, rel=1e-12), step


def test_k_decay_prints_timms_values() -> None:
    schedule = CosineDecay(100, k_decay=2.0)
    values = [schedule(k) for k in (0, 25, 50, 75, 99, 100)]
    assert values == pytest.approx(
        [1.0, 0.9903926402016152, 0.8535533905932737, 0.4024548389919358, 0.0009767972996053143, 0.0],
        rel=1e-12,
        abs=1e-15,
    )


@pytest.mark.parametrize("k_decay", [0.5, 1.0, 2.0, 3.5])
def test_k_decay_is_timms_closed_form(k_decay: float) -> None:
    # timm: lr_min + (lr_max - lr_min) / 2 * (1 + cos(pi * t ** k / t_i ** k)), lr_min after t_i
    schedule = CosineDecay(60, min_factor=0.01, k_decay=k_decay)
    for step in range(70):
        t = min(step, 60)
        expected = 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * t**k_decay / 60**k_decay))
        assert schedule(step) == pytest.approx(expected, rel=1e-12), step


# --- Warmup(overlap=True) = timm's warmup_prefix=False ----------------------------------------------


def timm_overlapping_warmup(step: int, *, warmup: int, start: float, total: int) -> float:
    """timm's ``CosineLRScheduler(t_initial=total, warmup_t=warmup, warmup_lr_init=start)``."""
    if step < warmup:
        return start + step * (1.0 - start) / warmup
    if step >= total:
        return 0.0
    return 0.5 * (1 + math.cos(math.pi * step / total))


def test_overlapping_warmup_prints_timms_values() -> None:
    after = Warmup(CosineDecay(1000), 100, start_factor=1e-3, overlap=True)
    values = [after(k) for k in (100, 101, 500, 999)]
    assert values == pytest.approx(
        [0.9755282581475768, 0.9750405095503858, 0.5, 2.467399070893439e-06], rel=1e-12
    )
    # timm's ramp over 100 steps at steps 1, 50, 99 is ours over 99 steps one step earlier
    ramp = Warmup(CosineDecay(1000), 99, start_factor=1e-3, overlap=True)
    assert [ramp(k) for k in (0, 49, 98)] == pytest.approx([0.01099, 0.5005, 0.99001], rel=1e-12)


@pytest.mark.parametrize(("warmup", "start"), [(1, 0.0), (10, 0.01), (37, 0.5)])
def test_overlapping_warmup_is_timms_step_for_step(warmup: int, start: float) -> None:
    total = 200
    ours = Warmup(CosineDecay(1.0), warmup, start_factor=start, overlap=True).resolve(RunLength(total))
    assert ours.schedule == CosineDecay(total)  # the cosine spans the whole run, not what the ramp leaves
    for step in range(warmup, total + 5):
        expected = timm_overlapping_warmup(step, warmup=warmup, start=start, total=total)
        assert ours(step) == pytest.approx(expected, rel=1e-12, abs=1e-15), step
    longer = Warmup(CosineDecay(total), warmup - 1, start_factor=start, overlap=True) if warmup > 1 else None
    for step in range(warmup - 1 if longer else 0):
        expected = timm_overlapping_warmup(step + 1, warmup=warmup, start=start, total=total)
        assert longer is not None and longer(step) == pytest.approx(expected, rel=1e-12), step


# --- WarmupStableDecay = Hugging Face's get_wsd_schedule in every shape -----------------------------


def test_wsd_prints_hugging_faces_values_starting_at_min_factor() -> None:
    # Hugging Face's W=10, T=100 at step k + 1 is ours with W=9, T=99 at step k.
    schedule = WarmupStableDecay(99, 9, 20, decay_shape="1-sqrt", min_factor=0.1)
    theirs = {1: 0.19, 5: 0.55, 9: 0.91, 10: 1.0, 50: 1.0, 80: 1.0, 85: 0.55, 90: 0.3636038969,
              99: 0.122788509, 100: 0.1}  # fmt: skip
    for step, value in theirs.items():
        assert schedule(step - 1) == pytest.approx(value, rel=1e-9), step
    assert schedule.start_factor is None  # the ramp starts from min_factor unless told otherwise


@pytest.mark.parametrize("warmup_shape", ["linear", "cosine", "1-sqrt"])
@pytest.mark.parametrize("decay_shape", ["linear", "cosine", "1-sqrt"])
@pytest.mark.parametrize(("total", "warmup", "decay", "min_factor"), [(100, 10, 20, 0.0), (250, 33, 97, 0.1)])
def test_wsd_is_hugging_faces_in_every_shape(
    warmup_shape: str, decay_shape: str, total: int, warmup: int, decay: int, min_factor: float
) -> None:
    ours = WarmupStableDecay(total, warmup, decay, decay_shape, min_factor, warmup_shape)  # type: ignore[arg-type]
    stable = total - warmup - decay
    shapes = {"warmup_type": warmup_shape, "decay_type": decay_shape, "min_ratio": min_factor}
    for step in range(total + 20):
        # our step k is Hugging Face's k + 1 with one more warmup step (and one more step in all) ...
        shifted = hf_wsd(step + 1, warmup=warmup + 1, stable=stable, decay=decay, **shapes)  # type: ignore[arg-type]
        assert ours(step) == pytest.approx(shifted, rel=1e-12, abs=1e-15), step
        # ... and after the ramp the steps line up
        if step >= warmup:
            same = hf_wsd(step, warmup=warmup, stable=stable, decay=decay, **shapes)  # type: ignore[arg-type]
            assert ours(step) == pytest.approx(same, rel=1e-12, abs=1e-15), step


def test_wsd_without_warmup_is_hugging_faces_step_for_step() -> None:
    ours = WarmupStableDecay(120, 0, 40, "cosine", 0.05)
    for step in range(130):
        expected = hf_wsd(
            step, warmup=0, stable=80, decay=40, warmup_type="linear", decay_type="cosine", min_ratio=0.05
        )
        assert ours(step) == pytest.approx(expected, rel=1e-12), step


@pytest.mark.parametrize("warmup_shape", ["linear", "cosine", "1-sqrt"])
def test_wsd_start_factor_moves_only_the_start_of_the_ramp(warmup_shape: str) -> None:
    ours = WarmupStableDecay(100, 10, 20, min_factor=0.1, warmup_shape=warmup_shape, start_factor=0.3)  # type: ignore[arg-type]
    reference = WarmupStableDecay(100, 10, 20, min_factor=0.3, warmup_shape=warmup_shape)  # type: ignore[arg-type]
    assert [ours(k) for k in range(10)] == [reference(k) for k in range(10)]
    assert ours(0) > 0.3 and ours(10) == 1.0 and ours(100) == pytest.approx(0.1)


# --- CosineRestarts with a fraction tiles the run; = Hugging Face's hard restarts ------------------


def test_a_third_of_the_run_prints_hugging_faces_hard_restarts() -> None:
    schedule = Warmup(CosineRestarts(1 / 3), 10).resolve(RunLength(100))
    theirs = {25: 0.5, 39: 0.0027390523, 40: 1.0, 41: 0.9972609477, 70: 1.0, 100: 0.0}
    for step, value in theirs.items():
        assert schedule(step) == pytest.approx(value, abs=1e-10), step  # printed to 10 decimals


@pytest.mark.parametrize("cycles", [1, 2, 3, 4, 7])
def test_tiled_cycles_are_hugging_faces_where_they_divide_the_run(cycles: int) -> None:
    total = 84 * 5
    schedule = CosineRestarts(1 / cycles).resolve(RunLength(total))
    for step in range(total + 10):
        expected = hf_hard_restarts(step, warmup=0, total=total, cycles=cycles)
        assert schedule(step) == pytest.approx(expected, rel=1e-12, abs=1e-15), step


@PROPERTY
@given(st.integers(1, 2000), st.integers(1, 12), st.floats(0.0, 0.5))
def test_tiled_cycles_add_up_to_the_run_and_end_on_its_last_step(
    total: int, cycles: int, floor: float
) -> None:
    schedule = CosineRestarts(1 / cycles, min_factor=floor).resolve(RunLength(total))
    count = min(cycles, total)
    starts = [k for k in range(total) if schedule.cycle_at(k)[1] == 0]
    lengths = [end - start for start, end in zip(starts, [*starts[1:], total])]
    assert len(starts) == count and sum(lengths) == total
    assert max(lengths) - min(lengths) <= 1
    # each restart is at most one step from Hugging Face's, which come at the first step k >= i * S / n
    assert all(abs(start - math.ceil(i * total / count)) <= 1 for i, start in enumerate(starts))
    index, position, length = schedule.cycle_at(total - 1)
    assert (index, position) == (count - 1, length - 1)  # the last step of the run ends the last cycle
    assert schedule(total - 1) < floor + (1 - floor) * 2.5 / length**2 + 1e-12  # near the floor, no restart
    assert [schedule(total + k) for k in range(5)] == [floor] * 5


def test_the_tiling_of_a_thousand_steps_in_thirds() -> None:
    schedule = CosineRestarts(1 / 3).resolve(RunLength(1000))
    assert [schedule.cycle_at(k)[2] for k in (0, 400, 999)] == [333, 333, 334]
    # Hugging Face's cycles last 333.3 steps; its last step is at 2.22e-5, ours at 2.21e-5
    assert schedule(999) == pytest.approx(hf_hard_restarts(999, warmup=0, total=1000, cycles=3), rel=0.01)


def test_growing_cycles_keep_a_fraction_as_the_first_cycle() -> None:
    assert CosineRestarts(0.1, cycle_mult=2.0).resolve(RunLength(1000)) == CosineRestarts(100, cycle_mult=2.0)


# --- OneCycle and Cyclic = torch's OneCycleLR and CyclicLR, momentum included ----------------------


def _momentum(optimizer: torch.optim.Optimizer) -> list[float]:
    return [float(group.get("betas", (group.get("momentum"),))[0]) for group in optimizer.param_groups]


def _optimizer(kind: str) -> torch.optim.Optimizer:
    groups = [{"params": [torch.nn.Parameter(torch.ones(2))], "lr": lr} for lr in (0.1, 0.03)]
    if kind == "sgd":
        return torch.optim.SGD(groups, lr=0.1, momentum=0.9)
    if kind == "adam":
        return torch.optim.Adam(groups, lr=0.1, betas=(0.9, 0.99))
    return torch.optim.RMSprop(groups, lr=0.1, momentum=0.5)


def _run_side_by_side(
    ours: ScheduleLR, theirs: lr_scheduler.LRScheduler, steps: int
) -> tuple[list[list[float]], list[list[float]]]:
    """The LRs and momentums of both optimizers at each step (as the optimizer step sees them)."""
    seen: tuple[list[list[float]], list[list[float]]] = ([], [])
    for step in range(steps):
        for index, scheduler in enumerate((ours, theirs)):
            groups = scheduler.optimizer.param_groups
            seen[index].append([g["lr"] for g in groups] + _momentum(scheduler.optimizer))
            if step < steps - 1:
                scheduler.optimizer.step()
                scheduler.step()
    return seen


def _one_cycle_settings(rng: random.Random) -> dict[str, object]:
    return {
        "total_steps": rng.randint(1, 250),
        "pct_start": rng.choice([0.0, 1.0, 0.5, 0.6, 0.75, rng.random(), rng.random()]),
        "anneal_strategy": rng.choice(["cos", "linear"]),
        "three_phase": rng.random() < 0.5,
        "div_factor": rng.uniform(1.0, 50.0),
        "final_div_factor": rng.uniform(1.0, 1e4),
        "cycle_momentum": rng.random() < 0.8,
        "base_momentum": rng.uniform(0.5, 0.9),
        "max_momentum": rng.uniform(0.85, 0.99),
    }


@pytest.mark.parametrize("seed", range(4))
def test_one_cycle_equals_torch_over_random_settings(seed: int) -> None:
    rng = random.Random(seed)
    compared = refused = 0
    for _ in range(60):
        options = _one_cycle_settings(rng)
        kind = rng.choice(["sgd", "adam", "rmsprop"])
        ours_schedule = {key: value for key, value in options.items() if key != "anneal_strategy"}
        try:
            theirs = lr_scheduler.OneCycleLR(_optimizer(kind), [0.1, 0.03], **options)  # type: ignore[arg-type]
        except ZeroDivisionError:  # torch accepts these settings, then divides by zero on the first step
            with pytest.raises(ValueError, match=r"`total_steps`=\d+ is too short for `pct_start`"):
                OneCycle(anneal=options["anneal_strategy"], **ours_schedule)  # type: ignore[arg-type]
            refused += 1
            continue
        schedule = OneCycle(anneal=options["anneal_strategy"], **ours_schedule)  # type: ignore[arg-type]
        ours = ScheduleLR(_optimizer(kind), schedule)
        mine, torch_values = _run_side_by_side(ours, theirs, int(options["total_steps"]))  # type: ignore[call-overload]
        for step, (a, b) in enumerate(zip(mine, torch_values)):
            # A linear anneal's last steps cancel near 1 / (div * final_div): 1e-12 of the peak.
            assert a == pytest.approx(b, rel=1e-12, abs=1e-13), (options, kind, step)
        compared += 1
    assert compared > 40


def test_one_cycle_three_phases_with_a_late_peak_is_accepted_as_torch_has_it() -> None:
    theirs = lr_scheduler.OneCycleLR(
        _optimizer("sgd"), [0.1, 0.03], total_steps=100, pct_start=0.6, three_phase=True
    )
    ours = ScheduleLR(_optimizer("sgd"), OneCycle(100, pct_start=0.6, three_phase=True))
    mine, torch_values = _run_side_by_side(ours, theirs, 100)
    assert [row[0] for row in mine] == pytest.approx([row[0] for row in torch_values], rel=1e-12)
    assert [row[2] for row in mine] == pytest.approx([row[2] for row in torch_values], rel=1e-12)


def test_one_cycle_prints_torchs_values_and_cycles_momentum_by_default() -> None:
    schedule = OneCycle(100)
    # printed to 10 decimals: abs=1e-10 checks every digit
    assert [schedule(k) for k in (0, 10, 29, 30, 50, 99)] == pytest.approx(
        [0.04, 0.2951639485, 1.0, 0.9994965353, 0.7938934506, 4e-6], abs=1e-10
    )
    linear = OneCycle(100, anneal="linear", three_phase=True)
    assert [linear(k) for k in (15, 29, 58, 70, 99)] == pytest.approx(
        [0.5365517241, 1.0, 0.04, 0.0282938537, 4e-6], abs=1e-10
    )
    # 0.95 -> 0.85 at the peak -> 0.95, torch's defaults
    assert [schedule.momentum(k) for k in (0, 29, 99)] == pytest.approx([0.95, 0.85, 0.95], rel=1e-12)


@pytest.mark.parametrize("mode", ["triangular", "triangular2", "exp_range"])
@pytest.mark.parametrize("kind", ["sgd", "adam"])
@pytest.mark.parametrize(("up", "down"), [(10, None), (7, 19)])
def test_cyclic_equals_torch_momentum_included(mode: str, kind: str, up: int, down: int | None) -> None:
    theirs = lr_scheduler.CyclicLR(
        _optimizer(kind), [0.02, 0.006], [0.1, 0.03], up, down, mode=mode, gamma=0.995
    )
    ours = ScheduleLR(_optimizer(kind), Cyclic(up, down, base_factor=0.2, mode=mode, gamma=0.995))  # type: ignore[arg-type]
    mine, torch_values = _run_side_by_side(ours, theirs, 150)
    for step, (a, b) in enumerate(zip(mine, torch_values)):
        assert a == pytest.approx(b, rel=1e-12, abs=1e-15), step
    cycled = [row[2] for row in mine]  # between torch's defaults, 0.9 at the floor of the LR
    assert cycled[0] == 0.9 and 0.8 - 1e-12 <= min(cycled) < 0.85 and max(cycled) <= 0.9


def test_momentum_of_a_composite_follows_its_pieces_and_hands_back_the_optimizers_own() -> None:
    cycle = OneCycle(20)
    joined = Join([Warmup(cycle, 5), Constant()], boundaries=[25])
    optimizer = _optimizer("sgd")
    scheduler = ScheduleLR(optimizer, Hold(joined, 2))
    momentums = []
    for _ in range(60):
        momentums.append(_momentum(optimizer)[0])
        optimizer.step()
        scheduler.step()
    expected = [cycle.momentum(0)] * 10 + [cycle.momentum(k // 2 - 5) for k in range(10, 50)] + [0.9] * 10
    assert momentums == pytest.approx(expected, rel=1e-15)


def test_an_optimizer_without_momentum_is_refused_like_torch_does() -> None:
    def adagrad() -> torch.optim.Optimizer:
        return torch.optim.Adagrad([torch.nn.Parameter(torch.zeros(1))], lr=0.1)

    with pytest.raises(ValueError, match="optimizer must support momentum"):
        lr_scheduler.OneCycleLR(adagrad(), 0.1, total_steps=10)
    with pytest.raises(
        ValueError, match=r"cycles the momentum, but Adagrad has neither `momentum` nor `betas`"
    ):
        ScheduleLR(adagrad(), OneCycle(10))
    with pytest.raises(ValueError, match=r"`cycle_momentum=False`"):
        ScheduleLR(adagrad(), Warmup(Cyclic(4), 2))
    ScheduleLR(adagrad(), OneCycle(10, cycle_momentum=False))  # without momentum cycling it is fine


def test_resume_from_a_weights_only_checkpoint_continues_the_momentum_exactly(tmp_path: Path) -> None:
    path = tmp_path / "state.pt"
    schedule = OneCycle(40, three_phase=True)
    optimizer = _optimizer("adam")
    full = ScheduleLR(optimizer, schedule)
    values = []
    for step in range(40):
        values.append(_momentum(optimizer) + [g["lr"] for g in optimizer.param_groups])
        if step == 17:
            torch.save({"optimizer": optimizer.state_dict(), "scheduler": full.state_dict()}, path)
        optimizer.step()
        full.step()
    state = torch.load(path, weights_only=True)
    resumed_optimizer = _optimizer("adam")
    resumed = ScheduleLR(resumed_optimizer, OneCycle(3))  # whatever it was built with, the state wins
    resumed_optimizer.load_state_dict(state["optimizer"])
    resumed.load_state_dict(state["scheduler"])
    assert resumed.schedule == schedule and resumed.base_momentums == [0.9, 0.9]
    again = []
    for _ in range(18, 40):
        resumed_optimizer.step()
        resumed.step()
        again.append(_momentum(resumed_optimizer) + [g["lr"] for g in resumed_optimizer.param_groups])
    assert again == values[18:]


# --- compositions -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("warmup", "total"), [(1, 50), (10, 100), (37, 300)])
def test_warmup_then_cosine_is_hugging_faces_one_step_later_with_one_more_warmup_step(
    warmup: int, total: int
) -> None:
    ours = Warmup(CosineDecay(total - warmup), warmup)
    for step in range(total + 1):
        theirs = hf_cosine(step + 1, warmup=warmup + 1, total=total + 1, cycles=0.5)
        assert ours(step) == pytest.approx(theirs, rel=1e-12, abs=1e-15), step
        if step >= warmup:
            assert ours(step) == pytest.approx(
                hf_cosine(step, warmup=warmup, total=total, cycles=0.5), abs=1e-15
            )


def test_join_of_closed_forms_is_torchs_sequential_lr() -> None:
    optimizer = _optimizer("sgd")
    theirs = lr_scheduler.SequentialLR(
        optimizer,
        [
            lr_scheduler.LinearLR(optimizer, 0.1, total_iters=5),
            lr_scheduler.CosineAnnealingLR(optimizer, T_max=10),
        ],
        milestones=[5],
    )
    ours = Join([LinearSchedule(0.1, 1.0, 5), CosineDecay(10)], boundaries=[5])
    printed = {0: 0.1, 1: 0.28, 4: 0.82, 5: 1.0, 6: 0.9755282581, 10: 0.5, 15: 0.0}
    for step in range(16):
        assert ours(step) == pytest.approx(theirs.get_last_lr()[0] / 0.1, rel=1e-12, abs=1e-15), step
        if step in printed:
            assert ours(step) == pytest.approx(printed[step], abs=1e-10), step
        optimizer.step()
        theirs.step()


def test_a_tiled_schedule_travels_as_plain_data() -> None:
    tiled = Warmup(CosineRestarts(1 / 3, min_factor=0.1), 5).resolve(RunLength(100))
    rebuilt = schedule_from_config(json.loads(json.dumps(tiled.to_config())))
    assert rebuilt == tiled == pickle.loads(pickle.dumps(tiled))
    assert [rebuilt(k) for k in range(120)] == [tiled(k) for k in range(120)]  # type: ignore[operator]
