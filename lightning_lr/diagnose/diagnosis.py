"""The :class:`Diagnosis` record: what a rule found, and the kinds of diagnosis.

The thresholds of the rules are :class:`~lightning_lr.diagnose.rules.DiagnosisRules`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal, cast

from lightning_lr._validate import (
    check_choice,
    check_int,
    check_positive,
    check_real,
    fail,
)

Kind = Literal["diverging", "too_high", "too_low", "plateau", "overfitting"]
Mode = Literal["min", "max"]
KINDS: tuple[Kind, ...] = ("diverging", "too_high", "too_low", "plateau", "overfitting")


@dataclass(frozen=True)
class Diagnosis:
    """What a rule found, when, the numbers behind it, and what to do about it.

    Attributes:
        kind: which rule fired.
        step: optimizer step at which the diagnosis was made.
        epoch: epoch at which the diagnosis was made.
        message: one sentence: what is wrong, with the key numbers.
        advice: what to do.
        lr_factor: what ``action="adjust"`` multiplies the LR by; ``None`` for no LR change.
        evidence: the numbers the rule read, by name (floats; each rule documents its keys).

    Example:
        >>> found = Diagnosis("plateau", 120, 3, "Flat.", "Decay the LR.", 0.3, {"best_value": 0.5})
        >>> Diagnosis.from_dict(found.to_dict()) == found
        True
    """

    kind: Kind
    step: int
    epoch: int
    message: str
    advice: str
    lr_factor: float | None
    evidence: dict[str, float] = field(hash=False)

    def __post_init__(self) -> None:
        check_choice("kind", self.kind, KINDS)
        check_int("step", self.step)
        check_int("epoch", self.epoch)
        for name in ("message", "advice"):
            text = getattr(self, name)
            if not isinstance(text, str):
                raise TypeError(f"`{name}` must be a string, got {text!r} of type {type(text).__name__}.")
        if self.lr_factor is not None:
            object.__setattr__(self, "lr_factor", check_positive("lr_factor", self.lr_factor))
        if not isinstance(self.evidence, Mapping):
            raise TypeError(f"`evidence` must be a mapping of names to numbers, got {self.evidence!r}.")
        object.__setattr__(
            self,
            "evidence",
            {str(key): check_real(f"evidence[{key!r}]", value) for key, value in self.evidence.items()},
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain data (str, int, float, None and a dict of floats), for checkpoints and logs."""
        return {
            "kind": self.kind,
            "step": self.step,
            "epoch": self.epoch,
            "message": self.message,
            "advice": self.advice,
            "lr_factor": self.lr_factor,
            "evidence": dict(self.evidence),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Diagnosis:
        """The diagnosis that :meth:`to_dict` wrote; every field is validated again.

        Raises:
            ValueError: a key is missing or unknown, or a field is out of range.
            TypeError: ``data`` is not a mapping, or a field has the wrong type.
        """
        if not isinstance(data, Mapping):
            raise TypeError(f"`data` must be a mapping, got {data!r} of type {type(data).__name__}.")
        names = [item.name for item in fields(cls)]
        if set(data) != set(names):
            raise fail("data", list(data), f"must hold exactly the keys {', '.join(names)}")
        return cls(
            kind=cast(Kind, data["kind"]),
            step=data["step"],
            epoch=data["epoch"],
            message=data["message"],
            advice=data["advice"],
            lr_factor=data["lr_factor"],
            evidence=data["evidence"],
        )
