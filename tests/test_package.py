"""The package face: one public import path per name, no side effects."""

from __future__ import annotations

import pickle
import subprocess
import sys

import lightning_lr
from lightning_lr import schedules


def test_every_exported_name_resolves() -> None:
    for name in lightning_lr.__all__:
        assert getattr(lightning_lr, name) is not None, name
    for name in schedules.__all__:
        assert getattr(schedules, name) is not None, name


def test_schedules_live_at_their_public_path() -> None:
    for name, cls in schedules.SCHEDULES.items():
        assert cls.__module__ == "lightning_lr.schedules", name
    # `Warmup` at the top is the callback; the schedule of that name lives in lightning_lr.schedules
    assert lightning_lr.Warmup is not schedules.Warmup
    assert lightning_lr.Warmup.__module__ == "lightning_lr.callbacks.warmup"
    payload = pickle.dumps(schedules.Warmup(schedules.CosineDecay(10), 2))
    assert b"lightning_lr.schedules" in payload and b"lightning_lr.schedules.warmup" not in payload


def test_importing_the_package_loads_no_plotting_or_demo_and_keeps_torch_state() -> None:
    code = (
        "import sys, torch; before = torch.get_num_threads(); import lightning_lr; "
        "assert 'lightning_lr.plot' not in sys.modules and 'mnist1d' not in sys.modules; "
        "assert torch.get_num_threads() == before"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
