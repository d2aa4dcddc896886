"""Kill ``lightning-lr fit`` with SIGKILL at a chosen step, resume it, and compare every step's LR.

A case runs the same command twice in the same directory: once killed (held at the start of step
``k`` by :class:`~stress.models.StepProbe`, or killed as soon as it passes ``k`` without holding),
once more with ``--ckpt_path <dir>/last.ckpt``. It passes when

* every ``.ckpt`` file left by the kill loads (a checkpoint is written whole or not at all);
* the LR each step used, as ``LRLogger`` wrote it to the CSV logs (the killed run's rows before
  the checkpoint, the resumed run's rows after it, and the killed run's rows between the two,
  which the resumed run repeats), equals the uninterrupted run's, exactly, step for step;
* the final weights equal the uninterrupted run's, bit for bit.

Runs are started by a launcher: the real console script in a subprocess (``make stress``), or a
fork of the current process (the fast tests, which skip the interpreter start).
"""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
import yaml

from .models import PAUSE_AT

TESTS = Path(__file__).resolve().parent.parent
LR_KEY = "lr-AdamW"
CHECKPOINT_EVERY = 3


@dataclass(frozen=True)
class Scenario:
    """A config to kill and resume: its callbacks and model, without the paths."""

    name: str
    max_steps: int
    callbacks: list[dict[str, Any]]
    model: dict[str, Any]
    ballast: int = 0

    def config(self, workdir: Path) -> dict[str, Any]:
        model = {**self.model, "ballast": self.ballast}
        probe = {
            "class_path": "stress.models.StepProbe",
            "init_args": {"step_file": str(workdir / "step"), "events_file": str(workdir / "events.json")},
        }
        checkpoint = {
            "class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
            "init_args": {
                "dirpath": str(workdir / "ckpt"),
                "every_n_train_steps": CHECKPOINT_EVERY,
                "save_last": True,
            },
        }
        logger = {
            "class_path": "lightning.pytorch.loggers.CSVLogger",
            "init_args": {"save_dir": str(workdir), "name": "logs", "flush_logs_every_n_steps": 1},
        }
        return {
            "seed_everything": 0,
            "trainer": {
                "accelerator": "cpu",
                "devices": 1,
                "max_steps": self.max_steps,
                "log_every_n_steps": 1,
                "num_sanity_val_steps": 0,
                "enable_progress_bar": False,
                "enable_model_summary": False,
                "default_root_dir": str(workdir),
                "logger": logger,
                "callbacks": [*self.callbacks, {"class_path": "lightning_lr.LRLogger"}, checkpoint, probe],
            },
            "model": {"class_path": "stress.models.ReliabilityModel", "init_args": model},
            "lr_plot": None,
        }


def _diagnostics(max_adjustments: int) -> dict[str, Any]:
    # rules strict enough that this tiny run gets diagnosed and adjusted a few times
    return {
        "class_path": "lightning_lr.LRDiagnostics",
        "init_args": {
            "action": "adjust",
            "check_every_n_steps": 1,
            "rules": {"window": 8, "smoothing_steps": 4},
            "max_adjustments": max_adjustments,
        },
    }


RESTARTS = Scenario(
    name="restarts",
    max_steps=48,
    callbacks=[
        {"class_path": "lightning_lr.LRWarmup", "init_args": {"warmup_steps": 6}},
        {"class_path": "lightning_lr.WarmRestarts", "init_args": {"cycle_steps": 10, "cycle_mult": 1.5}},
        _diagnostics(2),
        {"class_path": "lightning_lr.DivergenceGuard", "init_args": {"snapshot_every": 5, "warmup_steps": 2}},
    ],
    model={
        "lr": 0.05,
        "schedule": {"class_path": "lightning_lr.schedules.CosineDecay", "init_args": {"total_steps": 1.0}},
        "faults": {34: float("nan")},
    },
)
"""Warmup and SGDR restarts as overlays on a cosine from the mixin; a NaN one step after a checkpoint."""

