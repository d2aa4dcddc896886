"""LRFinder: the range test inside a fit, at its start or at given epochs, and what it changes."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from conftest import StopAt, TinyRegression
from lightning.pytorch.loggers import CSVLogger

import lightning_lr.callbacks.finder as finder_module
from lightning_lr import LRFinder
from lightning_lr.schedules import CosineDecay, OneCycle

SWEEP = {"num_steps": 30, "min_lr": 1e-3, "max_lr": 10.0, "plot": None}


def tiny(seed: int = 0, **hparams: Any) -> TinyRegression:
    """Eight batches of 64: few enough to be quick, large enough for a range test to read."""
    pl.seed_everything(seed)
    return TinyRegression(n_samples=512, batch_size=64, **hparams)


def weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: value.detach().clone() for name, value in model.state_dict().items()}


class FitLRs(pl.Callback):
    """The LRs of the fit's own steps (the model's ``seen_lrs`` also has the sweep's)."""

    def __init__(self) -> None:
        self.lrs: list[list[float]] = []

    def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module: Any, optimizer: Any) -> None:
        self.lrs.append([group["lr"] for group in optimizer.param_groups])


def test_a_report_only_finder_leaves_the_run_bit_for_bit_unchanged(make_trainer: Any) -> None:
    """Weights, RNG (so the data order) and LRs are as if the finder had never run."""
    runs = []
    for finders in ([], [LRFinder(apply=False, **SWEEP)]):
        model = tiny(1, schedule=CosineDecay(1.0), weight_decay=0.01)
        seen = FitLRs()
        trainer = make_trainer(max_epochs=2, callbacks=[*finders, seen])
        shuffled = torch.utils.data.DataLoader(model.data, batch_size=64, shuffle=True)
        trainer.fit(model, train_dataloaders=shuffled)
        runs.append((seen.lrs, weights(model), finders))
    (lrs_plain, weights_plain, _), (lrs_found, weights_found, (finder,)) = runs
    assert finder.results[0].suggestion is not None and finder.applied == {}
    assert len(lrs_plain) == 16 and lrs_found == lrs_plain
    for name, value in weights_plain.items():
        assert torch.equal(weights_found[name], value), name


def test_the_suggestion_becomes_the_base_lr_of_every_group_and_scheduler(make_trainer: Any) -> None:
    model = tiny(lr=1e-3, schedule=CosineDecay(1.0), lr_multipliers={"head": 0.1}, weight_decay=0.0)
    finder, seen = LRFinder(rule="valley", **SWEEP), FitLRs()
    trainer = make_trainer(max_steps=16, callbacks=[finder, seen])
    trainer.fit(model)
    suggestion = finder.suggestion
    assert suggestion is not None and suggestion != pytest.approx(1e-3)
    factor = suggestion / 1e-3
    assert finder.applied == {0: pytest.approx(factor)}
    assert model.hparams.lr == pytest.approx(1e-3 * factor)
    scheduler = trainer.lr_scheduler_configs[0].scheduler
    assert scheduler.base_lrs == pytest.approx([suggestion, 0.1 * suggestion])
    # the first step ran at the suggestion (cosine starts at its base), the head at a tenth of it
    assert seen.lrs[0] == pytest.approx([suggestion, 0.1 * suggestion])
    # and the schedule went on from there: the closed-form cosine over 16 steps
    cosine = CosineDecay(16)
    assert len(seen.lrs) == 16
    for step, (body, head) in enumerate(seen.lrs):
        assert body == pytest.approx(suggestion * cosine(step), rel=1e-9)
        assert head == pytest.approx(0.1 * body)


