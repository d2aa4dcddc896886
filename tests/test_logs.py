"""Reading a run's CSV log back, and muting Lightning around runs."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from pathlib import Path

import lightning.pytorch as pl
import pytest
from conftest import TinyRegression
from lightning.pytorch.loggers import CSVLogger

from lightning_lr import LRLogger
from lightning_lr.demo.logs import read_metrics, series
from lightning_lr.logs import quiet_lightning
from lightning_lr.schedules import StepDecay


def test_the_lr_logged_each_step_reads_back_as_a_series(
    make_trainer: Callable[..., pl.Trainer], tmp_path: Path
) -> None:
    logger = CSVLogger(tmp_path, name="run")
    model = TinyRegression(lr=0.1, optimizer="sgd", schedule=StepDecay(3, 0.5))
    make_trainer(max_steps=7, logger=logger, callbacks=[LRLogger()], limit_val_batches=0).fit(model)
    rows = read_metrics(Path(logger.log_dir) / "metrics.csv")
    steps, lrs = series(rows, "lr-SGD", by="step")
    assert steps == list(range(7))
    assert lrs == pytest.approx([0.1 * 0.5 ** (step // 3) for step in steps])
    assert all(value == value for row in rows for value in row.values()), "an empty cell was read"


def test_quiet_lightning_mutes_info_keeps_other_warnings_and_restores() -> None:
    logger = logging.getLogger("lightning.pytorch")
    before = logger.level
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with quiet_lightning(ignore=[".*many workers.*"]):
            assert logger.getEffectiveLevel() == logging.WARNING
            warnings.warn("the loader does not have many workers", UserWarning, stacklevel=1)
            warnings.warn("something else", UserWarning, stacklevel=1)
    assert [str(warning.message) for warning in caught] == ["something else"]
    assert logger.level == before
