"""The callbacks' cost on a GPU: step time, host syncs, GPU memory and host memory, by model size.

Models: stacks of residual MLP blocks of about 10M, 250M and 1B parameters, and a ResNet-18 on
32x32 images; bf16-mixed, AdamW, warmup + cosine. Setups, each against the first:

- bare: a hand-written ``configure_optimizers`` with torch's ``SequentialLR(LinearLR,
  CosineAnnealingLR)`` and Lightning's ``LearningRateMonitor``;
- that plus one callback alone: ``LRDiagnostics``, ``DivergenceGuard`` (``LRLogger`` takes the
  monitor's place);
- the full stack: the mixin's cosine, ``LRWarmup``, ``LRLogger``, ``LRDiagnostics`` and
  ``DivergenceGuard``;
- the floor: bare plus three callbacks that do nothing, the cost of Lightning calling every hook
  of as many callbacks as the full stack adds (three: its four replace the monitor). On a model
  whose step is bound by the host's Python, no stack of four callbacks can cost less than this.

Step times are intervals between CUDA events recorded at each batch start (recording one does
not wait), so a host stall shows as a longer interval; host syncs are counted with
``torch.cuda.set_sync_debug_mode("warn")`` over the timed steps; peak GPU memory with
``max_memory_allocated``; host memory as the growth of the process's resident set from the
first timed step to the end. The setups run in rounds, one fit each per round, in an order
rotated from round to round; a setup's ratio to bare is the median over the rounds of its
median step over the same round's bare median (drift in the GPU's clock or the host's load
hits both sides of a pair alike), with the range over the rounds. The batches live on the GPU,
so no data loading is timed.

``python -m benchmarks.gpu`` runs it (about 5 min on an H200); on a machine without CUDA the
section says so and repeats the table of the last GPU run, kept in ``gpu_results.md``.
``--quick`` runs a tiny version on whatever device there is (the CPU in ``make test``).
"""

from __future__ import annotations

import argparse
import datetime
import gc
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning
import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.loggers import CSVLogger
from torch import nn
from torch.utils.data import DataLoader, IterableDataset

from lightning_lr import ConfigureOptimizersMixin, DivergenceGuard, LRDiagnostics, LRLogger
from lightning_lr import LRWarmup as WarmupCallback
from lightning_lr.logs import quiet_lightning
from lightning_lr.schedules import CosineDecay

KEPT = Path(__file__).with_name("gpu_results.md")
WARMUP_STEPS = 20  # of the schedule


@dataclass(frozen=True)
class Model:
    name: str
    build: Callable[[], nn.Module]
    batch: Callable[[torch.device], tuple[torch.Tensor, torch.Tensor]]
    timed_steps: int
    rounds: int = 2


class Blocks(nn.Module):
    """``depth`` residual blocks ``x + W2 gelu(W1 LayerNorm(x))`` of width ``width`` (4x inside)."""

    def __init__(self, width: int, depth: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.LayerNorm(width), nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width)
            )
            for _ in range(depth)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = x + block(x)
        return x


