"""Bad input, one table: every public entry point refuses it before any optimizer step, naming the argument.

Each row builds or runs something with one malformed input (wrong type, NaN/inf, negative, unknown
name, impossible length, missing metric, bad storage URL, bad YAML or CLI flag). It must raise our
error, whose message names the argument in backticks, raised from lightning_lr's own code (not a
traceback from deep inside torch or Lightning), and no optimizer may have stepped.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import yaml
from stress.models import ReliabilityModel
from torch.optim.optimizer import register_optimizer_step_post_hook

from lightning_lr import (
    DivergenceGuard,
    LRDiagnostics,
    LRFinder,
    LRLogger,
    LRWarmup,
    OptimizerSettings,
    ReduceOnPlateau,
    ScheduleOverlay,
    WarmRestarts,
    find_lr,
)
from lightning_lr.cli import main
from lightning_lr.schedules import Constant as ConstantSchedule
from lightning_lr.schedules import CosineDecay, Join, OneCycle
from lightning_lr.schedules import Warmup as WarmupSchedule
from lightning_lr.search import SearchSpace, search_lr
from lightning_lr.settings import schedule_from_config

NAN, INF = math.nan, math.inf
V, T = ValueError, TypeError
MODEL = "stress.models.ReliabilityModel"


def fit(
    tmp_path: Path, callbacks: list[pl.Callback] | None = None, max_epochs: int | None = None, **hparams: Any
) -> None:
    trainer = pl.Trainer(
        accelerator="cpu",
        max_steps=4 if max_epochs is None else -1,
        max_epochs=max_epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=str(tmp_path),
        callbacks=callbacks or [],
    )
    trainer.fit(ReliabilityModel(**hparams))


def cli(tmp_path: Path, *flags: str, config: dict[str, Any] | None = None) -> None:
    base: dict[str, Any] = {
        "trainer": {
            "max_steps": 4,
            "logger": False,
            "enable_checkpointing": False,
            "enable_progress_bar": False,
            "default_root_dir": str(tmp_path),
        },
        "model": {"class_path": MODEL},
        "lr_plot": None,
    }
    for section, values in (config or {}).items():
        base[section] = {**base.get(section, {}), **values} if isinstance(values, dict) else values
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(base))
    main(["fit", "--config", str(path), *flags])


def row(error: type[Exception], argument: str, match: str, call: Callable[[Path], Any], name: str) -> Any:
    return pytest.param(call, error, argument, match, id=name)


def sgd_warmup(tmp_path: Path) -> None:
    fit(tmp_path, [LRWarmup(shape="untuned")], optimizer="sgd")


CASES = [
    # schedules
    row(V, "total_steps", "fraction of the run", lambda p: CosineDecay(NAN), "cosine-nan-length"),
    row(V, "warmup_steps", ">= 0, got -5", lambda p: WarmupSchedule(CosineDecay(1.0), -5), "warmup-negative"),
    row(V, "pct_start", "finite", lambda p: OneCycle(100, pct_start=INF), "onecycle-inf-pct"),
    row(V, "boundaries", "one fewer", lambda p: Join([ConstantSchedule()], [5]), "join-impossible-length"),
    row(
        V,
        "schedule",
        "unknown class 'Cosine'",
        lambda p: schedule_from_config({"class_path": "Cosine"}),
        "schedule-unknown-name",
    ),
    # callbacks
    row(V, "warmup_steps", "is required", lambda p: LRWarmup(), "warmup-callback-missing-length"),
    row(
        V, "shape", "got 'sigmoid'", lambda p: LRWarmup(10, shape="sigmoid"), "warmup-callback-unknown-shape"
    ),
    row(
        V,
        "warmup_steps",
        "derived from beta2",
        lambda p: LRWarmup(5, shape="untuned"),
        "warmup-untuned-length",
    ),
    row(V, "cycle_steps", ">= 1, got 0", lambda p: WarmRestarts(0), "restarts-zero-cycle"),
    row(V, "cycle_mult", "got 0.5", lambda p: WarmRestarts(10, cycle_mult=0.5), "restarts-shrinking-cycles"),
    row(
        T,
        "schedule",
        "lightning_lr Schedule, got 'cosine'",
        lambda p: ScheduleOverlay("cosine"),
        "overlay-str",
    ),
    row(
        V, "logging_interval", "got 'batch'", lambda p: LRLogger(logging_interval="batch"), "logger-interval"
    ),
    row(V, "every_n_steps", ">= 1, got 0", lambda p: LRLogger(every_n_steps=0), "logger-every-zero"),
    row(V, "action", "got 'fix'", lambda p: LRDiagnostics(action="fix"), "diagnostics-action"),
    row(
        V, "check_every_n_steps", ">= 1", lambda p: LRDiagnostics(check_every_n_steps=0), "diagnostics-every"
    ),
    row(V, "mode", "got 'up'", lambda p: LRDiagnostics(mode="up"), "diagnostics-mode"),
    row(
        T,
        "max_adjustments",
        "integer, got 1.5",
        lambda p: LRDiagnostics(max_adjustments=1.5),
        "diagnostics-type",
    ),
    row(V, "spike_factor", "finite, got nan", lambda p: DivergenceGuard(spike_factor=NAN), "guard-nan"),
    row(V, "backoff", r"\(0, 1\), got 2", lambda p: DivergenceGuard(backoff=2), "guard-backoff-above-one"),
    row(T, "snapshot_every", "integer, got '5'", lambda p: DivergenceGuard(snapshot_every="5"), "guard-str"),
    row(V, "min_lr", "> 0, got -1", lambda p: LRFinder(min_lr=-1), "finder-negative-min"),
    row(
        V,
        "max_lr",
        "greater than `min_lr`",
        lambda p: LRFinder(min_lr=1.0, max_lr=0.1),
        "finder-inverted-range",
    ),
    row(V, "epochs", "non-empty list", lambda p: LRFinder(epochs=[]), "finder-no-epochs"),
    row(V, "rule", "got 'best'", lambda p: LRFinder(rule="best"), "finder-unknown-rule"),
    row(V, "num_steps", ">= 10, got 5", lambda p: LRFinder(num_steps=5), "finder-too-few-steps"),
    # find_lr
    row(V, "num_steps", ">= 10, got 3", lambda p: find_lr(ReliabilityModel(), num_steps=3), "find-lr-steps"),
    row(V, "max_lr", "finite, got inf", lambda p: find_lr(ReliabilityModel(), max_lr=INF), "find-lr-inf"),
    # search
    row(V, "lr", "log scale", lambda p: SearchSpace(lr=(0.0, 1.0)), "space-zero-lr"),
    row(V, "warmup", "low < high", lambda p: SearchSpace(warmup=(0.2, 0.1)), "space-inverted-warmup"),
    row(
        V,
        "storage",
        "SQLAlchemy does not know",
        lambda p: search_lr(ReliabilityModel, storage="nosuchdb://host/db", run_dir=p),
        "search-bad-storage",
    ),
    row(
        V,
        "storage",
        "must be a database URL",
        lambda p: search_lr(ReliabilityModel, storage="not a url", run_dir=p),
        "search-not-a-url",
    ),
    row(
        V,
        "n_trials",
        ">= 1, got 0",
        lambda p: search_lr(ReliabilityModel, n_trials=0, run_dir=p),
        "search-no-trials",
    ),
    row(
        V,
        "sampler",
        "got 'bayes'",
        lambda p: search_lr(ReliabilityModel, sampler="bayes", run_dir=p),
        "search-unknown-sampler",
    ),
    # OptimizerSettings
    row(V, "lr", "> 0, got -0.1", lambda p: OptimizerSettings(lr=-0.1), "settings-negative-lr"),
    row(V, "lr", "finite, got nan", lambda p: OptimizerSettings(lr=NAN), "settings-nan-lr"),
    row(
        V,
        "optimizer",
        "got 'adamm'",
        lambda p: OptimizerSettings(lr=1e-3, optimizer="adamm"),
        "settings-optimizer",
    ),
    row(
        V,
        "interval",
        "got 'batch'",
        lambda p: OptimizerSettings(lr=1e-3, interval="batch"),
        "settings-interval",
    ),
    row(
        V, "frequency", ">= 1, got 0", lambda p: OptimizerSettings(lr=1e-3, frequency=0), "settings-frequency"
    ),
    row(
        V,
        "optimizer_kwargs",
        "momentum_",
        lambda p: fit(p, optimizer="sgd", optimizer_kwargs={"momentum_": 0.9}),
        "hparam-unknown-optimizer-kwarg",
    ),
    # the mixin's hparams, through a real fit
    row(V, "lr", "> 0, got -1", lambda p: fit(p, lr=-1.0), "hparam-negative-lr"),
    row(V, "lr", "finite, got inf", lambda p: fit(p, lr=INF), "hparam-inf-lr"),
    row(
        V,
        "total_steps",
        "run length is unknown",
        lambda p: fit(p, max_epochs=-1, schedule=CosineDecay(0.5)),
        "hparam-fraction-of-endless-run",
    ),
    row(
        V,
        "interval",
        "'step' with a plateau schedule",
        lambda p: fit(p, schedule=ReduceOnPlateau(), interval="step"),
        "hparam-plateau-per-step",
    ),
    row(
        V,
        "train_metric",
        "'train_los' was not logged.*Logged: .*train_loss",
        lambda p: fit(p, [LRDiagnostics(train_metric="train_los")]),
        "diagnostics-unknown-metric",
    ),
    row(V, "LRLogger", "needs a logger", lambda p: fit(p, [LRLogger()]), "logger-without-logger"),
    row(V, "shape", "Adam-family optimizer", sgd_warmup, "untuned-warmup-on-sgd"),
    # YAML configs and CLI flags
    row(
        V,
        "total_steps",
        "'3 weeks'",
        lambda p: cli(
            p,
            config={
                "model": {
                    "class_path": MODEL,
                    "init_args": {
                        "schedule": {
                            "class_path": "lightning_lr.schedules.CosineDecay",
                            "init_args": {"total_steps": "3 weeks"},
                        }
                    },
                }
            },
        ),
        "yaml-bad-length",
    ),
    row(V, "lr", "> 0, got -1", lambda p: cli(p, "--model.init_args.lr=-1"), "flag-negative-lr"),
    row(
        V,
        "warmup_steps",
        ">= 1, got -1",
        lambda p: cli(
            p,
            config={
                "trainer": {
                    "callbacks": [{"class_path": "lightning_lr.LRWarmup", "init_args": {"warmup_steps": -1}}]
                }
            },
        ),
        "yaml-negative-warmup",
    ),
    row(
        V, "optimizer", "got 'adamm'", lambda p: cli(p, "--model.init_args.optimizer=adamm"), "flag-optimizer"
    ),
    row(
        V,
        "num_steps",
        ">= 10, got 3",
        lambda p: main(["find-lr", "--config", str(_config(p)), "--num-steps", "3"]),
        "find-lr-command-steps",
    ),
    row(
        V,
        "storage",
        "must be a database URL",
        lambda p: main(
            ["search", "--config", str(_config(p)), "--storage", "not a url", "--run-dir", str(p)]
        ),
        "search-command-storage",
    ),
]


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "plain.yaml"
    path.write_text(yaml.safe_dump({"model": {"class_path": MODEL}, "trainer": {"max_steps": 4}}))
    return path


@pytest.fixture
def optimizer_steps() -> Iterator[list[int]]:
    """Counts the optimizer steps any optimizer completed while the test runs."""
    steps: list[int] = []
    handle = register_optimizer_step_post_hook(lambda *args: steps.append(1))
    yield steps
    handle.remove()


@pytest.mark.parametrize(("call", "error", "argument", "match"), CASES)
def test_bad_input_is_refused_before_any_step_naming_the_argument(
    call: Callable[[Path], Any],
    error: type[Exception],
    argument: str,
    match: str,
    tmp_path: Path,
    optimizer_steps: list[int],
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(error, match=match) as raised:
        call(tmp_path)
    assert f"`{argument}`" in str(raised.value), str(raised.value)
    assert optimizer_steps == [], f"{len(optimizer_steps)} optimizer steps ran before the error"
    origin = Path(raised.traceback[-1].path).resolve()
    # LightningCLI's parser (jsonargparse) re-raises our error from a config inside its own union
    # error, our message intact in it: the match above found it there
    parsed = request.node.callspec.id.startswith(("yaml-", "flag-"))
    assert "lightning_lr" in origin.parts or (parsed and "jsonargparse" in origin.parts), (
        f"raised from {origin}, not from lightning_lr"
    )


def test_the_table_is_large_and_covers_every_kind_of_entry_point() -> None:
    assert len(CASES) >= 40
    ids = {case.id.split("-")[0] for case in CASES}
    assert {
        "schedule",
        "warmup",
        "restarts",
        "logger",
        "diagnostics",
        "guard",
        "finder",
        "find",
        "space",
        "search",
        "settings",
        "hparam",
        "yaml",
        "flag",
    } <= ids
