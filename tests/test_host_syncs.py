"""The callback stack keeps its per-step work on the device: host reads are counted, per step.

On a GPU, turning a tensor into a Python number (``item``, ``float()``, ``tolist``, ``.cpu()``,
...) makes the host wait for the device. The count here runs on the CPU, where such calls cost
nothing, so it counts the calls themselves: every one made while lightning_lr code is on the
stack, outside the module whose job is to read the device (``callbacks/_host.py``); the door's
own blocking reads are counted too, and its non-blocking copies apart.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from conftest import TinyRegression
from lightning.pytorch.loggers import CSVLogger
from torch.overrides import TorchFunctionMode

import lightning_lr
from lightning_lr import DivergenceGuard, LRDiagnostics, LRLogger, LRWarmup
from lightning_lr.callbacks import _host, _packs
from lightning_lr.schedules import CosineDecay

MakeTrainer = Callable[..., pl.Trainer]
PACKAGE = str(Path(lightning_lr.__file__).parent)
DOOR = str(Path(_host.__file__))
READS = {"item", "__float__", "__int__", "__bool__", "__index__", "tolist", "numpy", "cpu"}


def _ours_on_stack() -> str | None:
    """The innermost lightning_lr frame on the stack, None when none (or when the door is on it)."""
    frame = sys._getframe(2)
    found = None
    while frame is not None:
        name = frame.f_code.co_filename
        if name == DOOR:
            return None
        if found is None and name.startswith(PACKAGE):
            found = f"{Path(name).name}:{frame.f_lineno}"
        frame = frame.f_back
    return found


class HostReads(TorchFunctionMode):
    """Counts device-to-host reads made by lightning_lr code, by call site."""

    def __init__(self) -> None:
        super().__init__()
        self.sites: Counter[str] = Counter()
        self.active = True

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        reads = name in READS or (
            name == "to" and _to_host(args[1:], kwargs) and not kwargs.get("non_blocking", False)
        )
        if reads and self.active:
            site = _ours_on_stack()
            if site is not None:
                self.sites[f"{name} at {site}"] += 1
        return func(*args, **kwargs)


class TrainingLoopOnly(pl.Callback):
    """Counts only from the first training batch to the end of training (setup reads are one-off)."""

    def __init__(self, reads: HostReads) -> None:
        self.reads = reads
        reads.active = False

    def on_train_batch_start(self, *args: Any) -> None:
        self.reads.active = True

    def on_train_end(self, *args: Any) -> None:
        self.reads.active = False


def _to_host(args: Any, kwargs: dict[str, Any]) -> bool:
    """``.to("cpu")`` written out: on the CPU every device is the host, so only the literal counts."""
    target = kwargs.get("device", args[0] if args else None)
    return isinstance(target, str) and target.startswith("cpu")


class WithProgressBarMetric(TinyRegression):
    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        loss = super().training_step(batch, batch_idx)
        self.log("loss_bar", loss, prog_bar=True)  # Lightning turns it into a number when metrics are read
        return loss


def _full_stack() -> list[pl.Callback]:
    return [
        LRWarmup(20),
        LRLogger(every_n_steps=50, log_grad_norm=True),
        LRDiagnostics(check_every_n_steps=10),
        DivergenceGuard(deferred=True, snapshot_every=20),
    ]


@pytest.fixture
def door(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Counts the door's calls: blocking reads, and non-blocking copies started."""
    calls: Counter[str] = Counter()

    def counted(name: str, function: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            calls[name] += 1
            return function(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(_host, "read_now", counted("read_now", _host.read_now))
    for module in (lightning_lr.callbacks.guard, lightning_lr.callbacks.diagnostics, _packs):
        for name in ("read_now", "HostCopy"):
            if hasattr(module, name):
                monkeypatch.setattr(module, name, counted(name, getattr(module, name)))
    return calls


STEPS = 300


def _run(make_trainer: MakeTrainer, tmp_path: Path, model: TinyRegression) -> HostReads:
    reads = HostReads()
    trainer = make_trainer(
        max_steps=STEPS,
        callbacks=[TrainingLoopOnly(reads), *_full_stack()],
        logger=CSVLogger(tmp_path),
        log_every_n_steps=50,
    )
    with reads:
        trainer.fit(model)
    assert trainer.global_step == STEPS
    return reads


def test_the_full_stack_reads_the_device_only_at_check_log_and_validation_steps(
    make_trainer: MakeTrainer, tmp_path: Path, door: Counter[str]
) -> None:
    reads = _run(make_trainer, tmp_path, TinyRegression(lr=0.05, n_samples=800, schedule=CosineDecay(1.0)))
    # no lightning_lr code outside the door turns a tensor into a number (or a CPU copy) in the loop
    assert dict(reads.sites) == {}, reads.sites
    # blocking reads through the door: one per validation (3 here) and at the end, not per step
    assert (door["read_now"]) / STEPS <= 0.05, door
    # non-blocking copies: the guard's verdict each step, the diagnostics' pack each check, the logger's
    assert STEPS // 10 - 5 <= door["HostCopy"] <= STEPS * (1 + 1 / 10) + 10, door


def test_with_a_progress_bar_metric_the_extra_reads_stay_under_one_in_five_steps(
    make_trainer: MakeTrainer, tmp_path: Path, door: Counter[str]
) -> None:
    model = WithProgressBarMetric(lr=0.05, n_samples=800, schedule=CosineDecay(1.0))
    reads = _run(make_trainer, tmp_path, model)
    # reading the logged training loss makes Lightning convert its progress-bar metrics: only on
    # the diagnostics' check steps (and each step until the first check)
    assert {site.split(":")[0] for site in reads.sites} == {"item at _train_loss.py"}
    extra = sum(reads.sites.values()) + door["read_now"]
    assert extra / STEPS <= 0.2, (reads.sites, door)


def test_the_counter_sees_reads_in_package_code_and_not_through_the_door() -> None:
    tensor = torch.tensor([1.5, 2.5])
    code = compile("float(t[0]); t.tolist(); t.to('cpu'); t.cpu(); bool(t[0] > 1)", f"{PACKAGE}/x.py", "exec")
    with HostReads() as reads:
        exec(code, {"t": tensor})  # as if written in a module of the package
        assert _host.read_now(tensor) == [1.5, 2.5]  # the door: not counted
        tensor.tolist()  # from this test: not ours
    assert sorted(site.split(" at ")[0] for site in reads.sites) == [
        "__bool__",
        "__float__",
        "cpu",
        "to",
        "tolist",
    ]
