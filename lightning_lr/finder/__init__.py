"""LR range test (finder): sweep the LR, record the loss, suggest an LR by several rules."""

from lightning_lr.finder.curve import Suggestion, smooth, usable_range
from lightning_lr.finder.result import FinderSettings, LRFinderResult, sweep_lrs
from lightning_lr.finder.rules import RULES, Rule, suggest_all
from lightning_lr.finder.sweep import find_lr

__all__ = [
    "RULES",
    "FinderSettings",
    "LRFinderResult",
    "Rule",
    "Suggestion",
    "find_lr",
    "smooth",
    "suggest_all",
    "sweep_lrs",
    "usable_range",
]
