"""Every benchmark section runs end to end at smoke size and writes its section of RESULTS.md.

The numbers of a smoke run mean nothing; what is checked is that each section still trains,
measures and formats what `make bench` reports, so the benchmarks cannot rot between runs.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from benchmarks import _common, diagnostics, finder, recipes, search


@pytest.fixture(autouse=True)
def _in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_common, "WORKERS", 1)  # no worker processes at smoke size


def _table_rows(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("| ") and not line.startswith("| ---")]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("run", "heading", "expected"),
    [
        (finder.run, "## LR finder", ["| find_lr |", "| peak (", "| lightning ("]),
        (recipes.run, "## Time to accuracy", ["| finder `peak` -> one-cycle", "| Adam(W) 1e-3, constant |"]),
        (search.run, "## Search efficiency", ["| from scratch | 0 |", "| from the finder's peak ("]),
        (
            diagnostics.run,
            "## Diagnostics accuracy",
            ["| 1x | 0.01 | none (no LR alarm) |", "| 100x | 1 | `too_high` or `diverging` |"],
        ),
    ],
)
def test_each_section_runs_at_smoke_size(
    run: Callable[..., list[str]], heading: str, expected: list[str]
) -> None:
    lines = run(quick=True)
    assert lines[0] == heading
    rows = _table_rows(lines)
    for start in expected:
        assert any(row.startswith(start) for row in rows), f"no row starting {start!r} in {heading}"
