"""The package face: one public import path per name, no side effects."""

from __future__ import annotations

import dataclasses
import pickle
import re
import subprocess
import sys
from pathlib import Path

import pytest

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
    # `LRWarmup` at the top is the callback; the schedule `Warmup` lives in lightning_lr.schedules
    assert lightning_lr.LRWarmup is not schedules.Warmup
    assert lightning_lr.LRWarmup.__module__ == "lightning_lr.callbacks.warmup"
    payload = pickle.dumps(schedules.Warmup(schedules.CosineDecay(10), 2))
    assert b"lightning_lr.schedules" in payload and b"lightning_lr.schedules.warmup" not in payload


def test_the_readme_schedule_table_lists_every_schedule_with_its_arguments_and_reference() -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    section = readme.split("## Schedules", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    listed = {}
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split(" | ")]
        match = re.fullmatch(r"`(\w+)\((.*)\)`", cells[0])
        if match is not None and match.group(1) in schedules.SCHEDULES:
            assert len(cells) == 3 and cells[2], row  # formula, and the reference (or a dash)
            listed[match.group(1)] = {arg.split("=")[0].strip() for arg in match.group(2).split(", ") if arg}
    assert set(listed) == set(schedules.SCHEDULES)
    for name, arguments in listed.items():
        cls = schedules.SCHEDULES[name]
        public = {field.name for field in dataclasses.fields(cls)} - {"tiled_steps", "tiled_cycles"}
        assert arguments == public, name  # the row shows every argument a user passes


def test_importing_the_package_loads_no_plotting_or_demo_and_keeps_torch_state() -> None:
    code = (
        "import sys, torch; before = torch.get_num_threads(); import lightning_lr; "
        "assert 'lightning_lr.plot' not in sys.modules and 'mnist1d' not in sys.modules; "
        "assert torch.get_num_threads() == before"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_reduce_on_plateau_lives_at_the_top_and_its_old_path_warns() -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert lightning_lr.ReduceOnPlateau().to_config()["class_path"] == "lightning_lr.ReduceOnPlateau"
    assert "ReduceOnPlateau" not in schedules.SCHEDULES and "ReduceOnPlateau" not in schedules.__all__
    with pytest.warns(DeprecationWarning, match="lightning_lr.ReduceOnPlateau"):
        old = schedules.ReduceOnPlateau
    assert old is lightning_lr.ReduceOnPlateau


def test_the_warmup_callbacks_old_name_warns_for_one_release() -> None:
    import lightning_lr.callbacks

    for face in (lightning_lr, lightning_lr.callbacks):
        with pytest.warns(DeprecationWarning, match="LRWarmup"):
            old = face.Warmup
        assert old is lightning_lr.LRWarmup
        assert "Warmup" not in face.__all__
    assert lightning_lr.LRWarmup(4).state_key == "Warmup[warmup]"  # checkpoints written before resume


def test_the_callbacks_have_one_public_path_and_their_old_one_warns_for_one_release() -> None:
    import lightning_lr.callbacks

    callbacks = [name for name in lightning_lr.__all__ if name in lightning_lr.callbacks._MOVED]
    assert sorted(callbacks) == sorted(lightning_lr.callbacks._MOVED)  # every callback is on the face
    assert lightning_lr.callbacks.__all__ == []
    for name in callbacks:
        with pytest.warns(DeprecationWarning, match=rf"import it as `lightning_lr\.{name}`"):
            old = getattr(lightning_lr.callbacks, name)
        assert old is getattr(lightning_lr, name)
    with pytest.raises(AttributeError):
        lightning_lr.callbacks.NoSuchCallback  # noqa: B018
    with pytest.raises(AttributeError):
        lightning_lr.NoSuchName  # noqa: B018