def test_a_sweep_at_a_later_epoch_starts_from_the_current_weights(make_trainer: Any) -> None:
    model = tiny(lr=1e-5, weight_decay=0.0)
    initial = weights(model)
    sweeps: list[dict[str, torch.Tensor]] = []

    class Spy(LRFinder):
        def _sweep(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> Any:
            sweeps.append(weights(pl_module))
            return super()._sweep(trainer, pl_module)

    finder, seen = Spy(epochs=[2], **SWEEP), FitLRs()
    make_trainer(max_epochs=3, callbacks=[finder, seen]).fit(model)
    assert sorted(finder.results) == [2] and len(sweeps) == 1
    assert all(not torch.equal(sweeps[0][name], initial[name]) for name in ("head.weight", "head.bias"))
    suggestion = finder.results[2].suggestion
    assert suggestion is not None and finder.applied == {2: pytest.approx(suggestion / 1e-5)}
    assert [lr[0] for lr in seen.lrs] == [1e-5] * 16 + [pytest.approx(suggestion)] * 8
    assert model.hparams.lr == pytest.approx(suggestion)


def test_resuming_does_not_sweep_again_and_loads_with_weights_only(
    tmp_path: Path, make_trainer: Any, monkeypatch: Any
) -> None:
    calls: list[int] = []
    real = finder_module.range_test

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(finder_module, "range_test", counting)
    path = tmp_path / "stop.ckpt"
    first = tiny(2, lr=1e-3, schedule=CosineDecay(1.0))
    make_trainer(max_steps=24, callbacks=[LRFinder(**SWEEP), StopAt(5, path)]).fit(first)
    assert len(calls) == 1
    torch.load(path, weights_only=True)  # plain data only

    resumed, finder, seen = tiny(2, lr=1e-3, schedule=CosineDecay(1.0)), LRFinder(**SWEEP), FitLRs()
    make_trainer(max_steps=24, callbacks=[finder, seen]).fit(resumed, ckpt_path=path)
    assert len(calls) == 1 and sorted(finder.results) == [0]
    whole, seen_whole = tiny(2, lr=1e-3, schedule=CosineDecay(1.0)), FitLRs()
    make_trainer(max_steps=24, callbacks=[LRFinder(**SWEEP), seen_whole]).fit(whole)
    assert len(seen_whole.lrs) == 24 and seen.lrs == seen_whole.lrs[5:]


def test_plot_and_suggestion_land_in_the_run_log(tmp_path: Path, make_trainer: Any) -> None:
    model = tiny(lr=1e-3)
    logger = CSVLogger(tmp_path, name="run")
    finder = LRFinder(**{**SWEEP, "plot": "finder.png"})
    make_trainer(max_steps=8, logger=logger, callbacks=[finder]).fit(model)
    assert (Path(logger.log_dir) / "finder.png").stat().st_size > 10_000
    with open(Path(logger.log_dir) / "metrics.csv") as handle:
        rows = list(csv.DictReader(handle))
    logged = [float(row["lr_finder/suggestion"]) for row in rows if row["lr_finder/suggestion"]]
    assert logged == [pytest.approx(finder.suggestion)]


def test_without_a_logger_the_plot_is_written_nowhere_unless_its_path_is_absolute(
    tmp_path: Path, make_trainer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    finder = LRFinder(**{**SWEEP, "plot": "lr_finder_epoch{epoch}.png"})
    make_trainer(max_steps=2, logger=False, callbacks=[finder]).fit(tiny(lr=1e-3))
    assert finder.suggestion is not None
    assert not list(tmp_path.rglob("*.png")), "a plot landed in the working or root directory"
    absolute = tmp_path / "plots" / "sweep.png"
    make_trainer(max_steps=2, logger=False, callbacks=[LRFinder(**{**SWEEP, "plot": str(absolute)})]).fit(
        tiny(lr=1e-3)
    )
    assert absolute.stat().st_size > 10_000


def test_progress_follows_the_trainers_progress_bar(make_trainer: Any, capsys: Any) -> None:
    make_trainer(max_steps=2, enable_progress_bar=False, callbacks=[LRFinder(**SWEEP)]).fit(tiny())
    assert "LR finder" not in capsys.readouterr().out
    make_trainer(max_steps=2, callbacks=[LRFinder(enable_progress_bar=True, **SWEEP)]).fit(tiny())
    assert "LR finder" in capsys.readouterr().out


def test_no_suggestion_keeps_the_lr_and_says_why(make_trainer: Any) -> None:
    model, seen = TinyRegression(lr=1e-3), FitLRs()
    finder = LRFinder(num_steps=12, min_lr=1e-12, max_lr=1e-11, plot=None)
    with pytest.warns(UserWarning, match=r"no `peak` suggestion, LR unchanged"):
        make_trainer(max_steps=3, callbacks=[finder, seen]).fit(model)
    assert finder.applied == {} and model.hparams.lr == 1e-3
    assert seen.lrs == [[1e-3, 1e-3]] * 3  # weights and biases (no decay) groups


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"epochs": []}, r"`epochs` must be a non-empty list"),
        ({"epochs": "0"}, r"`epochs` must be a non-empty list"),
        ({"epochs": [-1]}, r"`epochs` must be >= 0, got -1"),
        ({"apply": "yes"}, r"`apply` must be True or False"),
        ({"min_lr": 1.0, "max_lr": 0.5}, r"`max_lr` must be greater than `min_lr`"),
        ({"rule": "median"}, r"`rule` must be one of"),
        ({"num_steps": 3}, r"`num_steps` must be >= 10"),
    ],
)
def test_bad_arguments_fail_at_construction(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        LRFinder(**kwargs)


def test_the_callback_reads_the_schedules_kind_and_the_steps_left_from_the_fit(make_trainer: Any) -> None:
    finder = LRFinder(epochs=[0, 1], apply=False, **SWEEP)
    make_trainer(max_epochs=3, callbacks=[finder]).fit(tiny(lr=1e-3, schedule=OneCycle(1.0)))
    first, later = finder.results[0].settings, finder.results[1].settings
    assert first["schedule"] == later["schedule"] == "one-cycle"
    assert (first["total_steps"], later["total_steps"]) == (24, 16)  # 8 batches an epoch, 3 epochs
    plain = LRFinder(apply=False, **SWEEP)
    make_trainer(max_steps=10, callbacks=[plain]).fit(tiny(lr=1e-3))
    assert (
        plain.results[0].settings["schedule"] == "constant" and plain.results[0].settings["total_steps"] == 10
    )
    told = LRFinder(apply=False, schedule="decay", total_steps=1000, **SWEEP)
    make_trainer(max_steps=10, callbacks=[told]).fit(tiny(lr=1e-3))
    assert (told.results[0].settings["schedule"], told.results[0].settings["total_steps"]) == ("decay", 1000)


def test_every_finder_setting_is_a_named_argument_of_the_callback() -> None:
    """LightningCLI reads the callback's signature: a setting missing there could not be configured."""
    import dataclasses
    import inspect

    from lightning_lr.finder import FinderSettings

    parameters = inspect.signature(LRFinder).parameters
    for item in dataclasses.fields(FinderSettings):
        assert item.name in parameters and parameters[item.name].default is None, item.name
    assert LRFinder(repeats=2, rule="valley").settings == FinderSettings(repeats=2, rule="valley")
