"""The common base of every schedule, and the plain-data form schedules travel in."""

from __future__ import annotations

import dataclasses
import importlib
import itertools
import operator
from abc import ABC, abstractmethod
from collections.abc import Mapping
from functools import cached_property
from typing import Any, ClassVar, TypeVar

from lightning_lr.lengths import RunLength, is_resolved, resolve_length

S = TypeVar("S", bound="Schedule")

PUBLIC_PATH = "lightning_lr.schedules"
"""Where every built-in schedule is imported from, and what pickles, configs and checkpoints name."""


class Schedule(ABC):
    """A learning-rate schedule: a pure function from the optimizer step to a multiplier.

    ``schedule(k)`` is the factor that multiplies the peak (base) LR at optimizer step ``k``
    (``k = 0`` is the first step). Subclasses are frozen dataclasses validated in
    ``__post_init__``; they are picklable and have a closed form, so the LR at any step can be
    computed without replaying the steps before it.

    Lengths may be written in steps, epochs or fractions of the run (see
    :mod:`lightning_lr.lengths`); :meth:`resolve` turns them into steps. This base is not a
    dataclass on purpose: LightningCLI accepts ``class_path`` subclasses of it.
    """

    __module__ = PUBLIC_PATH  # where users import it from, and what help texts and errors name

    _lengths: ClassVar[tuple[str, ...]] = ()
    """Names of the fields that hold lengths, resolved by :meth:`resolve`."""

    @abstractmethod
    def value(self, step: int) -> float:
        """The multiplier at ``step``, for a resolved schedule and a valid step (no checks)."""

    def __call__(self, step: int) -> float:
        self._check_resolved()
        step = _step_index(step)
        return self.value(step)

    def warmup_end(self) -> int:
        """The step at which the initial ramp reaches its top: the number of warmup steps, 0 without one.

        Steps ``0`` to ``warmup_end() - 1`` rise towards the value at ``warmup_end()``; a caller that
        must not judge a warmup as slow training (the diagnostics) asks this instead of the type.
        Composites compose it from their pieces. Counts steps of this schedule (optimizer steps for
        a :class:`~lightning_lr.ScheduleLR` stepped every optimizer step).

        Raises:
            ValueError: the schedule has lengths that are not resolved yet.

        Example:
            >>> from lightning_lr.schedules import Constant, CosineDecay, Warmup
            >>> Warmup(CosineDecay(total_steps=90), warmup_steps=10).warmup_end(), Constant().warmup_end()
            (10, 0)
        """
        self._check_resolved()
        return self.ramp_steps()

    def ramp_steps(self) -> int:
        """:meth:`warmup_end` for a resolved schedule (no checks): 0 unless a subclass has a ramp."""
        return 0

    def _check_resolved(self) -> None:
        if not self.resolved:
            raise ValueError(
                f"{self!r} has lengths in epochs or fractions of the run that are not resolved yet. "
                "Call `.resolve(run_length)` first (ScheduleLR built by the mixin does this for you)."
            )

    @cached_property
    def resolved(self) -> bool:
        """True when every length is a whole number of steps."""
        lengths = [getattr(self, name) for name in self._lengths]
        flat = [item for value in lengths for item in (value if isinstance(value, tuple) else (value,))]
        return all(is_resolved(value) for value in flat) and all(child.resolved for child in self.children())

    def children(self) -> tuple[Schedule, ...]:
        """The schedules this one is built from (none for a leaf)."""
        return ()

    @property
    def sets_momentum(self) -> bool:
        """True when this schedule, or a piece of it, sets the momentum too (see :meth:`momentum`)."""
        return any(child.sets_momentum for child in self.children())

    def momentum(self, step: int) -> float | None:
        """The momentum (SGD's ``momentum``, Adam's ``beta1``) at ``step``, or ``None`` to leave the
        optimizer's own (for a resolved schedule and a valid step, like :meth:`value`)."""
        return None

    def resolve(self: S, run: RunLength | None) -> S:
        """A copy with every length turned into steps, for a schedule spanning ``run``."""
        changes = {name: _resolve_field(name, getattr(self, name), run) for name in self._lengths}
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]

    def to_config(self) -> dict[str, Any]:
        """Plain data (``class_path``/``init_args``, as LightningCLI writes it) that rebuilds this."""
        init_args = {field.name: _plain(getattr(self, field.name)) for field in dataclasses.fields(self)}  # type: ignore[arg-type]
        # Built-in classes report lightning_lr.schedules as their module; a user's subclass keeps its own.
        cls = type(self)
        return {"class_path": f"{cls.__module__}.{cls.__name__}", "init_args": init_args}


