"""DivergenceGuard: injected NaN, inf and loss spikes are rolled back exactly, with a lower LR."""

from __future__ import annotations

import copy
import io
import math
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from conftest import TinyRegression

from lightning_lr import DivergenceGuard, LRWarmup
from lightning_lr.diagnose import is_divergent
from lightning_lr.schedules import Constant

MakeTrainer = Callable[..., pl.Trainer]
LR = 0.05


class Faulty(TinyRegression):
    """Multiplies the loss by ``factor`` at the given optimizer steps."""

    def __init__(self, faults: dict[int, float], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.faults = faults

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        loss = super().training_step(batch, batch_idx)
        return loss * self.faults.get(self.trainer.global_step, 1.0)


class Weights(pl.Callback):
    """The weights after every training batch (after the guard has acted)."""

    def __init__(self) -> None:
        self.after: dict[int, dict[str, torch.Tensor]] = {}

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        self.after[trainer.global_step] = {k: v.clone() for k, v in pl_module.state_dict().items()}


def run(
    make_trainer: MakeTrainer,
    faults: dict[int, float],
    guard: DivergenceGuard,
    steps: int = 16,
    **trainer_kwargs: Any,
) -> tuple[Faulty, Weights, pl.Trainer]:
    model = Faulty(faults, schedule=Constant(), weight_decay=0.0)
    weights = Weights()
    trainer = make_trainer(max_steps=steps, callbacks=[guard, weights], **trainer_kwargs)
    trainer.fit(model)
    return model, weights, trainer


@pytest.mark.parametrize("fault", [math.nan, math.inf, 100.0])
def test_a_bad_step_is_skipped_and_rolled_back_exactly_with_a_lower_lr(
    make_trainer: MakeTrainer, fault: float
) -> None:
    guard = DivergenceGuard(snapshot_every=1, warmup_steps=3)
    with pytest.warns(
        UserWarning, match=r"DivergenceGuard: loss .* at step 6 .*rolled back to the state after 6 steps"
    ):
        model, weights, _ = run(make_trainer, {6: fault}, guard)
    # the update of step 6 never happened: the weights after it (global_step 7) are those after
    # step 5 (global_step 6), bit for bit
    for name, value in weights.after[7].items():
        assert torch.equal(value, weights.after[6][name]), name
    assert not all(torch.equal(value, weights.after[5][name]) for name, value in weights.after[6].items())
    assert [event["step"] for event in guard.events] == [6] and guard.retries == 1
    lrs = [lrs[0] for lrs in model.seen_lrs]
    assert lrs[:7] == pytest.approx([LR] * 7) and lrs[7:] == pytest.approx([LR * 0.5] * 9)
    assert all(torch.isfinite(value).all() for value in model.state_dict().values())


def test_rollback_goes_back_to_the_last_snapshot(make_trainer: MakeTrainer) -> None:
    guard = DivergenceGuard(snapshot_every=4, warmup_steps=2)
    _, weights, _ = run(make_trainer, {10: math.nan}, guard)
    # snapshots after steps 4 and 8 (global_step 4, 8): step 10 rolls back to the state at 8
    for name, value in weights.after[11].items():
        assert torch.equal(value, weights.after[8][name]), name


def test_repeated_backoffs_compound_across_the_same_snapshot(make_trainer: MakeTrainer) -> None:
    guard = DivergenceGuard(snapshot_every=100, warmup_steps=2, backoff=0.5)
    model, _, _ = run(make_trainer, {5: math.nan, 7: math.nan}, guard, steps=10)
    lrs = [lrs[0] for lrs in model.seen_lrs]
    assert lrs[8:] == pytest.approx([LR * 0.25] * 2)
    assert guard.lr_scale == pytest.approx(0.25)


def test_after_max_retries_it_stops_with_the_last_good_state_saved(
    make_trainer: MakeTrainer, tmp_path: Path
) -> None:
    guard = DivergenceGuard(snapshot_every=1, warmup_steps=1, max_retries=2)
    _, weights, trainer = run(make_trainer, dict.fromkeys(range(4, 40), math.nan), guard, steps=40)
    assert trainer.global_step < 10 and guard.retries == 2
    saved = torch.load(tmp_path / "divergence_guard.ckpt", weights_only=True)
    for name, value in saved["state_dict"].items():
        assert torch.equal(value, weights.after[4][name]), name
        assert torch.isfinite(value).all()


def test_healthy_training_with_accumulation_is_left_alone(make_trainer: MakeTrainer) -> None:
    guard = DivergenceGuard(warmup_steps=2)
    _ = run(make_trainer, {}, guard, steps=12, accumulate_grad_batches=2)
    assert guard.events == [] and guard.retries == 0 and guard.healthy_steps == 12
    assert guard.level is not None and math.isfinite(guard.level)


def test_state_is_plain_data_and_round_trips(make_trainer: MakeTrainer) -> None:
    guard = DivergenceGuard(snapshot_every=1, warmup_steps=3)
    run(make_trainer, {6: math.nan}, guard, steps=8)
    state = guard.state_dict()
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)
    fresh = DivergenceGuard()
    fresh.load_state_dict(loaded)
    assert repr(fresh.state_dict()) == repr(state) and fresh.retries == 1  # repr: nan != nan


