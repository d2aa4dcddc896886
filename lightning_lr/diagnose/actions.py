"""Whether acting on a diagnosis agrees with the rest of the evidence about the LR.

Each rule reads one kind of evidence: the validation curve, or the training curve and the weights'
movement. Their advice can disagree: a validation metric that stopped improving says "decay the LR"
while the weights barely move, which says the LR is already too low. Acting on the one would push
the LR the wrong way by the other; :func:`check_action` says when, and the caller advises without
acting.
"""

from __future__ import annotations

from lightning_lr._validate import check_real
from lightning_lr.diagnose.diagnosis import Diagnosis
from lightning_lr.diagnose.rules import DiagnosisRules, _check_rules

REVISIT = 4.0
"""An action may not bring the LR within this factor of an LR found wrong the other way in the run.

Above the 3.3x of one action (a cut of x0.3, a raise of x3): the LR one action away from a finding
is not judged wrong the other way. After a cut from too high, a model the high LR damaged (dead
units, at chance) barely moves its weights, which reads as too low; a raise back would repeat the
finding.
"""


def check_action(
    diagnosis: Diagnosis,
    *,
    latest_training: Diagnosis | None,
    update_ratio: float | None,
    rules: DiagnosisRules,
    lr: float | None = None,
    found_high: float | None = None,
    found_low: float | None = None,
) -> str | None:
    """Why the LR change that ``diagnosis`` advises contradicts the evidence, or ``None`` when it does not.

    - Lowering the LR (``lr_factor < 1``) contradicts a latest training diagnosis of ``too_low``,
      and weights that barely move (``update_ratio`` below ``stall_update_ratio``), unless the
      diagnosis is ``diverging``: a loss that blows up is brought down whatever the weights do.
    - Raising it (``lr_factor > 1``) contradicts a latest training diagnosis of ``diverging`` or
      ``too_high``.
    - With ``lr``: raising it to within ``REVISIT`` (4x) of ``found_high``, the lowest LR the rules
      found too high (or diverging) in this run, contradicts that finding; so does lowering it to
      within 4x of ``found_low``, the highest LR found too low, unless the diagnosis is
      ``diverging``. A cut from a too-high finding is one step of 0.3; a raise that would undo it
      repeats a finding already made, so the evidence is split and the run is advised only.

    Args:
        diagnosis: the finding whose ``lr_factor`` would be applied.
        latest_training: what the training rules said at their latest check (``None``: healthy, or
            not judged yet); it may be ``diagnosis`` itself.
        update_ratio: the median ``||w_new - w_old|| / ||w_old||`` of the latest training window,
            when measured.
        rules: the thresholds.

    Returns:
        One clause naming the contradicting evidence, or ``None``.

    Example:
        >>> rules = DiagnosisRules()
        >>> plateau = Diagnosis("plateau", 300, 2, "Flat.", "Decay the LR.", 0.3, {})
        >>> check_action(plateau, latest_training=None, update_ratio=2e-7, rules=rules)
        'the weights barely move (each step changes them by 2.0e-07 of their norm, below 1e-03)'
        >>> check_action(plateau, latest_training=None, update_ratio=5e-3, rules=rules) is None
        True
    """
    _check_rules(rules)
    factor = diagnosis.lr_factor
    if factor is None or factor == 1.0:
        return None
    after = None if lr is None else lr * factor
    if factor > 1.0:
        if latest_training is not None and latest_training.kind in ("diverging", "too_high"):
            found = "the run diverging" if latest_training.kind == "diverging" else "the LR too high"
            return f"the training rules found {found} at step {latest_training.step}"
        if after is not None and found_high is not None and after * REVISIT > found_high:
            return (
                f"the LR was found too high at {found_high:.3g} in this run, and {after:.3g} is within "
                f"{REVISIT:g}x of it"
            )
        return None
    if (
        after is not None
        and found_low is not None
        and diagnosis.kind != "diverging"
        and after < found_low * REVISIT
    ):
        return (
            f"the LR was found too low at {found_low:.3g} in this run, and {after:.3g} is within "
            f"{REVISIT:g}x of it"
        )
    if latest_training is not None and latest_training.kind == "too_low":
        return f"the training rules found the LR too low at step {latest_training.step}"
    if update_ratio is None or diagnosis.kind == "diverging":
        return None
    if check_real("update_ratio", update_ratio) < rules.stall_update_ratio:
        return (
            f"the weights barely move (each step changes them by {update_ratio:.1e} of their norm, "
            f"below {rules.stall_update_ratio:.0e})"
        )
    return None
