"""AtomicCheckpointIO: a checkpoint file is either the old one or the complete new one, never a torn one."""

from __future__ import annotations

import io
import os
import secrets
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO
from typing_extensions import override

from lightning_lr._internals import CheckpointPath


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write each checkpoint to a temporary file beside it, flush it to disk, then rename it over.

    Lightning's own writer goes through a file in the system's temporary directory and moves it
    into place; when that directory is on another filesystem (``/tmp`` on tmpfs is common) the
    move is a copy into the checkpoint file itself, so a process killed during the copy leaves a
    truncated ``last.ckpt``, and the temporary file is left behind in ``/tmp``. Here the
    temporary file lives in the checkpoint's own directory, is ``fsync``-ed, and replaces the
    checkpoint with ``os.replace`` (atomic on POSIX and Windows), after which the directory is
    ``fsync``-ed too: after a crash or a ``SIGKILL`` at any moment, the checkpoint path holds the
    previous complete checkpoint or the new complete one. A process killed mid-write leaves at
    most one ``.<name>.*.tmp`` file in that directory; it never ends in ``.ckpt``, so nothing
    mistakes it for a checkpoint. Remote paths (``s3://`` and the like) go to Lightning's writer.

    ``lightning-lr`` installs it unless the Trainer is given a checkpoint IO of its own. Elsewhere:
    ``Trainer(plugins=[AtomicCheckpointIO()])``.
    """

    @override
    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: CheckpointPath, storage_options: Any | None = None
    ) -> None:
        if "://" in str(path):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        if storage_options is not None:
            raise TypeError(
                f"`storage_options` is not supported by {type(self).__name__}, got {storage_options!r}. "
                "Leave it out, or give the Trainer a CheckpointIO that uses it."
            )
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)  # a checkpoint that cannot be serialized never touches the disk
        write_atomically(target, buffer.getbuffer())


def write_atomically(target: Path, data: bytes | memoryview) -> None:
    """Replace ``target`` with ``data`` so that it is never seen half-written, even after a crash."""
    temporary = target.parent / f".{target.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp"
    # O_EXCL: never write through a file that is already there; mode 0o666 lets the umask decide
    handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_directory(target.parent)


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable (a no-op where directories cannot be opened, as on Windows)."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
