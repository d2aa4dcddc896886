"""Diagnostics accuracy: does LRDiagnostics name what is wrong with the LR, and how soon?

Real runs with ``LRDiagnostics(action="advise")`` at its default rules, each with a known fault:

- MNIST-1D, the demo CNN, AdamW (weight decay 0.01), batch 100, a constant LR (no warmup, no decay:
  a schedule would change the LR the runs are about), 20 epochs, at 0.01x, 0.1x, 1x, 10x and 100x
  the good LR of 0.01 (the low end of the 0.01-0.03 band where 20 epochs end best);
- overfitting: the same CNN at ``channels=128`` without weight decay, on 500 training samples
  (``MNIST1DDataModule(train_size=500)``), at the good LR for 30 epochs.

What is right, per case (``plateau`` is never an alarm: its advice, decay the LR, suits every case):

- 0.01x and 0.1x: the first alarm is ``too_low``, and no other alarm follows;
- 1x: no LR alarm (``too_high``, ``too_low``, ``diverging``); a late ``plateau`` or ``overfitting``
  describes the validation curve and is listed, not counted;
- 10x and 100x: the first alarm is ``too_high`` or ``diverging``, and no other alarm follows;
- overfitting: the first alarm is ``overfitting``, and no other alarm follows.

Epochs from onset to diagnosis: for the LR cases the onset is the first step (the LR is wrong from
the start), so this is the training done when the first right alarm came, in epochs (a training
check at step ``s`` counts ``(s + 1) / steps_per_epoch``, a validation check its epoch). For
overfitting the onset is the epoch of the lowest validation loss, read from the logged curve: from
there on the training loss keeps falling while the validation loss never gets back down. Targets:
>= 90% right, <= 3 epochs.

The rules were tuned on seeds 0, 1 and 2 of MNIST-1D at the good LR of 0.01. Held out: seeds 3 and 4;
the same at the band's other end (a good LR of 0.03); and scikit-learn's digits with a 64-128-10 MLP
(batch 32, good LR 0.01), seeds 3 and 4, without an overfitting case (on 100 or 200 digits a wide
MLP's validation loss levels off instead of rising).

``python -m benchmarks.diagnostics [--quick]`` runs this benchmark alone; ``--quick`` is a smoke run.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import lightning.pytorch as pl
from torch import nn

from benchmarks._common import WORKERS, run_all
from benchmarks._tasks import DigitsDataModule, DigitsMLP
from lightning_lr import LRDiagnostics
from lightning_lr.demo import MNIST1DClassifier, MNIST1DDataModule
from lightning_lr.diagnose import Diagnosis
from lightning_lr.schedules import Constant

ALARMS = ("diverging", "too_high", "too_low", "overfitting")
"""The kinds that say something is wrong; ``plateau`` only says the validation metric stopped improving."""

LR_ALARMS = ("diverging", "too_high", "too_low")
MULTIPLES: dict[str, float] = {"0.01x": 0.01, "0.1x": 0.1, "1x": 1.0, "10x": 10.0, "100x": 100.0}
EXPECTED: dict[str, tuple[str, ...]] = {
    "0.01x": ("too_low",),
    "0.1x": ("too_low",),
    "1x": (),
    "10x": ("too_high", "diverging"),
    "100x": ("too_high", "diverging"),
    "overfitting": ("overfitting",),
}


class _DigitsNet(DigitsMLP):
    """The digits MLP, also logging its validation loss (the rules read a loss)."""

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        logits = self(x)
        self.log("val_loss", nn.functional.cross_entropy(logits, y))
        self.log("val_acc", (logits.argmax(dim=1) == y).float().mean())


@dataclass(frozen=True)
class Case:
    """One faulty (or healthy) training setup, and the alarms that would name its fault."""

    name: str
    dataset: str
    lr: float
    epochs: int
    train_size: int | None = None
    channels: int = 25
    weight_decay: float = 0.01

    @property
    def expected(self) -> tuple[str, ...]:
        return EXPECTED[self.name]

    def build(self, seed: int) -> tuple[pl.LightningModule, pl.LightningDataModule]:
        pl.seed_everything(seed, verbose=False)
        settings: dict[str, Any] = {
            "lr": self.lr,
            "optimizer": "adamw",
            "weight_decay": self.weight_decay,
            "schedule": Constant(),
        }
        if self.dataset == "digits":
            return _DigitsNet(**settings), DigitsDataModule(batch_size=32)
        model = MNIST1DClassifier(channels=self.channels, **settings)
        return model, MNIST1DDataModule(batch_size=100, train_size=self.train_size)


@dataclass(frozen=True)
class Outcome:
    """What one run's diagnostics said, judged against its case.

    Attributes:
        alarms: every alarm of the run, as ``kind@epochs`` (training done when it came), in order.
        wrong: how many of them name another fault than the case's.
    """

    case: Case
    seed: int
    right: bool
    alarms: tuple[str, ...]
    wrong: int
    delay: float | None


class _ValidationCurve(pl.Callback):
    """The validation loss after each epoch, to find where overfitting sets in."""

    def __init__(self) -> None:
        self.values: list[float] = []

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self.values.append(float(trainer.callback_metrics["val_loss"]))


def lr_cases(
    dataset: str, good_lr: float, epochs: int, names: Sequence[str] = tuple(MULTIPLES)
) -> list[Case]:
    return [Case(name, dataset, good_lr * MULTIPLES[name], epochs) for name in names]


def overfitting_case(epochs: int = 30) -> Case:
    return Case("overfitting", "mnist1d", 0.01, epochs, train_size=500, channels=128, weight_decay=0.0)


def judge(
    case: Case, found: list[Diagnosis], steps_per_epoch: int, val: list[float]
) -> tuple[bool, int, float | None]:
    """Whether the alarms are right for ``case`` (see the module docstring), how many are wrong, and
    the epochs from onset to the first right one."""
    alarms = [diagnosis for diagnosis in found if diagnosis.kind in ALARMS]
    if not case.expected:
        wrong = sum(diagnosis.kind in LR_ALARMS for diagnosis in alarms)
        return wrong == 0, wrong, None
    wrong = sum(diagnosis.kind not in case.expected for diagnosis in alarms)
    right = bool(alarms) and wrong == 0
    first = next((diagnosis for diagnosis in alarms if diagnosis.kind in case.expected), None)
    if first is None:
        return right, wrong, None
    onset = min(range(len(val)), key=val.__getitem__) + 1 if case.name == "overfitting" else 0
    return right, wrong, _trained(first, steps_per_epoch) - onset


def _trained(diagnosis: Diagnosis, steps_per_epoch: int) -> float:
    """Epochs of training done when ``diagnosis`` came: its step, or its epoch for a validation finding."""
    if diagnosis.kind in ("plateau", "overfitting"):
        return float(diagnosis.epoch + 1)
    return (diagnosis.step + 1) / steps_per_epoch


def run_case(case: Case, seed: int) -> Outcome:
    model, data = case.build(seed)
    diagnostics, curve = LRDiagnostics(action="advise"), _ValidationCurve()
    with tempfile.TemporaryDirectory() as folder:
        trainer = pl.Trainer(
            accelerator="cpu",
            devices=1,
            max_epochs=case.epochs,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            default_root_dir=folder,
            callbacks=[diagnostics, curve],
        )
        trainer.fit(model, datamodule=data)
    steps_per_epoch = int(trainer.num_training_batches)
    right, wrong, delay = judge(case, diagnostics.diagnoses, steps_per_epoch, curve.values)
    alarms = tuple(
        f"{d.kind}@{_trained(d, steps_per_epoch):.3g}" for d in diagnostics.diagnoses if d.kind in ALARMS
    )
    return Outcome(case, seed, right, alarms, wrong, delay)


@dataclass(frozen=True)
class Group:
    """A set of cases and seeds reported together."""

    title: str
    cases: list[Case]
    seeds: tuple[int, ...]


def groups(quick: bool) -> list[Group]:
    if quick:
        return [Group("smoke", lr_cases("mnist1d", 0.01, 2, ("1x", "100x")), (0,))]
    tuned = (0, 1, 2)
    held_out = (3, 4)
    mnist = [*lr_cases("mnist1d", 0.01, 20), overfitting_case()]
    return [
        Group("MNIST-1D, good LR 0.01, seeds 0-2 (tuned on)", mnist, tuned),
        Group("MNIST-1D, good LR 0.01, seeds 3-4 (held out)", mnist, held_out),
        Group("MNIST-1D, good LR 0.03, seeds 3-4 (held out)", lr_cases("mnist1d", 0.03, 20), held_out),
        Group("digits MLP, good LR 0.01, seeds 3-4 (held out)", lr_cases("digits", 0.01, 20), held_out),
    ]


def _median_max(values: Sequence[float]) -> str:
    return f"{statistics.median(values):.1f} / {max(values):.1f}" if values else "—"


def _score(outcomes: list[Outcome]) -> tuple[int, list[float]]:
    return sum(outcome.right for outcome in outcomes), [o.delay for o in outcomes if o.delay is not None]


def summary_lines(results: list[tuple[Group, list[Outcome]]]) -> list[str]:
    lines = [
        "| group | runs right | epochs from onset to the right alarm (median / max) | over 3 epochs |",
        "|---|---|---|---|",
    ]
    for group, outcomes in results:
        right, delays = _score(outcomes)
        lines.append(
            f"| {group.title} | {right}/{len(outcomes)} ({right / len(outcomes):.0%}) | "
            f"{_median_max(delays)} | {sum(delay > 3 for delay in delays)} of {len(delays)} |"
        )
    return [*lines, "", "Targets: >= 90% right, <= 3 epochs from onset.", ""]


def group_lines(group: Group, outcomes: list[Outcome]) -> list[str]:
    lines = [
        f"### {group.title}",
        "",
        "| case | LR | right alarm | runs right | first alarm per run (kind@epoch) | wrong alarms | epochs |",
        "|---|---|---|---|---|---|---|",
    ]
    for case in group.cases:
        mine = [outcome for outcome in outcomes if outcome.case == case]
        expected = " or ".join(f"`{kind}`" for kind in case.expected) or "none (no LR alarm)"
        first = ", ".join(outcome.alarms[0] if outcome.alarms else "none" for outcome in mine)
        right, delays = _score(mine)
        lines.append(
            f"| {case.name} | {case.lr:g} | {expected} | {right}/{len(mine)} | {first} | "
            f"{sum(outcome.wrong for outcome in mine)} | {_median_max(delays)} |"
        )
    return [*lines, ""]


def run(quick: bool = False) -> list[str]:
    """Run the diagnostics benchmark; its ``## Diagnostics accuracy`` section of RESULTS.md, as lines."""
    start = time.perf_counter()
    chosen = groups(quick)
    jobs = [(case, seed) for group in chosen for case in group.cases for seed in group.seeds]
    done = dict(zip(jobs, run_all(run_case, jobs)))  # every run on its own, in the worker processes
    results: list[tuple[Group, list[Outcome]]] = []
    details: list[str] = []
    for group in chosen:
        outcomes = [done[case, seed] for case in group.cases for seed in group.seeds]
        results.append((group, outcomes))
        details += group_lines(group, outcomes)
        print("\n".join(group_lines(group, outcomes)), flush=True)
    summary = summary_lines(results)
    print("\n".join(summary), flush=True)
    total = time.perf_counter() - start
    runs = sum(len(outcomes) for _, outcomes in results)
    return [
        "## Diagnostics accuracy",
        "",
        *summary,
        *details,
        "Protocol (details in `benchmarks/diagnostics.py`): LRDiagnostics with its default rules and "
        '`action="advise"`; AdamW at a constant LR; MNIST-1D, the demo CNN, batch 100, 20 epochs '
        "(overfitting: 500 training samples, `channels=128`, no weight decay, 30 epochs); digits, a "
        "64-128-10 MLP, batch 32, 20 epochs. A run is right when its first alarm (`diverging`, "
        "`too_high`, `too_low`, `overfitting`) names its fault and no other alarm follows; at 1x, when "
        "no LR alarm (`diverging`, `too_high`, `too_low`) comes. `plateau` is never an alarm. Epochs "
        "from onset: training done at the first right alarm (a training check at step `s` counts "
        "`(s + 1) / steps_per_epoch`), counted from the first step for a wrong LR and from the epoch of "
        "the lowest validation loss for overfitting. The rules were tuned on seeds 0-2 at a good LR "
        "of 0.01; the other groups are held out.",
        "",
        f"This section took {total / 60:.1f} min ({runs} runs, {WORKERS} at a time, one torch thread each).",
        "",
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    args = parser.parse_args(argv)
    print("\n".join(run(args.quick)))


if __name__ == "__main__":
    main()
