"""What the command line says about a user's mistake: one short line, the fix, a close name when there is one.

LightningCLI's parser (jsonargparse) reports a bad value as a tree of every union member it tried;
:func:`parse_error_message` walks that tree to the one leaf that matters and says it in the
library's error format. :func:`close_name` is the "did you mean" of every message here.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, TypeError, ImportError, FileNotFoundError)
"""Exceptions that come from what the user wrote (the library raises these for bad input)."""

ALIASES = {
    "learning_rate": "lr",
    "base_lr": "lr",
    "peak_lr": "lr",
    "max_lr": "lr",
    "scheduler": "schedule",
    "lr_schedule": "schedule",
    "lr_scheduler": "schedule",
    "wd": "weight_decay",
    "optimiser": "optimizer",
    "optim": "optimizer",
}
"""Names other libraries use for the mixin's hparams."""


class CommandLineError(ValueError):
    """A mistake on the command line or in a config, already said in one line."""


def close_name(name: str, names: Iterable[str]) -> str | None:
    """The known name closest to ``name`` (its usual alias first), or ``None`` when none is close."""
    known = list(names)
    alias = ALIASES.get(name)
    if alias in known:
        return alias
    lowered = {candidate.lower(): candidate for candidate in known}
    found = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
    if not found:  # a short name that starts a longer one: `cosine` for `CosineDecay`
        found = [low for low in lowered if len(name) >= 4 and low.startswith(name.lower())][:1]
    return lowered[found[0]] if found else None


def did_you_mean(name: str, names: Iterable[str], *, form: str = "`{}`") -> str:
    match = close_name(name, names)
    return "" if match is None else f" Did you mean {form.format(match)}?"


@dataclass(frozen=True)
class _Leaf:
    path: str
    text: str
    class_path: str | None
    subtypes: str
    value: str | None


_KEY = re.compile(r'^(?:- )?Parser key "([^"]+)":\s*(.*)$')
_CLASS = re.compile(r"^(?:- )?Problem with given class_path '([^']+)':\s*$")
_STRUCTURE = (
    "Does not validate against any of the Union subtypes",
    "Errors:",
    "Given value type:",
    "Expected a <class 'NoneType'>",
    "Expected a path but",
)


def parse_error_message(text: str, option_names: Sequence[str] = ()) -> str:
    """One line for jsonargparse's error ``text``; ``option_names`` are the parser's known keys."""
    unknown = re.search(r"unrecognized arguments: (.+)", text)
    if unknown:
        return _unknown_options(unknown.group(1).split(), option_names)
    required = re.search(r"the following arguments are required: ([\w.]+)", text)
    if required and required.group(1).endswith("model"):
        fix = "Give a config with a `model:` section (--config CONFIG.yaml), or --model CLASS_PATH."
        return f"`model` is missing. {fix}"
    missing = re.search(r"File does not exist: '([^']+)'", text)
    if missing:
        return f"`--config` names no file, got {missing.group(1)!r}. Give the path of a YAML config."
    for line in text.splitlines():  # the library's own message, raised inside a class jsonargparse built
        mine = re.match(r"^\s*(?:- )?(`[^`]+` .*got .*)$", line)
        if mine:
            return mine.group(1)
    leaves = _leaves(text.splitlines())
    for leaf in leaves:
        option = re.match(r"Option '([^']+)' is not accepted", leaf.text)
        if option and leaf.class_path:
            return _unknown_init_arg(leaf.path, leaf.class_path, option.group(1))
    for leaf in leaves:
        import_path = re.match(r"Expected a dot import path string: (.+)$", leaf.text)
        if import_path:
            return _unknown_class(leaf.path, import_path.group(1).strip(), leaf.subtypes)
    if leaves:
        leaf = leaves[0]
        value = "" if leaf.value is None else f", got {leaf.value}"
        expected = re.match(r"Expected a <class '([\w.]+)'>$", leaf.text)
        if expected:
            return f"`{leaf.path}` must be {_article(expected.group(1))}{value}."
        literal = re.match(r"Expected a typing\.Literal\[(.*)\]", leaf.text)
        if literal:
            choices = re.findall(r"'([^']*)'", literal.group(1))
            given = re.search(r"Got value: (.*)$", leaf.text)
            hint = did_you_mean(given.group(1).rstrip("."), choices, form="'{}'") if given else ""
            listed = ", ".join(repr(choice) for choice in choices)
            return f"`{leaf.path}` must be one of {listed}{value}.{hint}"
        return f"`{leaf.path}` is not valid{value}: {leaf.text.rstrip('.')}."
    return text.strip().splitlines()[0] if text.strip() else "the arguments could not be parsed."