PLATEAU = Scenario(
    name="plateau",
    max_steps=64,
    callbacks=[
        {"class_path": "lightning_lr.LRWarmup", "init_args": {"warmup_steps": 8}},
        _diagnostics(2),
        {"class_path": "lightning_lr.DivergenceGuard", "init_args": {"snapshot_every": 4, "warmup_steps": 2}},
    ],
    model={
        "lr": 0.05,
        "interval": "epoch",
        "schedule": {
            "class_path": "lightning_lr.ReduceOnPlateau",
            "init_args": {"factor": 0.5, "patience": 0, "cooldown": 2, "threshold": 0.3},
        },
        "faults": {21: 100.0},
    },
)
"""ReduceOnPlateau per epoch (patience 0, cooldown 2) under a Warmup; a 100x loss spike at step 21."""

SCENARIOS = {scenario.name: scenario for scenario in (RESTARTS, PLATEAU)}


# --- launching -----------------------------------------------------------------------------------------


class Running(Protocol):
    def kill(self) -> None: ...

    def wait(self, timeout: float) -> int: ...

    def alive(self) -> bool: ...


Launcher = Callable[[Sequence[str], dict[str, str], Path], Running]
"""Starts ``lightning-lr ARGS`` with extra environment variables, output to a log file."""


class _Process:
    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout)

    def alive(self) -> bool:
        return self.process.poll() is None


def console_script(args: Sequence[str], env: dict[str, str], log: Path) -> Running:
    """The real ``lightning-lr`` console script of this environment, in a subprocess."""
    script = Path(sys.executable).parent / "lightning-lr"
    full_env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")])),
        "PYTHONWARNINGS": "ignore",
        "OMP_NUM_THREADS": "1",
        "MPLBACKEND": "Agg",
        **env,
    }
    with open(log, "ab") as out:
        process = subprocess.Popen([str(script), *args], env=full_env, stdout=out, stderr=subprocess.STDOUT)
    return _Process(process)


class _Fork:
    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.code: int | None = None

    def kill(self) -> None:
        if self.code is None:
            os.kill(self.pid, signal.SIGKILL)

    def _reap(self, flags: int) -> None:
        if self.code is None:
            pid, status = os.waitpid(self.pid, flags)
            if pid:
                self.code = os.waitstatus_to_exitcode(status)

    def wait(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while self.code is None:
            self._reap(os.WNOHANG)
            if self.code is None:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"process {self.pid} still running after {timeout} s")
                time.sleep(0.02)
        return self.code

    def alive(self) -> bool:
        self._reap(os.WNOHANG)
        return self.code is None


def forked_cli(args: Sequence[str], env: dict[str, str], log: Path) -> Running:
    """``lightning_lr.cli.main(args)`` in a fork of this process: no interpreter start, a real SIGKILL."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        return _Fork(pid)
    code = 1
    try:  # the child: never returns into the parent's code
        os.environ.update(env)
        descriptor = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(descriptor, 1)
        os.dup2(descriptor, 2)
        from lightning_lr.cli import main

        sys.argv = ["lightning-lr", *args]  # read from the command line, as the console script does
        main()
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


# --- one run, one case -----------------------------------------------------------------------------------


def write_config(scenario: Scenario, workdir: Path) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(scenario.config(workdir), sort_keys=False))
    return path


def fit(launcher: Launcher, config: Path, *, ckpt_path: Path | None = None, timeout: float = 300) -> None:
    """A run to its end; raises with the log's tail when it fails."""
    args = ["fit", "--config", str(config)]
    if ckpt_path is not None:
        args.append(f"--ckpt_path={ckpt_path}")
    log = config.parent / "fit.log"
    code = launcher(args, {}, log).wait(timeout)
    if code != 0:
        raise RuntimeError(f"lightning-lr {' '.join(args)} exited {code}:\n{_tail(log)}")


