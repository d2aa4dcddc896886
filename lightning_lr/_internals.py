"""The one door to Lightning's, torch's, argparse's and jsonargparse's private API.

Every use of something a library does not promise to keep (a private name, a loop's attributes, a
private hook) goes through a function here, whose docstring names the behaviour relied on; each
has a test of its own in ``tests/test_internals.py``, so an upgrade that changes one fails there
first, and nowhere else. Nothing else in the package touches these names.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import lightning.pytorch as pl
import torch
from jsonargparse import DefaultHelpFormatter
from lightning.fabric.utilities.types import _PATH
from lightning.pytorch.callbacks.progress.tqdm_progress import Tqdm
from lightning.pytorch.utilities import rank_zero_only
from torch.optim.lr_scheduler import LRScheduler

CheckpointPath = _PATH
"""The path type of Lightning's ``CheckpointIO`` hooks (``str | Path``): private in
``lightning.fabric.utilities.types``, so an override keeps the signature it overrides."""

ProgressBar = Tqdm
"""Lightning's own ``tqdm``, which prints numbers the way its progress bar does (no private name,
but not exported either): a bar drawn by lightning_lr looks like Lightning's."""

_Scheduler = TypeVar("_Scheduler", bound=type[LRScheduler])


def process_rank() -> int:
    """This process's global rank as Lightning's rank-zero helpers know it (0 outside DDP).

    Relies on Lightning setting ``rank_zero_only.rank`` when it starts a process of a run; before any
    Trainer, or when it is unset, the process is taken as rank zero.
    """
    return int(getattr(rank_zero_only, "rank", 0))


def with_closed_form(scheduler_class: _Scheduler) -> _Scheduler:
    """Let torch use ``get_lr`` as the scheduler's closed form (a class decorator).

    Relies on torch's ``LRScheduler.step(epoch)`` (and ``SequentialLR``, which calls ``step(0)`` at a
    milestone) setting ``last_epoch = epoch`` and then calling the private
    ``_get_closed_form_lr()`` when the class defines it, instead of the chainable ``get_lr()``.
    """
    scheduler_class._get_closed_form_lr = scheduler_class.get_lr  # type: ignore[attr-defined]
    return scheduler_class


foreach_norm: Callable[[Sequence[torch.Tensor]], list[torch.Tensor]] | None = getattr(
    torch, "_foreach_norm", None
)
"""torch's private fused ``_foreach_norm``: the 2-norm of each tensor, in one kernel per device and
dtype (what ``torch.nn.utils.get_total_norm`` uses); ``None`` if a torch release drops it."""


def fit_is_restarting(trainer: pl.Trainer) -> bool:
    """Whether the fit loop is resuming from a checkpoint and has not finished its first epoch since.

    Relies on ``trainer.fit_loop.restarting`` being true from the checkpoint's restore until the
    resumed epoch ends, and Lightning then skipping the epoch-end step of ``ReduceLROnPlateau``.
    """
    return bool(trainer.fit_loop.restarting)


def at_last_batch_of_epoch(trainer: pl.Trainer) -> bool:
    """Whether the batch the fit loop is on (or has just run) is the last one of its epoch.

    Relies on ``trainer.fit_loop.epoch_loop.batch_progress.is_last_batch``, set when the batch is
    fetched and kept through its end hooks and any checkpoint saved then.
    """
    return bool(trainer.fit_loop.epoch_loop.batch_progress.is_last_batch)


def run_fit_validation(trainer: pl.Trainer) -> None:
    """Run the fit's own validation loop now, as a fresh pass, from inside ``on_train_start``.

    Relies on the fit's ``epoch_loop.val_loop`` running the validation dataloaders with the
    callbacks' and loggers' validation hooks when ``run()`` is called with ``restarting`` off and
    ``trainer.validating`` set, and on ``trainer.training = True`` switching the Trainer back to
    fitting afterwards.
    """
    val_loop = trainer.fit_loop.epoch_loop.val_loop
    val_loop.restarting = False  # a fresh pass over the validation data, not a continuation
    trainer.validating = True
    try:
        val_loop.run()
    finally:
        trainer.training = True


