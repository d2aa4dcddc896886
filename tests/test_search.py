"""The LR search: real Optuna studies in SQLite, real Trainers on a tiny model, the CLI end to end."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import matplotlib.image
import optuna
import pytest
import torch
from conftest import TinyRegression

from lightning_lr import schedules
from lightning_lr.cli import main
from lightning_lr.commands import search_command
from lightning_lr.plot import plot_search
from lightning_lr.search import SearchResult, SearchSettings, SearchSpace, TrialPruning, search_lr
from lightning_lr.search.pruning import trial_score
from lightning_lr.search.samplers import PRUNERS, SAMPLERS, make_pruner, make_sampler
from lightning_lr.search.space import hparams_to_cli_args
from lightning_lr.settings import schedule_from_config

MAX_EPOCHS = 3
FAST: dict[str, Any] = {
    "accelerator": "cpu",
    "max_epochs": MAX_EPOCHS,
    "limit_train_batches": 2,
    "limit_val_batches": 2,
    "num_sanity_val_steps": 0,
    "log_every_n_steps": 1,
}
CONFIG = Path(__file__).parent.parent / "configs" / "mnist1d.yaml"
SMALL_CONFIG = [
    "--trainer.max_epochs=1",
    "--trainer.limit_train_batches=2",
    "--trainer.limit_val_batches=1",
    "--trainer.accelerator=cpu",
    "--data.init_args.train_size=200",
]


def search(tmp_path: Path, **kwargs: Any) -> SearchResult:
    options: dict[str, Any] = {
        "run_dir": tmp_path / "runs",
        "progress_bar": False,
        "trainer_kwargs": FAST,
    }
    options.update(kwargs)
    return search_lr(TinyRegression, **options)


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'study.db'}"


def enqueued_study(url: str, lrs: list[float], name: str = "lightning-lr-search") -> optuna.Study:
    study = optuna.create_study(storage=url, study_name=name, direction="minimize")
    for lr in lrs:
        study.enqueue_trial({"lr": lr})
    return study


class NeverBuilt:
    """A model factory that counts its calls: errors must come before any training."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, **hparams: Any) -> pl.LightningModule:
        self.calls += 1
        return TinyRegression(**hparams)


# --- the space ---------------------------------------------------------------------------------------


def test_grid_is_log_spaced_with_exact_ends_and_covers_every_axis() -> None:
    space = SearchSpace(
        lr=(1e-4, 1e-1), weight_decay=(1e-4, 1e-2), warmup=(0.0, 0.2), schedule=["cosine", "wsd"]
    )
    grid = space.grid()
    assert grid["lr"][0] == 1e-4 and grid["lr"][-1] == 1e-1 and len(grid["lr"]) == 8
    ratios = [after / before for before, after in zip(grid["lr"], grid["lr"][1:])]
    assert all(math.isclose(ratio, ratios[0]) for ratio in ratios)
    assert grid["warmup"][0] == 0.0 and grid["warmup"][-1] == 0.2 and len(grid["warmup"]) == 8
    assert grid["schedule"] == ["cosine", "wsd"]
    assert space.continuous == ("lr", "weight_decay", "warmup")


def test_to_hparams_builds_the_mixin_schedule_for_every_combination() -> None:
    space = SearchSpace(warmup=(0.0, 0.3), schedule=["cosine", "onecycle"])
    assert space.to_hparams({"lr": 0.1, "warmup": 0.1, "schedule": "cosine"})["schedule"] == schedules.Warmup(
        schedules.CosineDecay(1.0), 0.1
    )
    assert space.to_hparams({"lr": 0.1, "warmup": 0.0, "schedule": "onecycle"})[
        "schedule"
    ] == schedules.OneCycle(1.0)
    only_warmup = SearchSpace(warmup=(0.0, 0.3)).to_hparams({"lr": 0.1, "warmup": 0.2})
    assert only_warmup["schedule"] == schedules.Warmup(schedules.Constant(), 0.2)
    assert SearchSpace().to_hparams({"lr": 0.1}) == {"lr": 0.1}
    assert SearchSpace(weight_decay=(1e-4, 1e-1)).to_hparams({"lr": 0.1, "weight_decay": 0.01}) == {
        "lr": 0.1,
        "weight_decay": 0.01,
    }


