"""LRDiagnostics in real Trainer runs: what it finds, what it logs, what it changes."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from conftest import TinyRegression
from lightning.pytorch.loggers import CSVLogger
from torch.utils.data import DataLoader, TensorDataset

from lightning_lr import LRDiagnostics, LRWarmup
from lightning_lr.callbacks._norms import total_norm
from lightning_lr.callbacks.warmup import warmup_end
from lightning_lr.diagnose import DiagnosisRules, diagnose_training
from lightning_lr.schedules import Constant, CosineDecay, Join, LinearSchedule, OneCycle, WarmupStableDecay
from lightning_lr.schedules import Warmup as WarmupSchedule

MakeTrainer = Callable[..., pl.Trainer]
RULES = DiagnosisRules(window=20, smoothing_steps=5)


class Scripted(TinyRegression):
    """Logs a validation loss read from a script (one value per validation), and NaN losses on request."""

    def __init__(
        self, val_script: list[float] | None = None, nan_at: int | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.val_script = val_script or []
        self.nan_at = nan_at
        self.validations = 0

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        loss = super().training_step(batch, batch_idx)
        if self.nan_at is not None and self.trainer.global_step >= self.nan_at:
            loss = loss * math.nan
            self.log("train_loss", loss)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        index = min(self.validations, len(self.val_script) - 1)
        self.log("val_loss", torch.tensor(self.val_script[index]) if self.val_script else torch.tensor(1.0))

    def on_validation_epoch_end(self) -> None:
        self.validations += 1


def kinds(diagnostics: LRDiagnostics) -> list[str]:
    return [diagnosis.kind for diagnosis in diagnostics.diagnoses]


def test_a_non_finite_loss_is_diagnosed_as_diverging_with_its_numbers(make_trainer: MakeTrainer) -> None:
    diagnostics = LRDiagnostics(rules=RULES, check_every_n_steps=1)
    model = Scripted(nan_at=6, weight_decay=0.0)
    make_trainer(max_steps=10, callbacks=[diagnostics], limit_val_batches=0).fit(model)
    first = diagnostics.diagnoses[0]
    assert first.kind == "diverging" and first.step == 6
    assert first.lr_factor == pytest.approx(0.1) and "10" in first.advice
    assert first.evidence["nonfinite_steps"] >= 1


def test_adjust_scales_every_group_and_the_schedulers_base_lrs(make_trainer: MakeTrainer) -> None:
    diagnostics = LRDiagnostics(action="adjust", rules=RULES, check_every_n_steps=1, max_adjustments=1)
    model = Scripted(nan_at=6, schedule=CosineDecay(40), lr_multipliers={"head": 0.5}, weight_decay=0.0)
    trainer = make_trainer(max_steps=12, callbacks=[diagnostics], limit_val_batches=0)
    trainer.fit(model)
    assert diagnostics.actions == [{"step": 6, "kind": "diverging", "lr_factor": pytest.approx(0.1)}]
    scheduler = trainer.lr_scheduler_configs[0].scheduler
    assert scheduler.base_lrs == pytest.approx([0.005, 0.0025])
    for k in range(7, 12):  # after the adjustment: a tenth of the schedule, ratios kept
        assert model.seen_lrs[k] == pytest.approx([0.005 * CosineDecay(40)(k), 0.0025 * CosineDecay(40)(k)])
    assert model.seen_lrs[5] == pytest.approx([0.05 * CosineDecay(40)(5), 0.025 * CosineDecay(40)(5)])


def test_advise_changes_nothing(make_trainer: MakeTrainer) -> None:
    diagnostics = LRDiagnostics(action="advise", rules=RULES, check_every_n_steps=2)
    model = Scripted(nan_at=6, schedule=Constant(), weight_decay=0.0)
    make_trainer(max_steps=10, callbacks=[diagnostics], limit_val_batches=0).fit(model)
    assert diagnostics.diagnoses and diagnostics.actions == []
    assert {lrs[0] for lrs in model.seen_lrs} == {0.05}


def test_plateau_from_the_validation_curve(make_trainer: MakeTrainer) -> None:
    diagnostics = LRDiagnostics(rules=DiagnosisRules(patience=2), check_every_n_steps=1000)
    model = Scripted(val_script=[1.0, 0.9, 0.9, 0.9, 0.9, 0.9], lr=1e-3)
    make_trainer(max_epochs=6, callbacks=[diagnostics]).fit(model)
    assert "plateau" in kinds(diagnostics)
    plateau = next(d for d in diagnostics.diagnoses if d.kind == "plateau")
    assert plateau.epoch >= 3 and plateau.lr_factor == pytest.approx(0.3)


def test_overfitting_when_validation_rises_while_training_falls(make_trainer: MakeTrainer) -> None:
    diagnostics = LRDiagnostics(rules=DiagnosisRules(patience=2), check_every_n_steps=1000)
    model = Scripted(val_script=[1.0, 0.8, 0.9, 1.1, 1.4, 1.8], lr=0.05)
    make_trainer(max_epochs=6, callbacks=[diagnostics]).fit(model)
    assert "overfitting" in kinds(diagnostics)
    assert "plateau" not in kinds(diagnostics)


def test_healthy_training_is_left_alone(make_trainer: MakeTrainer) -> None:
    diagnostics = LRDiagnostics(check_every_n_steps=10)
    model = Scripted(val_script=[1.0, 0.8, 0.6, 0.5], lr=0.05, schedule=CosineDecay(1.0))
    make_trainer(max_epochs=4, callbacks=[diagnostics]).fit(model)
    assert diagnostics.diagnoses == []
    assert "healthy" in diagnostics.summary()


def test_diagnoses_are_logged_and_summarised(make_trainer: MakeTrainer, tmp_path: Path) -> None:
    diagnostics = LRDiagnostics(rules=RULES, check_every_n_steps=1)
    logger = CSVLogger(tmp_path, name="run")
    model = Scripted(nan_at=6, weight_decay=0.0)
    make_trainer(max_steps=10, callbacks=[diagnostics], logger=logger, limit_val_batches=0).fit(model)
    with open(Path(logger.log_dir) / "metrics.csv") as handle:
        rows = [row for row in csv.DictReader(handle) if row.get("diagnosis/diverging")]
    assert [int(row["step"]) for row in rows] == [6]
    assert "diverging: 1x, last at step 6" in diagnostics.summary()


def test_warmup_steps_are_not_judged(make_trainer: MakeTrainer) -> None:
    model = Scripted(schedule=WarmupStableDecay(40, 12, 8), weight_decay=0.0)
    trainer = make_trainer(max_steps=20, callbacks=[LRWarmup(7)], limit_val_batches=0)
    trainer.fit(model)
    assert warmup_end(trainer) == 12


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"schedule": Join([LinearSchedule(0.1, 1.0, 6), Constant()], [6])}, 6),
        ({"schedule": Join([WarmupSchedule(Constant(), 5), CosineDecay(1.0)], [9])}, 5),
        ({"schedule": OneCycle(40, pct_start=0.25)}, 9),
        ({"schedule": WarmupSchedule(Constant(), 3), "frequency": 2}, 6),  # held for 2 optimizer steps
        ({"schedule": WarmupSchedule(Constant(), 2), "interval": "epoch"}, 16),  # 2 epochs of 8 steps
    ],
)
def test_a_warmup_anywhere_in_the_schedule_is_found_by_asking_it(
    make_trainer: MakeTrainer, settings: dict[str, Any], expected: int
) -> None:
    trainer = make_trainer(max_steps=40, callbacks=[LRWarmup(2)], limit_val_batches=0)
    trainer.fit(Scripted(weight_decay=0.0, **settings))
    assert trainer.num_training_batches == 8
    assert warmup_end(trainer) == expected


def test_an_unlogged_train_metric_is_named_with_the_ones_that_were(make_trainer: MakeTrainer) -> None:
    with pytest.raises(ValueError, match=r"`train_metric`='loss' was not logged.*Logged: train_loss"):
        make_trainer(max_steps=3, callbacks=[LRDiagnostics(train_metric="loss")], limit_val_batches=0).fit(
            Scripted()
        )
    with pytest.raises(
        ValueError, match=r"`train_metric`='train_los' was not logged\. Did you mean 'train_loss'\?"
    ):
        make_trainer(
            max_steps=3, callbacks=[LRDiagnostics(train_metric="train_los")], limit_val_batches=0
        ).fit(Scripted())


def test_state_round_trips_as_plain_data(make_trainer: MakeTrainer) -> None:
    diagnostics = LRDiagnostics(action="adjust", rules=RULES, check_every_n_steps=2)
    make_trainer(max_steps=10, callbacks=[diagnostics], limit_val_batches=0).fit(Scripted(nan_at=6))
    buffer = io.BytesIO()
    torch.save(diagnostics.state_dict(), buffer)
    buffer.seek(0)
    fresh = LRDiagnostics(rules=RULES)
    fresh.load_state_dict(torch.load(buffer, weights_only=True))
    assert fresh.diagnoses == diagnostics.diagnoses and fresh.actions == diagnostics.actions
    assert repr(fresh.state_dict()) == repr(diagnostics.state_dict())


def test_the_alignment_of_each_checked_step_with_the_next_gradient_is_measured(
    make_trainer: MakeTrainer,
) -> None:
    diagnostics = LRDiagnostics(rules=RULES, check_every_n_steps=3)
    make_trainer(max_steps=20, callbacks=[diagnostics], limit_val_batches=0).fit(Scripted(weight_decay=0.0))
    state = diagnostics.state_dict()
    # the update of each checked step, aligned with the gradient of the step after it
    assert [at for at, _ in state["alignments"]] == [2, 5, 8, 11, 14, 17]
    assert all(-1.0 <= value <= 1.0 for _, value in state["alignments"])
    assert [at for at, _ in state["ratios"]] == [2, 5, 8, 11, 14, 17]
    untracked = LRDiagnostics(rules=RULES, check_every_n_steps=3, track_update_ratio=False)
    make_trainer(max_steps=20, callbacks=[untracked], limit_val_batches=0).fit(Scripted(weight_decay=0.0))
    assert untracked.state_dict()["alignments"] == []


def test_a_state_saved_before_alignments_were_measured_still_loads() -> None:
    state = LRDiagnostics(rules=RULES).state_dict()
    del state["alignments"]
    fresh = LRDiagnostics(rules=RULES)
    fresh.load_state_dict(state)
    assert fresh.state_dict()["alignments"] == []


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"action": "fix"}, r"`action` must be one of 'advise', 'adjust', got 'fix'"),
        ({"check_every_n_steps": 0}, r"`check_every_n_steps` must be >= 1, got 0"),
        ({"mode": "up"}, r"`mode` must be one of 'min', 'max', got 'up'"),
        ({"max_adjustments": -1}, r"`max_adjustments` must be >= 0, got -1"),
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        LRDiagnostics(**kwargs)


class _Doubled(TinyRegression):
    """Logs a metric that is not the loss it returns."""

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        loss = super().training_step(batch, batch_idx)
        self.log("doubled", loss * 2)
        return loss


class _Logged(pl.Callback):
    def __init__(self, name: str) -> None:
        self.name, self.values = name, []  # type: ignore[var-annotated]

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        self.values.append(float(trainer.callback_metrics[self.name]))


@pytest.mark.parametrize(("model", "metric"), [(TinyRegression, "train_loss"), (_Doubled, "doubled")])
def test_the_losses_judged_are_the_logged_ones_whether_or_not_training_step_returns_them(
    make_trainer: MakeTrainer, model: type[TinyRegression], metric: str
) -> None:
    # the callback reads the returned loss only after checking it is the logged value
    logged = _Logged(metric)
    diagnostics = LRDiagnostics(train_metric=metric, rules=RULES, check_every_n_steps=100)
    make_trainer(max_steps=12, callbacks=[logged, diagnostics], limit_val_batches=0).fit(model())
    assert diagnostics.state_dict()["losses"] == logged.values and len(logged.values) == 12


def test_the_total_norm_is_torchs_over_mixed_shapes_and_dtypes() -> None:
    generator = torch.Generator().manual_seed(0)
    tensors = [torch.randn(3, 4, generator=generator), torch.randn(5, generator=generator)]
    tensors += [torch.randn(2, 2, generator=generator).double(), torch.zeros(1)]
    expected = torch.nn.utils.get_total_norm([t.double() for t in tensors])
    assert total_norm(tensors).dtype == torch.float32
    assert torch.allclose(total_norm(tensors).double(), expected, rtol=1e-6)


class _Diverging(TinyRegression):
    """Returns the logged loss plus a term that is zero until step 5 (an annealed penalty)."""

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        loss = super().training_step(batch, batch_idx)
        return loss + (1.0 if self.trainer.global_step >= 5 else 0.0)


def test_once_the_returned_loss_parts_from_the_logged_one_the_logged_one_is_judged(
    make_trainer: MakeTrainer,
) -> None:
    logged = _Logged("train_loss")
    diagnostics = LRDiagnostics(rules=RULES, check_every_n_steps=4)
    make_trainer(max_steps=16, callbacks=[logged, diagnostics], limit_val_batches=0).fit(_Diverging())
    judged = diagnostics.state_dict()["losses"]
    # equal before step 5; steps 5 and 6 read the returned loss; the check at step 7 notices
    assert judged[:5] == logged.values[:5] and judged[7:] == logged.values[7:]
    assert [round(j - v, 5) for j, v in zip(judged[5:7], logged.values[5:7])] == [1.0, 1.0]


@pytest.mark.parametrize("lr", [1e-4, 0.05, 3.0])
def test_deferred_checks_find_what_checks_at_once_find(make_trainer: MakeTrainer, lr: float) -> None:
    """Read a check interval late (as on a GPU), the diagnoses are the same, naming the same steps."""
    found = []
    for deferred in (False, True):
        torch.manual_seed(0)
        diagnostics = LRDiagnostics(rules=RULES, check_every_n_steps=5, deferred=deferred)
        model = Scripted(nan_at=70 if lr == 0.05 else None, lr=lr, n_samples=256, schedule=Constant())
        make_trainer(max_steps=80, callbacks=[diagnostics], limit_val_batches=0).fit(model)
        found.append([(d.kind, d.step, d.message) for d in diagnostics.diagnoses])
    assert found[0] and found[0] == found[1]


def test_deferred_adjustments_come_one_check_later(make_trainer: MakeTrainer) -> None:
    diagnostics = LRDiagnostics(action="adjust", rules=RULES, check_every_n_steps=2, deferred=True)
    model = Scripted(nan_at=6, schedule=Constant(), weight_decay=0.0)
    make_trainer(max_steps=12, callbacks=[diagnostics], limit_val_batches=0).fit(model)
    first = diagnostics.actions[0]
    lrs = [lrs[0] for lrs in model.seen_lrs]
    # found at the check after step 7, acted on at the next check (after step 9)
    assert (
        first["step"] == 7 and lrs[:10] == [0.05] * 10 and lrs[10] == pytest.approx(0.05 * first["lr_factor"])
    )


# --- actions checked against the evidence, and the metrics that were never logged ---------------


class SmallRegression(TinyRegression):
    """An 8-16-1 MLP with LayerNorm on a smooth regression, plain SGD, batch 32, its own validation set."""

    def __init__(self, lr: float, n_samples: int) -> None:
        super().__init__(lr=lr, n_samples=n_samples, batch_size=32, optimizer="sgd", weight_decay=0.0)
        self.backbone = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.LayerNorm(16), torch.nn.Tanh())
        self.head = torch.nn.Linear(16, 1)
        generator = torch.Generator().manual_seed(0)
        direction = torch.randn(8, 1, generator=generator) / 8**0.5

        def sample(count: int) -> TensorDataset:
            x = torch.randn(count, 8, generator=generator)
            noise = 0.1 * torch.randn(count, 1, generator=generator)
            return TensorDataset(x, torch.sin(2 * x @ direction) + noise)

        self.data, self.val_data = sample(n_samples), sample(256)

    def train_dataloader(self) -> DataLoader[Any]:
        return DataLoader(self.data, batch_size=32, shuffle=True)

    def val_dataloader(self) -> DataLoader[Any]:
        return DataLoader(self.val_data, batch_size=256)


def fit_regression(
    make_trainer: MakeTrainer, lr: float, n_samples: int, action: str
) -> tuple[LRDiagnostics, SmallRegression]:
    pl.seed_everything(0, verbose=False)
    diagnostics = LRDiagnostics(action=action)  # type: ignore[arg-type]
    model = SmallRegression(lr, n_samples)
    make_trainer(max_epochs=10, callbacks=[diagnostics]).fit(model)
    return diagnostics, model


LR_KINDS = ("diverging", "too_high", "too_low")


def test_an_lr_far_too_low_is_raised_never_lowered(make_trainer: MakeTrainer) -> None:
    # SGD at 1e-6: the validation MSE moves by 0.02% in 10 epochs. A flat metric that never
    # improved is not a plateau to decay the LR on.
    advised, _ = fit_regression(make_trainer, 1e-6, 256, "advise")
    first = next(d for d in advised.diagnoses if d.kind in (*LR_KINDS, "plateau"))
    assert first.kind == "too_low" and first.lr_factor == 3.0
    assert "plateau" not in kinds(advised)
    adjusted, model = fit_regression(make_trainer, 1e-6, 256, "adjust")
    assert "too_low" in kinds(adjusted)
    assert adjusted.actions and all(action["lr_factor"] > 1 for action in adjusted.actions)
    lrs = [group_lrs[0] for group_lrs in model.seen_lrs]
    assert len(lrs) == 80 and min(lrs) == pytest.approx(1e-6) and lrs[-1] > 1e-6


def test_an_lr_finding_waits_for_the_next_check_to_find_it_too(
    make_trainer: MakeTrainer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lightning_lr.callbacks.diagnostics as module

    raw: dict[int, str | None] = {}  # what the training rules said at each check

    def recorded(*args: Any, **kwargs: Any) -> Any:
        found = diagnose_training(*args, **kwargs)
        raw[kwargs["step"]] = None if found is None else found.kind
        return found

    monkeypatch.setattr(module, "diagnose_training", recorded)
    # 64 steps an epoch: the training rules judge SGD at 1e-6 before the first validation does
    diagnostics, _ = fit_regression(make_trainer, 1e-6, 2048, "advise")
    reported = next(d for d in diagnostics.diagnoses if d.kind == "too_low")
    first = min(step for step, kind in raw.items() if kind == "too_low")
    every = diagnostics.check_every_n_steps
    assert reported.step > first  # the first window alone was not reported
    assert raw[reported.step] == raw[reported.step - every] == "too_low"
    assert all(raw[step - every] != "too_low" for step, kind in raw.items() if kind and step < reported.step)


@pytest.mark.parametrize("lr", [0.05, 0.1])
def test_a_healthy_lr_gets_no_lr_alarm(make_trainer: MakeTrainer, lr: float) -> None:
    # the same regression on 2,048 samples: its validation MSE falls from ~0.4 to 0.11 at 0.05, and
    # lower at 0.1; near its floor the batch MSEs are heavy-tailed, single batches 3x to 10x the median
    diagnostics, model = fit_regression(make_trainer, lr, 2048, "adjust")
    assert not [d for d in diagnostics.diagnoses if d.kind in LR_KINDS]
    assert diagnostics.actions == [] and {group_lrs[0] for group_lrs in model.seen_lrs} == {lr}


def test_a_decay_while_the_weights_barely_move_is_withheld(make_trainer: MakeTrainer) -> None:
    # The validation metric stalls after progress (a plateau, decay x0.3), but the weights barely
    # move: lowering the LR would push it the wrong way. The training window is never full, so the
    # update ratio is the only training evidence.
    rules = DiagnosisRules(window=1000, smoothing_steps=5, patience=2)
    diagnostics = LRDiagnostics(action="adjust", rules=rules, check_every_n_steps=2)
    model = Scripted(val_script=[1.0, 0.9, 0.9, 0.9, 0.9], lr=1e-7, schedule=Constant())
    make_trainer(max_epochs=5, callbacks=[diagnostics]).fit(model)
    assert kinds(diagnostics) == ["plateau"]
    assert diagnostics.actions == []
    [withheld] = diagnostics.withheld
    assert (withheld["kind"], withheld["lr_factor"]) == ("plateau", pytest.approx(0.3))
    assert "barely move" in withheld["reason"]
    assert {lrs[0] for lrs in model.seen_lrs} == {1e-7}
    assert "not adjusted: LR x0.3" in diagnostics.summary()
    state = diagnostics.state_dict()
    fresh = LRDiagnostics(action="adjust", rules=rules)
    fresh.load_state_dict(torch.load(_saved(state), weights_only=True))
    assert fresh.withheld == diagnostics.withheld and repr(fresh.state_dict()) == repr(state)


def _saved(state: dict[str, Any]) -> io.BytesIO:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return buffer


class _LogsAccuracy(Scripted):
    def validation_step(self, batch: Any, batch_idx: int) -> None:
        super().validation_step(batch, batch_idx)
        self.log("val_acc", torch.tensor(0.5))


def test_a_val_metric_that_was_never_logged_is_named_once_with_a_close_match(
    make_trainer: MakeTrainer,
) -> None:
    diagnostics = LRDiagnostics(val_metric="val_accuracy", check_every_n_steps=1000)
    with pytest.warns(UserWarning, match=r"`val_metric`='val_accuracy' was not logged") as caught:
        make_trainer(max_epochs=3, callbacks=[diagnostics]).fit(_LogsAccuracy())
    [warning] = [w for w in caught if "val_metric" in str(w.message)]
    assert "Did you mean 'val_acc'?" in str(warning.message)
    assert "Logged: train_loss, val_acc, val_loss." in str(warning.message)
    summary = diagnostics.summary()
    assert "healthy" not in summary
    assert "`val_metric`='val_accuracy' was never logged (3 validation runs" in summary


def test_without_a_close_match_the_warning_lists_the_logged_metrics(make_trainer: MakeTrainer) -> None:
    diagnostics = LRDiagnostics(val_metric="score", check_every_n_steps=1000)
    with pytest.warns(UserWarning, match=r"`val_metric`='score' was not logged") as caught:
        make_trainer(max_epochs=1, callbacks=[diagnostics]).fit(Scripted())
    message = next(str(w.message) for w in caught if "val_metric" in str(w.message))
    assert "Did you mean" not in message and "Logged: train_loss, val_loss." in message
