"""`python -m benchmarks`: run every benchmark, print the tables and write benchmarks/RESULTS.md."""

from __future__ import annotations

import datetime
from pathlib import Path

import torch

from benchmarks import diagnostics, finder, overhead, recipes, search
from benchmarks._common import machine


def main() -> None:
    torch.manual_seed(0)
    lines = [
        "# Benchmark results",
        "",
        f"Machine: {machine()}. Written by `make bench` on {datetime.date.today().isoformat()}.",
        "",
    ]
    lines += overhead.run()
    lines += finder.run()
    lines += recipes.run()
    lines += search.run()
    lines += diagnostics.run()
    text = "\n".join(lines) + "\n"
    print(text)
    (Path(__file__).parent / "RESULTS.md").write_text(text)


if __name__ == "__main__":
    main()
