"""The behaviour each private API behind ``lightning_lr._internals`` is relied on for, pinned.

A Lightning, torch, argparse or jsonargparse release that changes one of them fails here first.
"""

from __future__ import annotations

import argparse
import textwrap
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonargparse
import lightning.pytorch as pl
import pytest
import torch
from conftest import StopAt, TinyRegression
from lightning.pytorch.utilities import rank_zero_only
from torch.optim.lr_scheduler import LRScheduler, SequentialLR
from tqdm import tqdm

from lightning_lr import _internals
from lightning_lr.schedule_lr import ScheduleLR
from lightning_lr.schedules import CosineDecay


def test_process_rank_is_lightnings_rank_zero_rank(monkeypatch: pytest.MonkeyPatch) -> None:
    assert hasattr(rank_zero_only, "rank")  # Lightning sets it when it is imported
    assert _internals.process_rank() == 0
    monkeypatch.setattr(rank_zero_only, "rank", 3)
    assert _internals.process_rank() == 3


class _TwoForms(LRScheduler):
    def get_lr(self) -> list[float]:  # type: ignore[override]
        return [-1.0 for _ in self.base_lrs]  # the chainable form: never what a closed form gives


def test_step_with_an_epoch_calls_the_closed_form() -> None:
    @_internals.with_closed_form
    class ClosedForm(_TwoForms):
        def get_lr(self) -> list[float]:  # type: ignore[override]
            return [base * (self.last_epoch + 1) for base in self.base_lrs]

    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.5)
    scheduler = ClosedForm(optimizer)
    with pytest.warns(UserWarning):  # torch deprecates the epoch argument, and keeps the hook
        scheduler.step(4)
    assert scheduler.last_epoch == 4 and optimizer.param_groups[0]["lr"] == pytest.approx(2.5)
    assert hasattr(ScheduleLR, "_get_closed_form_lr")


def test_sequential_lr_restarts_a_closed_form_scheduler_at_its_milestone() -> None:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    first = ScheduleLR(optimizer, CosineDecay(10))
    second = ScheduleLR(optimizer, CosineDecay(4))
    sequential = SequentialLR(optimizer, [first, second], milestones=[3])
    lrs = []
    for _ in range(6):
        optimizer.step()
        sequential.step()
        lrs.append(optimizer.param_groups[0]["lr"])
    assert lrs[2:6] == pytest.approx([CosineDecay(4)(k) for k in range(4)])


def test_foreach_norm_is_each_tensors_two_norm() -> None:
    assert _internals.foreach_norm is not None
    tensors = [torch.tensor([3.0, 4.0]), torch.tensor([[1.0, 2.0], [2.0, 4.0]])]
    norms = _internals.foreach_norm(tensors)
    assert [float(norm) for norm in norms] == pytest.approx([5.0, 5.0])


def test_the_checkpoint_path_type_takes_strings_and_paths() -> None:
    allowed = typing.get_args(_internals.CheckpointPath)
    assert str in allowed and any(issubclass(Path, kind) for kind in allowed)


def test_lightnings_progress_bar_is_a_tqdm_with_its_number_format() -> None:
    assert issubclass(_internals.ProgressBar, tqdm)
    assert _internals.ProgressBar.format_num(1.23456789) == "1.230"


class _Probe(pl.Callback):
    """Records what the door functions say at the hooks the package asks them in."""

    def __init__(self, on_start: Callable[[pl.Trainer], None] | None = None) -> None:
        self.on_start = on_start
        self.restarting: dict[str, list[bool]] = {"start": [], "epoch_end": []}
        self.last_batch: list[bool] = []
        self.validation_batches = 0
        self.training_after_start: bool | None = None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.restarting["start"].append(_internals.fit_is_restarting(trainer))
        if self.on_start is not None:
            self.on_start(trainer)
        self.training_after_start = trainer.training

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        self.last_batch.append(_internals.at_last_batch_of_epoch(trainer))

    def on_validation_batch_end(self, *args: Any) -> None:
        self.validation_batches += 1

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.restarting["epoch_end"].append(_internals.fit_is_restarting(trainer))


