"""A worker SIGKILLed mid-trial on a shared SQLite study: nothing lost, and the study goes on.

The killed worker's trial stays RUNNING: the search's storage keeps no heartbeat, so no one can
tell a dead worker from a slow one. It never counts as a result, every other trial is there once,
and other workers go on with new trial numbers, both while the hung worker holds its trial and
after it is killed. ``make stress`` runs the full check (three workers at once plus the killed one)
on SQLite and on a PostgreSQL server.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import optuna
from stress import search
from stress.models import ReliabilityModel

from lightning_lr.search import SearchResult, SearchSpace, search_lr


def _search(url: str, run_dir: Path, n_trials: int) -> SearchResult:
    return search_lr(
        ReliabilityModel,
        space=SearchSpace(lr=(1e-3, 1.0)),
        n_trials=n_trials,
        sampler="random",
        storage=url,
        study_name=search.STUDY,
        run_dir=run_dir,
        progress_bar=False,
        trainer_kwargs={"accelerator": "cpu", "max_epochs": 2, "limit_train_batches": 2},
    )


def test_a_worker_killed_mid_trial_loses_nothing_and_the_study_goes_on(tmp_path: Path) -> None:
    url, run_dir, hung = f"sqlite:///{tmp_path / 'study.db'}", tmp_path / "runs", tmp_path / "hung"
    victim = search.start_worker(url, run_dir, 2, {"SEARCH_WORKER_HANG_FILE": str(hung)})
    deadline = time.monotonic() + 120
    while not hung.exists() and victim.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert hung.exists(), victim.communicate(timeout=10)[0][-2000:]
    during = _search(url, run_dir, 2)  # alongside the hung worker and its open trial
    victim.send_signal(signal.SIGKILL)
    victim.communicate(timeout=60)
    after = _search(url, run_dir, 1)

    trials = optuna.load_study(study_name=search.STUDY, storage=url).get_trials(deepcopy=False)
    states: dict[int, Any] = {trial.number: trial.state.name for trial in trials}
    assert sorted(states) == [0, 1, 2, 3]  # the killed one, two while it hung, one after
    assert list(states.values()).count("RUNNING") == 1 and states[0] == "RUNNING"
    assert {states[number] for number in (1, 2, 3)} <= {"COMPLETE", "PRUNED"}
    assert sorted(path.name for path in (run_dir / search.STUDY).iterdir()) == [
        f"trial_{n}" for n in range(4)
    ]
    assert [row.number for row in during.trials] == [0, 1, 2] and during.best_lr is not None
    assert {row.number: row.state for row in after.trials} == states
