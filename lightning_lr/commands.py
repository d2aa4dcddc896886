"""The ``lightning-lr`` subcommands besides LightningCLI's own: ``plot-schedule``, ``find-lr``, ``search``.

Each instantiates the config's model, data and Trainer without running them (in a scratch folder),
then draws the LR plan, runs a range test, or runs a search study whose trials are the config.
Their options are ``--snake_case`` (``--kebab-case`` works too); any other option must be a config
override (``--trainer.max_epochs=3``), and anything else is refused with the subcommand's help.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lightning_lr.cli_base import LightningLRCLI
from lightning_lr.command_parser import SubcommandParser, purpose
from lightning_lr.finder.result import FinderSettings, LRFinderResult
from lightning_lr.finder.sweep import find_lr
from lightning_lr.logs import quiet_lightning
from lightning_lr.plot import plot_lr_finder, plot_lr_plan, plot_search
from lightning_lr.preview import LRPlan

if TYPE_CHECKING:
    from lightning_lr.search import SearchResult, TrialPruning


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
    parser = SubcommandParser(
        "plot-schedule", purpose("plot-schedule", "Nothing is trained and only the PNG is written.")
    )
    parser.add_argument("-o", "--output", default="lr_schedule.png", help="PNG to write")
    parser.add_argument("--log_scale", action="store_true", help="logarithmic LR axis")
    options, overrides = parser.split(argv)
    with tempfile.TemporaryDirectory(prefix="lightning-lr-plan-") as scratch:
        cli = _scratch_cli(
            options.config,
            [*overrides, "--trainer.enable_progress_bar=false"],
            scratch,
            stop_after_plan=True,
            without_finder=True,
        )
        with quiet_lightning():  # the fit stops before its first step: the callbacks have nothing to say
            cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    plan = cli.plan_recorder.plan
    if plan is None:
        raise RuntimeError("Training never started, so the schedule could not be planned; check the config.")
    if cli.finders_left_out:
        plan.notes.append(
            "the config's LRFinder replaces the peak LR when training starts (every group by the same "
            f"factor); drawn at the config's lr, {cli.model.hparams.get('lr', 'its LR')}."
        )
    path = plot_lr_plan(
        plan, options.output, title=f"LR schedule of {type(cli.model).__name__}", log_scale=options.log_scale
    )
    peak = max(max(lrs) for lrs in plan.lrs)
    steps = len(plan.lrs[0])
    print(f"lightning-lr: {steps} optimizer steps, peak LR {peak:.4g}; plot: {Path(path).resolve()}")
    for note in plan.notes:
        print(f"lightning-lr: note: {note}")
    return plan


def find_lr_command(argv: Sequence[str]) -> LRFinderResult:
    """``lightning-lr find-lr``: run an LR range test on a config's model and data; print and plot."""
    parser = SubcommandParser("find-lr", purpose("find-lr", "Nothing is trained; the weights are put back."))
    parser.add_argument("-o", "--output", default="lr_finder.png", help="PNG to write")
    FinderSettings.add_arguments(parser)
    options, overrides = parser.split(argv)
    # find_lr also reports the rules through Lightning's info log; here they are printed below, once
    info = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    level = info.level
    with tempfile.TemporaryDirectory(prefix="lightning-lr-find-") as scratch:
        cli = _scratch_cli(options.config, overrides, scratch)
        info.setLevel(logging.WARNING)
        try:
            result = find_lr(
                cli.model,
                datamodule=cli.datamodule,
                trainer=cli.trainer,
                settings=FinderSettings.from_namespace(options),
            )
        finally:
            info.setLevel(level)
    path = plot_lr_finder(result, options.output, title=f"LR range test of {type(cli.model).__name__}")
    for name, suggestion in result.suggestions.items():
        value = "none" if suggestion.lr is None else f"{suggestion.lr:.3g}"
        default = " (default)" if name == result.rule else ""
        print(f"lightning-lr: {name}{default}: {value} ({suggestion.reason})")
    settings = ", ".join(f"{key}={value}" for key, value in result.settings.items())
    print(f"lightning-lr: settings used: {settings}")
    print(f"lightning-lr: {len(result.sweeps)} sweeps, {len(result.losses)} steps at most; plot: {path}")
    return result


_TRIAL_DEFAULTS = ("--trainer.enable_checkpointing=false", "--trainer.enable_progress_bar=false")


@dataclass(frozen=True)
class _ConfigTrial:
    """Fits one search trial from a config: the trial's hparams override the model's init_args.

    The trial's ``lr`` is given on the command line, so a ``LRFinder`` of the config is left out
    (it would replace the searched LR by its own pick).
    """

    configs: Sequence[str]
    overrides: Sequence[str]

    def __call__(self, hparams: dict[str, Any], pruning: TrialPruning, trial_dir: Path) -> None:
        from lightning_lr.search.space import hparams_to_cli_args

        cli = _scratch_cli(
            self.configs,
            [*_TRIAL_DEFAULTS, *self.overrides, *hparams_to_cli_args(hparams)],
            str(trial_dir),
            trainer_defaults={"callbacks": [pruning]},
            announce=False,
        )
        cli.trainer.fit(cli.model, datamodule=cli.datamodule)


