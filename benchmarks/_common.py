"""Timing helpers: interleaved repetitions and medians, and the RESULTS.md header."""

from __future__ import annotations

import platform
import statistics
import time
from collections.abc import Callable

import lightning
import torch


def interleaved(candidates: dict[str, Callable[[], None]], repeats: int) -> dict[str, float]:
    """Median seconds of each candidate, run in turns so drift hits all of them alike."""
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, run in candidates.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def machine() -> str:
    return (
        f"{platform.machine()}, {torch.get_num_threads()} torch threads, Python {platform.python_version()}, "
        f"torch {torch.__version__}, lightning {lightning.__version__}"
    )
