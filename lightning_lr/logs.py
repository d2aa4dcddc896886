"""Reading a run's logs back, and muting Lightning's banners around runs that print their own lines."""

from __future__ import annotations

import contextlib
import csv
import logging
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

NOISY_WARNINGS: tuple[str, ...] = (".*does not have many workers.*", ".*LeafSpec.*is deprecated.*")
"""Lightning warnings that say nothing about a small in-memory data set or the LR: a loader with no
worker processes, and a deprecation inside Lightning itself."""


def read_metrics(path: str | Path) -> list[dict[str, float]]:
    """The rows of a CSVLogger's ``metrics.csv`` (``LRLogger``'s and ``self.log``'s), empty cells left out."""
    with Path(path).open() as file:
        return [{key: float(value) for key, value in row.items() if value} for row in csv.DictReader(file)]


def series(rows: Sequence[dict[str, float]], key: str, *, by: str = "step") -> tuple[list[int], list[float]]:
    """The values logged under ``key``, and the ``step`` (or ``epoch``) each was logged at."""
    logged = [(int(row[by]), row[key]) for row in rows if key in row]
    return [at for at, _ in logged], [value for _, value in logged]


@contextlib.contextmanager
def quiet_lightning(ignore: Sequence[str] = ()) -> Iterator[None]:
    """Lightning's info messages off (its warnings stay, but those matching ``ignore``); restored after."""
    loggers = [logging.getLogger(name) for name in ("lightning.pytorch", "lightning.fabric")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            for pattern in ignore:
                warnings.filterwarnings("ignore", pattern)
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