def test_suggest_asks_the_trial_for_each_axis_on_its_scale() -> None:
    space = SearchSpace(weight_decay=(1e-4, 1e-1), warmup=(0.0, 0.3), schedule=["wsd"])
    params = space.suggest(
        optuna.trial.FixedTrial({"lr": 0.01, "weight_decay": 0.001, "warmup": 0.1, "schedule": "wsd"})
    )
    assert params == {"lr": 0.01, "weight_decay": 0.001, "warmup": 0.1, "schedule": "wsd"}
    hparams = space.to_hparams(params)
    assert hparams["schedule"] == schedules.Warmup(schedules.WarmupStableDecay(1.0, 0, 0.2), 0.1)


def test_cli_args_carry_the_schedule_in_its_config_form() -> None:
    schedule = schedules.Warmup(schedules.CosineDecay(1.0), 0.05)
    lr, weight_decay, as_json = hparams_to_cli_args({"lr": 0.003, "weight_decay": 0.01, "schedule": schedule})
    assert lr == "--model.init_args.lr=0.003" and weight_decay == "--model.init_args.weight_decay=0.01"
    assert schedule_from_config(json.loads(as_json.split("=", 1)[1])) == schedule


@pytest.mark.parametrize(
    ("kwargs", "name", "message"),
    [
        ({"lr": (1.0, 1.0)}, "lr", "low < high"),
        ({"lr": (1e-2, 1e-4)}, "lr", "low < high"),
        ({"lr": (0.0, 1.0)}, "lr", "log scale"),
        ({"lr": (1e-3,)}, "lr", "pair"),
        ({"lr": (1e-3, math.inf)}, "lr", "finite"),
        ({"weight_decay": (-1.0, 0.1)}, "weight_decay", "log scale"),
        ({"warmup": (0.0, 1.0)}, "warmup", r"\[0, 1\)"),
        ({"warmup": (0.2, 0.1)}, "warmup", "low < high"),
        ({"schedule": []}, "schedule", "at least one"),
        ({"schedule": ["cosine", "sawtooth"]}, "schedule", "unknown families"),
        ({"schedule": "cosine"}, "schedule", "list"),
        ({"grid_size": 1}, "grid_size", ">= 2"),
    ],
)
def test_a_bad_space_names_the_argument(kwargs: dict[str, Any], name: str, message: str) -> None:
    with pytest.raises(ValueError, match=rf"`{name}`.*{message}"):
        SearchSpace(**kwargs)


# --- the pruning callback ------------------------------------------------------------------------------


def test_trial_score_is_best_or_last_by_mode() -> None:
    assert trial_score([3.0, 1.0, 2.0], "min", "best") == 1.0
    assert trial_score([3.0, 1.0, 2.0], "max", "best") == 3.0
    assert trial_score([3.0, 1.0, 2.0], "max", "last") == 2.0
    assert trial_score([], "min", "best") is None


class NaNAtStep(TinyRegression):
    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        loss = super().training_step(batch, batch_idx)
        return loss * math.nan if self.trainer.global_step == 3 else loss


def test_trial_pruning_stops_a_run_whose_loss_goes_nan(make_trainer: Any) -> None:
    pruning = TrialPruning(None)
    trainer = make_trainer(max_epochs=5, limit_train_batches=2, callbacks=[pruning])
    trainer.fit(NaNAtStep())
    assert pruning.diverged and not pruning.pruned
    assert trainer.global_step == 4 and pruning.epochs == 2


def test_trial_pruning_names_the_missing_monitor_and_lists_what_was_logged(make_trainer: Any) -> None:
    trainer = make_trainer(
        max_epochs=1, limit_train_batches=1, callbacks=[TrialPruning(None, monitor="val_acc")]
    )
    with pytest.raises(ValueError, match=r"`monitor`='val_acc' was not logged.*Logged: .*val_loss"):
        trainer.fit(TinyRegression())


# --- studies -------------------------------------------------------------------------------------------