SCHEDULES: dict[str, type[Schedule]] = {}
"""The one registry of schedules: every built-in one by class name, as YAML and checkpoints name it
(a class path may also be the import path of your own subclass)."""

SC = TypeVar("SC", bound=type[Schedule])


def registered(cls: SC) -> SC:
    """Register a built-in schedule (a class decorator): listed in :data:`SCHEDULES` under its name,
    and at home at its one public path, ``lightning_lr.schedules.<Name>`` (its ``__module__``).

    The order of registration is the order ``lightning-lr`` lists the schedules in.
    """
    cls.__module__ = PUBLIC_PATH
    SCHEDULES[cls.__name__] = cls
    return cls


def _step_index(step: object) -> int:
    """An optimizer step index: a non-negative integer (numpy integers too, never a bool)."""
    index: int | None = None
    if not isinstance(step, bool):
        try:
            index = operator.index(step)  # type: ignore[arg-type]
        except TypeError:
            index = None
    if index is None:
        raise TypeError(f"`step` must be an integer optimizer step, got {step!r}.")
    if index < 0:
        raise ValueError(f"`step` must be >= 0, got {step!r}.")
    return index


def as_schedule(value: Any, name: str) -> Schedule:
    """A schedule, or one built from its ``class_path``/``init_args`` form (nested YAML)."""
    if isinstance(value, Mapping) and "class_path" in value:
        built: Schedule = build_from_config(value, name=name, registry=SCHEDULES, base=Schedule)
        return built
    if not isinstance(value, Schedule):
        raise TypeError(f"`{name}` must be a Schedule, got {value!r}.")
    return value


def _resolve_field(name: str, value: Any, run: RunLength | None) -> Any:
    if isinstance(value, tuple):
        return tuple(resolve_length(f"{name}[{i}]", item, run) for i, item in enumerate(value))
    return resolve_length(name, value, run)


def _plain(value: Any) -> Any:
    if isinstance(value, Schedule):
        return value.to_config()
    if isinstance(value, (tuple, list)):
        return [_plain(item) for item in value]
    return value


def check_step_sequence(name: str, values: tuple[Any, ...]) -> None:
    """Resolved lengths that must strictly increase."""
    for before, after in itertools.pairwise(values):
        if after <= before:
            raise ValueError(
                f"`{name}` must be strictly increasing, got {list(values)!r}. Sort them and drop repeats."
            )


def build_from_config(
    config: Any, *, name: str, registry: Mapping[str, type], base: type | tuple[type, ...]
) -> Any:
    """Build an object of ``base`` from an instance or its ``class_path``/``init_args`` form."""
    if isinstance(config, base):
        return config
    if not (isinstance(config, Mapping) and "class_path" in config):
        raise TypeError(
            f"`{name}` must be a {_names(base)} or a mapping with `class_path` and `init_args`, "
            f"got {config!r}."
        )
    path = str(config["class_path"])
    cls = _find_class(path, name=name, registry=registry, base=base)
    init_args = {
        key: _build_nested(value, name=f"{name}.{key}", registry=registry, base=base)
        for key, value in dict(config.get("init_args") or {}).items()
    }
    accepted = {field.name for field in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else None
    unknown = sorted(set(init_args) - accepted) if accepted is not None else []
    if unknown:
        raise ValueError(
            f"`{name}.init_args` has {unknown!r}, which {cls.__name__} does not take. "
            f"It takes: {', '.join(sorted(accepted or ()))}."
        )
    return cls(**init_args)


def _build_nested(
    value: Any, *, name: str, registry: Mapping[str, type], base: type | tuple[type, ...]
) -> Any:
    if isinstance(value, Mapping) and "class_path" in value:
        return build_from_config(value, name=name, registry=registry, base=base)
    if isinstance(value, list):
        return [
            _build_nested(item, name=f"{name}[{i}]", registry=registry, base=base)
            for i, item in enumerate(value)
        ]
    return value


def _find_class(path: str, *, name: str, registry: Mapping[str, type], base: type | tuple[type, ...]) -> type:
    short = path.rsplit(".", 1)[-1]
    if path in registry or (path.startswith("lightning_lr.") and short in registry):
        return registry[short]
    if "." in path:
        module_name, _, attribute = path.rpartition(".")
        try:
            found = getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError):
            found = None
        if isinstance(found, type) and issubclass(found, base):
            return found
    known = ", ".join(sorted(registry))
    raise ValueError(
        f"`{name}` names an unknown class {path!r}. Known names: {known}; or give the "
        f"import path of a {_names(base)} subclass."
    )


def _names(base: type | tuple[type, ...]) -> str:
    return " or ".join(cls.__name__ for cls in (base if isinstance(base, tuple) else (base,)))
