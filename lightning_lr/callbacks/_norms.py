"""The global gradient norm, cheaply: one fused kernel, no host sync."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from lightning_lr._internals import foreach_norm


def total_norm(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """The 2-norm of all ``tensors`` (at least one) together, as a 0-d float tensor on the first one's device.

    The same value as ``torch.nn.utils.get_total_norm``, which first sorts the tensors by device and
    dtype in Python: for a small model that costs more than the norms, and this runs every step.
    """
    if foreach_norm is None:  # pragma: no cover - every supported torch has it
        return torch.nn.utils.get_total_norm(list(tensors)).float()
    norms: list[torch.Tensor] = foreach_norm(list(tensors))
    try:  # one kernel for the usual case of one device (stack promotes mixed dtypes)
        stacked = torch.stack(norms).float()
    except RuntimeError:  # tensors on several devices
        stacked = torch.stack([norm.to(norms[0].device, torch.float32) for norm in norms])
    total: torch.Tensor = torch.linalg.vector_norm(stacked)
    return total
