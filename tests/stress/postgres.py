"""A throwaway PostgreSQL server on loopback for the search's concurrency check.

Uses Debian's ``postgresql`` package (installed with apt-get when missing and running as root),
a data directory under a temporary folder, trust authentication, and a free port on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path


class Unavailable(RuntimeError):
    """PostgreSQL cannot be run here; the message says why."""


def _binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


def find_or_install() -> Path:
    folder = _binaries()
    if folder is None and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "update", "-qq"], check=False, capture_output=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "postgresql"],
            check=False,
            capture_output=True,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
        folder = _binaries()
    if folder is None:
        raise Unavailable(
            "no PostgreSQL binaries under /usr/lib/postgresql/*/bin, and apt-get could not add them"
        )
    return folder


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def server(root: Path) -> Iterator[str]:
    """A running server with an empty database ``search``; yields its SQLAlchemy URL.

    ``root`` (an empty folder of yours, e.g. from ``tempfile.mkdtemp()``) holds the data directory;
    when running as root it is opened to the ``postgres`` user.
    """
    try:
        import psycopg2  # noqa: F401
    except ImportError as error:
        raise Unavailable("psycopg2 is not installed (pip install -e '.[stress]')") from error
    binaries = find_or_install()
    as_postgres: list[str] = []
    if os.geteuid() == 0:  # initdb and the server refuse to run as root
        runuser = shutil.which("runuser")
        if runuser is None:
            raise Unavailable("running as root without runuser to switch to the postgres user")
        as_postgres = [runuser, "-u", "postgres", "--"]
    data = root / "pgdata"
    data.mkdir(parents=True)
    if as_postgres:  # the postgres user must reach the data directory
        root.chmod(0o755)
        closed = [str(folder) for folder in root.parents if folder.stat().st_mode & 0o001 == 0]
        if closed:
            raise Unavailable(
                f"the postgres user cannot enter {closed[0]}; use a temporary folder under /tmp"
            )
    if as_postgres:
        shutil.chown(data, "postgres", "postgres")
    port = _free_port()

    def run(*command: str) -> None:
        done = subprocess.run([*as_postgres, *command], capture_output=True, text=True, cwd="/")
        if done.returncode != 0:
            raise Unavailable(f"{Path(command[0]).name} failed: {(done.stderr or done.stdout)[-800:]}")

    run(str(binaries / "initdb"), "-D", str(data), "--auth=trust", "-U", "postgres", "--no-sync")
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {data} -c fsync=off"
    run(str(binaries / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(data / "log"), "-w", "start")
    try:
        run(str(binaries / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "search")
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/search"
    finally:
        subprocess.run(
            [*as_postgres, str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
            capture_output=True,
            cwd="/",
        )
