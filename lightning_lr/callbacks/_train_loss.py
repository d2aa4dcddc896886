"""TrainLossReader: each optimizer step's training loss, as logged under a name, read cheaply."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
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
            guess = close_match(self.metric, metrics)
            raise ValueError(
                f"LRDiagnostics: `train_metric`={self.metric!r} was not logged.{guess} "
                f"Log it in training_step with self.log({self.metric!r}, loss), or pass the name you log. "
                f"Logged: {', '.join(sorted(metrics)) or 'none'}."
            )
        return metrics[key]

    def read(
        self, trainer: pl.Trainer, outputs: Any, check: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """This step's value, detached, and on ``check`` steps whether it equals the returned loss.

        ``outputs`` as ``on_train_batch_end`` receives them. The equality comes back as a 0-d tensor
        (nothing is read to the host here); pass what it says, once read and agreed over the
        ranks, to :meth:`settle`. Until then the logged value is read every step.
        """
        returned = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if not isinstance(returned, torch.Tensor) or returned.numel() != 1:
            returned = None
        elif returned.requires_grad or returned.dim():  # Lightning hands it over detached, 0-d
            returned = returned.detach().reshape(())
        if self._returned_is_logged and returned is not None and not check:
            return returned, None
        logged = self.logged(trainer)
        value = logged.detach() if isinstance(logged, torch.Tensor) else torch.tensor(float(logged))
        if not check or self._returned_is_logged is False:
            return value, None
        if returned is None or (value.dtype, value.device) != (returned.dtype, returned.device):
            return value, torch.zeros((), device=value.device)
        same = torch.all(value.reshape(()) == returned).to(torch.float32)  # NaN: not the same
        return value, same

    def settle(self, same: bool) -> None:
        """What a check found: the returned loss is (still) the logged one, or no longer."""
        if self._returned_is_logged is not False:
            self._returned_is_logged = same


def close_match(name: str, logged: Iterable[str]) -> str:
    """`` Did you mean 'x'?`` for the logged metric closest to ``name``, or nothing when none is close."""
    close = difflib.get_close_matches(name, sorted(logged), n=1)
    return f" Did you mean {close[0]!r}?" if close else ""
