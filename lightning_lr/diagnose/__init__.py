"""Pure rules that read learning curves and say what is wrong with the learning rate.

A diagnostics callback keeps the histories (bounded, oldest first) and hands them here; these
functions read plain floats and return a :class:`Diagnosis` or ``None``. Nothing here imports
torch or Lightning, so every rule is tested on synthetic curves without a Trainer.

Two entry points, one per cadence:

- :func:`diagnose_training` reads the loss of each optimizer step (and, optionally, the gradient
  norm) and returns ``diverging``, ``too_high`` or ``too_low``, in that priority.
- :func:`diagnose_evaluations` reads one value per validation run and returns ``overfitting`` or
  ``plateau`` (a stall after progress), in that priority; a metric that never improved while the
  weights stall is ``too_low``.
- :func:`check_action` says whether acting on a diagnosis (changing the LR by its ``lr_factor``)
  would contradict the latest training evidence, or an LR found wrong the other way, and why.
- :class:`DiagnosticsState` is what a diagnostics run remembers, as plain data.

The training rules read ratios, so they assume a positive loss (cross-entropy, MSE, ...): for a
loss whose level is 0 or below only the non-finite check runs. They are made for training after
any warmup (a warmup starts slow on purpose) and before the very end (where a nearly fitted model
has heavy-tailed batch losses); pass ``initial_loss`` so that they can tell how far the loss has
come, and ``loss_scale`` (the loss of the run's first steps, before any warmup) so that a jump is
measured against what training gained.

A diagnosis describes the histories it was given. A caller that acts on one (changes the LR)
should start its histories afresh, like the cooldown of ``ReduceLROnPlateau``, or the same
diagnosis comes back at the next check.
"""

from lightning_lr.diagnose.actions import check_action
from lightning_lr.diagnose.diagnosis import KINDS, Diagnosis, Kind, Mode
from lightning_lr.diagnose.divergence import (
    GuardState,
    LossLevel,
    is_divergent,
    spike_reference,
    update_level,
)
from lightning_lr.diagnose.evaluations import diagnose_evaluations
from lightning_lr.diagnose.rules import DiagnosisRules
from lightning_lr.diagnose.state import DiagnosticsState
from lightning_lr.diagnose.training import diagnose_training

__all__ = [
    "KINDS",
    "Diagnosis",
    "DiagnosisRules",
    "DiagnosticsState",
    "GuardState",
    "Kind",
    "LossLevel",
    "Mode",
    "check_action",
    "diagnose_evaluations",
    "diagnose_training",
    "is_divergent",
    "spike_reference",
    "update_level",
]
