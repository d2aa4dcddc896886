"""What a range test is asked (its validated settings) and what it answers (its result)."""

from __future__ import annotations

import argparse
import math
import statistics
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal

from lightning.pytorch.utilities import rank_zero_info

from lightning_lr._validate import check_choice, check_int, check_positive, check_range, fail
from lightning_lr.finder import recipe
from lightning_lr.finder.curve import Suggestion
from lightning_lr.finder.recipe import SCHEDULE_KINDS
from lightning_lr.finder.rules import RULES, describe_rules

SweepMode = Literal["exponential", "linear"]


def sweep_lrs(min_lr: float, max_lr: float, num_steps: int, mode: SweepMode = "exponential") -> list[float]:
    """The LR of each sweep step: ``min * (max / min) ** (k / (n - 1))`` (exponential) or linear.

    Example:
        >>> [round(lr, 6) for lr in sweep_lrs(1e-3, 1e-1, 3)]
        [0.001, 0.01, 0.1]
    """
    last = num_steps - 1
    if mode == "linear":
        return [min_lr + (max_lr - min_lr) * k / last for k in range(num_steps)]
    return [min_lr * (max_lr / min_lr) ** (k / last) for k in range(num_steps)]


@dataclass(frozen=True)
class FinderSettings:
    """How a range test sweeps, reads its curves and what the LR it picks is for; validated on construction.

    The one place the finder's options and their defaults are written: :func:`~lightning_lr.finder.find_lr`,
    :class:`~lightning_lr.LRFinder` and ``lightning-lr find-lr`` all take them from here.

    Args:
        min_lr: first LR of each sweep.
        max_lr: last LR of each sweep.
        num_steps: optimizer steps of each sweep (at least 10).
        repeats: sweeps, each from the same weights over the batches in another order; every rule's
            pick is the median of its picks over the sweeps (in log LR), and their spread is reported.
        seed: seeds the batch order of the sweeps (sweep ``k`` uses ``seed + k``), so that the same
            model, data and settings give the same pick from every entry point.
        mode: ``"exponential"`` (evenly on a log scale, the usual) or ``"linear"``.
        stop_factor: stop once the smoothed loss exceeds this multiple of its best.
        beta: smoothing of the loss (bias-corrected exponential moving average).
        rule: the rule a result's ``suggestion`` reports (one of :data:`~lightning_lr.finder.RULES`);
            all are computed.
        schedule: what the LR is for: ``"constant"``, ``"decay"`` (the peak of warmup + decay) or
            ``"one-cycle"`` (its peak); ``None``: read from the fit's scheduler or the model's
            ``schedule`` hparam, else ``decay``.
        confirm: LRs to race in short trials from the same weights, spaced x2 around the pick (0:
            no race; 3-5 usual); successive halving keeps the one whose training loss ends lowest.
        confirm_share: the share of ``total_steps`` all the race's trials together may spend.
        total_steps: optimizer steps of the run the LR is for; ``None``: read from the fit or the
            Trainer, else :data:`~lightning_lr.finder.recipe.DEFAULT_TOTAL_STEPS`.

    Example:
        >>> [f"{lr:g}" for lr in FinderSettings(min_lr=1e-4, max_lr=1.0, num_steps=13).lrs()[::3]]
        ['0.0001', '0.001', '0.01', '0.1', '1']
    """

    min_lr: float = field(default=1e-6, metadata={"help": "first LR of each sweep"})
    max_lr: float = field(default=10.0, metadata={"help": "last LR of each sweep"})
    num_steps: int = field(default=50, metadata={"help": "optimizer steps of each sweep (>= 10)"})
    repeats: int = field(
        default=4, metadata={"help": "sweeps over the batches in other orders; the pick is their median"}
    )
    seed: int = field(
        default=0, metadata={"help": "seed of the sweeps' batch orders (sweep k uses seed + k)"}
    )
    mode: SweepMode = field(default="exponential", metadata={"help": "exponential or linear sweep"})
    stop_factor: float = field(
        default=4.0, metadata={"help": "stop once the smoothed loss exceeds this multiple of its best"}
    )
    beta: float = field(default=0.96, metadata={"help": "smoothing of the loss (exponential moving average)"})
    rule: str = field(default="peak", metadata={"help": "the rule whose pick is used (all are computed)"})
    schedule: str | None = field(
        default=None,
        metadata={
            "help": "what the LR is for: constant, decay (warmup + decay) or one-cycle; default: the fit's"
        },
    )
    confirm: int = field(
        default=0,
        metadata={"help": "LRs raced around the pick in short trials from the same weights (0: off)"},
    )
    confirm_share: float = field(
        default=0.1, metadata={"help": "share of the run's steps the race may spend, all trials together"}
    )
    total_steps: int | None = field(
        default=None,
        metadata={"help": "optimizer steps of the run the LR is for; default: the fit's or trainer's"},
    )

    def __post_init__(self) -> None:
        check_positive("min_lr", self.min_lr)
        check_positive("max_lr", self.max_lr)
        if self.max_lr <= self.min_lr:
            raise fail(
                "max_lr",
                self.max_lr,
                f"must be greater than `min_lr`={self.min_lr!r}",
                "Sweep upwards, e.g. 1e-6 to 10.",
            )
        check_int("num_steps", self.num_steps, 10, "A range test needs at least 10 steps; 50 is the default.")
        check_int("repeats", self.repeats, 1, "1 sweeps once; 4 is the default.")
        check_int("seed", self.seed)
        check_choice("mode", self.mode, ("exponential", "linear"))
        check_range("stop_factor", self.stop_factor, 1.0, math.inf, low_open=True, high_open=True)
        check_range("beta", self.beta, 0.0, 1.0, high_open=True)
        check_choice("rule", self.rule, tuple(RULES))
        if self.schedule is not None:
            check_choice("schedule", self.schedule, SCHEDULE_KINDS)
        if self.confirm:
            check_int("confirm", self.confirm, 2, "Race 3 to 5 LRs, or 0 for no race.")
        check_range("confirm_share", self.confirm_share, 0.0, 1.0, low_open=True)
        if self.total_steps is not None:
            check_int(
                "total_steps", self.total_steps, 1, "The optimizer steps of the run, e.g. 20 epochs x 50."
            )

    def lrs(self) -> list[float]:
        """The LR of each planned step of one sweep."""
        return sweep_lrs(self.min_lr, self.max_lr, self.num_steps, self.mode)

    def divisor(self) -> float:
        """The ``peak`` rule's divisor for :attr:`schedule` and :attr:`total_steps` (defaults filled in)."""
        return recipe.divisor(self.schedule or "decay", self.total_steps or recipe.DEFAULT_TOTAL_STEPS)

    def describe(self) -> str:
        """One line naming every setting, for reports."""
        return ", ".join(f"{name}={value}" for name, value in asdict(self).items())

    @classmethod
    def build(cls, settings: FinderSettings | None = None, **options: Any) -> FinderSettings:
        """``settings`` (default: the defaults) with ``options`` replacing some of its fields.

        Raises:
            TypeError: an option that is not a field, named with the fields there are.
        """
        names = [item.name for item in fields(cls)]
        unknown = sorted(set(options) - set(names))
        if unknown:
            raise TypeError(f"unknown finder option(s) {unknown}; the options are {names}.")
        return replace(settings or cls(), **options)

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """One ``--name`` flag per setting, with its default and help (for a command line)."""
        for item in fields(cls):
            kind = (
                type(item.default)
                if item.default is not None
                else (int if item.name == "total_steps" else str)
            )
            extra = f" ({describe_rules()})" if item.name == "rule" else ""
            parser.add_argument(
                f"--{item.name}", type=kind, default=item.default, help=item.metadata["help"] + extra
            )

    @classmethod
    def from_namespace(cls, namespace: argparse.Namespace) -> FinderSettings:
        """The settings parsed by the flags of :meth:`add_arguments`."""
        return cls(**{item.name: getattr(namespace, item.name) for item in fields(cls)})


