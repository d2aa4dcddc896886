"""GuardState: the divergence guard's host-side memory, judged and round-tripped without a Trainer."""

from __future__ import annotations

import io
import math

import torch

from lightning_lr.diagnose.divergence import KEEP_EVENTS, GuardState, LossLevel


def test_a_blow_up_is_recorded_with_the_scale_its_rollback_sets() -> None:
    state = GuardState(LossLevel(warmup_steps=2))
    assert [state.judge(step, loss, backoff=0.5) for step, loss in enumerate([1.0, 1.0, 1.0])] == [False] * 3
    assert state.events == [] and state.rule.healthy_steps == 3
    assert state.judge(3, 50.0, backoff=0.5)
    assert state.events == [{"step": 3, "loss": 50.0, "level": 1.0, "lr_scale": 0.5}]
    assert state.retries == 0 and state.lr_scale == 1.0  # a rollback counts only when made
    state.back_off(0.5)
    assert state.judge(4, math.inf, backoff=0.5)
    assert state.events[-1]["lr_scale"] == 0.25 and state.retries == 1 and state.lr_scale == 0.5


def test_only_the_latest_events_are_kept() -> None:
    state = GuardState(LossLevel(warmup_steps=0))
    for step in range(KEEP_EVENTS + 7):
        assert state.judge(step, math.nan, backoff=0.5)
    assert [event["step"] for event in state.events] == list(range(7, KEEP_EVENTS + 7))


def test_the_state_is_plain_data_and_keeps_the_settings_it_is_loaded_with() -> None:
    state = GuardState(LossLevel(warmup_steps=1))
    for step, loss in enumerate([2.0, 1.0, 1.5, math.nan, 30.0]):
        state.judge(step, loss, backoff=0.5)
    state.back_off(0.5)
    buffer = io.BytesIO()
    torch.save(state.to_dict(), buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)
    settings = LossLevel(spike_factor=4.0, warmup_steps=1)
    loaded = GuardState.from_dict(saved, settings)
    assert settings == LossLevel(spike_factor=4.0, warmup_steps=1)  # its memory is left as it was
    assert loaded.rule.spike_factor == 4.0 and loaded.rule.level == state.rule.level
    assert (loaded.rule.start, loaded.rule.healthy_steps) == (state.rule.start, state.rule.healthy_steps)
    assert (loaded.retries, loaded.lr_scale) == (1, 0.5)
    assert repr(loaded.to_dict()) == repr(state.to_dict())  # repr: nan != nan
    assert loaded.events is not state.events