def test_grid_study_visits_every_grid_point_exactly_once(tmp_path: Path) -> None:
    space = SearchSpace(lr=(1e-3, 1e-1), grid_size=3)
    result = search(tmp_path, space=space, sampler="grid", pruner="none", n_trials=10, seed=0)
    assert len(result.trials) == 3
    assert sorted(row.lr for row in result.trials if row.lr is not None) == space.grid()["lr"]
    assert {row.state for row in result.trials} == {"COMPLETE"}
    assert result.best_lr in space.grid()["lr"] and result.reason is None


@pytest.mark.slow
def test_two_workers_share_one_study_without_losing_or_repeating_a_trial(tmp_path: Path) -> None:
    url, name, run_dir = sqlite_url(tmp_path), "shared", tmp_path / "runs"
    worker = Path(__file__).parent / "search_worker.py"
    processes = [
        subprocess.Popen(
            [sys.executable, str(worker), url, name, str(run_dir), "3"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=240)[0] for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outputs
    trials = optuna.load_study(study_name=name, storage=url).get_trials()
    assert sorted(trial.number for trial in trials) == list(range(6))
    assert {trial.state.name for trial in trials} <= {"COMPLETE", "PRUNED"}
    assert {path.name for path in (run_dir / name).iterdir()} == {f"trial_{number}" for number in range(6)}


def test_median_pruner_stops_a_hopeless_trial_early(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    enqueued_study(url, [0.05, 0.05, 0.05, 1e-5])
    result = search(tmp_path, storage=url, sampler="random", n_trials=4)
    hopeless = result.trials[3]
    assert hopeless.lr == 1e-5 and hopeless.state == "PRUNED" and not hopeless.diverged
    assert hopeless.epochs is not None and hopeless.epochs < MAX_EPOCHS
    assert [row.state for row in result.trials[:3]] == ["COMPLETE"] * 3
    assert result.best_lr == 0.05


def test_a_diverging_lr_ends_pruned_and_marked_never_failed(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    enqueued_study(url, [0.05, 1e6])
    space = SearchSpace(lr=(1e-3, 1e7))
    result = search(tmp_path, space=space, storage=url, sampler="random", pruner="none", n_trials=2)
    good, diverged = result.trials
    assert good.state == "COMPLETE" and not good.diverged
    assert diverged.state == "PRUNED" and diverged.diverged
    assert (
        optuna.load_study(study_name=result.study_name, storage=url).trials[1].user_attrs["diverged"] is True
    )
    assert "| 1 | PRUNED | 1e+06 |" in result.table()


def test_when_every_trial_diverges_the_result_says_why_instead_of_raising(tmp_path: Path) -> None:
    result = search(tmp_path, space=SearchSpace(lr=(1e5, 1e6)), sampler="random", n_trials=2, seed=0)
    assert result.best_lr is None and result.best_params is None and result.best_value is None
    assert result.reason is not None and "diverged" in result.reason and "`lr`" in result.reason
    assert {row.state for row in result.trials} == {"PRUNED"}
    assert plot_search(result, tmp_path / "none.png").stat().st_size > 5_000


def test_result_table_plot_trial_files_and_progress_bar(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    verbosity = optuna.logging.get_verbosity()
    result = search(
        tmp_path,
        space=SearchSpace(lr=(1e-3, 1.0), weight_decay=(1e-4, 1e-1)),
        sampler="tpe",
        n_trials=3,
        seed=1,
        progress_bar=True,
    )
    out = capsys.readouterr().out
    assert "Search: 100%" in out and "3/3 trials" in out and "best val_loss=" in out
    assert optuna.logging.get_verbosity() == verbosity
    lines = result.table().splitlines()
    assert lines[0] == "| trial | state | lr | weight_decay | val_loss | epochs | diverged |"
    assert len(lines) == 2 + 3 and "(best)" in result.table()
    assert result.best_params is not None and set(result.best_params) == {"lr", "weight_decay"}
    assert result.storage_url == f"sqlite:///{(tmp_path / 'runs' / 'lightning-lr-search.db').resolve()}"
    for row in result.trials:
        trial_dir = tmp_path / "runs" / "lightning-lr-search" / f"trial_{row.number}"
        assert (trial_dir / "metrics.csv").exists()
    assert sorted(path.name for path in (tmp_path / "runs").iterdir()) == [
        "lightning-lr-search",
        "lightning-lr-search.db",
    ]
    path = plot_search(result, tmp_path / "plots" / "search.png")
    assert path.stat().st_size > 10_000 and matplotlib.image.imread(path).ndim == 3


def test_a_second_search_joins_the_study_and_a_mismatched_mode_is_refused(tmp_path: Path) -> None:
    search(tmp_path, sampler="random", n_trials=1, seed=0)
    result = search(tmp_path, sampler="random", n_trials=1, seed=1)
    assert [row.number for row in result.trials] == [0, 1]
    with pytest.raises(
        ValueError,
        match=r"`mode` does not match the existing study 'lightning-lr-search'.*minimize, got 'max'",
    ):
        search(tmp_path, mode="max", n_trials=1)


# --- errors before any training ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"storage": "not a url"}, r"`storage` must be a database URL, got 'not a url'.*e.g. 'sqlite:///"),
        (
            {"storage": "nosuchdb://host/db"},
            r"`storage` names a database SQLAlchemy does not know.*got 'nosuchdb://host/db'",
        ),
        (
            {"storage": "sqlite:////proc/no/such/dir/x.db"},
            r"`storage` could not be opened, got 'sqlite:////proc/.*unable to open.*e.g. 'sqlite:///",
        ),
        (
            {"storage": "postgresql://user:secret@localhost:1/db"},
            r"`storage` needs a database driver.*got 'postgresql://user:\*\*\*@localhost:1/db'",
        ),
        (
            {"sampler": "bayes"},
            r"`sampler` must be one of 'grid', 'random', 'tpe', 'gp', 'cmaes', got 'bayes'",
        ),
        ({"sampler": "cmaes"}, r"`sampler` needs two continuous axes.*got 'cmaes'.*sampler='tpe'"),
        (
            {"sampler": "cmaes", "space": SearchSpace(schedule=["cosine"])},
            r"`sampler` needs two continuous axes at least, and the space has \['lr'\]",
        ),
        ({"pruner": "sometimes"}, r"`pruner` must be one of"),
        ({"n_trials": 0}, r"`n_trials` must be >= 1"),
        ({"mode": "lowest"}, r"`mode` must be one of 'min', 'max'"),
        ({"score": "mean"}, r"`score` must be one of 'best', 'last'"),
        ({"study_name": "a/b"}, r"`study_name` names a directory.*got 'a/b'"),
        ({"monitor": ""}, r"`monitor` must name a logged validation metric, got ''"),
        ({"timeout": -1.0}, r"`timeout` must be > 0"),
    ],
)
def test_bad_arguments_fail_before_any_training(tmp_path: Path, kwargs: dict[str, Any], match: str) -> None:
    factory = NeverBuilt()
    with pytest.raises(ValueError, match=match):
        search_lr(factory, run_dir=tmp_path / "runs", progress_bar=False, trainer_kwargs=FAST, **kwargs)
    assert factory.calls == 0
    assert not (tmp_path / "runs" / "lightning-lr-search").exists()


def test_a_module_instance_is_refused_with_the_fix() -> None:
    with pytest.raises(TypeError, match=r"`model` must build a fresh LightningModule.*functools.partial"):
        search_lr(TinyRegression())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("grid", optuna.samplers.GridSampler),
        ("random", optuna.samplers.RandomSampler),
        ("tpe", optuna.samplers.TPESampler),
        ("gp", optuna.samplers.GPSampler),
        ("cmaes", optuna.samplers.CmaEsSampler),
    ],
)
def test_every_sampler_name_builds_its_optuna_sampler(name: str, cls: type) -> None:
    assert isinstance(make_sampler(name, SearchSpace(weight_decay=(1e-4, 1e-1)), seed=0), cls)
    own = optuna.samplers.RandomSampler(seed=3)
    assert make_sampler(own, SearchSpace(), seed=None) is own


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("median", optuna.pruners.MedianPruner),
        ("hyperband", optuna.pruners.HyperbandPruner),
        ("none", optuna.pruners.NopPruner),
    ],
)
def test_every_pruner_name_builds_its_optuna_pruner(name: str, cls: type) -> None:
    assert isinstance(make_pruner(name, max_epochs=10), cls)