def _tail(path: Path, chars: int = 3000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"


def read_step(path: Path, *, held: bool = False) -> int:
    """The steps a probed run has done (-1 before it says; with ``held``, until it is held)."""
    try:
        text = path.read_text()
        if held and not text.endswith(" held"):
            return -1
        return int(text.removesuffix(" held"))
    except (OSError, ValueError):  # not written yet, or caught mid-write
        return -1


def lr_log(log_dir: Path) -> dict[int, float]:
    """``step -> LR`` from a CSV log; a row torn by a kill is left out."""
    rows: dict[int, float] = {}
    path = log_dir / "metrics.csv"
    if not path.exists():
        return rows
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            try:
                rows[int(row["step"])] = float(row[LR_KEY])
            except (KeyError, TypeError, ValueError):
                continue
    return rows


def checkpoint_problems(folder: Path) -> list[str]:
    """Every ``.ckpt`` in ``folder`` that does not load, with why."""
    problems = []
    for path in sorted(folder.glob("*.ckpt")):
        try:
            state = torch.load(path, weights_only=True, map_location="cpu")
            if "state_dict" not in state or "global_step" not in state:
                problems.append(f"{path.name}: incomplete ({sorted(state)})")
        except Exception as error:
            problems.append(f"{path.name}: {type(error).__name__}: {error}")
    return problems


@dataclass
class Baseline:
    """The uninterrupted run: its LR at every step, its final weights and what happened when."""

    lrs: dict[int, float]
    weights: dict[str, torch.Tensor]
    events: dict[str, Any]


def baseline(scenario: Scenario, workdir: Path, launcher: Launcher) -> Baseline:
    config = write_config(scenario, workdir)
    fit(launcher, config)
    lrs = lr_log(workdir / "logs" / "version_0")
    if sorted(lrs) != list(range(scenario.max_steps)):
        raise RuntimeError(f"the uninterrupted run logged steps {sorted(lrs)}")
    weights = torch.load(workdir / "ckpt" / "last.ckpt", weights_only=True)["state_dict"]
    return Baseline(lrs, weights, json.loads((workdir / "events.json").read_text()))


@dataclass
class CaseResult:
    scenario: str
    kill_at: int
    why: str
    passed: bool = False
    detail: str = ""
    resumed_from: int | None = None
    killed_mid_write: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.scenario}@{self.kill_at} ({self.why})"


def kill_and_resume(
    scenario: Scenario,
    reference: Baseline,
    workdir: Path,
    kill_at: int,
    why: str,
    launcher: Launcher,
    *,
    hold: bool = True,
    timeout: float = 300,
) -> CaseResult:
    """One case; never raises for a failed check, it says what failed in the result."""
    result = CaseResult(scenario.name, kill_at, why)
    try:
        _kill_and_resume(scenario, reference, workdir, kill_at, launcher, hold, timeout, result)
    except Exception as error:
        result.passed, result.detail = False, f"{type(error).__name__}: {error}"
    return result


