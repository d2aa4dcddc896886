"""Averages over the ranks that stay on the device: no barrier, no host wait."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
import torch.distributed as dist


def mean_over_ranks(trainer: pl.Trainer, tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` averaged over the ranks of the run (itself on one process), left on its device.

    One ``all_reduce`` queued on the device: unlike ``trainer.strategy.reduce``, which enters a
    barrier first (a host wait on every rank), nothing here blocks the host with NCCL. NaN and inf
    on any rank carry into the mean.
    """
    if trainer.world_size <= 1 or not (dist.is_available() and dist.is_initialized()):
        return tensor
    summed = tensor.to(trainer.strategy.root_device, copy=True)
    dist.all_reduce(summed, op=dist.ReduceOp.SUM)
    return summed / trainer.world_size
