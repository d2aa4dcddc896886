"""TrainLossReader: each optimizer step's training loss, as logged under a name, read cheaply."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch


class TrainLossReader:
    """The logged training loss ``metric`` of each step (its ``_step`` variant when there is one).

    Reading ``trainer.callback_metrics`` rebuilds Lightning's metric dict, a cost of its own every
    step. So the logged value is compared with the loss ``training_step`` returned on the first
    step and again on every ``check`` step (one collective decision under DDP); while they are the
    same value, as with the usual ``self.log("train_loss", loss)``, the steps between read the
    returned loss, which Lightning hands over anyway. Once they differ (a loss term that starts at
    zero, say), the logged value is read every step; the steps between the change and the next
    check keep the returned loss.
    """

    def __init__(self, metric: str) -> None:
        self.metric = metric
        self._returned_is_logged: bool | None = None
        self._checked = False

    def reset(self) -> None:
        """Forget what was learnt about the returned loss (a new fit may log differently)."""
        self._returned_is_logged = None
        self._checked = False

    def check_logged(self, trainer: pl.Trainer) -> None:
        """Raise the missing-metric error now, on the first call, rather than at the first read."""
        if not self._checked:
            self.logged(trainer)
            self._checked = True

    def logged(self, trainer: pl.Trainer) -> Any:
        """The value logged under the metric's name this step, as ``callback_metrics`` holds it."""
        metrics = trainer.callback_metrics
        key = f"{self.metric}_step" if f"{self.metric}_step" in metrics else self.metric
        if key not in metrics:
            available = ", ".join(sorted(metrics)) or "none"
            raise ValueError(
                f"LRDiagnostics: `train_metric`={self.metric!r} was not logged. Log it in training_step "
                f"with self.log({self.metric!r}, loss), or pass the name you log. Logged: {available}."
            )
        return metrics[key]

    def read(self, trainer: pl.Trainer, outputs: Any, check: bool) -> torch.Tensor:
        """This step's value, detached; ``outputs`` as ``on_train_batch_end`` receives them."""
        returned = outputs.get("loss") if isinstance(outputs, dict) else outputs
        returned = returned.detach() if isinstance(returned, torch.Tensor) and returned.numel() == 1 else None
        if self._returned_is_logged and returned is not None and not check:
            return returned.reshape(())
        logged = self.logged(trainer)
        value = logged.detach() if isinstance(logged, torch.Tensor) else torch.tensor(float(logged))
        if self._returned_is_logged is not False:
            same = (
                returned is not None
                and (value.dtype, value.device) == (returned.dtype, returned.device)
                and bool(torch.equal(value.reshape(()), returned.reshape(())))
            )
            self._returned_is_logged = trainer.strategy.reduce_boolean_decision(same, all=True)
        return value
