"""The package's floors: every module has one, imports point down or sideways, and none go round in a circle.

Imports are read from the source (the abstract syntax tree), the lazy ones inside functions and the
``TYPE_CHECKING`` ones included: a type named from a higher floor is an upward arrow all the same.
Importing ``a.b.c`` runs the package faces ``a.b`` on the way, so that counts as importing them too.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from fnmatch import fnmatchcase
from pathlib import Path

PACKAGE = Path(__file__).parents[1] / "lightning_lr"

FLOORS: list[tuple[str, tuple[str, ...]]] = [
    ("base", ("_validate", "_internals", "logs")),
    ("pure maths", ("lengths", "schedules", "schedules.*", "plateau", "diagnose", "diagnose.*")),
    ("pure finder rules", ("finder.curve", "finder.rules", "finder.recipe", "finder.race", "finder._*")),
    ("optimizers and their settings", ("optimizers", "settings", "schedule_lr")),
    (
        "engines and their results",
        (
            "finder",
            "finder.result",
            "finder.scratch",
            "finder.sweep",
            "finder.trials",
            "search",
            "search.*",
            "preview",
            "checkpoint_io",
        ),
    ),
    ("figures", ("finder.figure", "plot")),
    ("callbacks", ("callbacks", "callbacks.*")),
    ("mixin", ("mixin",)),
    ("demo and example support", ("demo", "demo.*")),
    ("command line", ("cli_errors", "cli_config", "cli_base", "command_parser", "commands", "cli")),
    ("face", ("",)),
]
"""Lowest first. A module may import its own floor and those below; the first pattern that matches
places it (``finder`` is the package face, ``finder.*`` its modules)."""

CLI_ORDER = ("cli_errors", "cli_config", "cli_base", "command_parser", "commands", "cli")
"""Within the command line, the one way: main -> subcommands -> their parser -> the CLI base."""


def _modules() -> dict[str, Path]:
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


MODULES = _modules()


def _floor(module: str) -> int:
    for index, (_, patterns) in enumerate(FLOORS):
        if any(fnmatchcase(module, pattern) for pattern in patterns):
            return index
    raise AssertionError(f"`lightning_lr.{module}` has no floor: add it to FLOORS in {__file__}.")


def _imported(module: str, source: str | None = None) -> Iterator[tuple[str, int]]:
    """The package's modules that ``module`` imports (relative names), and the line of each import."""
    tree = ast.parse(MODULES[module].read_text() if source is None else source)
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            if name != "lightning_lr" and not name.startswith("lightning_lr."):
                continue
            parts = name.split(".")[1:]
            for depth in range(1, len(parts) + 1):  # the faces on the way, then the module itself
                target = ".".join(parts[:depth])
                own_package = module == target or module.startswith(target + ".")
                if target in MODULES and not own_package:
                    yield target, node.lineno


GRAPH = {module: sorted(set(_imported(module))) for module in MODULES}


def test_every_module_has_a_floor() -> None:
    for module in MODULES:
        _floor(module)


def test_no_import_runs_upward() -> None:
    upward = [
        f"lightning_lr.{module} (line {line}, floor {FLOORS[_floor(module)][0]!r}) imports "
        f"lightning_lr.{target} (floor {FLOORS[_floor(target)][0]!r})"
        for module, targets in GRAPH.items()
        for target, line in targets
        if _floor(target) > _floor(module)
    ]
    assert not upward, "\n".join(upward)


def test_the_command_line_runs_one_way() -> None:
    backward = [
        f"lightning_lr.{module} (line {line}) imports lightning_lr.{target}"
        for module, targets in GRAPH.items()
        if module in CLI_ORDER
        for target, line in targets
        if target in CLI_ORDER and CLI_ORDER.index(target) > CLI_ORDER.index(module)
    ]
    assert not backward, "\n".join(backward)


def test_no_import_circle() -> None:
    edges = {module: {target for target, _ in targets} for module, targets in GRAPH.items()}
    circles: list[list[str]] = []
    state: dict[str, str] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for target in sorted(edges[module]):
            if state.get(target) == "open":
                circles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target, [*path, target])
        state[module] = "done"

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    assert not circles, "\n".join(" -> ".join(f"lightning_lr.{name}" for name in c) for c in circles)


def test_the_check_sees_lazy_and_type_only_imports_and_the_faces_on_the_way() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from lightning_lr.search.result import SearchResult\n"
        "def f():\n    import lightning_lr.cli\n"
    )
    found = {target for target, _ in _imported("schedules.cosine", source)}
    assert found == {"search", "search.result", "cli"}
