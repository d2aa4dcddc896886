"""The stress suite: every category, a summary table of cases tried and passed, exit 1 on a failure.

python -m tests.stress [--only kill,divergence,ddp,search] [--keep DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import tempfile
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from . import divergence, kill_resume, postgres, search

RANDOM_KILLS = 4
DIVERGENCE_RUNS = 24
BALLAST = 4_000_000
"""Floats of ballast in the checkpoints of the unheld kills (16 MB: slow enough to be caught writing)."""


@dataclass
class Row:
    category: str
    tried: int = 0
    passed: int = 0
    note: str = ""
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, name: str, passed: bool, detail: str) -> None:
        self.tried += 1
        self.passed += passed
        if not passed:
            self.failures.append(f"{name}: {detail}")
        print(f"  [{'ok' if passed else 'FAIL'}] {self.category}: {name}: {detail}", flush=True)


def kill_resume_rows(root: Path) -> list[Row]:
    """Every kill point through a fork of this process, a few through the console script itself.

    A fork runs ``lightning_lr.cli.main`` exactly as the console script does, less the interpreter
    start (seconds of imports per run, which would make the suite take half an hour on 2 cores).
    """
    forked = Row("kill and resume, forked CLI, held at a step")
    script_held = Row("kill and resume, console script, held at a step")
    script_unheld = Row("kill and resume, console script, unheld (16 MB checkpoints)")
    mid_write = 0
    script_cases: list[tuple[kill_resume.Scenario, kill_resume.Baseline, int, str, bool]] = []
    for scenario in kill_resume.SCENARIOS.values():
        folder = root / scenario.name
        reference = kill_resume.baseline(scenario, folder / "uninterrupted", kill_resume.forked_cli)
        points = kill_resume.kill_points(scenario, reference.events)
        for step, why in points:
            result = kill_resume.kill_and_resume(
                scenario, reference, folder / f"fork_{step}", step, why, kill_resume.forked_cli
            )
            forked.add(result.name, result.passed, result.detail)
            mid_write += result.killed_mid_write
        heavy = dataclasses.replace(scenario, ballast=BALLAST)
        script_cases += [(scenario, reference, step, why, True) for step, why in points[2::8]]
        randoms = kill_resume.random_kill_points(scenario, RANDOM_KILLS // 2, seed=len(scenario.name))
        script_cases += [(heavy, reference, step, why, False) for step, why in randoms]

    def one(
        case: tuple[kill_resume.Scenario, kill_resume.Baseline, int, str, bool],
    ) -> kill_resume.CaseResult:
        scenario, reference, step, why, hold = case
        workdir = root / scenario.name / f"{'held' if hold else 'unheld'}_{step}"
        return kill_resume.kill_and_resume(
            scenario, reference, workdir, step, why, kill_resume.console_script, hold=hold
        )

    with ThreadPoolExecutor(max_workers=2) as pool:  # two runs at a time: one per core
        for case, result in zip(script_cases, pool.map(one, script_cases)):
            (script_held if case[4] else script_unheld).add(result.name, result.passed, result.detail)
            mid_write += result.killed_mid_write
    forked.note = "mid-warmup, restarts, adjustments, rollbacks, plateau cooldown, epoch ends"
    script_held.note = "the real `lightning-lr` in a subprocess"
    script_unheld.note = f"kills that landed mid-write: {mid_write}; every checkpoint left loaded"
    return [forked, script_held, script_unheld]


def divergence_row(root: Path) -> list[Row]:
    row = Row("divergence injection (NaN, inf, 100x)")
    for seed in range(DIVERGENCE_RUNS):
        result = divergence.inject(seed)
        row.add(result.name, result.passed, result.detail)
    row.note = "bitwise rollback to the snapshot, finite weights, LR x0.5 per rollback"
    return [row]


def ddp_row(root: Path) -> list[Row]:
    import test_ddp  # tests/ is on sys.path: the same checks pytest runs, called directly

    row = Row("DDP, 2 processes (gloo)")
    for check in (
        test_ddp.test_full_stack_under_ddp_agrees_across_ranks,
        test_ddp.test_lr_finder_under_ddp_gives_every_rank_the_same_answer,
    ):
        folder = root / check.__name__
        folder.mkdir()
        try:
            check(folder)
            row.add(check.__name__, True, "ranks agree")
        except Exception as error:
            row.add(check.__name__, False, f"{type(error).__name__}: {str(error)[-500:]}")
    return [row]


def _search_row(category: str, url: str, root: Path) -> Row:
    row = Row(category)
    for check in search.concurrent_search(url, root, workers=3, trials_each=2).checks:
        row.add(check.name, check.passed, check.detail)
    row.note = "a SIGKILLed trial stays RUNNING; the study loads and goes on"
    return row


def search_rows(root: Path) -> list[Row]:
    sqlite_root = root / "sqlite"
    sqlite_root.mkdir()
    rows = [_search_row("concurrent search, SQLite", f"sqlite:///{sqlite_root / 'study.db'}", sqlite_root)]
    pg_root = Path(tempfile.mkdtemp(prefix="lightning-lr-pg-"))  # under /tmp: the postgres user can enter it
    try:
        with postgres.server(pg_root) as url:
            rows.append(_search_row("concurrent search, PostgreSQL", url, pg_root))
    except postgres.Unavailable as why:
        rows.append(Row("concurrent search, PostgreSQL", note=f"not run: {why}"))
    finally:
        shutil.rmtree(pg_root, ignore_errors=True)
    return rows


CATEGORIES: dict[str, Callable[[Path], list[Row]]] = {
    "kill": kill_resume_rows,
    "divergence": divergence_row,
    "ddp": ddp_row,
    "search": search_rows,
}


def table(rows: list[Row]) -> str:
    lines = ["| category | cases tried | cases passed | seconds | note |", "|---|---|---|---|---|"]
    for row in rows:
        seconds = f"{row.seconds:.0f}" if row.seconds else "(above)"  # a category's time, on its first row
        lines.append(f"| {row.category} | {row.tried} | {row.passed} | {seconds} | {row.note} |")
    total_tried, total_passed = sum(row.tried for row in rows), sum(row.passed for row in rows)
    lines.append(f"| **all** | {total_tried} | {total_passed} | {sum(row.seconds for row in rows):.0f} | |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.stress", description=__doc__)
    parser.add_argument(
        "--only", default=",".join(CATEGORIES), help="comma-separated: " + ", ".join(CATEGORIES)
    )
    parser.add_argument("--keep", default=None, help="keep the runs' files in this folder")
    options = parser.parse_args(argv)
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    root = Path(options.keep or tempfile.mkdtemp(prefix="lightning-lr-stress-"))
    root.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    start = time.monotonic()
    try:
        for name in options.only.split(","):
            print(f"== {name}", flush=True)
            began = time.monotonic()
            folder = root / name
            folder.mkdir()
            try:
                produced = CATEGORIES[name](folder)
            except Exception:
                produced = [Row(name, tried=1, note="crashed", failures=[traceback.format_exc()])]
                print(produced[0].failures[0], flush=True)
            produced[0].seconds = time.monotonic() - began
            rows += produced
    finally:
        if options.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    print()
    print(table(rows))
    failures = [failure for row in rows for failure in row.failures]
    for failure in failures:
        print(f"FAILED: {failure}")
    not_run = [row.category for row in rows if row.note.startswith("not run")]
    print(
        f"\nstress: {sum(r.passed for r in rows)} passed, {len(failures)} failed, "
        f"not run: {not_run or 'none'}; {time.monotonic() - start:.0f} s"
    )
    return 1 if failures or not_run else 0
