"""Muting Lightning's banners around runs that print their own lines."""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator, Sequence

DEPRECATION_NOISE: tuple[str, ...] = (".*LeafSpec.*is deprecated.*",)
"""Deprecation warnings that Lightning's own code raises in torch, which a user can do nothing about."""

NOISY_WARNINGS: tuple[str, ...] = (".*does not have many workers.*", *DEPRECATION_NOISE)
"""Lightning warnings that say nothing about a small in-memory data set or the LR: a loader with no
worker processes, and a deprecation inside Lightning itself."""

PROMOTION = "💡 Tip:"
"""How Lightning's advertisements for its cloud services start."""


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
