"""Shared helpers: interleaved timing, worker processes for independent runs, the RESULTS.md header."""

from __future__ import annotations

import atexit
import contextlib
import multiprocessing
import os
import platform
import statistics
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

import lightning
import torch

from lightning_lr.logs import quiet_lightning

T = TypeVar("T")

WORKERS = max(1, int(os.environ.get("BENCH_WORKERS", os.cpu_count() or 1)))
"""Processes that train independent runs side by side (one torch thread each); ``BENCH_WORKERS``
overrides the machine's core count. Timed comparisons never run in them."""

_pool: ProcessPoolExecutor | None = None
_worker_quiet = contextlib.ExitStack()  # held for a worker's whole life: closing it would unmute


def interleaved(candidates: dict[str, Callable[[], None]], repeats: int) -> dict[str, float]:
    """Median seconds of each candidate, run in turns so drift hits all of them alike."""
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, run in candidates.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence Lightning's info logs, its warnings about small data, and its finder's progress bar."""
    with quiet_lightning(), warnings.catch_warnings(), open(os.devnull, "w") as sink:
        warnings.simplefilter("ignore")
        with contextlib.redirect_stderr(sink):
            yield


def _start_worker() -> None:
    torch.set_num_threads(1)
    _worker_quiet.enter_context(quiet())


def _shutdown() -> None:
    if _pool is not None:
        _pool.shutdown(cancel_futures=True)


def run_all(function: Callable[..., T], jobs: Sequence[tuple[Any, ...]]) -> list[T]:
    """``[function(*job) for job in jobs]``, computed by :data:`WORKERS` worker processes.

    Each worker runs one torch thread: these small models gain little from a second thread, so
    two single-threaded runs side by side finish nearly twice as fast as two runs one after the
    other on two threads. Seeds fix every run's weights and batches, so where a run executes does
    not change what it computes beyond floating-point summation order. ``function`` and the jobs
    must pickle (module-level functions, dataclasses, partials).
    """
    global _pool
    if WORKERS == 1 or len(jobs) <= 1:
        with quiet():
            return [function(*job) for job in jobs]
    if _pool is None:
        context = multiprocessing.get_context("spawn")  # forking a process with torch threads can hang
        _pool = ProcessPoolExecutor(WORKERS, mp_context=context, initializer=_start_worker)
        atexit.register(_shutdown)
    futures = [_pool.submit(function, *job) for job in jobs]
    try:
        return [future.result() for future in futures]
    except BaseException:
        for future in futures:
            future.cancel()
        if isinstance(_pool, ProcessPoolExecutor):  # a broken pool is not kept for the next section
            _pool.shutdown(wait=False, cancel_futures=True)
            _pool = None
        raise


def machine() -> str:
    return (
        f"{platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}, "
        f"torch {torch.__version__}, lightning {lightning.__version__}"
    )
