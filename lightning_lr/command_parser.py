"""The options of the ``lightning-lr`` subcommands besides LightningCLI's: one parser for them all.

Defaults shown in the help, plain text, ``--snake_case`` with ``--kebab-case`` aliases, mistakes
raised as one line; any option that is neither the subcommand's nor a config override
(``--trainer.max_epochs=3``) is refused with the subcommand's help.
"""

from __future__ import annotations

import argparse
import textwrap
from collections.abc import Sequence
from typing import NoReturn

from lightning_lr._internals import argparse_help_formatter
from lightning_lr.cli_base import SUBCOMMANDS, normalize_flags, plain
from lightning_lr.cli_errors import CommandLineError, did_you_mean

CONFIG_SECTIONS = ("seed_everything", "trainer", "model", "data", "lr_plot", "test_after_fit")
"""The roots of the config overrides a subcommand passes on to the config."""


def _with_default(action: argparse.Action) -> str:
    """An option's help, then its default when it has one."""
    text = action.help or ""
    if action.default not in (None, False, argparse.SUPPRESS) and action.option_strings:
        default = action.default
        shown = " ".join(map(str, default)) if isinstance(default, (list, tuple)) else default
        text += f" (default: {shown})"
    return text


def _plain_lines(text: str, width: int) -> list[str]:
    """Help text without reST markup, wrapped at ``width``: names and paths never split at a hyphen."""
    return textwrap.wrap(" ".join(plain(text).split()), width, break_on_hyphens=False)


_HelpFormatter = argparse_help_formatter(_with_default, _plain_lines)
"""Each option's default after its help (when it has one); names and paths never split at a hyphen."""


class SubcommandParser(argparse.ArgumentParser):
    """A subcommand's options: defaults in the help, mistakes raised in one line, not printed."""

    def __init__(self, command: str, description: str) -> None:
        super().__init__(
            prog=f"lightning-lr {command}",
            description=description,
            formatter_class=_HelpFormatter,
            allow_abbrev=False,
            epilog="Any --section.key=value (e.g. --trainer.max_epochs=3) overrides the config, as in "
            "`lightning-lr fit`. Options are written --snake_case; --kebab-case works too.",
        )
        self.add_argument("--config", action="append", required=True, help="YAML config (repeatable)")

    def error(self, message: str) -> NoReturn:
        raise CommandLineError(f"{message} (`{self.prog}`).")

    def split(self, argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
        """The subcommand's options, and the config overrides; any other option is refused."""
        options, rest = self.parse_known_args(normalize_flags(argv))
        known = [option for action in self._actions for option in action.option_strings]
        for index, arg in enumerate(rest):
            name = arg.split("=", 1)[0]
            follows_override = index > 0 and rest[index - 1].startswith("--") and "=" not in rest[index - 1]
            if name.startswith("--") and name[2:].split(".")[0] in CONFIG_SECTIONS:
                continue
            if not name.startswith("-") and follows_override:
                continue
            hint = did_you_mean(name, known, form="`{}`")
            raise CommandLineError(
                f"`{name}` is not an option of `{self.prog}`.{hint} Its options: "
                f"{', '.join(option for option in known if option.startswith('--'))}; config overrides "
                f"start with --{', --'.join(CONFIG_SECTIONS[:4])}."
            )
        return options, rest


def purpose(command: str, more: str) -> str:
    """The subcommand's one-line purpose (as ``lightning-lr --help`` lists it), then ``more``."""
    return f"{SUBCOMMANDS[command][0].upper()}{SUBCOMMANDS[command][1:]}. {more}"
