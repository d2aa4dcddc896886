"""TrainingSnapshot: the weights, optimizer and scheduler state of one step, kept and put back in place.

A snapshot copies every parameter and buffer of the module and every tensor of the optimizers'
state into buffers allocated once and reused, and puts them back with in-place copies: no host
round trip of the model, no new tensors, nothing gathered across ranks (under sharded strategies
each rank keeps and restores its own shard, as the tensors it holds are its shard). Where the
buffers live:

- ``"device"``: next to the tensors they copy (the GPU for a GPU run): a copy costs a few
  milliseconds even for a billion parameters and no host memory;
- ``"host"``: pinned host memory, copied without blocking the host; for models whose snapshot
  does not fit beside them on the device;
- ``"auto"``: ``"device"`` while the snapshot takes at most half of the device's free memory,
  else ``"host"`` (with a warning).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Literal

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch.optim import Optimizer

from lightning_lr.callbacks._overlay import own_lrs

SnapshotMemory = Literal["auto", "device", "host"]


def _local(tensor: torch.Tensor) -> torch.Tensor:
    """The tensor this rank holds: a DTensor's local shard, else the tensor itself."""
    to_local = getattr(tensor, "to_local", None)
    local: torch.Tensor = to_local() if callable(to_local) else tensor
    return local.detach()


@dataclass
class _OptimizerLayout:
    """Where each optimizer state value went: per parameter (by position), key -> buffer index or value."""

    state: dict[int, dict[str, tuple[bool, Any]]] = field(default_factory=dict)
    groups: list[dict[str, Any]] = field(default_factory=list)


