"""``lightning-lr``: LightningCLI for lightning_lr, plus ``plot-schedule``, ``find-lr`` and ``search``
(those three in :mod:`lightning_lr.commands`).

lightning-lr fit --config configs/mnist1d.yaml
lightning-lr plot-schedule --config configs/mnist1d.yaml -o schedule.png
lightning-lr search --config configs/mnist1d.yaml --n-trials 20
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lightning.pytorch as pl
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.plugins.io import CheckpointIO, TorchCheckpointIO
from lightning.pytorch.utilities import rank_zero_only

from lightning_lr.checkpoint_io import AtomicCheckpointIO
from lightning_lr.plot import plot_lr_plan
from lightning_lr.preview import PlanAtTrainStart

if TYPE_CHECKING:
    pass

USAGE = """lightning-lr {fit,validate,test,predict} --config CONFIG.yaml [--section.key=value ...]
       lightning-lr plot-schedule --config CONFIG.yaml [-o schedule.png] [--log-scale] [overrides ...]
       lightning-lr find-lr --config CONFIG.yaml [-o lr_finder.png] [--rule peak] [overrides ...]
       lightning-lr search --config CONFIG.yaml [--n-trials 20] [--storage URL] [overrides ...]"""


class LightningLRCLI(LightningCLI):
    """LightningCLI with any LightningModule/DataModule by ``class_path``, and two extra options.

    ``--lr_plot PATH`` writes, after fit, a PNG of the LR the run used (relative paths land in the
    run's log directory; ``null`` skips it). ``--test_after_fit true`` tests the trained weights
    and prints the test metrics. The config saved next to the logs may be overwritten, so resuming
    in the same directory with ``--ckpt_path`` works. Checkpoints are written atomically
    (:class:`~lightning_lr.checkpoint_io.AtomicCheckpointIO`) unless ``trainer.plugins`` names a
    CheckpointIO or the strategy brings its own: a run killed while saving leaves the previous
    checkpoint intact.
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
        # no datamodule class: `data` stays optional, for modules that bring their own dataloaders
        super().__init__(pl.LightningModule, None, *args, **kwargs)

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


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    from lightning_lr.commands import find_lr_command, plot_schedule, search_command

    if args and args[0] == "plot-schedule":
        plot_schedule(args[1:])
        return
    if args and args[0] == "find-lr":
        find_lr_command(args[1:])
        return
    if args and args[0] == "search":
        search_command(args[1:])
        return
    LightningLRCLI(args=None if argv is None else args)


if __name__ == "__main__":
    main()