def _kill_and_resume(
    scenario: Scenario,
    reference: Baseline,
    workdir: Path,
    kill_at: int,
    launcher: Launcher,
    hold: bool,
    timeout: float,
    result: CaseResult,
) -> None:
    config = write_config(scenario, workdir)
    step_file, checkpoints = workdir / "step", workdir / "ckpt"
    env = {PAUSE_AT: str(kill_at)} if hold else {}
    running = launcher(["fit", "--config", str(config)], env, workdir / "fit.log")
    deadline = time.monotonic() + timeout
    while read_step(step_file, held=hold) < kill_at:
        if not running.alive():
            raise RuntimeError(f"the run ended before step {kill_at}:\n{_tail(workdir / 'fit.log')}")
        if time.monotonic() > deadline:
            running.kill()
            raise TimeoutError(f"step {kill_at} not reached in {timeout} s")
        time.sleep(0.002)
    if not hold:  # somewhere in the next few tens of milliseconds: mid-save, mid-write or after
        time.sleep(random.Random(kill_at).uniform(0.0, 0.08))
    running.kill()
    running.wait(60)

    leftovers = sorted(path.name for path in checkpoints.glob(".*.tmp")) if checkpoints.exists() else []
    result.killed_mid_write = bool(leftovers)
    problems = checkpoint_problems(checkpoints) if checkpoints.exists() else []
    if problems:
        result.detail = f"corrupt checkpoints after the kill: {problems}"
        return
    last = checkpoints / "last.ckpt"
    resume_from = int(torch.load(last, weights_only=True)["global_step"]) if last.exists() else 0
    result.resumed_from = resume_from
    fit(launcher, config, ckpt_path=last if last.exists() else None, timeout=timeout)

    # the killed run logged to version_0, the resumed one (from scratch when no checkpoint was
    # written yet) to version_1
    killed, resumed = lr_log(workdir / "logs" / "version_0"), lr_log(workdir / "logs" / "version_1")
    merged = {step: lr for step, lr in killed.items() if step < resume_from}
    merged.update(resumed)
    if sorted(resumed) != list(range(resume_from, scenario.max_steps)):
        result.detail = f"the resumed run logged steps {sorted(resumed)[:3]}...; expected {resume_from}.."
        return
    mismatch = [step for step in range(scenario.max_steps) if merged.get(step) != reference.lrs[step]]
    if mismatch:
        step = mismatch[0]
        result.detail = (
            f"LR differs at {len(mismatch)} steps, first {step}: {merged.get(step)!r} "
            f"!= {reference.lrs[step]!r} (resumed from {resume_from})"
        )
        return
    # the steps the killed run took after its checkpoint are taken again, identically (a row torn
    # by an unheld kill is skipped: only the last one can be)
    repeated = [step for step in killed if resume_from <= step < kill_at - (0 if hold else 1)]
    different = [step for step in repeated if killed[step] != reference.lrs[step]]
    if different:
        result.detail = f"the killed run's LR after its checkpoint differs at steps {different}"
        return
    weights = torch.load(last, weights_only=True)["state_dict"] if last.exists() else {}
    unequal = [
        name
        for name, value in reference.weights.items()
        if name != "ballast" and not torch.equal(value, weights.get(name))  # ballast: zeros, sized per run
    ]
    if unequal:
        result.detail = f"final weights differ from the uninterrupted run's: {unequal}"
        return
    result.passed = True
    result.detail = f"resumed from step {resume_from}" + (", killed mid-write" if leftovers else "")


# --- where to kill -----------------------------------------------------------------------------------


def kill_points(scenario: Scenario, events: dict[str, Any]) -> list[tuple[int, str]]:
    """Steps at which to kill, each with the reason it is interesting, from the uninterrupted run."""
    steps_per_epoch = 8
    points: list[tuple[int, str]] = [(2, "mid-warmup, before any checkpoint"), (4, "mid-warmup")]
    for step in events.get("restarts", []):
        points += [(step, "on a restart boundary"), (step + 1, "just after a restart")]
    for step in events.get("adjustments", []):
        points += [(step + 1, "right after a diagnostics adjustment"), (step + 2, "after an adjustment")]
    for step in events.get("rollbacks", []):
        points += [(step, "just before a rollback"), (step + 1, "right after a rollback")]
    cooling = [step for step, counter in events.get("cooldowns", []) if counter > 0]
    for step in cooling[:2]:
        points += [(step + 1, "plateau cooldown"), (step + 5, "plateau cooldown, mid-epoch")]
    points += [
        (steps_per_epoch * 2, "on an epoch boundary"),
        (steps_per_epoch * 2 + 3, "mid-epoch"),
        (scenario.max_steps - 2, "near the end"),
    ]
    chosen: dict[int, str] = {}
    for step, why in points:
        if 0 < step < scenario.max_steps and step not in chosen:
            chosen[step] = why
    return sorted(chosen.items())


def random_kill_points(scenario: Scenario, count: int, seed: int) -> list[tuple[int, str]]:
    rng = random.Random(seed)
    steps = rng.sample(range(3, scenario.max_steps - 1), count)
    return [(step, "unheld kill, ballast checkpoints") for step in sorted(steps)]
