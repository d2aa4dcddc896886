"""Diagnostics accuracy: does LRDiagnostics name what is wrong with the LR, how soon, and does acting help?

Real runs with ``LRDiagnostics`` at its default rules, each with a known fault, on six tasks
(``benchmarks/_diagnostic_tasks.py``): a small MLP regression (8-16-1 with LayerNorm), scikit-learn's
diabetes and Friedman #1 regressions, scikit-learn's digits and breast cancer, and MNIST-1D (the demo CNN);
each with two optimizer families, SGD (plain on the small regression, momentum 0.9 elsewhere) and
AdamW (no weight decay). Every task and family has a good LR (``TaskSpec.good_lr``, the constant LR
that ends best or near it on seed 0; three of them, SGD on the regression, digits and MNIST-1D, were
moved to 0.1 after a first run on the tuning seeds). The cases:

- ``0.001x``, ``0.01x``, ``0.1x`` the good LR, constant: right is ``too_low``;
- ``1x``, constant: right is no LR alarm (``too_high``, ``too_low``, ``diverging``);
- ``10x``, ``100x``, constant: right is ``too_high`` or ``diverging``;
- ``warmup (Join)``: the good LR behind a 2-epoch warmup written as a ``Join`` of a rising
  ``LinearSchedule`` and a ``Constant``; ``warmup (WSD)``: ``WarmupStableDecay`` with a 2-epoch warmup
  and a decay over the last fifth: right is no LR alarm (the ramp is not a stall);
- ``late divergence``: the good LR, raised 30x halfway through (a ``Join`` of two constants): right is
  ``too_high`` or ``diverging`` after the raise and no LR alarm before it;
- ``plateau``: the good LR run 2.5 times as long, so that the validation loss stops improving after
  progress: right is ``plateau``, with no LR alarm;
- ``overfitting``: few training samples, a wider model, and on the MLPs label noise (a quarter of the
  targets replaced), no weight decay: right is ``overfitting``, with no LR alarm.

A run is right when its first alarm is a right one and no wrong alarm follows (alarms: ``diverging``,
``too_high``, ``too_low``, ``overfitting``, and ``plateau`` in the plateau case; elsewhere ``plateau``,
and ``overfitting`` on a healthy run, describe the validation curve and are listed, not judged).
A run whose fault did not show is judged apart: at another constant LR (0.001x to 100x), one that
ends within 1 point of the same seed's run at the good LR, or better; in the plateau case, one whose
validation loss still reaches its lowest fewer than 3 evaluations (the rules' patience) before the
end. No alarm is right there too, a wrong alarm is still wrong, and recall leaves it out (the column
"fault did not show" counts these runs).

Epochs from onset to the right alarm: the onset is the first step for a wrong LR, the raise for a late
divergence, the epoch of the lowest validation loss for overfitting, and the first epoch within 0.5% of
the lowest for a plateau. A training check at step ``s`` counts ``(s + 1) / steps_per_epoch`` epochs of
training, a validation finding its epoch + 1.

``adjust``: every run at a constant LR (0.001x to 100x) again with ``action="adjust"``; its
final validation score (accuracy in percent, or ``100 * R^2``; -100 for a run whose loss is not
finite) against the same run advised only, and every action checked for its direction (an LR cut
on a too-low case, a raise on a too-high one, or any change on a healthy run or before the onset
is wrong; a decay for ``plateau`` or ``overfitting`` is wrong only on a too-low case).

Three groups, each with its own tables. Tuned on: the regression, digits and diabetes, seeds 0 and
1 (``--tuned`` runs only these); every rule change is measured here first. Looked at: all six
tasks, seeds 4 to 7, each pair first run as the held-out group; a rule changed after their failures
were read (seeds 4-5: loss spikes along steps that lean downhill; seeds 6-7: a stuck model is
advised, not acted on), so they are no longer held out. Held out: all six tasks, seeds 8 and 9, run
once the rules were settled (``--held-out`` runs only these): two seeds nobody looked at, and three
tasks (MNIST-1D, breast cancer, Friedman #1) no rule was tuned on. The headline is the held-out
group's.

``python -m benchmarks.diagnostics [--quick] [--tuned | --held-out]`` runs this benchmark alone;
``--quick`` is a smoke run.
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace

import lightning.pytorch as pl

from benchmarks._common import WORKERS, run_all
from benchmarks._diagnostic_tasks import TASKS, Variant, build, steps_per_epoch
from lightning_lr import LRDiagnostics
from lightning_lr.diagnose import DiagnosisRules
from lightning_lr.schedules import Constant, Join, LinearSchedule, Schedule, WarmupStableDecay

LR_ALARMS = ("diverging", "too_high", "too_low")
MULTIPLES: dict[str, float] = {
    "0.001x": 1e-3,
    "0.01x": 0.01,
    "0.1x": 0.1,
    "1x": 1.0,
    "10x": 10.0,
    "100x": 100.0,
}
CASES = (*MULTIPLES, "warmup (Join)", "warmup (WSD)", "late divergence", "plateau", "overfitting")
EXPECTED: dict[str, tuple[str, ...]] = {
    "0.001x": ("too_low",),
    "0.01x": ("too_low",),
    "0.1x": ("too_low",),
    "1x": (),
    "10x": ("too_high", "diverging"),
    "100x": ("too_high", "diverging"),
    "warmup (Join)": (),
    "warmup (WSD)": (),
    "late divergence": ("too_high", "diverging"),
    "plateau": ("plateau", "overfitting"),
    "overfitting": ("overfitting",),
}
HEALTHY = ("1x", "warmup (Join)", "warmup (WSD)")
NONFINITE_SCORE = -100.0
"""The score of a run whose validation loss is not finite (a diverged run): below any real one."""
AS_GOOD = 1.0
"""A run at another constant LR that ends within this many points of the good LR's is not at fault."""
RAISE = 30.0
"""The late divergence multiplies the LR by this halfway through."""

