"""Several LR-search workers on one study storage, one of them killed mid-trial with SIGKILL.

Checked: every trial a worker ran is in the study once (numbers 0..n-1, one directory each),
none is lost or repeated; the killed worker's trial stays ``RUNNING`` (the search's storage keeps
no heartbeat, so nothing can tell a dead worker from a slow one; it is never counted as a result,
and ``SearchResult`` lists it as RUNNING); and the study still loads, and another worker continues
it with new trial numbers.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import optuna

from lightning_lr.search import SearchSpace, search_lr

from .models import ReliabilityModel

WORKER = Path(__file__).resolve().parent.parent / "search_worker.py"
STUDY = "shared"


@dataclass
class Check:
    name: str
    passed: bool
    detail: str = ""


@dataclass
class SearchOutcome:
    checks: list[Check] = field(default_factory=list)

    def check(self, name: str, passed: bool, detail: str = "") -> None:
        self.checks.append(Check(name, passed, detail))


def start_worker(url: str, run_dir: Path, trials: int, env: dict[str, str]) -> subprocess.Popen[str]:
    """``tests/search_worker.py`` running ``trials`` trials of the shared study, in a subprocess."""
    return subprocess.Popen(
        [sys.executable, str(WORKER), url, STUDY, str(run_dir), str(trials)],
        env={**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1", **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def concurrent_search(url: str, root: Path, *, workers: int = 2, trials_each: int = 2) -> SearchOutcome:
    """``workers`` healthy workers plus one killed mid-trial, then one more continuing in-process."""
    outcome = SearchOutcome()
    run_dir, hang = root / "runs", root / "hung"
    healthy = [start_worker(url, run_dir, trials_each, {}) for _ in range(workers)]
    victim = start_worker(url, run_dir, trials_each, {"SEARCH_WORKER_HANG_FILE": str(hang)})
    deadline = time.monotonic() + 240
    while not hang.exists() and victim.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    reached = hang.exists()
    victim.send_signal(signal.SIGKILL)
    victim.communicate(timeout=60)
    outcome.check("a worker is killed mid-trial", reached, "" if reached else "it never reached a trial")
    outputs = [process.communicate(timeout=300)[0] for process in healthy]
    codes = [process.returncode for process in healthy]
    outcome.check(
        "healthy workers finish", codes == [0] * workers, f"exit codes {codes}: {outputs[-1][-1500:]}"
    )

    trials = optuna.load_study(study_name=STUDY, storage=url).get_trials(deepcopy=False)
    numbers = sorted(trial.number for trial in trials)
    expected = workers * trials_each + 1
    outcome.check(
        "no trial lost or repeated",
        numbers == list(range(expected)),
        f"trial numbers {numbers}, expected 0..{expected - 1}",
    )
    states = sorted(trial.state.name for trial in trials)
    running = [trial.number for trial in trials if trial.state == optuna.trial.TrialState.RUNNING]
    finished = {"COMPLETE", "PRUNED"}
    outcome.check(
        "the killed trial stays RUNNING, the others finished",
        len(running) == 1 and all(state in finished for state in states if state != "RUNNING"),
        f"states {states}",
    )
    folders = sorted(path.name for path in (run_dir / STUDY).iterdir()) if (run_dir / STUDY).exists() else []
    outcome.check(
        "one trial directory per trial",
        folders == sorted(f"trial_{number}" for number in range(expected)),
        f"{folders}",
    )
    try:
        result = search_lr(
            ReliabilityModel,
            space=SearchSpace(lr=(1e-3, 1.0)),
            n_trials=1,
            sampler="random",
            storage=url,
            study_name=STUDY,
            run_dir=run_dir,
            progress_bar=False,
            trainer_kwargs={"accelerator": "cpu", "max_epochs": 2, "limit_train_batches": 2},
        )
        rows = {row.number: row.state for row in result.trials}
        ok = rows.get(expected) in finished and rows.get(running[0] if running else -1) == "RUNNING"
        outcome.check(
            "another worker continues the study",
            ok and result.best_lr is not None,
            f"states {rows}, best lr {result.best_lr}",
        )
    except Exception as error:
        outcome.check("another worker continues the study", False, f"{type(error).__name__}: {error}")
    return outcome