class TrainingSnapshot:
    """The module's, optimizers' and schedulers' state at one optimizer step."""

    def __init__(self, memory: SnapshotMemory = "auto") -> None:
        self.memory: SnapshotMemory = memory
        self.step: int | None = None
        self.totals: list[float] = []
        self._buffers: list[torch.Tensor] = []
        self._flats: list[tuple[torch.Tensor, list[int]]] = []  # device memory: per device and dtype
        self._devices: list[torch.device] = []
        self._module_count = 0
        self._optimizers: list[_OptimizerLayout] = []
        self._schedulers: list[Any] = []

    @property
    def taken(self) -> bool:
        return self.step is not None

    def take(self, trainer: pl.Trainer, module: pl.LightningModule, totals: list[float]) -> None:
        """Copy the current state (into the buffers of the last snapshot when the shapes still match)."""
        module_tensors = [_local(t) for t in (*module.parameters(), *module.buffers())]
        optimizer_tensors: list[torch.Tensor] = []
        layouts: list[_OptimizerLayout] = []
        for optimizer in trainer.optimizers:
            layout = _OptimizerLayout()
            for index, parameter in enumerate(_parameters(optimizer)):
                entries: dict[str, tuple[bool, Any]] = {}
                for key, value in optimizer.state.get(parameter, {}).items():
                    if isinstance(value, torch.Tensor):
                        entries[key] = (True, len(module_tensors) + len(optimizer_tensors))
                        optimizer_tensors.append(_local(value))
                    else:
                        entries[key] = (False, copy.deepcopy(value))
                if entries:
                    layout.state[index] = entries
            layout.groups = [
                {key: copy.deepcopy(value) for key, value in group.items() if key != "params"}
                for group in optimizer.param_groups
            ]
            for group, own in zip(layout.groups, own_lrs(optimizer)):  # not an overlay's passing scale
                group["lr"] = own
            layouts.append(layout)
        sources = [*module_tensors, *optimizer_tensors]
        self._allocate(sources)
        self._devices = [source.device for source in sources]
        with torch.no_grad():
            if self._flats:  # one kernel per device and dtype, not one per tensor: the host stays ahead
                for flat, indices in self._flats:
                    torch.cat([sources[index].reshape(-1) for index in indices], out=flat)
            else:
                for buffer, source in zip(self._buffers, sources):
                    buffer.copy_(source, non_blocking=True)
        self._module_count = len(module_tensors)
        self._optimizers = layouts
        self._schedulers = [copy.deepcopy(c.scheduler.state_dict()) for c in trainer.lr_scheduler_configs]
        self.totals = list(totals)
        self.step = trainer.global_step

    def restore(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        """Put the snapshot back, in place; optimizer state created since the snapshot is dropped."""
        with torch.no_grad():
            live = [_local(t) for t in (*module.parameters(), *module.buffers())]
            for target, buffer in zip(live, self._buffers[: self._module_count]):
                target.copy_(buffer, non_blocking=True)
            for optimizer, layout in zip(trainer.optimizers, self._optimizers):
                self._restore_optimizer(optimizer, layout)
        for config, state in zip(trainer.lr_scheduler_configs, self._schedulers):
            config.scheduler.load_state_dict(copy.deepcopy(state))

    def _restore_optimizer(self, optimizer: Optimizer, layout: _OptimizerLayout) -> None:
        for index, parameter in enumerate(_parameters(optimizer)):
            entries = layout.state.get(index)
            if entries is None:
                optimizer.state.pop(parameter, None)
                continue
            state = optimizer.state[parameter]
            for key in [key for key in state if key not in entries]:
                del state[key]
            for key, (is_tensor, value) in entries.items():
                if not is_tensor:
                    state[key] = copy.deepcopy(value)
                    continue
                buffer = self._buffers[value]
                current = state.get(key)
                if (
                    isinstance(current, torch.Tensor)
                    and _local(current).shape == buffer.shape
                    and current.dtype == buffer.dtype
                ):
                    _local(current).copy_(buffer, non_blocking=True)
                else:  # replaced since (a load_state_dict, say): a fresh tensor where the value lives
                    state[key] = buffer.to(self._devices[value], copy=True)
        for group, saved in zip(optimizer.param_groups, layout.groups):
            group.update(copy.deepcopy(saved))

    def _allocate(self, sources: list[torch.Tensor]) -> None:
        if len(self._buffers) == len(sources) and all(
            b.shape == s.shape and b.dtype == s.dtype and b.device in (s.device, torch.device("cpu"))
            for b, s in zip(self._buffers, sources)
        ):
            return
        self._buffers, self._flats = [], []  # free the old ones first
        if self.memory == "auto" and not _fits_on_device(sources):
            self.memory = "host"
            rank_zero_warn(
                "DivergenceGuard: the snapshot does not fit beside the model on the device; keeping it "
                "in pinned host memory instead (`snapshot_memory='host'`), copied without blocking."
            )
        if self.memory == "host":
            self._buffers = [self._buffer_for(source) for source in sources]
            return
        # beside the sources: a flat buffer per device and dtype, each source's buffer a view of it
        groups: dict[tuple[torch.device, torch.dtype], list[int]] = {}
        for index, source in enumerate(sources):
            groups.setdefault((source.device, source.dtype), []).append(index)
        views: dict[int, torch.Tensor] = {}
        for (device, dtype), indices in groups.items():
            flat = torch.empty(sum(sources[i].numel() for i in indices), dtype=dtype, device=device)
            offset = 0
            for index in indices:
                count = sources[index].numel()
                views[index] = flat[offset : offset + count].view(sources[index].shape)
                offset += count
            self._flats.append((flat, indices))
        self._buffers = [views[index] for index in range(len(sources))]

    def _buffer_for(self, source: torch.Tensor) -> torch.Tensor:
        if self.memory == "host" and source.device.type == "cuda":
            return torch.empty(source.shape, dtype=source.dtype, pin_memory=True)
        return torch.empty_like(source, memory_format=torch.contiguous_format)


def _parameters(optimizer: Optimizer) -> list[torch.Tensor]:
    return [parameter for group in optimizer.param_groups for parameter in group["params"]]


def _fits_on_device(sources: list[torch.Tensor]) -> bool:
    """Whether buffers for ``sources`` take at most half of the free memory of each CUDA device."""
    needed: dict[torch.device, int] = {}
    for source in sources:
        if source.device.type == "cuda":
            needed[source.device] = needed.get(source.device, 0) + source.numel() * source.element_size()
    for device, size in needed.items():
        free, _ = torch.cuda.mem_get_info(device)
        free += torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)  # cached
        if size > free // 2:
            return False
    return True
