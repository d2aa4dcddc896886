"""The one door from device tensors to host values: copies that do not stall the device.

The callbacks keep their per-step numbers on the module's device and read them here, at check or
log steps only. :class:`HostCopy` starts a non-blocking copy into pinned host memory and records
an event; :meth:`HostCopy.values` waits for that event only, by which time (a check interval
later) the device has long finished it, so the stream stays full. On the CPU the values are
there at once, so callers read them in the same step (:func:`defers` says which).

:func:`read_now` is the blocking read, for places where a sync is expected anyway (saving a
checkpoint, a validation's end, a user asking for a value). Nothing else in the callbacks turns
a tensor into a Python number: ``tests/test_host_syncs.py`` counts such calls.
"""

from __future__ import annotations

from collections import deque
from typing import cast

import torch


def defers(setting: bool | None, device: torch.device) -> bool:
    """Whether values on ``device`` are read a step (or check) after they are made.

    ``setting`` decides when given; otherwise a CUDA device defers, as a same-step read would wait
    for the work still queued, and the CPU reads at once.
    """
    return device.type == "cuda" if setting is None else setting


class HostCopy:
    """The values of ``tensor`` on the host, copied without blocking the device's stream."""

    def __init__(self, tensor: torch.Tensor) -> None:
        tensor = tensor.detach()
        self.device = tensor.device
        self._event: torch.cuda.Event | None = None
        if tensor.device.type == "cuda":
            self._host = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True)
            self._host.copy_(tensor, non_blocking=True)
            self._event = torch.cuda.Event()  # type: ignore[no-untyped-call]
            self._event.record(torch.cuda.current_stream(tensor.device))
        elif tensor.device.type == "cpu":
            self._host = tensor.clone()
        else:  # other accelerators: a plain copy, which waits for the device
            self._host = tensor.to("cpu")

    def values(self) -> list[float]:
        """The values, flattened, as Python floats; waits for the copy's own event only."""
        if self._event is not None:
            self._event.synchronize()
        return [float(value) for value in self._host.reshape(-1).tolist()]


class LaggedScalars:
    """0-d device tensors, one per step, read on the host a step later without stalling the device.

    :meth:`push` starts the copy of a value into a slot of a small pinned buffer and records an
    event; :meth:`pop` returns the oldest value pushed, waiting only for its own copy. On the CPU
    the value is read at once.
    """

    _SLOTS = 4

    def __init__(self) -> None:
        self._queued: deque[int | float] = deque()
        self._buffer: torch.Tensor | None = None
        self._events: list[torch.cuda.Event] = []
        self._next = 0

    def push(self, value: torch.Tensor) -> None:
        if value.device.type != "cuda":  # on the host already (or a device without events: it waits)
            self._queued.append(_floats(value)[0])
            return
        if self._buffer is None:
            self._buffer = torch.empty(self._SLOTS, dtype=torch.float64, pin_memory=True)
            self._events = [torch.cuda.Event() for _ in range(self._SLOTS)]  # type: ignore[no-untyped-call]
        if len(self._queued) >= self._SLOTS:
            raise RuntimeError("LaggedScalars: pop a value before pushing more than 4")
        slot = self._next % self._SLOTS
        self._next += 1
        self._buffer[slot].copy_(value.detach(), non_blocking=True)
        self._events[slot].record()
        self._queued.append(slot)

    def pop(self) -> float:
        """The oldest value pushed (raises IndexError when none is queued)."""
        item = self._queued.popleft()
        if isinstance(item, float):
            return item
        self._events[item].synchronize()
        return float(cast(torch.Tensor, self._buffer)[item])

    def clear(self) -> None:
        self._queued.clear()


def read_now(tensor: torch.Tensor) -> list[float]:
    """The values of ``tensor`` as Python floats, now (a blocking read on an accelerator)."""
    return _floats(tensor)


def _floats(tensor: torch.Tensor) -> list[float]:
    if tensor.device.type == "cpu" and tensor.numel() == 1:
        return [tensor.item()]
    return [float(value) for value in tensor.detach().reshape(-1).to("cpu").tolist()]