def test_an_unlogged_monitor_is_named_with_the_metrics_that_exist(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"`monitor`='val_acc' was not logged.*Logged: .*val_loss"):
        search(tmp_path, monitor="val_acc", n_trials=1)


# --- command line --------------------------------------------------------------------------------------


def test_cli_search_runs_a_config_and_a_second_run_joins_the_study(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    command = [
        "--config",
        str(CONFIG),
        "--lr-range",
        "1e-3",
        "1e-1",
        "--warmup-range",
        "0.0",
        "0.3",
        "--schedules",
        "cosine,wsd",
        "--seed",
        "0",
        "--first-lr",
        "0.02",
        *SMALL_CONFIG,
    ]
    first = search_command([*command, "--n-trials", "2"])
    printed = capsys.readouterr().out
    assert len(first.trials) == 2 and first.best_lr is not None
    assert "| trial | state | lr | warmup | schedule | val_loss |" in printed
    assert f"best lr {first.best_lr:.4g}" in printed
    main(["search", *command, "--n-trials", "1", "-o", "search.png"])
    printed = capsys.readouterr().out
    assert (tmp_path / "search.png").stat().st_size > 10_000
    assert (tmp_path / "lightning_lr_search" / "lightning-lr-search.png").exists()
    study = optuna.load_study(
        study_name="lightning-lr-search",
        storage=f"sqlite:///{tmp_path / 'lightning_lr_search' / 'lightning-lr-search.db'}",
    )
    assert [trial.number for trial in study.trials] == [0, 1, 2]
    # the first trial ran at --first-lr, and the second run, given it again, did not repeat it
    assert [trial.params["lr"] == 0.02 for trial in study.trials] == [True, False, False]
    assert "| 2 |" in printed
    for number in range(3):
        (log_dir,) = (tmp_path / "lightning_lr_search" / "lightning-lr-search" / f"trial_{number}").glob(
            "*/version_0"
        )
        hparams = (log_dir / "hparams.yaml").read_text()
        assert f"lr: {study.trials[number].params['lr']}" in hparams
        assert "class_path: lightning_lr.schedules." in hparams


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"first_lr": 0.5}, r"`first_lr` lies outside the searched LR range \[0.001, 0.1\], got 0.5\. Widen"),
        ({"first_lr": -1.0}, r"`first_lr` must be > 0, got -1.0"),
        ({"first_lr": float("nan")}, r"`first_lr` must be finite, got nan"),
        ({"first_lr": 0.01, "sampler": "grid"}, r"`first_lr` cannot be combined with the grid.*got 0.01"),
    ],
)
def test_a_bad_first_lr_is_refused_before_any_training(
    tmp_path: Path, settings: dict[str, Any], message: str
) -> None:
    never = NeverBuilt()
    with pytest.raises(ValueError, match=message):
        search_lr(never, space=SearchSpace(lr=(1e-3, 1e-1)), run_dir=tmp_path, progress_bar=False, **settings)
    assert never.calls == 0


