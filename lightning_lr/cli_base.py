"""The base every ``lightning-lr`` subcommand builds on: ``LightningLRCLI`` (LightningCLI for
lightning_lr), the subcommands' names and usage, and how their flags are read.

:mod:`lightning_lr.cli` runs a subcommand; :mod:`lightning_lr.commands` holds those besides
LightningCLI's own. Both import this module, never the other way round.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.plugins.io import CheckpointIO, TorchCheckpointIO
from lightning.pytorch.utilities import rank_zero_only

from lightning_lr._internals import jsonargparse_help_formatter, option_names
from lightning_lr.callbacks.plan_recorder import PlanAtTrainStart
from lightning_lr.checkpoint_io import AtomicCheckpointIO
from lightning_lr.cli_config import leave_out_finders, refuse_optimizer_flags
from lightning_lr.cli_errors import CommandLineError, parse_error_message
from lightning_lr.plot import plot_lr_plan

SUBCOMMANDS = {
    "fit": "train a model from a config (LightningCLI), then plot the LR it used",
    "validate": "validate a model from a config (LightningCLI)",
    "test": "test a model from a config (LightningCLI)",
    "predict": "predict with a model from a config (LightningCLI)",
    "plot-schedule": "draw the LR a config will use at every step, without training",
    "find-lr": "run an LR range test on a config's model and data; print every rule's pick",
    "search": "search a config's peak LR (and warmup, schedule) with Optuna",
}
"""Every subcommand and what it is for, as ``lightning-lr --help`` lists them."""

USAGE = """lightning-lr {fit,validate,test,predict} --config CONFIG.yaml [--section.key=value ...]
       lightning-lr plot-schedule --config CONFIG.yaml [-o schedule.png] [--log_scale] [overrides ...]
       lightning-lr find-lr --config CONFIG.yaml [-o lr_finder.png] [--rule peak] [overrides ...]
       lightning-lr search --config CONFIG.yaml [--n_trials 20] [--storage URL] [overrides ...]"""

_LR_FLAGS = ("--model.init_args.lr", "--model.lr")


def plain(text: str) -> str:
    """Help text without reST markup: ``code`` and :class:`~path.Name` roles as plain words."""
    text = re.sub(r":\w+:`~?(?:[\w.]+\.)?([^`.]+)`", r"\1", text)
    return text.replace("``", "")


_PlainHelpFormatter = jsonargparse_help_formatter(plain)
"""jsonargparse's help (types and defaults) in plain text: docstrings lose their reST markup."""


class LightningLRCLI(LightningCLI):
    """LightningCLI with any LightningModule/DataModule by ``class_path``, and two extra options.

    ``--lr_plot PATH`` writes, after fit, a PNG of the LR the run used (relative paths land in the
    run's log directory; ``null`` skips it). ``--test_after_fit true`` tests the trained weights
    and prints the test metrics. The config saved next to the logs may be overwritten, so resuming
    in the same directory with ``--ckpt_path`` works. Checkpoints are written atomically
    (:class:`~lightning_lr.checkpoint_io.AtomicCheckpointIO`) unless ``trainer.plugins`` names a
    CheckpointIO or the strategy brings its own: a run killed while saving leaves the previous
    checkpoint intact.

    An ``lr`` given on the command line (``--model.init_args.lr``) is the LR the run trains at: a
    ``LRFinder`` in the config is left out (and, with ``announce``, a line says so).
    LightningCLI's ``--optimizer``/``--lr_scheduler`` are refused for a ``ConfigureOptimizersMixin``
    model, whose own optimizer and schedule they would silently replace. Parse errors are raised
    as one-line :class:`~lightning_lr.cli_errors.CommandLineError`.

    Args:
        stop_after_plan: end fit when training starts, once the LR plan is recorded.
        without_finder: leave any ``LRFinder`` of the config out.
        announce: say when an ``LRFinder`` is left out for an ``lr`` given on the command line.
        parse_only: parse and check the config, instantiate nothing.
    """

    def __init__(
        self,
        *args: Any,
        stop_after_plan: bool = False,
        without_finder: bool = False,
        announce: bool = True,
        parse_only: bool = False,
        **kwargs: Any,
    ) -> None:
        self.plan_recorder = PlanAtTrainStart(stop=stop_after_plan)
        self.without_finder = without_finder
        self.announce = announce
        self.parse_only = parse_only
        self.finders_left_out: list[str] = []
        self.lr_given = False
        defaults = dict(kwargs.pop("trainer_defaults", None) or {})
        defaults["callbacks"] = [*list(defaults.get("callbacks", [])), self.plan_recorder]
        kwargs.setdefault("subclass_mode_model", True)
        kwargs.setdefault("subclass_mode_data", True)
        kwargs.setdefault("save_config_kwargs", {"overwrite": True})
        # errors are raised, not printed with the whole usage: `console` says them in one line
        plain_errors = {"exit_on_error": False, "formatter_class": _PlainHelpFormatter}
        parser_kwargs: dict[str, Any] = dict(plain_errors)
        if kwargs.get("run", True):
            parser_kwargs["usage"] = USAGE
            parser_kwargs.update({name: dict(plain_errors) for name in self.subcommands()})
        kwargs.setdefault("parser_kwargs", parser_kwargs)
        kwargs["trainer_defaults"] = defaults
        # no datamodule class: `data` stays optional, for modules that bring their own dataloaders
        super().__init__(pl.LightningModule, None, *args, **kwargs)

    def parse_arguments(self, parser: Any, args: Any) -> None:
        given = [str(arg) for arg in (sys.argv[1:] if args is None else args)]
        self.lr_given = any(arg.split("=", 1)[0] in _LR_FLAGS for arg in given)
        try:
            super().parse_arguments(parser, args)
        except argparse.ArgumentError as error:
            raise CommandLineError(parse_error_message(str(error), option_names(parser, given))) from None

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        refuse_optimizer_flags(config)
        if self.without_finder or self.lr_given:
            self.finders_left_out = leave_out_finders(config)
        if self.finders_left_out and self.lr_given and self.announce:
            lr = (config.get("model") or {}).get("init_args", {}).get("lr")
            _say(f"`model.init_args.lr`={lr} given: the config's LRFinder is left out, the run trains at it.")

    def instantiate_classes(self) -> None:
        if not self.parse_only:
            super().instantiate_classes()

    def instantiate_trainer(self, **kwargs: Any) -> pl.Trainer:
        trainer = super().instantiate_trainer(**kwargs)
        # Lightning's plain writer, which nobody chose: not a strategy's own (XLA), not the user's.
        # Set here rather than in `trainer_defaults`, where any `plugins:` in a config would drop it.
        config = self.config_init[self.subcommand] if self.subcommand else self.config_init
        plugins = kwargs.get("plugins", (config.get("trainer") or {}).get("plugins"))
        chosen = plugins if isinstance(plugins, list) else [plugins]
        if type(trainer.strategy.checkpoint_io) is TorchCheckpointIO and not any(
            isinstance(plugin, CheckpointIO) for plugin in chosen
        ):
            trainer.strategy.checkpoint_io = AtomicCheckpointIO()
        return trainer

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


def normalize_flags(args: Sequence[str]) -> list[str]:
    """``--kebab-case`` option names as Lightning's ``--snake_case`` (values are left alone)."""
    normal = []
    for arg in args:
        if arg.startswith("--") and len(arg) > 2:
            name, equals, value = arg.partition("=")
            arg = "--" + name[2:].replace("-", "_") + equals + value
        normal.append(arg)
    return normal