def test_restarting_lasts_from_the_restore_to_the_end_of_the_resumed_epoch(
    make_trainer: Callable[..., pl.Trainer], tmp_path: Path
) -> None:
    checkpoint = tmp_path / "mid_epoch.ckpt"
    make_trainer(max_epochs=3, callbacks=[StopAt(3, checkpoint)]).fit(TinyRegression())  # 8 batches an epoch
    fresh, resumed = _Probe(), _Probe()
    make_trainer(max_epochs=2, callbacks=[fresh]).fit(TinyRegression())
    make_trainer(max_epochs=2, callbacks=[resumed]).fit(TinyRegression(), ckpt_path=str(checkpoint))
    assert fresh.restarting == {"start": [False], "epoch_end": [False, False]}
    assert resumed.restarting == {"start": [True], "epoch_end": [True, False]}


def test_the_last_batch_of_an_epoch_is_known_at_its_end_hook(make_trainer: Callable[..., pl.Trainer]) -> None:
    probe = _Probe()
    make_trainer(max_epochs=2, limit_val_batches=0, callbacks=[probe]).fit(TinyRegression(n_samples=24))
    assert probe.last_batch == [False, False, True, False, False, True]


def test_the_fits_validation_runs_from_train_start_and_fitting_resumes(
    make_trainer: Callable[..., pl.Trainer],
) -> None:
    probe = _Probe(on_start=_internals.run_fit_validation)
    trainer = make_trainer(max_steps=1, limit_val_batches=2, callbacks=[probe])
    trainer.fit(TinyRegression())
    assert probe.validation_batches >= 2 and probe.training_after_start is True
    assert trainer.global_step == 1


class _CountsLoads(TinyRegression):
    loads = 0

    def train_dataloader(self) -> Any:
        type(self).loads += 1
        return super().train_dataloader()


def test_train_data_loaded_early_and_released_is_loaded_again_by_the_fit(
    make_trainer: Callable[..., pl.Trainer],
) -> None:
    seen: dict[str, Any] = {}

    class Early(pl.Callback):
        def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
            seen["before"] = trainer.train_dataloader
            _internals.load_fit_train_data(trainer)
            seen["batches"] = trainer.num_training_batches
            _internals.load_fit_train_data(trainer)  # loaded already: not again
            seen["loads"] = _CountsLoads.loads
            _internals.release_fit_train_data(trainer)

    _CountsLoads.loads = 0
    trainer = make_trainer(max_epochs=1, limit_val_batches=0, callbacks=[Early()])
    trainer.fit(_CountsLoads(n_samples=24))
    assert seen == {"before": None, "batches": 3, "loads": 1}
    assert _CountsLoads.loads == 2 and trainer.global_step == 3


def test_option_names_reach_into_the_chosen_subcommand() -> None:
    parser = jsonargparse.ArgumentParser(exit_on_error=False)
    parser.add_argument("--top", type=int)
    fit = jsonargparse.ArgumentParser(exit_on_error=False)
    fit.add_argument("--inner", type=int)
    parser.add_subcommands().add_subcommand("fit", fit)
    assert "inner" in _internals.option_names(parser, ["fit", "--inner=1"])
    assert "top" in _internals.option_names(parser, ["--top=1"])


def _help(formatter: type[argparse.HelpFormatter]) -> str:
    parser = argparse.ArgumentParser(prog="probe", formatter_class=formatter)
    parser.add_argument("--rule", default="peak", help="the rule")
    parser.add_argument("--output", help="writes the figure of the lr-finder-figure.png")
    return parser.format_help()


def test_the_argparse_formatter_shapes_and_wraps_each_options_help(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "60")  # 39 columns of help: argparse's own wrap splits the name at a hyphen
    formatter = _internals.argparse_help_formatter(
        lambda action: f"{action.help} (default: {action.default})",
        lambda text, width: textwrap.wrap(text, width, break_on_hyphens=False),
    )
    ours, argparses = _help(formatter), _help(argparse.HelpFormatter)
    assert "the rule (default: peak)" in ours and "default" not in argparses
    assert "lr-finder-figure.png" in ours and "lr-finder-figure.png" not in argparses


def test_the_jsonargparse_formatter_transforms_each_help_and_the_description() -> None:
    def build(formatter: type[argparse.HelpFormatter]) -> str:
        parser = jsonargparse.ArgumentParser(
            prog="probe", description="Reads ``x``.", formatter_class=formatter
        )
        parser.add_argument("--rule", type=str, default="peak", help="the ``peak`` rule")
        return parser.format_help()

    ours = build(_internals.jsonargparse_help_formatter(lambda text: text.replace("``", "")))
    theirs = build(jsonargparse.DefaultHelpFormatter)
    assert "``peak``" in theirs and "Reads ``x``." in theirs
    assert "``" not in ours and "Reads x." in ours
    assert "the peak rule (type: str, default: peak)" in ours  # jsonargparse's type and default are kept
