"""StepProbe: how far a checked optimizer step moved the weights, and where the next gradient points."""

from __future__ import annotations

from collections import deque

import torch


class StepProbe:
    """Measures chosen optimizer steps of ``parameters``: the update ratio and the next gradient's alignment.

    ``before_update`` copies the weights of a step to measure; ``after_update`` turns the copy
    into the step itself and records ``||w_new - w_old|| / ||w_old||`` in :attr:`ratios`; at the
    next ``before_update`` the fresh gradient ``g`` gives ``cos(-g, step)`` in :attr:`alignments`
    (positive: the step was too short to overshoot; negative: it overshot). Both keep
    ``(step, value)`` pairs, the last ``history`` of them, each value a 0-d tensor on the
    parameters' device (an alignment is NaN when it could not be measured): nothing here reads
    the device.
    """

    def __init__(self, history: int) -> None:
        self.ratios: deque[tuple[int, torch.Tensor]] = deque(maxlen=history)
        self.alignments: deque[tuple[int, torch.Tensor]] = deque(maxlen=history)
        self.parameters: list[torch.Tensor] = []
        self._before: list[torch.Tensor] | None = None
        self._taken: tuple[int, list[torch.Tensor]] | None = None

    def start(self, parameters: list[torch.Tensor]) -> None:
        self.parameters, self._before, self._taken = parameters, None, None

    def before_update(self, measure: bool) -> None:
        """Gradients are ready: align them with the last measured step; copy the weights if ``measure``."""
        if self._taken is not None:
            self._align(*self._taken)
            self._taken = None
        if measure:
            self._before = [p.detach().clone() for p in self.parameters]

    def after_update(self, step: int) -> None:
        """Optimizer step ``step`` was taken: record its ratio if it was measured."""
        if self._before is None:
            return
        size = torch.stack([b.norm(2) for b in self._before]).norm(2)
        # the step, in place of the copy: the next gradient is aligned with it
        deltas = [b.neg_().add_(a.detach()) for a, b in zip(self.parameters, self._before)]
        moved = torch.stack([d.norm(2) for d in deltas]).norm(2)
        self.ratios.append((step, (moved / size.clamp_min(1e-12)).float()))
        self._taken = (step, deltas)
        self._before = None

    def _align(self, step: int, deltas: list[torch.Tensor]) -> None:
        """Record ``cos(-g, step)``: how far the gradient after ``step`` still points along it."""
        pairs = [(p.grad, d) for p, d in zip(self.parameters, deltas) if p.grad is not None]
        if not pairs:
            return
        dot = torch.stack([(g * d).sum() for g, d in pairs]).sum()
        grad_norm = torch.stack([g.norm(2) for g, _ in pairs]).norm(2)
        step_norm = torch.stack([d.norm(2) for _, d in pairs]).norm(2)
        self.alignments.append((step, (-dot / (grad_norm * step_norm).clamp_min(1e-30)).float()))