def _mlp(width: int, depth: int, rows: int, timed: int, rounds: int = 2) -> Model:
    def batch(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.randn(rows, width, device=device), torch.randn(rows, width, device=device)

    params = depth * (8 * width * width + 7 * width)
    return Model(
        f"MLP blocks, {params / 1e6:,.0f}M params", lambda: Blocks(width, depth), batch, timed, rounds
    )


def _resnet(timed: int, rounds: int, images: int = 256) -> Model:
    def build() -> nn.Module:
        import torchvision  # only this model needs it

        return torchvision.models.resnet18(num_classes=10)

    def batch(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.randn(images, 3, 32, 32, device=device), torch.randint(0, 10, (images,), device=device)

    return Model(f"ResNet-18, 32x32, batch {images}", build, batch, timed, rounds)


def models(quick: bool) -> list[Model]:
    if quick:
        return [_mlp(64, 2, 64, 30, rounds=2)]
    # the small models are bound by the host's Python, whose step time varies most: more rounds
    return [
        _resnet(80, rounds=4),
        _mlp(4096, 8, 4096, 40, rounds=2),
        _mlp(2048, 8, 4096, 60, rounds=2),
        _mlp(512, 4, 4096, 100, rounds=5),
    ]


class _Batches(IterableDataset[tuple[torch.Tensor, torch.Tensor]]):
    """A few batches made once on the device, handed out in turn for ever."""

    def __init__(self, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        self.batches = batches

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        index = 0
        while True:
            yield self.batches[index % len(self.batches)]
            index += 1


class _Bench(ConfigureOptimizersMixin, pl.LightningModule):
    """The network, trained with the mixin's schedule or with a hand-written configure_optimizers."""

    def __init__(
        self, lr: float = 1e-4, optimizer: str = "adamw", weight_decay: float = 0.01, **kw: Any
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net: nn.Module = nn.Identity()
        self.hand_written = True
        self.total_steps = 100

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        out = self.net(x)
        loss = (
            nn.functional.cross_entropy(out, y)
            if y.dtype == torch.long
            else nn.functional.mse_loss(out.float(), y)
        )
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self) -> Any:
        if not self.hand_written:
            return super().configure_optimizers()
        decay = [p for p in self.parameters() if p.ndim > 1]
        no_decay = [p for p in self.parameters() if p.ndim <= 1]
        groups = [{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}]
        optimizer = torch.optim.AdamW(groups, lr=self.hparams.lr)
        schedule = torch.optim.lr_scheduler.SequentialLR(
            optimizer,
            [
                torch.optim.lr_scheduler.LinearLR(optimizer, 1.0 / (WARMUP_STEPS + 1), 1.0, WARMUP_STEPS),
                torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, self.total_steps - WARMUP_STEPS),
            ],
            milestones=[WARMUP_STEPS],
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


def _rss() -> int:
    """Resident set size of this process in bytes (Linux)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


class _Meter(pl.Callback):
    """Step intervals (CUDA events, or the host clock on a CPU), syncs and host memory of the timed steps."""

    def __init__(self, warm: int) -> None:
        self.warm = warm
        self.cuda = torch.cuda.is_available()
        self.marks: list[Any] = []
        self.rss_start = 0
        self.rss_end = 0
        self.syncs = 0
        self._catcher: Any = None
        self._caught: list[warnings.WarningMessage] = []

    def _mark(self) -> Any:
        if not self.cuda:
            return time.perf_counter()
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        return event

    def on_train_batch_start(self, trainer: pl.Trainer, *args: Any) -> None:
        self.marks.append(self._mark())
        if len(self.marks) == self.warm + 1:
            self.rss_start = _rss()
            if self.cuda:
                self._catcher = warnings.catch_warnings(record=True)
                self._caught = self._catcher.__enter__()
                warnings.simplefilter("always")
                torch.cuda.set_sync_debug_mode("warn")

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.marks.append(self._mark())
        if self._catcher is not None:
            torch.cuda.set_sync_debug_mode("default")
            self.syncs = sum("synchroniz" in str(w.message) for w in self._caught)
            self._catcher.__exit__(None, None, None)
        if self.cuda:
            torch.cuda.synchronize()
        self.rss_end = _rss()

    def intervals_ms(self) -> list[float]:
        """Each step's time (ms), first step first."""
        pairs = zip(self.marks, self.marks[1:])
        if self.cuda:
            return [start.elapsed_time(end) for start, end in pairs]
        return [(end - start) * 1e3 for start, end in pairs]


@dataclass
class Run:
    steps_ms: list[float]
    warm_worst_ms: float
    syncs_per_step: float | None
    peak_gb: float | None
    rss_growth_gb: float


SETUPS = ("bare", "floor: 3 empty callbacks", "LRLogger", "LRDiagnostics", "DivergenceGuard", "full stack")


class _Empty(pl.Callback):
    """A callback that does nothing: what Lightning's calling of its hooks costs."""


def _callbacks(setup: str) -> list[pl.Callback]:
    monitor = LearningRateMonitor(logging_interval="step")
    return {
        "bare": [monitor],
        "floor: 3 empty callbacks": [monitor, _Empty(), _Empty(), _Empty()],
        "LRLogger": [LRLogger(every_n_steps=50)],
        "LRDiagnostics": [monitor, LRDiagnostics()],
        "DivergenceGuard": [monitor, DivergenceGuard()],
        "full stack": [
            WarmupCallback(WARMUP_STEPS),
            LRLogger(every_n_steps=50),
            LRDiagnostics(),
            DivergenceGuard(),
        ],
    }[setup]


def _fit(module: _Bench, model: Model, setup: str, device: torch.device, warm: int) -> Run:
    steps = warm + model.timed_steps
    module.hand_written = setup != "full stack"
    module.total_steps = steps
    batches = [model.batch(device) for _ in range(4)]
    meter = _Meter(warm)
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    with tempfile.TemporaryDirectory() as folder:
        trainer = pl.Trainer(
            accelerator=device.type,
            devices=1,
            precision="bf16-mixed",
            max_steps=steps,
            logger=CSVLogger(folder),
            log_every_n_steps=50,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            limit_val_batches=0,
            callbacks=[*_callbacks(setup), meter],
        )
        trainer.fit(module, DataLoader(_Batches(batches), batch_size=None))
    times = meter.intervals_ms()
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None
    del trainer
    return Run(
        steps_ms=times[warm:],
        warm_worst_ms=max(times[3:warm]) if warm > 3 else max(times),
        syncs_per_step=meter.syncs / model.timed_steps if device.type == "cuda" else None,
        peak_gb=peak,
        rss_growth_gb=(meter.rss_end - meter.rss_start) / 2**30,
    )


def measure(model: Model, device: torch.device, warm: int) -> tuple[int, int, dict[str, list[Run]]]:
    """Every setup's runs on one model in rotated rounds; the parameter count; model + optimizer bytes."""
    torch.manual_seed(0)
    module = _Bench(schedule=CosineDecay(1.0))
    with device:
        module.net = model.build()
    params = sum(p.numel() for p in module.net.parameters())
    runs: dict[str, list[Run]] = {setup: [] for setup in SETUPS}
    for turn in range(model.rounds):
        shift = turn % len(SETUPS)
        for setup in (*SETUPS[shift:], *SETUPS[:shift]):
            runs[setup].append(_fit(module, model, setup, device, warm))
    return params, params * 4 * 3, runs  # fp32 weights and AdamW's two moments


def _row(model: Model, params: int, state_bytes: int, runs: dict[str, list[Run]]) -> list[str]:
    bare = statistics.median(step for run in runs["bare"] for step in run.steps_ms)
    cells = []
    for setup in SETUPS:
        steps = [step for run in runs[setup] for step in run.steps_ms]
        median, worst = statistics.median(steps), max(steps)
        p99 = statistics.quantiles(steps, n=100, method="inclusive")[-1]
        paired = [
            statistics.median(ours.steps_ms) / statistics.median(ref.steps_ms)
            for ours, ref in zip(runs[setup], runs["bare"])
        ]
        syncs = [run.syncs_per_step for run in runs[setup] if run.syncs_per_step is not None]
        peaks = [run.peak_gb for run in runs[setup] if run.peak_gb is not None]
        rss = max(run.rss_growth_gb for run in runs[setup])
        warm_worst = max(run.warm_worst_ms for run in runs[setup])
        cells.append(
            f"| {model.name} | {setup} | {median:.2f} | {statistics.median(paired):.3f} "
            f"({min(paired):.3f}-{max(paired):.3f}) | {p99 / bare:.2f} | {worst / bare:.2f} | "
            f"{warm_worst / bare:.2f} | {statistics.mean(syncs) if syncs else float('nan'):.2f} | "
            f"{max(peaks) if peaks else float('nan'):.1f} | {rss:+.2f} ({rss * 2**30 / state_bytes:.1%}) |"
        )
    return cells


def table(device: torch.device, quick: bool) -> list[str]:
    warm = 4 if quick else 25
    rows = []
    for model in models(quick):
        params, state_bytes, runs = measure(model, device, warm)
        rows += _row(model, params, state_bytes, runs)
        print("\n".join(rows[-len(SETUPS) :]), flush=True)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    return [
        f"Device: {name}; torch {torch.__version__}, lightning {lightning.__version__}; "
        f"{datetime.date.today().isoformat()}.",
        "",
        "| model | setup | median ms/step | x bare (median of rounds; range) | p99 step / bare median "
        "| worst step / bare median | worst warm-up step / bare median | host syncs per step | peak GPU GB "
        "| host RSS growth GB (of model + AdamW bytes) |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *rows,
    ]


METHOD = (
    "bf16-mixed, AdamW, warmup + cosine; bare = hand-written `configure_optimizers` with torch's "
    "`SequentialLR` + `LearningRateMonitor`; each callback alone on top of it (`LRLogger` in the "
    "monitor's place); full stack = mixin cosine + `LRWarmup` + `LRLogger` + `LRDiagnostics` + "
    "`DivergenceGuard` (defaults: checks every 10 steps, snapshots every 20 on the device); floor = "
    "bare + 3 callbacks that do nothing (Lightning's cost of calling the hooks of the 3 callbacks the "
    "full stack adds). Step times between CUDA events at batch starts over the timed steps, after "
    "25 warm-up steps (in which the guard's first snapshot with optimizer state allocates its "
    "buffers), one fit per setup in each of 2-5 rounds in rotated order; x bare is the median over "
    "the rounds of the setup's median step over the same round's bare median (range over rounds in "
    "brackets). Syncs counted by `torch.cuda.set_sync_debug_mode`."
)
TARGETS = (
    "Targets: x bare <= 1.01, worst step <= 1.5x the bare median, <= 0.2 extra syncs per step, host "
    "RSS growth <= 10% of the model + optimizer bytes."
)


def run(quick: bool = False) -> list[str]:
    header = ["## GPU cost of the callbacks", "", TARGETS, ""]
    if torch.cuda.is_available() and not quick:
        with quiet_lightning(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            body = [METHOD, "", *table(torch.device("cuda"), quick=False)]
        KEPT.write_text("\n".join(body) + "\n")  # the method travels with the table it made
        return [*header, *body, ""]
    if quick:
        with quiet_lightning(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
            return [
                *header,
                METHOD,
                "",
                "Smoke size on this machine's device (numbers mean nothing):",
                "",
                *table(device, True),
                "",
            ]
    kept = KEPT.read_text().splitlines() if KEPT.exists() else ["No GPU run has been recorded yet."]
    return [
        *header,
        "Skipped here: this machine has no CUDA device. The last GPU run, as it described itself:",
        "",
        *kept,
        "",
    ]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tiny run on this machine's device")
    print("\n".join(run(parser.parse_args().quick)))
