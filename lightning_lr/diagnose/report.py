"""The end-of-fit summary of a run's diagnoses, actions and withheld actions, as text."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from lightning_lr.diagnose.diagnosis import Diagnosis


def summarise(
    diagnoses: Sequence[Diagnosis],
    actions: Sequence[dict[str, Any]],
    withheld: Sequence[dict[str, Any]],
    missing: str = "",
) -> str:
    """What was found, how often, the latest advice per kind, and what was (not) adjusted.

    ``missing`` says what the run never saw (an unlogged metric), empty when nothing.

    Example:
        >>> summarise([], [], [])
        'LRDiagnostics: the learning curves looked healthy; no diagnosis.'
    """
    if not diagnoses:
        if missing:
            return f"LRDiagnostics: no diagnosis from the training curve; {missing}"
        return "LRDiagnostics: the learning curves looked healthy; no diagnosis."
    counts = Counter(diagnosis.kind for diagnosis in diagnoses)
    latest = {diagnosis.kind: diagnosis for diagnosis in diagnoses}
    lines = ["LRDiagnostics summary:"]
    for kind, count in counts.most_common():
        last = latest[kind]
        lines.append(f"  {kind}: {count}x, last at step {last.step} (epoch {last.epoch}). {last.advice}")
    for action in actions:
        lines.append(f"  adjusted: LR x{action['lr_factor']:g} at step {action['step']} ({action['kind']})")
    for action in withheld:
        lines.append(
            f"  not adjusted: LR x{action['lr_factor']:g} at step {action['step']} ({action['kind']}), "
            f"as {action['reason']}"
        )
    if missing:
        lines.append(f"  {missing}")
    return "\n".join(lines)
