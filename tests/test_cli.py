"""The lightning-lr command line: every shipped config trains, plot-schedule draws without training."""

from __future__ import annotations

import csv
import io
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import optuna
import pytest
import yaml

from lightning_lr import schedules
from lightning_lr.cli import console, main
from lightning_lr.commands import find_lr_command as main_find_lr
from lightning_lr.commands import plot_schedule
from lightning_lr.preview import LRPlan
from lightning_lr.settings import schedule_from_config

CONFIGS = sorted((Path(__file__).parent.parent / "configs").glob("*.yaml"))
SMALL = [
    "--trainer.max_epochs=2",
    "--trainer.limit_train_batches=6",
    "--trainer.limit_val_batches=1",
    "--trainer.limit_test_batches=1",
    "--trainer.log_every_n_steps=1",
    "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
]


def test_every_config_is_covered() -> None:
    assert len(CONFIGS) >= 5
    assert "mnist1d.yaml" in {path.name for path in CONFIGS}


@pytest.mark.parametrize("config", CONFIGS, ids=lambda path: path.stem)
def test_config_trains_and_writes_logs_plot_and_metrics(
    config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    main(["fit", "--config", str(config), *SMALL, "--trainer.logger.init_args.save_dir=logs"])
    printed = capsys.readouterr().out
    log_dirs = list((tmp_path / "logs").glob("*/version_0"))
    assert len(log_dirs) == 1, printed
    log_dir = log_dirs[0]
    plot = log_dir / "lr_schedule.png"
    assert plot.exists() and matplotlib.image.imread(plot).ndim == 3
    assert f"LR schedule plot: {Path('logs') / log_dir.relative_to(tmp_path / 'logs')}" in printed
    assert "test_acc:" in printed
    with open(log_dir / "metrics.csv") as handle:
        rows = list(csv.DictReader(handle))
    steps = {int(row["step"]) for row in rows if row.get("train_loss_step")}
    assert steps, "no training step was logged"
    saved = yaml.safe_load((log_dir / "config.yaml").read_text())
    assert saved["model"]["class_path"] == "lightning_lr.demo.MNIST1DClassifier"


def test_hparams_keep_the_schedule_in_config_form_and_the_mixin_rebuilds_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    main(
        [
            "fit",
            "--config",
            str(CONFIGS[0].parent / "mnist1d_wsd.yaml"),
            *SMALL,
            "--trainer.logger.init_args.save_dir=logs",
            "--test_after_fit=false",
            "--lr_plot=null",
        ]
    )
    (log_dir,) = (tmp_path / "logs").glob("*/version_0")
    hparams = yaml.safe_load((log_dir / "hparams.yaml").read_text())
    assert hparams["schedule"]["class_path"] == "lightning_lr.schedules.WarmupStableDecay"
    rebuilt = schedule_from_config(hparams["schedule"])
    assert rebuilt == schedules.WarmupStableDecay(1.0, 0.05, 0.2, "1-sqrt")
    assert not (log_dir / "lr_schedule.png").exists()


def test_plot_schedule_draws_the_planned_lr_without_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "plan.png"
    plan = plot_schedule(
        [
            "--config",
            str(CONFIGS[0].parent / "mnist1d.yaml"),
            "-o",
            str(out),
            "--trainer.max_epochs=4",
            "--model.init_args.lr_multipliers={head: 0.1}",
        ]
    )
    assert matplotlib.image.imread(out).ndim == 3
    # 3600 training samples / batch 100 = 36 optimizer steps per epoch, 4 epochs
    assert len(plan.lrs[0]) == 144 and plan.steps_per_epoch == 36
    # no range test runs (nothing is trained): the plan is drawn at the config's lr, with a note that
    # the config's LRFinder replaces it when training starts; the cosine spans the run from that peak,
    # and its Warmup callback ramps the first 5% on top
    warmup = round(0.05 * 144)
    expected = schedules.Warmup(schedules.Constant(), warmup)
    cosine = schedules.CosineDecay(144)
    by_name = dict(zip(plan.names, plan.lrs))
    peak = by_name["default"][warmup] / cosine(warmup)
    assert peak == pytest.approx(0.03)
    assert any("LRFinder replaces the peak LR" in note for note in plan.notes)
    assert by_name["default"] == pytest.approx([peak * expected(k) * cosine(k) for k in range(144)])
    assert by_name["head"] == pytest.approx([0.1 * peak * expected(k) * cosine(k) for k in range(144)])
    assert sorted(path.name for path in tmp_path.iterdir()) == ["plan.png"], "left files behind"


def _two_epoch_plan(tmp_path: Path, config: str, *overrides: str) -> LRPlan:
    """``plot-schedule`` of a shipped config over 2 epochs, drawn into tmp_path."""
    out = str(tmp_path / "p.png")
    return plot_schedule(
        ["--config", str(CONFIGS[0].parent / config), "-o", out, "--trainer.max_epochs=2", *overrides]
    )


def test_plot_schedule_of_a_plateau_says_it_cannot_foresee_reductions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    plan = _two_epoch_plan(tmp_path, "mnist1d_plateau.yaml")
    assert any("val_loss" in note for note in plan.notes)
    assert set(plan.lrs[0]) == {0.01}


def test_plot_schedule_steps_a_torch_scheduler_per_epoch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    plan = plot_schedule(
        [
            "--config",
            str(CONFIGS[0].parent / "mnist1d_torch_sgd_steplr.yaml"),
            "-o",
            str(tmp_path / "p.png"),
            "--trainer.max_epochs=10",
        ]
    )
    lrs = plan.lrs[0]
    assert len(lrs) == 360
    # StepLR(step_size=8 epochs, gamma=0.2) stepped once per epoch of 36 optimizer steps
    assert lrs[0] == pytest.approx(0.1) and lrs[8 * 36 - 1] == pytest.approx(0.1)
    assert lrs[8 * 36] == pytest.approx(0.02) and lrs[-1] == pytest.approx(0.02)


def test_a_bad_config_value_fails_before_training_with_the_argument_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=r"`total_steps` is not a length, got '3 weeks'"):
        main(
            [
                "fit",
                "--config",
                str(CONFIGS[0].parent / "mnist1d.yaml"),
                *SMALL,
                "--trainer.logger.init_args.save_dir=logs",
                "--model.init_args.schedule.init_args.total_steps=3 weeks",
            ]
        )
    assert not list(tmp_path.glob("logs/*/version_0/checkpoints/*.ckpt"))