def load_fit_train_data(trainer: pl.Trainer) -> None:
    """Load the fit's train dataloader now, if the fit has not yet.

    Relies on ``trainer.fit_loop.setup_data()`` setting ``trainer.train_dataloader`` and
    ``trainer.num_training_batches`` (``estimated_stepping_batches`` loads it only when it needs the
    epoch length, not when ``max_steps`` alone decides).
    """
    if trainer.train_dataloader is None:
        trainer.fit_loop.setup_data()


def release_fit_train_data(trainer: pl.Trainer) -> None:
    """Undo :func:`load_fit_train_data`, so that Lightning loads the train data again when fit runs.

    Lightning restores a resumable loader's position (``state_dict``/``load_state_dict``, e.g.
    torchdata's ``StatefulDataLoader``) only while it loads the train data itself, after the
    checkpoint is restored. Relies on the fit loop's private ``_data_fetcher`` and
    ``_combined_loader`` being what ``setup_data()`` checks to decide that the data is loaded
    already: with both cleared it loads the data (and restores the position) again. Lightning has
    no public way to do this.
    """
    loop = trainer.fit_loop
    if loop._data_fetcher is not None:
        loop._data_fetcher.teardown()
        loop._data_fetcher = None
    loop._combined_loader = None


def option_names(parser: Any, given: Sequence[str]) -> list[str]:
    """The option keys a jsonargparse parser takes, or its chosen subcommand's parser, for a "did you mean".

    Relies on the private ``_subcommands_action._name_parser_map`` (subcommand -> its parser) and
    ``_actions`` (argparse's list of options) of a LightningCLI parser.
    """
    subcommands = getattr(parser, "_subcommands_action", None)
    chosen = next((arg for arg in given if not arg.startswith("-")), None)
    if subcommands is not None and chosen in getattr(subcommands, "_name_parser_map", {}):
        parser = subcommands._name_parser_map[chosen]
    return [str(action.dest) for action in getattr(parser, "_actions", [])]


def argparse_help_formatter(
    help_text: Callable[[argparse.Action], str], split_lines: Callable[[str, int], list[str]]
) -> type[argparse.HelpFormatter]:
    """An argparse help formatter whose options' help is ``help_text(action)``, wrapped by ``split_lines``.

    Relies on ``argparse.HelpFormatter`` taking each option's help from the private
    ``_get_help_string(action)`` (before it expands ``%(...)s``), and wrapping it into lines of at
    most ``width`` characters with the private ``_split_lines(text, width)``. argparse documents
    only its formatter classes, not these hooks, which its own ``ArgumentDefaultsHelpFormatter``
    and ``RawTextHelpFormatter`` override.
    """

    class HelpFormatter(argparse.HelpFormatter):
        def _get_help_string(self, action: argparse.Action) -> str | None:
            return help_text(action)

        def _split_lines(self, text: str, width: int) -> list[str]:
            return split_lines(text, width)

    return HelpFormatter


def jsonargparse_help_formatter(transform: Callable[[str], str]) -> type[DefaultHelpFormatter]:
    """jsonargparse's help formatter (types and defaults shown), with ``transform`` applied to its texts.

    Relies on ``DefaultHelpFormatter`` building each option's help (the help, then its type and
    default) in the private ``_expand_help(action)``, and formatting the parser's description,
    epilog and group descriptions through argparse's private ``_format_text(text)``.
    """

    class HelpFormatter(DefaultHelpFormatter):
        def _expand_help(self, action: argparse.Action) -> str:
            return transform(super()._expand_help(action))

        def _format_text(self, text: str) -> str:
            return super()._format_text(transform(text))

    return HelpFormatter
