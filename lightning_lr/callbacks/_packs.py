"""Packs: named device values of one step, averaged over the ranks and read on the host in one copy.

:class:`PackChannel` is how ``LRDiagnostics`` reads its checks: each pack is one tensor on the
device, one all-reduce and one non-blocking copy; on a GPU it is read a check later (see
:func:`~lightning_lr.callbacks._host.defers`). :class:`LossSum` keeps the losses between two
validations without per-step device work. The rest turns tensors kept for a checkpoint into
plain data.
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import lightning.pytorch as pl
import torch

from lightning_lr.callbacks._host import HostCopy, defers, read_now
from lightning_lr.callbacks._ranks import mean_over_ranks


@dataclass(frozen=True)
class Pack:
    """Values of one step packed on the device, on their way to the host, with what they are about."""

    step: int
    epoch: int
    lr: float
    regime: int
    sizes: dict[str, int]
    copy: HostCopy

    def parts(self) -> dict[str, list[float]]:
        """The values by name (waits for this pack's own copy only)."""
        values = iter(self.copy.values())
        return {name: [next(values) for _ in range(size)] for name, size in self.sizes.items()}


class PackChannel:
    """Packs sent at check steps, read in order: at once on the CPU, a check later on a GPU."""

    def __init__(self, deferred: bool | None) -> None:
        self.deferred = deferred
        self._queue: deque[Pack] = deque()

    def clear(self) -> None:
        self._queue.clear()

    def send(
        self, trainer: pl.Trainer, step: int, segments: dict[str, torch.Tensor], lr: float, regime: int
    ) -> bool:
        """Pack ``segments`` (1-d or 0-d tensors), average over the ranks, start the copy.

        Returns whether to read it now rather than at the next check.
        """
        device = next(iter(segments.values())).device
        packed = torch.cat([value.reshape(-1).to(device, torch.float64) for value in segments.values()])
        packed = mean_over_ranks(trainer, packed)
        sizes = {name: value.numel() for name, value in segments.items()}
        self._queue.append(Pack(step, trainer.current_epoch, lr, regime, sizes, HostCopy(packed)))
        return not defers(self.deferred, packed.device)

    def due(self, before: int) -> Iterator[tuple[Pack, dict[str, list[float]]]]:
        """The packs sent before step ``before``, oldest first, with their values."""
        while self._queue and self._queue[0].step < before:
            pack = self._queue.popleft()
            yield pack, pack.parts()


class LossSum:
    """The training losses since the last validation: a float64 sum, added up every 256 steps.

    Each step only keeps its loss tensor (no device work); every 256 of them are summed in one
    kernel, so memory stays bounded however rare validation is.
    """

    FOLD = 256

    def __init__(self, total: torch.Tensor | None = None, count: int = 0) -> None:
        self._total = total
        self._parts: list[torch.Tensor] = []
        self.count = count

    def add(self, value: torch.Tensor) -> None:
        self._parts.append(value)
        self.count += 1
        if len(self._parts) >= self.FOLD:
            self._fold()

    def total(self) -> torch.Tensor:
        """The sum so far, as a 0-d float64 tensor on the losses' device."""
        self._fold()
        return self._total if self._total is not None else torch.zeros((), dtype=torch.float64)

    def mean(self) -> torch.Tensor:
        return (self.total() / max(self.count, 1)).float()

    def state_dict(self) -> dict[str, Any]:
        """The sum and count as plain data (one host read: a checkpoint waits anyway)."""
        return {
            "since_eval_sum": read_now(self.total())[0] if self.count else None,
            "since_eval_count": self.count,
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> LossSum:
        total = state.get("since_eval_sum")
        count = int(state.get("since_eval_count", 0))
        return cls(None if total is None else torch.tensor(total, dtype=torch.float64), count)

    def _fold(self) -> None:
        if self._parts:
            summed = torch.stack(self._parts).to(torch.float64).sum()
            total = self._total
            self._total = summed if total is None else total.to(summed.device) + summed
            self._parts = []


def as_float32(values: list[float]) -> list[float]:
    """Values as the float32 losses they were on the device (the mean over ranks is in float64)."""
    return [struct.unpack("f", struct.pack("f", value))[0] for value in values]


def read_all(tensors: Iterable[torch.Tensor]) -> list[float]:
    """0-d tensors as Python floats, in one read (for a checkpoint: it waits for the device anyway)."""
    items = list(tensors)
    return read_now(torch.stack([t.reshape(()).to(items[0].device) for t in items])) if items else []


def read_measured(measured: Iterable[tuple[int, torch.Tensor]]) -> list[list[Any]]:
    """``(step, 0-d tensor)`` pairs as ``[step, float]`` lists, in one read."""
    pairs = list(measured)
    return [[at, value] for (at, _), value in zip(pairs, read_all(value for _, value in pairs))]