def test_a_checkpoint_of_the_earlier_layout_loads() -> None:
    """The flat dict the guard has always saved: retries, LR scale, the rule's memory and the events."""
    earlier = {
        "retries": 2,
        "lr_scale": 0.25,
        "level": 0.8,
        "start_level": 1.5,
        "healthy_steps": 12,
        "events": [
            {"step": 6, "loss": math.nan, "level": 0.9, "lr_scale": 0.5},
            {"step": 9, "loss": 40.0, "level": 0.8, "lr_scale": 0.25},
        ],
    }
    buffer = io.BytesIO()
    torch.save(earlier, buffer)
    buffer.seek(0)
    guard = DivergenceGuard(spike_factor=5.0)
    guard.load_state_dict(torch.load(buffer, weights_only=True))
    assert (guard.retries, guard.lr_scale, guard.level, guard.healthy_steps) == (2, 0.25, 0.8, 12)
    assert guard.rule.start == 1.5 and guard.rule.spike_factor == 5.0  # the settings stay the guard's own
    assert [event["step"] for event in guard.events] == [6, 9]
    assert repr(guard.state_dict()) == repr(earlier)  # saved again in the same layout
    assert guard.rule.judge(0.8 * 5.0 * 1.01) and not guard.rule.judge(0.8 * 5.0 * 0.99)


@pytest.mark.parametrize(
    ("loss", "level", "expected"),
    [
        (math.nan, 1.0, True),
        (math.inf, None, True),
        (11.0, 1.0, True),
        (9.0, 1.0, False),
        (50.0, None, False),
    ],
)
def test_is_divergent(loss: float, level: float | None, expected: bool) -> None:
    assert is_divergent(loss, level, spike_factor=10.0) is expected


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"spike_factor": 1.0}, r"`spike_factor` must lie in \(1, inf\), got 1\.0"),
        ({"backoff": 1.0}, r"`backoff` must lie in \(0, 1\), got 1\.0"),
        ({"backoff": 0}, r"`backoff` must lie in \(0, 1\), got 0"),
        ({"max_retries": -1}, r"`max_retries` must be >= 0, got -1"),
        ({"snapshot_every": 0}, r"`snapshot_every` must be >= 1, got 0"),
        ({"ema_decay": 1.0}, r"`ema_decay` must lie in \[0, 1\), got 1\.0"),
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        DivergenceGuard(**kwargs)


def test_a_deferred_verdict_rolls_back_to_the_state_before_the_bad_step(make_trainer: MakeTrainer) -> None:
    # read one step late, as on a GPU: step 6's update happens, step 7's is dropped, and the
    # rollback at the end of step 7 goes back to the state before step 6
    guard = DivergenceGuard(snapshot_every=1, warmup_steps=3, deferred=True)
    with pytest.warns(UserWarning, match=r"loss .* at step 6 .*rolled back to the state after 6 steps"):
        model, weights, _ = run(make_trainer, {6: math.nan}, guard)
    assert not all(torch.isfinite(value).all() for value in weights.after[7].values())  # step 6 ran
    for name, value in weights.after[8].items():
        assert torch.equal(value, weights.after[6][name]), name
    assert [event["step"] for event in guard.events] == [6] and guard.retries == 1
    lrs = [lrs[0] for lrs in model.seen_lrs]
    assert lrs[:8] == pytest.approx([LR] * 8) and lrs[8:] == pytest.approx([LR * 0.5] * 8)
    assert all(torch.isfinite(value).all() for value in model.state_dict().values())