OVERFIT: dict[str, Variant] = {
    "regression": Variant(train_size=64, label_noise=0.5, width=256, lr_scale=0.3),
    "diabetes": Variant(train_size=80, label_noise=0.25, width=256),
    "digits": Variant(train_size=150, label_noise=0.25, width=512),
    "mnist1d": Variant(train_size=500, width=128, lr_scale=0.5),
    "cancer": Variant(train_size=60, label_noise=0.25, width=512),
    "friedman": Variant(train_size=64, label_noise=0.5, width=256),
}


@dataclass(frozen=True)
class Case:
    """One training setup with a known fault (or none), and the alarms that would name it."""

    task: str
    family: str
    name: str

    @property
    def expected(self) -> tuple[str, ...]:
        return EXPECTED[self.name]

    @property
    def variant(self) -> Variant:
        return OVERFIT[self.task] if self.name == "overfitting" else Variant()

    @property
    def lr(self) -> float:
        return TASKS[self.task].good_lr[self.family] * MULTIPLES.get(self.name, 1.0) * self.variant.lr_scale

    @property
    def epochs(self) -> int:
        base = TASKS[self.task].epochs
        if self.name == "plateau":
            return int(2.5 * base)
        return 2 * base if self.name == "overfitting" else base

    @property
    def steps_per_epoch(self) -> int:
        return steps_per_epoch(self.task, self.variant)

    @property
    def raise_step(self) -> int:
        """The step of the late raise (the late divergence case)."""
        return self.epochs // 2 * self.steps_per_epoch

    def schedule(self) -> Schedule:
        spe, total = self.steps_per_epoch, self.epochs * self.steps_per_epoch
        if self.name == "warmup (Join)":
            return Join([LinearSchedule(0.01, 1.0, 2 * spe), Constant()], boundaries=[2 * spe])
        if self.name == "warmup (WSD)":
            return WarmupStableDecay(total, 2 * spe, total // 5, min_factor=0.01)
        if self.name == "late divergence":
            return Join([Constant(), Constant(RAISE)], boundaries=[self.raise_step])
        return Constant()


@dataclass(frozen=True)
class Outcome:
    """What one run's diagnostics said and did, and how the run ended.

    Attributes:
        found: every diagnosis, as ``(kind, step, epoch)``, in order.
        actions: every LR change, as ``(kind, step, lr_factor)``.
        val: the validation loss after each epoch.
        score: the final validation score (accuracy in percent, or ``100 * R^2``).
        good: the score of the same task, family and seed at the good LR (advised), once known.
    """

    case: Case
    seed: int
    action: str
    found: tuple[tuple[str, int, int], ...]
    actions: tuple[tuple[str, int, float], ...]
    val: tuple[float, ...]
    score: float
    good: float | None = None

    @property
    def no_fault(self) -> bool:
        """The case's fault did not show: another constant LR that ended within ``AS_GOOD`` points of
        the good LR's (or better), or a plateau case still reaching its lowest validation loss
        fewer than the rules' ``patience`` evaluations before the end."""
        name = self.case.name
        if name == "plateau":
            return len(self.val) - onset(self.case, self.val) < DiagnosisRules().patience
        other_lr = name in MULTIPLES and name != "1x"
        return other_lr and self.good is not None and self.score >= self.good - AS_GOOD


class _Curve(pl.Callback):
    def __init__(self) -> None:
        self.val: list[float] = []
        self.score = float("nan")

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self.val.append(float(trainer.callback_metrics["val_loss"]))
            score = float(trainer.callback_metrics["val_score"])
            self.score = score if math.isfinite(score) else NONFINITE_SCORE


def run_case(case: Case, seed: int, action: str = "advise") -> Outcome:
    model, data = build(case.task, case.family, case.lr, case.schedule(), case.variant, seed)
    diagnostics, curve = LRDiagnostics(action=action), _Curve()  # type: ignore[arg-type]
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
    found = tuple((d.kind, d.step, d.epoch) for d in diagnostics.diagnoses)
    actions = tuple((a["kind"], int(a["step"]), float(a["lr_factor"])) for a in diagnostics.actions)
    return Outcome(case, seed, action, found, actions, tuple(curve.val), curve.score)


# --- judging -------------------------------------------------------------------------------------


def trained(kind: str, step: int, epoch: int, steps_per_epoch: int) -> float:
    """Epochs of training done when a finding came: its step, or its epoch for a validation finding."""
    if kind in ("plateau", "overfitting"):
        return float(epoch + 1)
    return (step + 1) / steps_per_epoch


def onset(case: Case, val: Sequence[float]) -> float:
    """Epochs of training done when the fault set in (see the module docstring)."""
    if case.name == "late divergence":
        return case.raise_step / case.steps_per_epoch
    if case.name == "overfitting" and val:
        return float(min(range(len(val)), key=val.__getitem__) + 1)
    if case.name == "plateau" and val:
        low = min(val)
        return float(next(i for i, v in enumerate(val) if v <= low + 0.005 * abs(low)) + 1)
    return 0.0


def alarms(outcome: Outcome) -> list[tuple[str, float]]:
    """The run's judged alarms as ``(kind, epochs trained)``, in order."""
    case = outcome.case
    judged = set(LR_ALARMS)  # overfitting says nothing about the LR: listed, not judged, on LR cases
    if case.name in ("plateau", "overfitting"):
        judged |= {"overfitting", *(("plateau",) if case.name == "plateau" else ())}
    spe = case.steps_per_epoch
    return [(kind, trained(kind, step, epoch, spe)) for kind, step, epoch in outcome.found if kind in judged]


@dataclass(frozen=True)
class Verdict:
    """A run judged: the first alarm (``none`` when none), right or not, wrong alarms, delay."""

    first: str
    right: bool
    wrong: int
    delay: float | None


def judge(outcome: Outcome) -> Verdict:
    case = outcome.case
    found = alarms(outcome)
    start = onset(case, outcome.val)
    if case.name == "late divergence":  # before the raise the LR is good: no alarm is right there
        early = [kind for kind, at in found if at <= start and kind in LR_ALARMS]
        found = [(kind, at) for kind, at in found if at > start]
        wrong_early = len(early)
    else:
        wrong_early = 0
    first = found[0][0] if found else "none"
    if outcome.no_fault and not any(kind in case.expected or kind in LR_ALARMS for kind, _ in found):
        return Verdict(first, True, 0, None)  # the fault did not show: no alarm is right too
    if not case.expected:
        wrong = len(found)
        return Verdict(first, wrong == 0, wrong, None)
    wrong = wrong_early + sum(kind not in case.expected for kind, _ in found)
    right = bool(found) and found[0][0] in case.expected and wrong == 0
    hit = next((at for kind, at in found if kind in case.expected), None)
    if wrong_early:
        first = found[0][0] if found else "none"
    return Verdict(first, right, wrong, None if hit is None else max(0.0, hit - start))


def wrong_actions(outcome: Outcome) -> int:
    """Actions that pushed the LR the wrong way for the case (see the module docstring)."""
    case = outcome.case
    count = 0
    for kind, step, factor in outcome.actions:
        if kind in ("plateau", "overfitting") and factor < 1 and "too_low" not in case.expected:
            continue  # a decay on a stalled validation metric, as ReduceLROnPlateau makes
        if "too_low" in case.expected:
            count += factor < 1
        elif "too_high" in case.expected and (case.name != "late divergence" or step >= case.raise_step):
            count += factor > 1
        elif case.name in HEALTHY or (case.name == "late divergence" and step < case.raise_step):
            count += 1
        elif case.name in ("plateau", "overfitting"):
            count += factor > 1
    return count


# --- the groups and the tables ---------------------------------------------------------------------


@dataclass(frozen=True)
class Group:
    """Cases and seeds reported together."""

    title: str
    tasks: tuple[str, ...]
    seeds: tuple[int, ...]
    held_out: bool

    def cases(self, names: Sequence[str] = CASES) -> list[Case]:
        return [
            Case(task, family, name) for task in self.tasks for family in ("sgd", "adam") for name in names
        ]


TUNED = Group(
    "regression, digits and diabetes, seeds 0-1 (tuned on)",
    ("regression", "digits", "diabetes"),
    (0, 1),
    False,
)
SIX = ("regression", "diabetes", "friedman", "digits", "cancer", "mnist1d")
LOOKED_AT = Group("all six tasks, seeds 4-7 (held out at first, then looked at)", SIX, (4, 5, 6, 7), False)
HELD_OUT = Group("all six tasks, seeds 8-9 (held out)", SIX, (8, 9), True)


def groups(quick: bool, which: str = "all") -> list[Group]:
    """The groups to run: ``"all"``, ``"tuned"`` or ``"held-out"``."""
    if quick:
        return [Group("smoke", ("regression",), (0,), True)]
    return {"tuned": [TUNED], "held-out": [HELD_OUT]}.get(which, [TUNED, LOOKED_AT, HELD_OUT])


ADJUSTED = tuple(MULTIPLES)
"""The cases run again with ``action="adjust"``: every LR from 0.001x to 100x the good one."""


def _jobs(group: Group, quick: bool) -> list[tuple[Case, int, str]]:
    names = ("1x", "100x") if quick else CASES
    jobs = []
    for case in group.cases(names):
        for seed in group.seeds:
            jobs.append((case, seed, "advise"))
            if case.name in ADJUSTED:
                jobs.append((case, seed, "adjust"))
    return jobs


def _median_max(values: Sequence[float]) -> str:
    return f"{statistics.median(values):.1f} / {max(values):.1f}" if values else "—"


def _pct(part: int, whole: int) -> str:
    return f"{part}/{whole} ({part / whole:.0%})" if whole else "—"


def case_lines(outcomes: list[Outcome]) -> list[str]:
    """Per case: runs right, first alarms (the confusion matrix by case), recall, delays."""
    kinds = ("too_low", "too_high", "diverging", "plateau", "overfitting", "none")
    lines = [
        "| case | right alarm | runs right | "
        + " | ".join(f"first: {k}" for k in kinds)
        + " | epochs from onset (median / max) | fault did not show |",
        "|---|---|---|" + "---|" * len(kinds) + "---|---|",
    ]
    for name in CASES:
        mine = [o for o in outcomes if o.case.name == name]
        if not mine:
            continue
        verdicts = [judge(o) for o in mine]
        firsts = Counter(v.first for v in verdicts)
        expected = " or ".join(f"`{k}`" for k in EXPECTED[name]) or "none (no LR alarm)"
        delays = [v.delay for v in verdicts if v.delay is not None]
        hidden = str(sum(o.no_fault for o in mine)) if name in (*MULTIPLES, "plateau") else "—"
        lines.append(
            f"| {name} | {expected} | {_pct(sum(v.right for v in verdicts), len(mine))} | "
            + " | ".join(str(firsts.get(k, 0)) for k in kinds)
            + f" | {_median_max(delays)} | {hidden} |"
        )
    return [*lines, ""]


def false_alarm_lines(outcomes: list[Outcome]) -> list[str]:
    """Per task: healthy runs (good LR, steady) with an LR alarm."""
    lines = ["| task | healthy runs with an LR alarm |", "|---|---|"]
    for task in TASKS:
        mine = [o for o in outcomes if o.case.task == task and o.case.name in HEALTHY]
        if mine:
            lines.append(f"| {task} | {_pct(sum(not judge(o).right for o in mine), len(mine))} |")
    return [*lines, ""]


def adjust_lines(pairs: list[tuple[Outcome, Outcome]]) -> list[str]:
    """``adjust`` against ``advise``, per case: final score, and actions in the wrong direction."""
    lines = [
        "| case | runs | score advised (mean) | score adjusted (mean) | mean change | worst change "
        "| LR changes | wrong direction |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in CASES:
        mine = [(a, b) for a, b in pairs if a.case.name == name]
        if not mine:
            continue
        changes = [b.score - a.score for a, b in mine]
        lines.append(
            f"| {name} | {len(mine)} | {statistics.fmean(a.score for a, _ in mine):.1f} | "
            f"{statistics.fmean(b.score for _, b in mine):.1f} | {statistics.fmean(changes):+.2f} | "
            f"{min(changes):+.2f} | {sum(len(b.actions) for _, b in mine)} | "
            f"{sum(wrong_actions(b) for _, b in mine)} |"
        )
    return [*lines, ""]


def targets(
    held: list[Outcome], pairs: list[tuple[Outcome, Outcome]], label: str = "held-out runs"
) -> list[str]:
    """The targets on ``held`` (the held-out runs), each met or missed, with its figure."""
    verdicts = [judge(o) for o in held]
    right = sum(v.right for v in verdicts)
    delays = [v.delay for v in verdicts if v.delay is not None]
    per_task = []
    for task in TASKS:
        mine = [judge(o) for o in held if o.case.task == task and o.case.name in HEALTHY]
        if mine:
            per_task.append((task, sum(not v.right for v in mine) / len(mine)))
    worst_task = max(per_task, key=lambda item: item[1]) if per_task else ("—", 0.0)
    recalls = {}
    for kind in ("too_low", "too_high", "plateau", "overfitting"):
        mine = [o for o in held if o.case.expected[:1] == (kind,) and not o.no_fault]
        hit = sum(any(k in o.case.expected for k, _ in alarms(o)) for o in mine)
        recalls[kind] = hit / len(mine) if mine else 1.0
    worst_kind = min(recalls, key=recalls.__getitem__)
    wrong_direction = sum(wrong_actions(b) for _, b in pairs)
    changes = [b.score - a.score for a, b in pairs]
    worst = min(changes) if changes else 0.0
    helped = {
        side: statistics.fmean([b.score - a.score for a, b in pairs if a.case.expected == kinds] or [0.0])
        for side, kinds in (("too low", ("too_low",)), ("too high", ("too_high", "diverging")))
    }

    def row(name: str, figure: str, met: bool) -> str:
        return f"| {name} | {figure} | {'met' if met else 'missed'} |"

    median_delay = statistics.median(delays) if delays else 0.0
    return [
        f"| target ({label}) | measured | |",
        "|---|---|---|",
        row(
            "false alarms on healthy runs < 5% per task",
            ", ".join(f"{task} {rate:.0%}" for task, rate in per_task),
            worst_task[1] < 0.05,
        ),
        row("first alarm right >= 95%", _pct(right, len(held)), right >= 0.95 * len(held)),
        row(
            "recall of every kind >= 90%",
            ", ".join(f"{kind} {rate:.0%}" for kind, rate in recalls.items()),
            recalls[worst_kind] >= 0.9,
        ),
        row("median epochs from onset to the right alarm <= 2", f"{median_delay:.1f}", median_delay <= 2),
        row("actions in the wrong direction: 0", str(wrong_direction), wrong_direction == 0),
        row("`adjust` never worse than advise by > 0.5 points", f"worst {worst:+.2f}", worst >= -0.5),
        row(
            "`adjust` improves too-low and too-high runs on average",
            ", ".join(f"{side} {value:+.2f}" for side, value in helped.items()),
            all(value > 0 for value in helped.values()),
        ),
        "",
    ]


def run(quick: bool = False, which: str = "all") -> list[str]:
    """Run the diagnostics benchmark; its ``## Diagnostics accuracy`` section of RESULTS.md, as lines."""
    start = time.perf_counter()
    chosen = groups(quick, which)
    jobs = [job for group in chosen for job in _jobs(group, quick)]
    done = dict(zip(jobs, run_all(run_case, jobs)))
    for (case, seed, action), outcome in done.items():
        good = done.get((Case(case.task, case.family, "1x"), seed, "advise"))
        done[case, seed, action] = replace(outcome, good=None if good is None else good.score)
    details: list[str] = []
    held: list[Outcome] = []
    pairs: list[tuple[Outcome, Outcome]] = []
    for group in chosen:
        advised = [done[job] for job in _jobs(group, quick) if job[2] == "advise"]
        mine = [
            (done[case, seed, "advise"], done[case, seed, "adjust"])
            for case, seed, action in _jobs(group, quick)
            if action == "adjust"
        ]
        details += [
            f"### {group.title}: {len(advised)} runs",
            "",
            *targets(advised, mine, "runs of this group"),
            *case_lines(advised),
            *false_alarm_lines(advised),
            f"`adjust` against `advise` ({len(mine)} pairs):",
            "",
            *adjust_lines(mine),
        ]
        if group.held_out:
            held += advised
            pairs += mine
    summary = targets(held, pairs)
    total = time.perf_counter() - start
    lines = [
        "## Diagnostics accuracy",
        "",
        *summary,
        *details,
        "Protocol in `benchmarks/diagnostics.py` (tasks in `benchmarks/_diagnostic_tasks.py`). "
        f"This section took {total / 60:.1f} min ({len(jobs)} runs, {WORKERS} at a time, one torch "
        "thread each).",
        "",
    ]
    print("\n".join(lines), flush=True)
    print("\n".join(_detail([done[job] for job in jobs])), flush=True)
    return lines


def _detail(outcomes: list[Outcome]) -> list[str]:
    """One line per run (for tuning): the case, what was found and done, the final score."""
    return [
        f"{o.case.task:10} {o.case.family:4} {o.case.name:16} s{o.seed} {o.action:6} {judge(o)} "
        f"score {o.score:.1f} found {[(k, s) for k, s, _ in o.found][:6]} actions {list(o.actions)}"
        for o in outcomes
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    parser.add_argument("--held-out", action="store_true", help="only the held-out runs")
    parser.add_argument("--tuned", action="store_true", help="only the runs the rules were tuned on")
    args = parser.parse_args(argv)
    run(args.quick, "held-out" if args.held_out else "tuned" if args.tuned else "all")


if __name__ == "__main__":
    main()
