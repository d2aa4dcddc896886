"""Every benchmark section runs end to end at smoke size and writes its section of RESULTS.md.

The numbers of a smoke run mean nothing; what is checked is that each section still trains,
measures and formats what `make bench` reports, so the benchmarks cannot rot between runs. Each
runs as its own process (`python -m benchmarks.<section> --quick`, in-process training), as
`make bench` runs it, so that nothing it starts stays behind in the test process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("section", "heading", "expected"),
    [
        ("finder", "## LR finder", ["| find_lr |", "| peak (", "| lightning ("]),
        (
            "finder_suite",
            "## LR finder on unseen seeds and tasks",
            ["| digits MLP, adamw", "| peak + race |"],
        ),
        ("recipes", "## Time to accuracy", ["| finder `peak` -> one-cycle", "| Adam(W) 1e-3, constant |"]),
        ("search", "## Search efficiency", ["| from scratch | 0 |", "| from the finder's peak ("]),
        (
            "diagnostics",
            "## Diagnostics accuracy",
            ["| 1x | none (no LR alarm) |", "| 100x | `too_high` or `diverging` |"],
        ),
        (
            "guard",
            "## Divergence guard",
            ["| guard (level floored at 0.1x start) | 0 of 4 |", "| finite check only |"],
        ),
        (
            "gpu",
            "## GPU cost of the callbacks",
            ["| MLP blocks, 0M params | bare |", "| MLP blocks, 0M params | full stack |"],
        ),
    ],
)
def test_each_section_runs_at_smoke_size(section: str, heading: str, expected: list[str]) -> None:
    environment = {**os.environ, "BENCH_WORKERS": "1", "MPLBACKEND": "Agg"}
    done = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{section}", "--quick"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert heading in lines
    rows = [line for line in lines[lines.index(heading) :] if line.startswith("| ")]
    for start in expected:
        assert any(row.startswith(start) for row in rows), f"no row starting {start!r} in {heading}"