def _article(type_name: str) -> str:
    names = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string"}
    return names.get(type_name, f"a {type_name}")


def _leaves(lines: list[str]) -> list[_Leaf]:
    """The error lines of the tree, each with the config key it is about and its class context."""
    stack: list[tuple[int, str, str | None]] = []  # (indent, key part, class_path)
    leaves: list[tuple[_Leaf, int]] = []
    subtypes = ""
    for index, raw in enumerate(lines):
        indent = len(raw) - len(raw.lstrip())
        line = raw.strip()
        if not line:
            continue
        while stack and stack[-1][0] >= indent:
            stack.pop()
        key = _KEY.match(line)
        classed = _CLASS.match(line)
        if key:
            stack.append((indent, key.group(1), None))
            if key.group(2):
                leaves.append((_leaf(stack, key.group(2), subtypes), index))
            continue
        if classed:
            stack.append((indent, "init_args", classed.group(1)))
            continue
        if line.startswith("Subtypes:"):
            subtypes = line
            continue
        if line.startswith("Given value:"):
            for leaf, at in reversed(leaves):
                if at < index and leaf.value is None:
                    leaves[leaves.index((leaf, at))] = (_with_value(leaf, line), at)
                    break
            continue
        text = line[2:] if line.startswith("- ") else line
        if any(text.startswith(mark) for mark in _STRUCTURE) or not stack:
            continue
        leaves.append((_leaf(stack, text, subtypes), index))
    return [leaf for leaf, _ in leaves]


def _leaf(stack: list[tuple[int, str, str | None]], text: str, subtypes: str) -> _Leaf:
    path = ".".join(part for _, part, _ in stack)
    class_path = next((cls for _, _, cls in reversed(stack) if cls), None)
    return _Leaf(path, text, class_path, subtypes, None)


def _with_value(leaf: _Leaf, line: str) -> _Leaf:
    value = line.split(":", 1)[1].strip()
    nested = re.match(r"NestedArg\(key='[^']*', val='(.*)'\)$", value)
    shown = repr(nested.group(1)) if nested else (value if value.startswith(("{", "[")) else repr(value))
    return _Leaf(leaf.path, leaf.text, leaf.class_path, leaf.subtypes, shown)


def _unknown_options(given: list[str], option_names: Sequence[str]) -> str:
    option = given[0].split("=", 1)[0]
    keys = [name for name in option_names if name]
    hint = did_you_mean(option.lstrip("-"), keys, form="`--{}`")
    more = f" (and {len(given) - 1} more)" if len(given) > 1 else ""
    return f"`{option}` is not an option{more}.{hint or ' Check the key path against `--help`.'}"


def _unknown_init_arg(path: str, class_path: str, name: str) -> str:
    accepted = _arguments(class_path)
    short = class_path.rsplit(".", 1)[-1]
    hint = did_you_mean(name, accepted, form=f"`{path}.{{}}`")
    listed = f" {short} takes: {', '.join(accepted)}." if accepted else ""
    return f"`{path}.{name}` is not an argument of {short}.{hint}{listed}"


def _unknown_class(path: str, value: str, subtypes: str) -> str:
    if "lightning_lr.schedules" in subtypes:
        from lightning_lr.settings import SCHEDULE_CLASSES

        names = list(SCHEDULE_CLASSES)
        example = (
            f'--{path}=\'{{"class_path": "CosineDecay", "init_args": {{"total_steps": 1.0}}}}\''
            if path
            else "CosineDecay"
        )
        return (
            f"`{path}` is not a schedule, got {value!r}. Name a schedule class with its arguments, e.g. "
            f"{example}.{did_you_mean(value, names)} Schedules: {', '.join(names)}."
        )
    fix = "Give its import path, e.g. 'package.module.Class'."
    return f"`{path}` is not an importable class, got {value!r}. {fix}"


def _arguments(class_path: str) -> list[str]:
    module_name, _, attribute = class_path.rpartition(".")
    try:
        found = getattr(importlib.import_module(module_name), attribute)
        parameters = inspect.signature(found.__init__).parameters
    except (ImportError, AttributeError, TypeError, ValueError):
        return []
    kinds = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    return [name for name, parameter in parameters.items() if name != "self" and parameter.kind not in kinds]
