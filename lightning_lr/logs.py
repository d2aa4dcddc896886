"""Reading a run's logs back, and muting Lightning's banners around runs that print their own lines."""

from __future__ import annotations

import contextlib
import csv
import logging
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

DEPRECATION_NOISE: tuple[str, ...] = (".*LeafSpec.*is deprecated.*",)
"""Deprecation warnings that Lightning's own code raises in torch, which a user can do nothing about."""

NOISY_WARNINGS: tuple[str, ...] = (".*does not have many workers.*", *DEPRECATION_NOISE)
"""Lightning warnings that say nothing about a small in-memory data set or the LR: a loader with no
worker processes, and a deprecation inside Lightning itself."""

PROMOTION = "💡 Tip:"
"""How Lightning's advertisements for its cloud services start."""


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


class _NoPromotion(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(PROMOTION)


@contextlib.contextmanager
def quiet_cli() -> Iterator[None]:
    """Lightning's promotional tips and third-party deprecation warnings off; the rest as it was."""
    rank_zero = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    promotion = _NoPromotion()
    rank_zero.addFilter(promotion)
    try:
        with warnings.catch_warnings():
            for pattern in DEPRECATION_NOISE:
                warnings.filterwarnings("ignore", pattern)
            yield
    finally:
        rank_zero.removeFilter(promotion)