@dataclass
class LRFinderResult:
    """What a range test saw and what it suggests.

    Attributes:
        lrs: the LR of each step (of the first param group; the others kept their ratio), as far as
            the longest sweep ran.
        losses: at each of those steps, the mean training loss over the sweeps that reached it.
        suggestions: every rule's :class:`~lightning_lr.finder.rules.Suggestion`: the median of its
            picks over the sweeps (in log LR); ``index`` points into :attr:`lrs`.
        rule: the rule :attr:`suggestion` reports.
        stopped_early: some sweep's loss blew up before its last step.
        smoothed: :attr:`losses`, smoothed.
        configured_lr: the first group's LR as the model configured it (its scheduler's base LR),
            before the sweep took over; :meth:`factor` relates a suggestion to it.
        sweeps: the losses of each sweep (the rules read each one).
        picks: every rule's pick of each sweep (``None`` where it made none).
        settings: the settings used, with the schedule's kind and the run's length filled in.
        race: each trial of the confirmation race: ``{"round", "lr", "steps", "loss"}``.
        confirmed: the race's winner, which :attr:`suggestion` then reports; ``None`` without a race.
    """

    lrs: list[float]
    losses: list[float]
    suggestions: dict[str, Suggestion]
    rule: str = "peak"
    stopped_early: bool = False
    smoothed: list[float] = field(default_factory=list)
    configured_lr: float | None = None
    sweeps: list[list[float]] = field(default_factory=list)
    picks: dict[str, list[float | None]] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    race: list[dict[str, Any]] = field(default_factory=list)
    confirmed: float | None = None

    @property
    def suggestion(self) -> float | None:
        """The race's winner, else the default rule's LR, or ``None`` when it could make none (see
        its ``reason``)."""
        return self.confirmed if self.confirmed is not None else self.suggestions[self.rule].lr

    @property
    def spread(self) -> float | None:
        """How far the default rule's picks of the sweeps scatter: ``exp`` of their log's standard
        deviation (1.0: all agree; x/÷ this around the suggestion); ``None`` with fewer than 2 picks."""
        return pick_spread(self.picks.get(self.rule, []))

    def factor(self, reference: float | None = None) -> float | None:
        """What to multiply the LRs by to run at the suggestion, or ``None`` without one.

        ``reference`` is the first group's current base LR (default: :attr:`configured_lr`); every
        group scales by the same factor, so LR multipliers and scaling rules keep their ratios.
        """
        reference = self.configured_lr if reference is None else reference
        if self.suggestion is None or not reference:
            return None
        return self.suggestion / reference

    def to_dict(self) -> dict[str, Any]:
        """Plain data (lists, numbers, strings): for logs, checkpoints and broadcasts."""
        data = asdict(self)
        data["suggestions"] = {name: asdict(value) for name, value in self.suggestions.items()}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LRFinderResult:
        """The inverse of :meth:`to_dict`."""
        suggestions = {name: Suggestion(**value) for name, value in data["suggestions"].items()}
        return cls(**{**data, "suggestions": suggestions})


