"""AtomicCheckpointIO: a checkpoint is replaced whole or not at all, even by a SIGKILL mid-write."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from lightning_lr.checkpoint_io import AtomicCheckpointIO
from lightning_lr.cli_base import LightningLRCLI

MODEL = "stress.models.ReliabilityModel"


def state(value: float) -> dict[str, Any]:
    return {"state_dict": {"w": torch.full((1000,), value)}, "global_step": int(value)}


def test_save_and_load_round_trip_leaves_no_temporary_file(tmp_path: Path) -> None:
    io = AtomicCheckpointIO()
    target = tmp_path / "deep" / "last.ckpt"
    io.save_checkpoint(state(1.0), target)
    io.save_checkpoint(state(2.0), target)
    assert torch.equal(
        io.load_checkpoint(target, weights_only=True)["state_dict"]["w"], torch.full((1000,), 2.0)
    )
    assert [path.name for path in target.parent.iterdir()] == ["last.ckpt"]
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask


def test_a_failed_write_keeps_the_previous_checkpoint_and_cleans_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    io, target = AtomicCheckpointIO(), tmp_path / "last.ckpt"
    io.save_checkpoint(state(1.0), target)

    def disk_full(descriptor: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        io.save_checkpoint(state(2.0), target)
    assert torch.load(target, weights_only=True)["global_step"] == 1
    assert [path.name for path in tmp_path.iterdir()] == ["last.ckpt"]


def test_a_process_killed_mid_write_leaves_the_previous_checkpoint_intact(tmp_path: Path) -> None:
    io, target, writing = AtomicCheckpointIO(), tmp_path / "last.ckpt", tmp_path / "writing"
    io.save_checkpoint(state(1.0), target)
    pid = os.fork()
    if pid == 0:  # the child: the new bytes are written, then it hangs before the rename until killed
        try:

            def slow_fsync(descriptor: int) -> None:
                writing.write_text("yes")
                time.sleep(60)

            os.fsync = slow_fsync  # type: ignore[assignment]
            io.save_checkpoint(state(2.0), target)
        finally:
            os._exit(0)
    deadline = time.monotonic() + 30
    while not writing.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    assert writing.exists(), "the child never started writing"
    assert torch.load(target, weights_only=True)["global_step"] == 1
    leftovers = [path.name for path in tmp_path.iterdir() if path.name not in ("last.ckpt", "writing")]
    assert len(leftovers) == 1 and leftovers[0].startswith(".last.ckpt.") and leftovers[0].endswith(".tmp")
    io.save_checkpoint(state(3.0), target)  # the next save is unaffected
    assert torch.load(target, weights_only=True)["global_step"] == 3


def _cli(tmp_path: Path, *extra: str) -> LightningLRCLI:
    args = [
        f"--model={MODEL}",
        "--trainer.logger=false",
        "--trainer.max_steps=1",
        f"--trainer.default_root_dir={tmp_path}",
        "--lr_plot=null",
        *extra,
    ]
    return LightningLRCLI(args=args, run=False, save_config_callback=None)


def test_the_cli_writes_checkpoints_atomically_by_default(tmp_path: Path) -> None:
    assert isinstance(_cli(tmp_path).trainer.strategy.checkpoint_io, AtomicCheckpointIO)


def test_the_cli_keeps_a_checkpoint_io_the_user_gives(tmp_path: Path) -> None:
    given = _cli(tmp_path, "--trainer.plugins=lightning.pytorch.plugins.io.TorchCheckpointIO")
    assert type(given.trainer.strategy.checkpoint_io) is TorchCheckpointIO
    other = _cli(tmp_path, "--trainer.plugins=lightning.pytorch.plugins.precision.Precision")
    assert isinstance(other.trainer.strategy.checkpoint_io, AtomicCheckpointIO)
