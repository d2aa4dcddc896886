"""The one error format of lightning_lr.

Every check raises before training starts, with a message that names the argument in
backticks, echoes the value received and, where there is one, says the fix.
"""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Iterable
from typing import Any, cast


def fail(name: str, value: Any, requirement: str, fix: str | None = None) -> ValueError:
    """Build the standard error: what is wrong, the value received, and the fix."""
    message = f"`{name}` {requirement}, got {value!r}."
    if fix:
        message += f" {fix}"
    return ValueError(message)


def check_number(name: str, value: Any) -> float:
    """A real, finite number (bools are refused: they are almost always a typo)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"`{name}` must be a number, got {value!r} of type {type(value).__name__}.")
    if not math.isfinite(value):
        raise fail(name, value, "must be finite")
    return float(value)


def check_positive(name: str, value: Any, fix: str | None = None) -> float:
    if check_number(name, value) <= 0:
        raise fail(name, value, "must be > 0", fix)
    return float(value)


def check_non_negative(name: str, value: Any, fix: str | None = None) -> float:
    if check_number(name, value) < 0:
        raise fail(name, value, "must be >= 0", fix)
    return float(value)


def check_range(
    name: str,
    value: Any,
    low: float,
    high: float,
    *,
    low_open: bool = False,
    high_open: bool = False,
    fix: str | None = None,
) -> float:
    """`value` in the interval between `low` and `high`, each end open or closed."""
    number = check_number(name, value)
    below = number <= low if low_open else number < low
    above = number >= high if high_open else number > high
    if below or above:
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise fail(name, value, f"must lie in {interval}", fix)
    return number


def check_int(name: str, value: Any, minimum: int = 0, fix: str | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"`{name}` must be an integer, got {value!r} of type {type(value).__name__}.")
    if value < minimum:
        raise fail(name, value, f"must be >= {minimum}", fix)
    return value


def check_choice(name: str, value: Any, choices: Iterable[str]) -> str:
    options = tuple(choices)
    if value not in options:
        listed = ", ".join(repr(option) for option in options)
        close = difflib.get_close_matches(str(value), options, n=1) if isinstance(value, str) else []
        raise fail(name, value, f"must be one of {listed}", f"Did you mean {close[0]!r}?" if close else None)
    return str(value)


def check_real(name: str, value: Any) -> float:
    """A real number, non-finite allowed (bools refused): loss histories may hold NaN and inf."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a number, got {value!r} of type {type(value).__name__}.")
    return float(value)


def check_floats(name: str, values: Any) -> list[float]:
    """A sequence of real numbers as a list of floats (non-finite allowed)."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise TypeError(f"`{name}` must be a sequence of numbers, got {values!r}.")
    values = list(values)
    if all(type(value) is float for value in values):  # the common case, without a check per item
        return cast(list[float], values)
    return [check_real(f"{name}[{index}]", value) for index, value in enumerate(values)]