def test_the_first_trial_runs_at_first_lr_and_tpe_goes_on_from_there(tmp_path: Path) -> None:
    result = search(tmp_path, space=SearchSpace(lr=(1e-3, 1e-1)), n_trials=3, first_lr=0.0123, seed=0)
    lrs = [row.params["lr"] for row in sorted(result.trials, key=lambda row: row.number)]
    assert lrs[0] == 0.0123 and 0.0123 not in lrs[1:] and len(set(lrs)) == 3


def test_every_registered_sampler_and_pruner_builds_and_the_help_lists_them(
    capsys: pytest.CaptureFixture[str],
) -> None:
    space = SearchSpace(lr=(1e-3, 1e-1), weight_decay=(1e-5, 1e-2))
    for name in SAMPLERS:
        assert isinstance(make_sampler(name, space, 0), optuna.samplers.BaseSampler), name
    for name in PRUNERS:
        assert isinstance(make_pruner(name, 5), optuna.pruners.BasePruner), name
    with pytest.raises(SystemExit):
        main(["search", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert all(name in help_text for name in (*SAMPLERS, *PRUNERS))


def test_search_lr_takes_one_settings_object_or_its_fields() -> None:
    settings = SearchSettings(n_trials=3, sampler="random")
    assert SearchSettings(space=None).space == SearchSpace()
    with pytest.raises(TypeError, match="not both"):
        search_lr(TinyRegression, settings=settings, n_trials=2)
