"""StepProbe: how far a checked optimizer step moved the weights, and where the next gradient points."""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import torch

from lightning_lr.callbacks._norms import total_norm
from lightning_lr.callbacks._packs import read_measured

MAX_PROBE_ELEMENTS = 1 << 24
"""Weights a probe measures at most (16.8M): all of them in a smaller model, a sample in a larger one."""


class StepProbe:
    """Measures chosen optimizer steps of ``parameters``: the update ratio and the next gradient's alignment.

    ``before_update`` copies the weights of a step to measure; ``after_update`` turns the copy
    into the step itself and records ``||w_new - w_old|| / ||w_old||`` in :attr:`ratios`; at the
    next ``before_update`` the fresh gradient ``g`` gives ``cos(-g, step)`` in :attr:`alignments`
    (positive: the step was too short to overshoot; negative: it overshot). Both keep
    ``(step, value)`` pairs, the last ``history`` of them, each value a 0-d tensor on the
    parameters' device (an alignment is NaN when it could not be measured): nothing here reads
    the device. :meth:`grad_norm` gives each step's gradient norm over the same weights.

    A model with more than ``max_elements`` weights is measured on a fixed sample of them, so the
    cost of a check does not grow with the model: every parameter tensor contributes its leading
    elements, the small ones whole and the large ones cut to equal shares of the budget.
    """

    def __init__(self, history: int, max_elements: int = MAX_PROBE_ELEMENTS) -> None:
        self.ratios: deque[tuple[int, torch.Tensor]] = deque(maxlen=history)
        self.alignments: deque[tuple[int, torch.Tensor]] = deque(maxlen=history)
        self.max_elements = max_elements
        self.parameters: list[torch.Tensor] = []
        self._counts: list[int] = []
        self._whole = True
        self._before: torch.Tensor | None = None
        self._taken: tuple[int, torch.Tensor, torch.Tensor] | None = None  # step, delta, its norm

    def start(self, parameters: list[torch.Tensor]) -> None:
        self.parameters, self._before, self._taken = parameters, None, None
        self._counts = _shares([p.numel() for p in parameters], self.max_elements)
        self._whole = all(n == p.numel() for p, n in zip(parameters, self._counts))

    def to(self, device: torch.device) -> None:
        """Move the kept measurements to ``device`` (a resumed run restores them on the CPU)."""
        for measured in (self.ratios, self.alignments):
            moved = [(at, value.to(device)) for at, value in measured]
            measured.clear()
            measured.extend(moved)

    def state_dict(self) -> dict[str, Any]:
        """The kept measurements as plain data (one host read: a checkpoint waits anyway)."""
        alignments = [pair for pair in read_measured(self.alignments) if math.isfinite(pair[1])]
        return {"ratios": read_measured(self.ratios), "alignments": alignments}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for measured, key in ((self.ratios, "ratios"), (self.alignments, "alignments")):
            measured.clear()
            measured.extend((int(at), torch.tensor(float(value))) for at, value in state.get(key, []))

    def grad_norm(self) -> torch.Tensor | None:
        """The 2-norm of the measured weights' gradients (None before any gradient)."""
        if self._whole:
            grads = [p.grad for p in self.parameters if p.grad is not None]
        else:
            grads = [_head(p.grad, n) for p, n in zip(self.parameters, self._counts) if p.grad is not None]
        return total_norm(grads) if grads else None

    def before_update(self, measure: bool) -> None:
        """Gradients are ready: align them with the last measured step; copy the weights if ``measure``."""
        if self._taken is not None:
            self._align(*self._taken)
            self._taken = None
        if measure:
            self._before = self._weights()

    def after_update(self, step: int) -> None:
        """Optimizer step ``step`` was taken: record its ratio if it was measured."""
        if self._before is None:
            return
        size = torch.linalg.vector_norm(self._before)
        delta = self._weights().sub_(self._before)  # the step itself, aligned with the next gradient
        moved = torch.linalg.vector_norm(delta)
        self.ratios.append((step, (moved / size.clamp_min(1e-12)).float()))
        self._taken = (step, delta, moved)
        self._before = None

    def _weights(self) -> torch.Tensor:
        return torch.cat([_head(p, n) for p, n in zip(self.parameters, self._counts)])

    def _align(self, step: int, delta: torch.Tensor, step_norm: torch.Tensor) -> None:
        """Record ``cos(-g, step)``: how far the gradient after ``step`` still points along it."""
        grads = [
            _head(p.grad, n) if p.grad is not None else torch.zeros_like(_head(p, n))
            for p, n in zip(self.parameters, self._counts)
        ]
        if all(p.grad is None for p in self.parameters):
            return
        grad = torch.cat(grads).to(delta.dtype)
        dot = torch.dot(grad, delta)
        norms = torch.linalg.vector_norm(grad) * step_norm
        self.alignments.append((step, (-dot / norms.clamp_min(1e-30)).float()))


def _head(tensor: torch.Tensor, count: int) -> torch.Tensor:
    """The first ``count`` elements of ``tensor``, flat (a view for a contiguous tensor)."""
    return tensor.detach().reshape(-1)[:count]


def _shares(sizes: list[int], budget: int) -> list[int]:
    """How many elements of each tensor to measure: all, while they fit; else equal shares of ``budget``.

    Example:
        >>> _shares([10, 1000, 20], 100), _shares([10, 20], 100)
        ([10, 70, 20], [10, 20])
    """
    counts = [0] * len(sizes)
    left, remaining = budget, len(sizes)
    for index in sorted(range(len(sizes)), key=sizes.__getitem__):
        counts[index] = min(sizes[index], left // remaining)
        left -= counts[index]
        remaining -= 1
    return counts