def _config_fingerprint(
    configs: Sequence[str], overrides: Sequence[str], settings: dict[str, Any]
) -> tuple[str, bool]:
    """A short hash of the resolved config and the search settings, and whether it has an LRFinder.

    The config is parsed (not instantiated) up front, so a bad override fails here, before any trial.
    """
    parsed = _scratch_cli(
        configs, [*_TRIAL_DEFAULTS, *overrides], "<trial_dir>", parse_only=True, without_finder=True
    )
    resolved = parsed.parser.dump(parsed.config, skip_check=True)
    text = json.dumps({"config": resolved, **settings}, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:12], bool(parsed.finders_left_out)


def search_command(argv: Sequence[str]) -> SearchResult:
    """``lightning-lr search``: search a config's peak LR with Optuna; print the trials, plot them.

    Workers started with the same command in the same directory join one study (SQLite under
    ``--run_dir``); each trial logs under ``<run_dir>/<study_name>/trial_<number>/``.
    """
    # the optional `search` extra
    from lightning_lr.search import SearchSettings, SearchSpace, run_study
    from lightning_lr.search.samplers import PRUNERS, SAMPLERS, listed

    parser = SubcommandParser(
        "search",
        purpose(
            "search",
            "Workers started with the same command in the same directory join one study; a study "
            "run with another config or other search settings is refused. A LRFinder of the config is "
            "left out of the trials, which train at the LR the search gives them.",
        ),
    )
    parser.add_argument("--n_trials", type=int, default=20, help="trials this worker runs")
    parser.add_argument("--storage", default=None, help="database URL (default: SQLite in --run_dir)")
    parser.add_argument("--sampler", default="tpe", help=listed(SAMPLERS))
    parser.add_argument("--pruner", default="median", help=listed(PRUNERS))
    parser.add_argument("--study_name", default="lightning-lr-search", help="the study to create or join")
    parser.add_argument(
        "--run_dir", default="lightning_lr_search", help="trial logs and the default database"
    )
    parser.add_argument(
        "--lr_range", type=float, nargs=2, default=(1e-5, 1.0), metavar=("LOW", "HIGH"), help="LR range (log)"
    )
    parser.add_argument(
        "--weight_decay_range", type=float, nargs=2, metavar=("LOW", "HIGH"), help="weight decay range (log)"
    )
    parser.add_argument(
        "--warmup_range", type=float, nargs=2, metavar=("LOW", "HIGH"), help="warmup, fractions of the run"
    )
    parser.add_argument("--schedules", help="schedule families, e.g. cosine,onecycle")
    parser.add_argument("--grid_size", type=int, default=8, help="points per axis of the grid sampler")
    parser.add_argument("--monitor", default="val_loss", help="the validation metric a trial is judged by")
    parser.add_argument("--mode", default="min", help="min or max")
    parser.add_argument("--score", default="best", help="judge a trial by its best or last value")
    parser.add_argument("--seed", type=int, default=None, help="seed of the sampler")
    parser.add_argument("--timeout", type=float, default=None, help="seconds before no new trial starts")
    parser.add_argument("--first_lr", type=float, default=None, help="the first trial's LR, e.g. find-lr's")
    parser.add_argument("-o", "--output", default=None, help="PNG to write (default: next to the database)")
    options, overrides = parser.split(argv)
    space = SearchSpace(
        lr=tuple(options.lr_range),
        weight_decay=None if options.weight_decay_range is None else tuple(options.weight_decay_range),
        warmup=None if options.warmup_range is None else tuple(options.warmup_range),
        schedule=None
        if options.schedules is None
        else [name.strip() for name in options.schedules.split(",")],
        grid_size=options.grid_size,
    )
    settings = {
        "space": repr(space),
        "monitor": options.monitor,
        "mode": options.mode,
        "score": options.score,
    }
    fingerprint, has_finder = _config_fingerprint(options.config, overrides, settings)
    if has_finder:
        print(
            "lightning-lr: the config's LRFinder is left out of the trials: each trains at the LR searched."
        )
    search = SearchSettings(
        space=space,
        monitor=options.monitor,
        mode=options.mode,
        n_trials=options.n_trials,
        sampler=options.sampler,
        pruner=options.pruner,
        storage=options.storage,
        study_name=options.study_name,
        run_dir=options.run_dir,
        seed=options.seed,
        timeout=options.timeout,
        score=options.score,
        first_lr=options.first_lr,
    )
    result = run_study(_ConfigTrial(options.config, overrides), search, fingerprint=fingerprint)
    print(result.table())
    if result.best_lr is None:
        print(f"lightning-lr: no best LR: {result.reason}")
    else:
        print(
            f"lightning-lr: best lr {result.best_lr:.4g} ({result.monitor} {result.best_value:.4g}, "
            f"trial {result.best_number} of {len(result.trials)}); params: {result.best_params}"
        )
    output = options.output or Path(options.run_dir) / f"{options.study_name}.png"
    path = plot_search(result, output, title=f"LR search: {options.study_name}")
    print(f"lightning-lr: study {result.study_name!r} in {result.storage_url}; plot: {path}")
    return result


COMMANDS: dict[str, Callable[[Sequence[str]], Any]] = {
    "plot-schedule": plot_schedule,
    "find-lr": find_lr_command,
    "search": search_command,
}
"""The subcommands of ``lightning-lr`` besides LightningCLI's, by name."""