def test_deferred_and_same_step_verdicts_agree_on_a_healthy_run(make_trainer: MakeTrainer) -> None:
    now, later = (
        DivergenceGuard(warmup_steps=2, deferred=False),
        DivergenceGuard(warmup_steps=2, deferred=True),
    )
    torch.manual_seed(0)
    first, _, _ = run(make_trainer, {}, now, steps=12)
    torch.manual_seed(0)
    second, _, _ = run(make_trainer, {}, later, steps=12)
    assert now.healthy_steps == later.healthy_steps == 12 and now.level == later.level
    for name, value in first.state_dict().items():
        assert torch.equal(value, second.state_dict()[name]), name


def test_a_deferred_verdict_on_the_last_step_is_still_rolled_back(make_trainer: MakeTrainer) -> None:
    guard = DivergenceGuard(snapshot_every=1, warmup_steps=3, deferred=True)
    with pytest.warns(UserWarning, match=r"at step 15 "):
        model, weights, _ = run(make_trainer, {15: math.inf}, guard)
    assert [event["step"] for event in guard.events] == [15]
    for name, value in model.state_dict().items():
        assert torch.equal(value, weights.after[15][name]), name


@pytest.mark.parametrize("memory", ["device", "host", "auto"])
def test_snapshots_restore_adam_state_in_place_whatever_the_memory(
    make_trainer: MakeTrainer, memory: str
) -> None:
    guard = DivergenceGuard(snapshot_every=4, warmup_steps=2, snapshot_memory=memory)  # type: ignore[arg-type]
    states: dict[int, dict[str, Any]] = {}

    class OptimizerState(pl.Callback):
        def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
            states[trainer.global_step] = copy.deepcopy(trainer.optimizers[0].state_dict()["state"])

    model = Faulty({10: math.nan}, schedule=Constant(), optimizer="adam", weight_decay=0.0)
    live: list[int] = []
    trainer = make_trainer(max_steps=14, callbacks=[guard, OptimizerState()])
    trainer.fit(model)
    live = [id(t) for s in trainer.optimizers[0].state.values() for t in s.values()]
    # step 10 rolled back to the snapshot after 8 steps: moments and step counts as they were then
    assert states[11].keys() == states[8].keys()
    for index, saved in states[8].items():
        for key, value in saved.items():
            assert torch.equal(states[11][index][key], value), (index, key)
    # in place: the optimizer kept its own tensors
    assert live == [id(t) for s in trainer.optimizers[0].state.values() for t in s.values()]


def test_a_snapshot_from_before_the_first_step_clears_state_created_since(make_trainer: MakeTrainer) -> None:
    guard = DivergenceGuard(snapshot_every=100, warmup_steps=0)
    model = Faulty({2: math.nan}, schedule=Constant(), optimizer="adam", weight_decay=0.0)
    trainer = make_trainer(max_steps=3, callbacks=[guard])
    with pytest.warns(UserWarning, match="rolled back to the state after 0 steps"):
        trainer.fit(model)
    # the state at the start had no Adam moments; the third step created them afresh
    assert all(float(state["step"]) == 1.0 for state in trainer.optimizers[0].state.values())


def test_snapshot_memory_is_checked() -> None:
    with pytest.raises(ValueError, match="`snapshot_memory`"):
        DivergenceGuard(snapshot_memory="disk")  # type: ignore[arg-type]


class _NoScheduler(Faulty):
    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=LR)


def test_a_rollback_under_a_warmup_overlay_keeps_the_optimizers_own_lr(make_trainer: MakeTrainer) -> None:
    # no scheduler recomputes the LR: a snapshot that kept the overlay's scaled LR would leave it in
    guard = DivergenceGuard(snapshot_every=1, warmup_steps=2)
    model = _NoScheduler({4: math.nan})
    warmup = LRWarmup(8)
    trainer = make_trainer(max_steps=12, callbacks=[warmup, guard])
    trainer.fit(model)
    assert [event["step"] for event in guard.events] == [4]
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(LR * 0.5)  # own LR, backed off
    used = [lrs[0] for lrs in model.seen_lrs]
    assert used[:5] == pytest.approx([LR * warmup.factor(step) for step in range(5)])
    assert used[5:] == pytest.approx([LR * 0.5 * warmup.factor(step) for step in range(5, 12)])
    assert used[-1] == pytest.approx(LR * 0.5)


