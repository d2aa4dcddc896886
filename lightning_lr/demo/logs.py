"""Reading a run's CSV log back, for the examples and the tests."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path


def read_metrics(path: str | Path) -> list[dict[str, float]]:
    """The rows of a CSVLogger's ``metrics.csv`` (``LRLogger``'s and ``self.log``'s), empty cells left out."""
    with Path(path).open() as file:
        return [{key: float(value) for key, value in row.items() if value} for row in csv.DictReader(file)]


def series(rows: Sequence[dict[str, float]], key: str, *, by: str = "step") -> tuple[list[int], list[float]]:
    """The values logged under ``key``, and the ``step`` (or ``epoch``) each was logged at."""
    logged = [(int(row[by]), row[key]) for row in rows if key in row]
    return [at for at, _ in logged], [value for _, value in logged]
