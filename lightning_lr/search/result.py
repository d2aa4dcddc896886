"""What an LR search found: the best LR, every trial of the study, a table (`plot.plot_search` draws it)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna

PARAM_ORDER = ("lr", "weight_decay", "warmup", "schedule")


@dataclass(frozen=True)
class TrialRow:
    """One trial of the study, as plain data.

    Attributes:
        number: the trial's number, unique in the study (its files are under ``trial_<number>``).
        state: ``COMPLETE``, ``PRUNED``, ``FAIL``, ``RUNNING`` or ``WAITING``.
        params: the point of the search space the trial tried.
        value: its score; for a pruned trial, the last value it reported (``None`` if none).
        epochs: training epochs it started (``None`` if it never trained).
        diverged: its training loss or monitored value went non-finite.
    """

    number: int
    state: str
    params: dict[str, Any]
    value: float | None
    epochs: int | None
    diverged: bool

    @classmethod
    def from_trial(cls, trial: optuna.trial.FrozenTrial) -> TrialRow:
        value = trial.value if trial.value is not None and math.isfinite(trial.value) else None
        epochs = trial.user_attrs.get("epochs")
        return cls(
            number=trial.number,
            state=trial.state.name,
            params=dict(trial.params),
            value=value,
            epochs=None if epochs is None else int(epochs),
            diverged=bool(trial.user_attrs.get("diverged", False)),
        )

    @property
    def lr(self) -> float | None:
        """The peak LR the trial tried (``None`` if it failed before choosing one)."""
        lr = self.params.get("lr")
        return None if lr is None else float(lr)


@dataclass(frozen=True)
class SearchResult:
    """The outcome of :func:`~lightning_lr.search.search_lr`, over every trial of the study.

    The study may hold trials of other workers and of earlier runs; all of them are here, and
    the best is the best of them all. When no trial completed, the ``best_*`` fields are ``None``
    and :attr:`reason` says why.

    Attributes:
        best_lr: the peak LR of the best completed trial.
        best_params: every searched value of that trial (``SearchSpace.to_hparams`` turns them
            into the model's hparams).
        best_value: its score on ``monitor``.
        monitor: the validation metric the trials were judged by.
        mode: ``"min"`` or ``"max"``.
        study_name: the Optuna study's name.
        storage_url: where the study is stored (password hidden).
        trials: every trial of the study, in order of number.
        best_number: the number of the best trial.
        reason: why there is no best trial, when there is none.
    """

    best_lr: float | None
    best_params: dict[str, Any] | None
    best_value: float | None
    monitor: str
    mode: str
    study_name: str
    storage_url: str
    trials: list[TrialRow] = field(default_factory=list)
    best_number: int | None = None
    reason: str | None = None

    @classmethod
    def from_study(cls, study: optuna.Study, *, monitor: str, mode: str, storage_url: str) -> SearchResult:
        """Read every trial of ``study`` and pick its best completed one."""
        rows = sorted((TrialRow.from_trial(trial) for trial in study.get_trials(deepcopy=False)), key=_number)
        common = {
            "monitor": monitor,
            "mode": mode,
            "study_name": study.study_name,
            "storage_url": storage_url,
            "trials": rows,
        }
        complete = [row for row in rows if row.state == "COMPLETE" and row.value is not None]
        if not complete:
            return cls(None, None, None, **common, reason=why_no_best(rows))  # type: ignore[arg-type]
        pick = min if mode == "min" else max
        best = pick(complete, key=lambda row: float(row.value))  # type: ignore[arg-type]
        return cls(best.lr, dict(best.params), best.value, **common, best_number=best.number)  # type: ignore[arg-type]

    def table(self) -> str:
        """Every trial as a Markdown table, the best one marked."""
        names = [name for name in PARAM_ORDER if any(name in row.params for row in self.trials)]
        names += sorted({name for row in self.trials for name in row.params} - set(names))
        header = ["trial", "state", *names, self.monitor, "epochs", "diverged"]
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for row in self.trials:
            state = row.state + (" (best)" if row.number == self.best_number else "")
            cells = [
                str(row.number),
                state,
                *(_cell(row.params.get(name)) for name in names),
                _cell(row.value),
                _cell(row.epochs),
                "yes" if row.diverged else "",
            ]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)


def why_no_best(rows: list[TrialRow]) -> str:
    """Why a study has no completed trial, and what to change."""
    if not rows:
        return "no trial ran: the timeout passed before the first one, or the grid was already searched"
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.state] = counts.get(row.state, 0) + 1
    diverged = sum(row.diverged for row in rows)
    if diverged == len(rows):
        return f"all {diverged} trials diverged (non-finite loss): lower the top of the `lr` range"
    listed = ", ".join(f"{count} {state.lower()}" for state, count in sorted(counts.items()))
    advice = (
        "; pruned trials stopped early, so run more trials or relax the pruner"
        if counts.get("PRUNED")
        else ""
    )
    return f"no trial completed ({listed}, {diverged} diverged){advice}"


def _number(row: TrialRow) -> int:
    return row.number


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