def test_a_deferred_guard_saves_a_level_that_counts_every_step_taken(make_trainer: MakeTrainer) -> None:
    saved: dict[int, dict[str, Any]] = {}

    class Save(pl.Callback):  # what a checkpoint after each step would hold
        def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
            saved[trainer.global_step] = guard.state_dict()

    levels: dict[int, float | None] = {}
    for deferred in (False, True):
        torch.manual_seed(0)
        guard = DivergenceGuard(warmup_steps=2, deferred=deferred)
        model = Faulty({}, schedule=Constant(), weight_decay=0.0)
        make_trainer(max_steps=9, callbacks=[guard, Save()]).fit(model)
        assert [saved[step]["healthy_steps"] for step in range(1, 10)] == list(range(1, 10))
        levels.update({deferred: saved[5]["level"]})
    assert levels[True] == levels[False]


def test_the_snapshot_is_freed_when_training_ends(make_trainer: MakeTrainer) -> None:
    guard = DivergenceGuard(snapshot_every=2, warmup_steps=2)
    held: list[weakref.ref[torch.Tensor]] = []

    class Hold(pl.Callback):
        def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
            if trainer.global_step == 4:
                held.extend(weakref.ref(buffer) for buffer in guard._snapshot._buffers)

    model = Faulty({}, schedule=Constant(), weight_decay=0.0)
    trainer = make_trainer(max_steps=6, callbacks=[guard, Hold()])
    trainer.fit(model)
    assert held and all(ref() is None for ref in held)  # the trainer still exists; the buffers do not


@pytest.mark.parametrize("memory", ["device", "host"])
def test_a_snapshot_of_mixed_dtypes_restores_every_tensor_exactly(memory: str) -> None:
    """Weights, BatchNorm's int64 counter, a float64 buffer and Adam's state come back bit for bit."""
    from lightning_lr.callbacks._snapshot import TrainingSnapshot

    module = pl.LightningModule()
    module.net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))  # type: ignore[assignment]
    module.register_buffer("scale", torch.tensor([1.5, -2.0], dtype=torch.float64))
    optimizer = torch.optim.Adam(module.parameters(), lr=0.1)

    def step() -> None:
        module.net(torch.randn(8, 3)).pow(2).mean().backward()
        optimizer.step()
        optimizer.zero_grad()
        module.scale.mul_(3.0)

    class Trainer:  # what a snapshot reads from a trainer
        def __init__(self) -> None:
            self.optimizers, self.lr_scheduler_configs, self.global_step = [optimizer], [], 1

    step()
    snapshot = TrainingSnapshot(memory)  # type: ignore[arg-type]
    snapshot.take(Trainer(), module, [1.0])  # type: ignore[arg-type]
    step()
    step()
    snapshot.take(Trainer(), module, [1.0])  # type: ignore[arg-type]  # into the same buffers
    kept = copy.deepcopy((module.state_dict(), optimizer.state_dict()["state"]))
    step()
    snapshot.restore(Trainer(), module)  # type: ignore[arg-type]
    weights, state = kept
    assert module.state_dict()["net.1.num_batches_tracked"].dtype == torch.int64
    for key, value in weights.items():
        assert torch.equal(module.state_dict()[key], value), key
    for index, saved in state.items():
        for key, value in saved.items():
            assert torch.equal(optimizer.state_dict()["state"][index][key], value), (index, key)


def test_near_zero_losses_are_judged_against_a_floor_of_the_start_level() -> None:
    """A classifier that has learnt its training set: a batch at 20x a 0.001 level is noise, not a blow-up."""
    from lightning_lr.diagnose import LossLevel

    stream = [max(2.0 * 0.9**step, 1e-3) for step in range(100)]  # from 2.0 down to 0.001, then flat
    noisy = [*stream, 0.02, *stream[-5:], 0.5]
    floored, relative = LossLevel(), LossLevel(level_floor=0.0)
    assert [i for i, loss in enumerate(noisy) if floored.judge(loss)] == []
    assert [i for i, loss in enumerate(noisy) if relative.judge(loss)] == [100, 106]  # bare ratio alarms
    assert floored.start is not None and 1.0 < floored.start < 2.0
    # above spike_factor x (floor x start) it is a spike again, as is any NaN
    assert floored.judge(10.0 * 0.1 * floored.start * 1.01) and floored.judge(math.nan)
    # the memory goes through a checkpoint as plain data
    again = LossLevel()
    again.load(floored.to_dict())
    assert again == floored


def test_level_floor_is_checked() -> None:
    with pytest.raises(ValueError, match="`level_floor`"):
        DivergenceGuard(level_floor=1.5)
