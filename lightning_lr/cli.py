"""``lightning-lr``: LightningCLI's ``fit``/``validate``/``test``/``predict`` on
:class:`~lightning_lr.cli_base.LightningLRCLI`, plus ``plot-schedule``, ``find-lr`` and ``search``
(:mod:`lightning_lr.commands`).

lightning-lr fit --config configs/mnist1d.yaml
lightning-lr plot-schedule --config configs/mnist1d.yaml -o schedule.png
lightning-lr search --config configs/mnist1d.yaml --n_trials 20
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence

from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.utilities import rank_zero_only

from lightning_lr.cli_base import SUBCOMMANDS, USAGE, LightningLRCLI, normalize_flags
from lightning_lr.cli_errors import USER_ERRORS, CommandLineError, did_you_mean, parse_error_message
from lightning_lr.commands import COMMANDS
from lightning_lr.logs import quiet_cli

_REPORTED: tuple[type[BaseException], ...] = (*USER_ERRORS, MisconfigurationException)
"""Errors ``console`` says in one line: bad input, and Lightning's own misconfiguration errors."""


def overview() -> str:
    """What ``lightning-lr --help`` prints: the usage and every subcommand's purpose."""
    width = max(len(name) for name in SUBCOMMANDS)
    lines = [f"usage: {USAGE}", "", "subcommands:"]
    lines += [f"  {name:<{width}}  {purpose}" for name, purpose in SUBCOMMANDS.items()]
    lines += [
        "",
        "options:",
        "  -h, --help     this overview; `lightning-lr SUBCOMMAND --help` shows a subcommand's options",
        "  --traceback    on an error, show where it was raised",
        "",
        "Options are written --snake_case (--kebab-case works too).",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """Run ``lightning-lr`` with ``argv`` (default: the command line); errors are raised."""
    args = [arg for arg in normalize_flags(sys.argv[1:] if argv is None else argv) if arg != "--traceback"]
    if not args or args[0] in ("-h", "--help"):
        print(overview())
        return
    name = args[0]
    if name not in SUBCOMMANDS:
        raise CommandLineError(
            f"`{name}` is not a subcommand.{did_you_mean(name, SUBCOMMANDS)} "
            f"Subcommands: {', '.join(SUBCOMMANDS)}."
        )
    with quiet_cli():
        if name in COMMANDS:
            COMMANDS[name](args[1:])
            return
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore", message=".*args parameter is intended to run from within Python"
            )
            LightningLRCLI(args=args)


def console(argv: Sequence[str] | None = None) -> None:
    """The ``lightning-lr`` script: a user's mistake in one line (``--traceback`` for the trace)."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        main(args)
    except _REPORTED as error:
        if "--traceback" in args:
            raise
        name = args[0] if args and args[0] in SUBCOMMANDS else None
        _complain(one_line(error), f"lightning-lr {name} --help" if name else "lightning-lr --help")
        raise SystemExit(2) from None


def one_line(error: BaseException) -> str:
    """The message of a user error, without the nesting a parser may have wrapped it in."""
    text = str(error).strip()
    return parse_error_message(text) if "\n" in text else text


@rank_zero_only
def _complain(message: str, help_command: str) -> None:
    print(f"lightning-lr: error: {message}", file=sys.stderr)
    print(
        f"lightning-lr: `{help_command}` shows the options; --traceback shows where it was raised.",
        file=sys.stderr,
    )


if __name__ == "__main__":
    console()
