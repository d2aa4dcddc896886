"""``lightning-lr``: LightningCLI for lightning_lr, plus ``plot-schedule``.

lightning-lr fit --config configs/mnist1d.yaml
lightning-lr plot-schedule --config configs/mnist1d.yaml -o schedule.png
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.utilities import rank_zero_only

from lightning_lr.finder.sweep import LRFinderResult, find_lr
from lightning_lr.plot import plot_lr_plan
from lightning_lr.preview import LRPlan, PlanAtTrainStart

USAGE = """lightning-lr {fit,validate,test,predict} --config CONFIG.yaml [--section.key=value ...]
       lightning-lr plot-schedule --config CONFIG.yaml [-o schedule.png] [--log-scale] [overrides ...]
       lightning-lr find-lr --config CONFIG.yaml [-o lr_finder.png] [--rule valley] [overrides ...]"""


class LightningLRCLI(LightningCLI):
    """LightningCLI with any LightningModule/DataModule by ``class_path``, and two extra options.

    ``--lr_plot PATH`` writes, after fit, a PNG of the LR the run used (relative paths land in the
    run's log directory; ``null`` skips it). ``--test_after_fit true`` tests the trained weights
    and prints the test metrics. The config saved next to the logs may be overwritten, so resuming
    in the same directory with ``--ckpt_path`` works.
    """

    def __init__(self, *args: Any, stop_after_plan: bool = False, **kwargs: Any) -> None:
        self.plan_recorder = PlanAtTrainStart(stop=stop_after_plan)
        defaults = dict(kwargs.pop("trainer_defaults", None) or {})
        defaults["callbacks"] = [*list(defaults.get("callbacks", [])), self.plan_recorder]
        kwargs.setdefault("subclass_mode_model", True)
        kwargs.setdefault("subclass_mode_data", True)
        kwargs.setdefault("save_config_kwargs", {"overwrite": True})
        kwargs.setdefault("parser_kwargs", {"usage": USAGE} if kwargs.get("run", True) else {})
        kwargs["trainer_defaults"] = defaults
        super().__init__(pl.LightningModule, pl.LightningDataModule, *args, **kwargs)

    def add_arguments_to_parser(self, parser: Any) -> None:
        parser.add_argument(
            "--lr_plot",
            type=str | None,
            default="lr_schedule.png",
            help="PNG of the LR schedule written after fit (relative: in the log dir).",
        )
        parser.add_argument(
            "--test_after_fit",
            type=bool,
            default=False,
            help="Test the trained weights after fit and print the metrics.",
        )

    def after_fit(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        log_dir = Path(self.trainer.log_dir or self.trainer.default_root_dir)
        _say(f"logs: {log_dir}")
        plan = self.plan_recorder.plan
        if config.get("lr_plot") and plan is not None:
            target = Path(config["lr_plot"])
            path = plot_lr_plan(
                plan,
                target if target.is_absolute() else log_dir / target,
                title=f"LR schedule of {type(self.model).__name__}",
            )
            _say(f"LR schedule plot: {path}")
        if config.get("test_after_fit"):
            results = self.trainer.test(self.model, datamodule=self.datamodule, verbose=False)
            for name, value in sorted((results[0] if results else {}).items()):
                _say(f"{name}: {value:.4f}")


@rank_zero_only
def _say(message: str) -> None:
    print(f"lightning-lr: {message}", flush=True)


def _scratch_cli(
    configs: Sequence[str], overrides: Sequence[str], scratch: str, **kwargs: Any
) -> LightningLRCLI:
    """Instantiate a config without running it; loggers and run files go to ``scratch``."""
    logger = {"class_path": "lightning.pytorch.loggers.CSVLogger", "init_args": {"save_dir": scratch}}
    args = [arg for path in configs for arg in ("--config", path)]
    args += [
        *overrides,
        f"--trainer.logger={json.dumps(logger)}",
        f"--trainer.default_root_dir={scratch}",
        "--trainer.enable_model_summary=false",
        "--lr_plot=null",
    ]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*args parameter is intended to run from within Python")
        return LightningLRCLI(args=args, run=False, save_config_callback=None, **kwargs)


def plot_schedule(argv: Sequence[str]) -> LRPlan:
    """``lightning-lr plot-schedule``: draw the LR a config will produce, without training."""
    parser = argparse.ArgumentParser(prog="lightning-lr plot-schedule", description=plot_schedule.__doc__)
    parser.add_argument("--config", action="append", required=True, help="YAML config (repeatable)")
    parser.add_argument("-o", "--output", default="lr_schedule.png", help="PNG to write")
    parser.add_argument("--log-scale", action="store_true", help="logarithmic LR axis")
    options, overrides = parser.parse_known_args(list(argv))
    with tempfile.TemporaryDirectory(prefix="lightning-lr-plan-") as scratch:
        cli = _scratch_cli(
            options.config, [*overrides, "--trainer.enable_progress_bar=false"], scratch, stop_after_plan=True
        )
        cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    plan = cli.plan_recorder.plan
    if plan is None:
        raise RuntimeError("Training never started, so the schedule could not be planned; check the config.")
    path = plot_lr_plan(
        plan, options.output, title=f"LR schedule of {type(cli.model).__name__}", log_scale=options.log_scale
    )
    peak = max(max(lrs) for lrs in plan.lrs)
    print(f"lightning-lr: {len(plan.lrs[0])} optimizer steps, peak LR {peak:.4g}; plot: {path}")
    for note in plan.notes:
        print(f"lightning-lr: note: {note}")
    return plan


def find_lr_command(argv: Sequence[str]) -> LRFinderResult:
    """``lightning-lr find-lr``: run an LR range test on a config's model and data; print and plot."""
    parser = argparse.ArgumentParser(prog="lightning-lr find-lr", description=find_lr_command.__doc__)
    parser.add_argument("--config", action="append", required=True, help="YAML config (repeatable)")
    parser.add_argument("-o", "--output", default="lr_finder.png", help="PNG to write")
    parser.add_argument("--min-lr", type=float, default=1e-7)
    parser.add_argument("--max-lr", type=float, default=10.0)
    parser.add_argument("--num-steps", type=int, default=100)
    parser.add_argument("--rule", default="valley", help="steepest, valley, minimum or peak")
    options, overrides = parser.parse_known_args(list(argv))
    with tempfile.TemporaryDirectory(prefix="lightning-lr-find-") as scratch:
        cli = _scratch_cli(options.config, overrides, scratch)
        result = find_lr(
            cli.model,
            datamodule=cli.datamodule,
            trainer=cli.trainer,
            min_lr=options.min_lr,
            max_lr=options.max_lr,
            num_steps=options.num_steps,
            rule=options.rule,
        )
    path = result.plot(options.output, title=f"LR range test of {type(cli.model).__name__}")
    for name, suggestion in result.suggestions.items():
        value = "none" if suggestion.lr is None else f"{suggestion.lr:.3g}"
        default = " (default)" if name == result.rule else ""
        print(f"lightning-lr: {name}{default}: {value} ({suggestion.reason})")
    print(f"lightning-lr: {len(result.losses)} steps; plot: {path}")
    return result


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "plot-schedule":
        plot_schedule(args[1:])
        return
    if args and args[0] == "find-lr":
        find_lr_command(args[1:])
        return
    LightningLRCLI(args=None if argv is None else args)


if __name__ == "__main__":
    main()
