"""`python -m benchmarks`: run every benchmark, print the tables and write benchmarks/RESULTS.md."""

from __future__ import annotations

import datetime
import time
from pathlib import Path

import torch

from benchmarks import diagnostics, finder, gpu, guard, overhead, recipes, search
from benchmarks._common import WORKERS, machine


def main() -> None:
    start = time.perf_counter()
    torch.manual_seed(0)
    sections: list[str] = []
    minutes: list[str] = []
    for name, module in (
        ("overhead", overhead),
        ("finder", finder),
        ("time to accuracy", recipes),
        ("search", search),
        ("diagnostics", diagnostics),
        ("guard", guard),
        ("gpu", gpu),
    ):
        began = time.perf_counter()
        sections += module.run()
        minutes.append(f"{name} {(time.perf_counter() - began) / 60:.1f}")
        print(f"== {name} done after {(time.perf_counter() - start) / 60:.1f} min", flush=True)
    total = (time.perf_counter() - start) / 60
    lines = [
        "# Benchmark results",
        "",
        f"Machine: {machine()}. Written by `make bench` (`python -m benchmarks`) on "
        f"{datetime.date.today().isoformat()}, in {total:.1f} min ({', '.join(minutes)}). Timed "
        f"comparisons run alone, in the main process, with interleaved repetitions; independent "
        f"training runs go {WORKERS} at a time to worker processes of one torch thread each.",
        "",
        *sections,
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    (Path(__file__).parent / "RESULTS.md").write_text(text)


if __name__ == "__main__":
    main()
