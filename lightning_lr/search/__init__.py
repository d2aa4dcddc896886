"""LR search on Optuna: sample the peak LR (and weight decay, warmup, schedule family), prune from
learning curves, and share one study between several workers through a database.

Needs the ``search`` extra: ``pip install lightning-lr[search]``.
"""

try:
    import optuna  # noqa: F401
except ImportError as error:
    raise ImportError("The LR search needs Optuna: `pip install lightning-lr[search]`.") from error

from lightning_lr.search.pruning import TrialPruning
from lightning_lr.search.result import SearchResult, TrialRow
from lightning_lr.search.settings import SearchSettings
from lightning_lr.search.space import SCHEDULE_FAMILIES, SearchSpace
from lightning_lr.search.study import run_study, search_lr

__all__ = [
    "SCHEDULE_FAMILIES",
    "SearchResult",
    "SearchSettings",
    "SearchSpace",
    "TrialPruning",
    "TrialRow",
    "run_study",
    "search_lr",
]