def test_find_lr_prints_every_rule_once_and_writes_the_plot(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.chdir(tmp_path)
    result = main_find_lr(
        [
            "--config",
            str(CONFIGS[0].parent / "mnist1d.yaml"),
            "-o",
            str(tmp_path / "finder.png"),
            "--num-steps",
            "40",
            "--min-lr",
            "1e-5",
            "--max-lr",
            "1.0",
            "--trainer.enable_progress_bar=false",
        ]
    )
    captured = capsys.readouterr()
    for rule in ("steepest", "valley", "minimum", "peak (default)"):
        assert captured.out.count(f"lightning-lr: {rule}:") == 1
    assert "LR finder:" not in captured.out + captured.err + caplog.text, "the rules were reported twice"
    assert matplotlib.image.imread(tmp_path / "finder.png").ndim == 3
    assert len(result.losses) <= 40 and result.lrs[0] == pytest.approx(1e-5)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["finder.png"], "left files behind"


# --- the command line as a user meets it: one line per mistake, the right usage, nothing fought over ---


def user(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``lightning-lr ARGS`` as the console script runs it: exit code, stdout, stderr."""
    try:
        console(args)
        code = 0
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    printed = capsys.readouterr()
    return code, printed.out, printed.err


DEMO = str(CONFIGS[0].parent / "mnist1d.yaml")
TINY_SEARCH = ["--trainer.max_epochs=1", "--trainer.limit_train_batches=2", "--trainer.limit_val_batches=1"]


def test_a_search_on_another_config_does_not_join_the_study_and_the_same_one_says_it_joins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    small = [*TINY_SEARCH, "--data.init_args.train_size=200", "--n_trials", "1", "--lr_range", "1e-3", "1e-1"]
    assert user(["search", "--config", DEMO, *small], capsys)[0] == 0
    other = str(CONFIGS[0].parent / "mnist1d_onecycle.yaml")
    code, _, err = user(["search", "--config", other, *small], capsys)
    assert code == 2
    assert (
        err.splitlines()[0].startswith("lightning-lr: error: `study_name` names a study in sqlite:///")
        and "run on another config or other search settings, got 'lightning-lr-search'" in err
    ), err
    assert "--study_name" in err
    code, _, err = user(["search", "--config", DEMO, *small, "--lr_range", "1e-4", "1"], capsys)
    assert code == 2 and "run on another config or other search settings" in err, "joined"
    logged = io.StringIO()
    handler = logging.StreamHandler(logged)
    logging.getLogger("lightning.pytorch").addHandler(handler)
    try:
        code, _, err = user(["search", "--config", DEMO, *small], capsys)
    finally:
        logging.getLogger("lightning.pytorch").removeHandler(handler)
    assert code == 0
    assert "LR search: joined study 'lightning-lr-search' in sqlite:///" in logged.getvalue()
    assert ", 1 trials so far." in logged.getvalue()
    study = optuna.load_study(
        study_name="lightning-lr-search",
        storage=f"sqlite:///{tmp_path / 'lightning_lr_search/lightning-lr-search.db'}",
    )
    assert len(study.trials) == 2


def test_lightning_cli_optimizer_flags_are_refused_on_a_mixin_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = user(["fit", "--config", DEMO, *SMALL, "--optimizer=SGD", "--optimizer.lr=0.1"], capsys)
    assert code == 2
    assert err.splitlines()[0] == (
        "lightning-lr: error: `--optimizer` would replace the optimizer and schedule that "
        "ConfigureOptimizersMixin builds for MNIST1DClassifier, got 'torch.optim.SGD'. Set the mixin's "
        "hparams instead, e.g. --model.init_args.optimizer=sgd "
        "(with `lr`, `optimizer_kwargs` and `schedule`)."
    )
    code, _, err = user(
        ["fit", "--config", DEMO, *SMALL, "--lr_scheduler=StepLR", "--lr_scheduler.step_size=2"], capsys
    )
    assert code == 2 and "`--lr_scheduler` would replace" in err and "--model.init_args.schedule=" in err
    assert not (tmp_path / "runs").exists(), "a run started"


def test_a_plateau_monitor_never_logged_stops_the_run_with_the_logged_metrics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    plateau = str(CONFIGS[0].parent / "mnist1d_plateau.yaml")
    code, _, err = user(["fit", "--config", plateau, *SMALL, "--model.init_args.monitor=val_los"], capsys)
    assert code == 2
    first = err.splitlines()[0]
    assert first.startswith("lightning-lr: error: `monitor` was never logged"), err
    assert "got 'val_los'" in first and "'val_loss'" in first and "'train_loss" in first
    assert "Traceback" not in err and "lr scheduler dict" not in err


def test_unknown_options_of_a_subcommand_are_refused_with_its_own_help_and_kebab_case_is_an_alias(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = user(["search", "--config", DEMO, "--n_trial", "2"], capsys)
    assert code == 2
    first, hint = err.splitlines()
    assert first.startswith(
        "lightning-lr: error: `--n_trial` is not an option of `lightning-lr search`. "
        "Did you mean `--n_trials`? Its options: --help, --config, --n_trials, "
    ), err
    assert hint == (
        "lightning-lr: `lightning-lr search --help` shows the options; --traceback shows where it was raised."
    )
    assert not (tmp_path / "lightning_lr_search").exists(), "a trial was recorded"
    code, _, err = user(["find-lr", "--config", DEMO, "--num_step", "20"], capsys)
    assert code == 2 and "not an option of `lightning-lr find-lr`. Did you mean `--num_steps`?" in err
    assert "`lightning-lr find-lr --help`" in err
    code, out, err = user(
        ["plot-schedule", "--config", DEMO, "-o", "p.png", "--log-scale", "--trainer.max-epochs=2"], capsys
    )
    assert code == 0 and "lightning-lr: 72 optimizer steps" in out


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ["--model.init_args.schedule=cosine"],
            r"`model\.init_args\.schedule` is not a schedule, got 'cosine'\. Name a schedule class with its "
            r"arguments, e\.g\. .*Did you mean `CosineDecay`\? Schedules: Constant, StepDecay, ",
        ),
        (
            ["--model.init_args.schedule.class_path=Cosine"],
            r"`model\.init_args\.schedule` is not a schedule, got 'Cosine'\..*Did you mean `CosineDecay`\?",
        ),
        (
            ["--trainer.max_epohcs=3"],
            r"`--trainer\.max_epohcs` is not an option\. Did you mean `--trainer\.max_epochs`\?",
        ),
        (["--trainer.max_epochs=abc"], r"`trainer\.max_epochs` must be an integer, got 'abc'\."),
        (
            ["--model.init_args.schedule.init_args.total_steps=3 weeks"],  # raised in configure_optimizers
            r"`total_steps` is not a length, got '3 weeks'\. Write an int",
        ),
        (["--config", "missing.yaml"], r"`--config` names no file, got '.*missing\.yaml'"),
        (["--model.init_args.optimizer=adamww"], r"`optimizer` is not a known optimizer, got 'adamww'"),
        (
            ["--model.init_args.interval=epochs"],
            r"`model\.init_args\.interval` must be one of 'step', 'epoch', got 'epochs'\. "
            r"Did you mean 'epoch'\?",
        ),
    ],
    ids=[
        "short-schedule-name",
        "unknown-schedule-class",
        "unknown-key",
        "wrong-type",
        "hook",
        "no-file",
        "unknown-optimizer",
        "close-choice",
    ],
)
def test_a_mistake_is_one_line_first_with_the_fix_and_no_usage_or_traceback(
    flags: list[str],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = user(["fit", "--config", DEMO, *SMALL, *flags], capsys)
    assert code == 2
    lines = err.splitlines()
    assert re.match(rf"lightning-lr: error: {message}", lines[0]), err
    assert lines[1:] == [
        "lightning-lr: `lightning-lr fit --help` shows the options; --traceback shows where it was raised."
    ]
    assert "usage:" not in out + err


def test_learning_rate_in_yaml_gets_a_did_you_mean_and_traceback_shows_the_trace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    config = yaml.safe_load(Path(DEMO).read_text())
    config["model"]["init_args"]["learning_rate"] = config["model"]["init_args"].pop("lr")
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump(config))
    code, _, err = user(["fit", "--config", "mine.yaml"], capsys)
    assert code == 2
    assert err.splitlines()[0].startswith(
        "lightning-lr: error: `model.init_args.learning_rate` is not an argument of MNIST1DClassifier. "
        "Did you mean `model.init_args.lr`? MNIST1DClassifier takes: lr, optimizer, "
    ), err
    with pytest.raises(ValueError, match=r"`model\.init_args\.learning_rate` is not an argument"):
        console(["fit", "--config", "mine.yaml", "--traceback"])


def test_the_console_script_says_a_mistake_in_two_lines_and_exits_2() -> None:
    """The real script, in a process of its own: no traceback, no usage, exit status 2."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "lightning_lr.cli",
            "fit",
            "--config",
            DEMO,
            "--model.init_args.learning_rate=0.1",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)},
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines()[0].startswith("lightning-lr: error: `model.init_args.learning_rate`")
    assert len(done.stderr.splitlines()) == 2 and done.stdout == "", done.stdout + done.stderr


