"""find_lr: a real range test that leaves everything as it found it."""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import matplotlib.image
import numpy as np
import pytest
import torch
from conftest import TinyRegression

from lightning_lr.demo import MNIST1DClassifier, MNIST1DDataModule
from lightning_lr.finder import find_lr, sweep_lrs
from lightning_lr.plot import plot_lr_finder
from lightning_lr.schedules import CosineDecay, OneCycle


def leftovers() -> set[str]:
    return {name for name in os.listdir(tempfile.gettempdir()) if name.startswith("lightning-lr-find-")}


def test_weights_random_states_and_files_are_exactly_as_before(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(3)
    random.seed(3)
    np.random.seed(3)
    model = TinyRegression(schedule=CosineDecay(50), weight_decay=0.01)
    before = {name: value.clone() for name, value in model.state_dict().items()}
    states = (torch.get_rng_state(), random.getstate(), np.random.get_state()[1].copy())
    earlier = leftovers()
    result = find_lr(model, num_steps=30, min_lr=1e-5, max_lr=1.0, enable_progress_bar=False)
    assert len(result.losses) > 10
    for name, value in model.state_dict().items():
        assert torch.equal(value, before[name]), name
    assert torch.equal(torch.get_rng_state(), states[0])
    assert random.getstate() == states[1]
    assert np.array_equal(np.random.get_state()[1], states[2])
    assert list(tmp_path.iterdir()) == [] and leftovers() == earlier
    with pytest.raises(RuntimeError):
        model.trainer  # noqa: B018  (not attached before, not attached after)


def test_the_sweep_is_exponential_and_keeps_every_groups_ratio() -> None:
    model = TinyRegression(lr_multipliers={"head": 0.1}, weight_decay=0.0)
    result = find_lr(
        model, num_steps=20, repeats=1, min_lr=1e-4, max_lr=1e-1, stop_factor=1e6, enable_progress_bar=False
    )
    assert result.lrs == pytest.approx(sweep_lrs(1e-4, 1e-1, 20))
    assert len(model.seen_lrs) == 20 and not result.stopped_early
    for lr, (body, head) in zip(result.lrs, model.seen_lrs):
        assert body == pytest.approx(lr) and head == pytest.approx(0.1 * lr)


def test_the_sweep_stops_once_the_loss_blows_up() -> None:
    model = TinyRegression(optimizer="sgd", weight_decay=0.0)
    result = find_lr(model, num_steps=60, repeats=1, min_lr=1e-3, max_lr=1e3, enable_progress_bar=False)
    assert result.stopped_early and len(result.losses) < 60
    assert result.smoothed[-1] > 4 * min(result.smoothed[:-1]) or not np.isfinite(result.losses[-1])


def test_accumulation_and_the_users_trainer_settings(make_trainer: Any) -> None:
    model = TinyRegression(weight_decay=0.0)
    trainer = make_trainer(max_epochs=3, accumulate_grad_batches=2)
    result = find_lr(
        model, trainer=trainer, num_steps=12, repeats=1, min_lr=1e-4, max_lr=1e-2, stop_factor=1e6
    )
    assert len(result.losses) == len(model.seen_lrs) == 12  # optimizer steps, not batches
    assert trainer.global_step == 0 and trainer.optimizers == []


@pytest.mark.slow
def test_mnist1d_suggestions_plot_and_hparam_update(tmp_path: Path) -> None:
    pl.seed_everything(0)
    model = MNIST1DClassifier(lr=1e-3)
    result = find_lr(
        model, datamodule=MNIST1DDataModule(), num_steps=100, enable_progress_bar=False, update_hparams=True
    )
    assert set(result.suggestions) == {"steepest", "valley", "minimum", "peak", "slide"}
    for name, suggestion in result.suggestions.items():
        assert suggestion.lr is not None and 1e-7 <= suggestion.lr <= 10.0, name
    assert model.hparams.lr == result.suggestion == result.suggestions["peak"].lr
    image = matplotlib.image.imread(plot_lr_finder(result, tmp_path / "finder.png"))
    assert image.shape[0] > 100


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (
            {"min_lr": 1.0, "max_lr": 0.1},
            ValueError,
            r"`max_lr` must be greater than `min_lr`=1\.0, got 0\.1",
        ),
        ({"min_lr": 0.0}, ValueError, r"`min_lr` must be > 0, got 0\.0"),
        ({"num_steps": 5}, ValueError, r"`num_steps` must be >= 10, got 5"),
        ({"mode": "log"}, ValueError, r"`mode` must be one of 'exponential', 'linear', got 'log'"),
        ({"rule": "best"}, ValueError, r"`rule` must be one of .*got 'best'"),
        ({"stop_factor": 1.0}, ValueError, r"`stop_factor` must lie in \(1, inf\), got 1\.0"),
        ({"repeats": 0}, ValueError, r"`repeats` must be >= 1, got 0"),
        ({"schedule": "cosine"}, ValueError, r"`schedule` must be one of 'constant', 'decay', 'one-cycle'"),
        ({"total_steps": 0}, ValueError, r"`total_steps` must be >= 1, got 0"),
        (
            {"num_step": 20},
            TypeError,
            r"unknown finder option\(s\) \['num_step'\]; the options are \['min_lr'",
        ),
    ],
)
def test_bad_arguments_fail_before_any_step(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    model = TinyRegression()
    with pytest.raises(error, match=match):
        find_lr(model, **kwargs)
    assert model.seen_lrs == []


def test_no_training_data_is_a_clear_error() -> None:
    class NoData(pl.LightningModule):
        pass

    with pytest.raises(ValueError, match=r"`find_lr` has no training data"):
        find_lr(NoData())


class Shuffled(TinyRegression):
    """TinyRegression whose batches come in a shuffled order (drawn from torch's global RNG)."""

    def train_dataloader(self) -> torch.utils.data.DataLoader[Any]:
        return torch.utils.data.DataLoader(self.data, batch_size=self.hparams.batch_size, shuffle=True)


def shuffled(**hparams: Any) -> Shuffled:
    pl.seed_everything(0)  # the same initial weights on every call
    return Shuffled(n_samples=512, batch_size=32, weight_decay=0.0, **hparams)


REPEATED = {"num_steps": 30, "min_lr": 1e-3, "max_lr": 10.0, "enable_progress_bar": False}


def test_repeats_sweep_other_batch_orders_and_each_pick_is_the_median_of_theirs() -> None:
    result = find_lr(shuffled(), repeats=5, **REPEATED)
    assert len(result.sweeps) == 5 and all(len(picks) == 5 for picks in result.picks.values())
    # the same weights, other batches: the very first losses differ already
    assert len({sweep[0] for sweep in result.sweeps}) == 5
    for name, suggestion in result.suggestions.items():
        logs = [np.log(lr) for lr in result.picks[name] if lr is not None]
        if suggestion.lr is not None:
            assert suggestion.lr == pytest.approx(float(np.exp(np.median(logs))), rel=1e-9), name
    logs = [np.log(lr) for lr in result.picks["peak"] if lr is not None]
    assert result.spread == pytest.approx(float(np.exp(np.std(logs, ddof=1))), rel=1e-9)
    longest = max(len(sweep) for sweep in result.sweeps)
    assert result.losses[0] == pytest.approx(float(np.mean([sweep[0] for sweep in result.sweeps])))
    assert len(result.losses) == len(result.lrs) == longest


def test_the_same_model_data_and_settings_give_the_same_pick_whatever_the_global_rng() -> None:
    torch.manual_seed(1)
    first = find_lr(shuffled(), **REPEATED)
    torch.manual_seed(2)
    second = find_lr(shuffled(), **REPEATED)
    assert first.sweeps == second.sweeps and first.suggestion == second.suggestion
    other = find_lr(shuffled(), seed=7, **REPEATED)
    assert other.sweeps != first.sweeps


def test_find_lr_and_the_callback_give_the_same_pick_and_name_the_same_settings(make_trainer: Any) -> None:
    from lightning_lr import LRFinder

    finder = LRFinder(plot=None, apply=False, **REPEATED)
    make_trainer(max_steps=40, callbacks=[finder]).fit(shuffled(schedule=CosineDecay(1.0)))
    direct = find_lr(shuffled(schedule=CosineDecay(1.0)), trainer=make_trainer(max_steps=40), **REPEATED)
    inside = finder.results[0]
    assert direct.suggestion is not None and direct.suggestion == inside.suggestion
    assert direct.settings == inside.settings
    assert direct.settings["schedule"] == "decay" and direct.settings["total_steps"] == 40


def test_the_pick_knows_the_schedule_and_the_run_length() -> None:
    from lightning_lr.finder import recipe

    by_kind = {
        kind: find_lr(shuffled(), schedule=kind, total_steps=400, **REPEATED)
        for kind in recipe.SCHEDULE_KINDS
    }
    constant, decay = by_kind["constant"], by_kind["decay"]
    assert constant.sweeps == decay.sweeps  # the same sweeps, read for another use
    assert constant.suggestion is not None and decay.suggestion is not None
    expected = recipe.divisor("decay", 400) / recipe.divisor("constant", 400)
    assert constant.suggestion / decay.suggestion == pytest.approx(expected, rel=1e-9)
    # unset, they are read from the model's schedule and the Trainer (or default)
    assert find_lr(shuffled(schedule=OneCycle(1.0)), **REPEATED).settings["schedule"] == "one-cycle"
    unset = find_lr(shuffled(), **REPEATED).settings
    assert unset["schedule"] == "constant" and unset["total_steps"] == recipe.DEFAULT_TOTAL_STEPS


def test_a_race_confirms_one_of_the_lrs_around_the_pick_within_its_budget() -> None:
    from lightning_lr.finder.race import candidates

    result = find_lr(shuffled(), confirm=3, confirm_share=0.5, total_steps=400, **REPEATED)
    pick = result.suggestions["peak"].lr
    assert pick is not None and result.confirmed in candidates(pick, 3)
    assert result.suggestion == result.confirmed
    assert [(row["round"], row["steps"]) for row in result.race] == [(0, 28)] * 3 + [(1, 56)] * 2
    assert sum(row["steps"] for row in result.race) <= 0.5 * 400
    finalists = [row for row in result.race if row["round"] == 1]
    best = min(finalists, key=lambda row: row["loss"])
    assert result.confirmed == best["lr"]
    without = find_lr(shuffled(), total_steps=400, **REPEATED)
    assert without.race == [] and without.suggestion == pick  # the race changes nothing else
