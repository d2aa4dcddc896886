"""The lightning-lr command line: every shipped config trains, plot-schedule draws without training."""

from __future__ import annotations

import csv
from pathlib import Path

import matplotlib.image
import pytest
import yaml

from lightning_lr import schedules
from lightning_lr.cli import main
from lightning_lr.commands import find_lr_command as main_find_lr
from lightning_lr.commands import plot_schedule

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
    rebuilt = schedules.schedule_from_config(hparams["schedule"])
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
    # the config's LRFinder set the peak before step 0; the cosine spans the run from that peak, and
    # its Warmup callback ramps the first 5% on top
    warmup = round(0.05 * 144)
    expected = schedules.Warmup(schedules.Constant(), warmup)
    cosine = schedules.CosineDecay(144)
    by_name = dict(zip(plan.names, plan.lrs))
    peak = by_name["default"][warmup] / cosine(warmup)
    assert peak != pytest.approx(0.03)  # the config's lr was replaced by the finder's suggestion
    assert by_name["default"] == pytest.approx([peak * expected(k) * cosine(k) for k in range(144)])
    assert by_name["head"] == pytest.approx([0.1 * peak * expected(k) * cosine(k) for k in range(144)])
    assert sorted(path.name for path in tmp_path.iterdir()) == ["plan.png"], "left files behind"


def test_plot_schedule_of_a_plateau_says_it_cannot_foresee_reductions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    plan = plot_schedule(
        [
            "--config",
            str(CONFIGS[0].parent / "mnist1d_plateau.yaml"),
            "-o",
            str(tmp_path / "p.png"),
            "--trainer.max_epochs=2",
        ]
    )
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
        plan = plot_schedule(
            [
                "--config",
                str(CONFIGS[0].parent / "mnist1d_wsd.yaml"),
                "-o",
                str(tmp_path / "p.png"),
                "--trainer.max_epochs=2",
                f"--model.init_args.schedule={override}",
            ]
        )
        assert plan.lrs[0] == pytest.approx([0.02 * schedule(k) for k in range(72)], rel=1e-12)
