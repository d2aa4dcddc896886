"""Kill ``lightning-lr fit`` with SIGKILL and resume it: the same LR at every step, no corrupt checkpoint.

A few cases of the stress suite's kill-and-resume check (``make stress`` runs more than 30, a few of
them through the console script); here the runs are forks of the test process, which run
``lightning_lr.cli.main`` as the console script does without paying an interpreter start. Below
them, in process: the library fixes those checks needed, each on its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import yaml
from conftest import StopAt
from stress import kill_resume
from stress.models import ReliabilityModel
from torch.utils.data import DataLoader

from lightning_lr import DivergenceGuard, PlateauResume, ReduceOnPlateau
from lightning_lr.cli import main
from lightning_lr.schedules import CosineDecay

SCENARIO = kill_resume.RESTARTS


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> kill_resume.Baseline:
    folder = tmp_path_factory.mktemp("uninterrupted")
    baseline = kill_resume.baseline(SCENARIO, folder, kill_resume.forked_cli)
    # the moments the cases below aim at really happen in this run
    assert baseline.events["restarts"][:2] == [10, 25] and baseline.events["rollbacks"] == [34]
    assert baseline.events["adjustments"], "the diagnostics made no adjustment"
    return baseline


@pytest.mark.parametrize(
    ("kill_at", "why"),
    [(4, "mid-warmup"), (22, "right after a diagnostics adjustment"), (34, "just before a rollback")],
)
def test_a_killed_run_resumes_with_the_same_lr_at_every_step(
    reference: kill_resume.Baseline, tmp_path: Path, kill_at: int, why: str
) -> None:
    result = kill_resume.kill_and_resume(SCENARIO, reference, tmp_path, kill_at, why, kill_resume.forked_cli)
    assert result.passed, result.detail
    assert result.resumed_from == kill_at - kill_at % kill_resume.CHECKPOINT_EVERY


def test_resuming_into_the_same_log_directory_overwrites_the_saved_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    config = {
        "trainer": {
            "max_steps": 6,
            "logger": False,  # the config is saved in default_root_dir, the same folder both times
            "default_root_dir": str(tmp_path),
            "enable_progress_bar": False,
            "callbacks": [
                {
                    "class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
                    "init_args": {"dirpath": str(tmp_path / "ckpt"), "every_n_train_steps": 3},
                }
            ],
        },
        "model": {"class_path": "stress.models.ReliabilityModel"},
        "lr_plot": None,
    }
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    main(["fit", "--config", str(path), "--trainer.max_steps=3"])
    assert (tmp_path / "config.yaml").exists()
    (checkpoint,) = (tmp_path / "ckpt").glob("*.ckpt")
    main(["fit", "--config", str(path), f"--ckpt_path={checkpoint}"])
    assert yaml.safe_load((tmp_path / "config.yaml").read_text())["trainer"]["max_steps"] == 6


# --- the library fixes behind exact resume, in process ------------------------------------------------


def _trainer(tmp_path: Path, *callbacks: pl.Callback, max_steps: int = 40) -> pl.Trainer:
    return pl.Trainer(
        accelerator="cpu",
        max_steps=max_steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=str(tmp_path),
        callbacks=list(callbacks),
    )


class _PlainLoaderModel(ReliabilityModel):
    """Its training loader starts every epoch at the first batch, after a resume too."""

    def train_dataloader(self) -> DataLoader[Any]:
        return DataLoader(self.data, batch_size=self.hparams.batch_size)


def _plateau_model(plain_loader: bool = False) -> ReliabilityModel:
    plateau = ReduceOnPlateau(factor=0.5, patience=0, cooldown=2, threshold=0.3)
    kind = _PlainLoaderModel if plain_loader else ReliabilityModel
    return kind(schedule=plateau, interval="epoch", faults={21: 100.0})


# 8 batches per epoch: 13 and 19 mid-epoch, 16 after the last batch of epoch 1, before its validation
# (a loader that resumes mid-epoch makes Lightning close that epoch again; a plain one does not)
@pytest.mark.parametrize(("stop_at", "plain_loader"), [(13, False), (16, False), (19, False), (16, True)])
def test_a_plateau_resumed_mid_epoch_reduces_on_the_same_epochs(
    tmp_path: Path, stop_at: int, plain_loader: bool
) -> None:
    pl.seed_everything(0)
    full = _plateau_model(plain_loader)
    validations = _Validations()
    _trainer(tmp_path, DivergenceGuard(snapshot_every=4, warmup_steps=2), validations).fit(full)
    assert len({round(lrs[0], 12) for lrs in full.seen_lrs}) >= 3, "no plateau reduction to resume across"
    pl.seed_everything(0)
    first, path = _plateau_model(plain_loader), tmp_path / "stop.ckpt"
    _trainer(tmp_path, DivergenceGuard(snapshot_every=4, warmup_steps=2), StopAt(stop_at, path)).fit(first)
    pl.seed_everything(0)
    resumed, again = _plateau_model(plain_loader), _Validations()
    _trainer(tmp_path, DivergenceGuard(snapshot_every=4, warmup_steps=2), again).fit(resumed, ckpt_path=path)
    if stop_at == 16:  # the pending validation ran once, on the restored weights, before any step
        assert again.steps == [step for step in validations.steps if step >= 16]
    # the guard's rollback (at 21) and backoff now work with ReduceLROnPlateau, which has no base LRs
    assert first.seen_lrs + resumed.seen_lrs == full.seen_lrs


class _Validations(pl.Callback):
    """The global step of every validation."""

    def __init__(self) -> None:
        self.steps: list[int] = []

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self.steps.append(trainer.global_step)


def test_the_mixin_adds_plateau_resume_for_plateau_schedules_only() -> None:
    assert any(isinstance(c, PlateauResume) for c in _plateau_model().configure_callbacks())
    assert not ReliabilityModel(schedule=CosineDecay(10)).configure_callbacks()


def test_a_resumable_loader_resumes_mid_epoch_although_the_mixin_read_the_run_length(tmp_path: Path) -> None:
    class Batches(pl.Callback):
        def __init__(self) -> None:
            self.first_inputs: list[float] = []

        def on_train_batch_start(self, trainer: pl.Trainer, module: Any, batch: Any, *args: Any) -> None:
            self.first_inputs.append(float(batch[0][0, 0]))

    def model() -> ReliabilityModel:
        return ReliabilityModel(schedule=CosineDecay(1.0))  # a fraction: the mixin loads the data early

    full, first, resumed, path = Batches(), Batches(), Batches(), tmp_path / "stop.ckpt"
    _trainer(tmp_path, full, max_steps=12).fit(model())
    _trainer(tmp_path, first, StopAt(5, path), max_steps=12).fit(model())
    _trainer(tmp_path, resumed, max_steps=12).fit(model(), ckpt_path=path)
    assert first.first_inputs + resumed.first_inputs == full.first_inputs
