"""Two CPU processes under DDP (gloo): every rank takes the same LR and the same decision, logs once."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parent / "ddp_run.py"


@pytest.mark.slow
def test_full_stack_under_ddp_agrees_across_ranks(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path)], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    assert len(ranks[0]["lrs"]) == 24
    assert ranks[0]["lrs"] == ranks[1]["lrs"]
    # rank 1 alone saw a NaN at step 9: both ranks rolled back together
    assert ranks[0]["guard_events"] == ranks[1]["guard_events"] == [9]
    # the diagnostics decided something (their strict rules see this tiny run as noisy) at the same
    # steps on both ranks, and adjusted the LR identically
    assert ranks[0]["diagnoses"] and ranks[0]["diagnoses"] == ranks[1]["diagnoses"]
    assert ranks[0]["actions"] and ranks[0]["actions"] == ranks[1]["actions"]
    assert ranks[0]["lr_scale"] == ranks[1]["lr_scale"] == 0.5
    # update ratios and alignments are measured on every rank from the same weights and averaged
    # gradients, so they agree
    measured = ranks[0]["measured"]
    assert measured["ratios"] and measured["alignments"] and measured == ranks[1]["measured"]
    # the LR of the last step carries the guard's backoff and every diagnostics factor
    factor = 0.5
    for action in ranks[0]["actions"]:
        factor *= action["lr_factor"]
    assert ranks[0]["lrs"][-1][0] < ranks[0]["lrs"][8][0] * max(factor, 0.5)
    # only rank 0 wrote logs: one run directory, one row of LRs per optimizer step
    runs = sorted((tmp_path / "logs").iterdir())
    assert [run.name for run in runs] == ["version_0"]
    with open(runs[0] / "metrics.csv") as handle:
        rows = [row for row in csv.DictReader(handle) if row.get("lr-AdamW/default")]
    assert len(rows) == 24


@pytest.mark.slow
def test_lr_finder_under_ddp_gives_every_rank_the_same_answer(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path), "finder"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    # each rank swept its own shard, with the step losses averaged over both: one curve, one answer
    assert ranks[0]["sweep_steps"] == ranks[1]["sweep_steps"] == ranks[0]["swept"] > 10
    assert ranks[0]["losses"] == ranks[1]["losses"]
    assert ranks[0]["suggestion"] is not None and ranks[0]["suggestion"] == ranks[1]["suggestion"]
    assert ranks[0]["hparam_lr"] == ranks[1]["hparam_lr"] == ranks[0]["suggestion"]
    # the fit ran at the suggestion, identically on both ranks (cosine from its new base LR)
    assert len(ranks[0]["lrs"]) == 8 and ranks[0]["lrs"] == ranks[1]["lrs"]
    assert ranks[0]["lrs"][0][0] == ranks[0]["suggestion"]
    # only rank 0 drew the plot, into the one log directory
    assert len(ranks[0]["plots"]) == 1 and ranks[1]["plots"] == []
    assert (tmp_path / "logs" / "version_0" / "finder.png").stat().st_size > 10_000
