"""Argument checks shared by the diagnosis record and both rule sets: histories of plain floats."""

from __future__ import annotations

import numbers
from collections.abc import Iterable
from typing import Any


def _real(name: str, value: Any) -> float:
    """A real number, non-finite allowed (bools refused); histories may hold NaN and inf."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a number, got {value!r} of type {type(value).__name__}.")
    return float(value)


def _floats(name: str, values: Iterable[float]) -> list[float]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise TypeError(f"`{name}` must be a sequence of numbers, got {values!r}.")
    return [_real(f"{name}[{index}]", value) for index, value in enumerate(values)]