def pick_spread(picks: list[float | None]) -> float | None:
    """``exp(stdev(log(picks)))`` over the picks that exist; ``None`` with fewer than two.

    Example:
        >>> round(pick_spread([0.01, 0.04, None]), 3)
        2.665
    """
    logs = [math.log(lr) for lr in picks if lr is not None]
    return math.exp(statistics.stdev(logs)) if len(logs) > 1 else None


def median_suggestion(name: str, per_sweep: list[Suggestion], lrs: list[float]) -> Suggestion:
    """The median (in log LR) of one rule's picks over the sweeps, as a suggestion on ``lrs``.

    At least half the sweeps must have made a pick; otherwise the first missing one's reason is kept.
    """
    found = [item for item in per_sweep if item.lr is not None]
    if not found or 2 * len(found) < len(per_sweep):
        missing = next(item for item in per_sweep if item.lr is None)
        return Suggestion(name, None, None, missing.reason)
    lr = math.exp(statistics.median(math.log(item.lr) for item in found if item.lr is not None))
    index = min(range(len(lrs)), key=lambda k: abs(math.log(lrs[k] / lr)))
    if len(per_sweep) == 1:
        return Suggestion(name, lr, index, found[0].reason)
    spread = pick_spread([item.lr for item in found])
    nearest = min(found, key=lambda item: abs(math.log(item.lr / lr)) if item.lr else math.inf)
    return Suggestion(
        name,
        lr,
        index,
        f"the median of {len(found)} sweeps' picks (x/÷ {spread:.2f} between them); "
        f"in the nearest: {nearest.reason}",
    )


def report(result: LRFinderResult) -> None:
    """Print every rule's suggestion and its reason, and the settings used (on rank zero)."""
    for name, suggestion in result.suggestions.items():
        value = "none" if suggestion.lr is None else f"{suggestion.lr:.3g}"
        default = " (default)" if name == result.rule else ""
        rank_zero_info(f"LR finder: {name}{default}: {value} ({suggestion.reason})")
    if result.race:
        trials = "; ".join(
            f"{row['lr']:.3g} x {row['steps']} steps: {row['loss']:.4g}" for row in result.race
        )
        rank_zero_info(f"LR finder race: {trials}; the winner {result.confirmed:.3g} is used")
    if result.settings:
        rank_zero_info(f"LR finder settings: {', '.join(f'{k}={v}' for k, v in result.settings.items())}")