def test_help_lists_every_subcommand_and_shows_defaults_in_plain_text(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = user(["--help"], capsys)
    for name in ("fit", "validate", "test", "predict", "plot-schedule", "find-lr", "search"):
        assert re.search(rf"^  {name} +\w", out, flags=re.M), out
    for command, default in (
        ("fit", "default: lr_schedule.png"),
        ("plot-schedule", "(default: lr_schedule.png)"),
        ("find-lr", "(default: 50)"),
        ("search", "(default: tpe)"),
    ):
        code, out, _ = user([command, "--help"], capsys)
        flat = " ".join(out.split())
        assert code == 0 and default in flat, flat
        assert "``" not in out and ":class:" not in out and ":func:" not in out


def test_plot_schedule_draws_the_newer_schedules_from_the_registry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    inverse_sqrt = "{class_path: lightning_lr.schedules.InverseSqrt, init_args: {timescale: 0.25}}"
    overlapped = (
        "{class_path: lightning_lr.schedules.Warmup, init_args: {warmup_steps: 0.1, overlap: true, "
        "schedule: {class_path: lightning_lr.schedules.CosineDecay, "
        "init_args: {total_steps: 1.0, num_cycles: 1.0, k_decay: 2.0}}}}"
    )
    # 36 optimizer steps an epoch, 2 epochs: the timescale is 18 steps, the warmup 7
    expected = {
        inverse_sqrt: schedules.InverseSqrt(18),
        overlapped: schedules.Warmup(schedules.CosineDecay(72, num_cycles=1.0, k_decay=2.0), 7, overlap=True),
    }
    for override, schedule in expected.items():
        plan = _two_epoch_plan(tmp_path, "mnist1d_wsd.yaml", f"--model.init_args.schedule={override}")
        assert plan.lrs[0] == pytest.approx([0.02 * schedule(k) for k in range(72)], rel=1e-12)
