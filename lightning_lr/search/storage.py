"""Where an LR search's study lives: a database URL opened for several workers, the study joined."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any, Literal

import optuna
import sqlalchemy

from lightning_lr._validate import fail
from lightning_lr.search.pruning import Mode

SQLITE_BUSY_TIMEOUT_S = 60
"""How long a worker waits on another's SQLite write lock before giving up."""

_STORAGE_EXAMPLE = "Give a database URL, e.g. 'sqlite:///search.db' or 'postgresql://user@host/db'."
_ATTEMPTS = 5


def open_storage(
    storage: str | optuna.storages.BaseStorage | None, run_dir: Path, study_name: str
) -> tuple[optuna.storages.BaseStorage, str]:
    """The study's storage and its URL (password hidden); ``None`` is SQLite in ``run_dir``.

    SQLite gets a busy timeout long enough for several workers to share the file.

    Raises:
        ValueError: the URL cannot be parsed, names an unknown database, or cannot be opened.
    """
    if isinstance(storage, optuna.storages.BaseStorage):
        url = getattr(storage, "url", None)
        return storage, _shown(url) if isinstance(url, str) else type(storage).__name__
    if storage is None:
        run_dir.mkdir(parents=True, exist_ok=True)
        storage = f"sqlite:///{(run_dir / f'{study_name}.db').resolve()}"
    if not isinstance(storage, str):
        raise TypeError(f"`storage` must be a database URL, an Optuna storage or None, got {storage!r}.")
    shown = _shown(storage)
    try:
        parsed = sqlalchemy.engine.make_url(storage)
    except (sqlalchemy.exc.ArgumentError, ValueError):
        raise fail("storage", shown, "must be a database URL", _STORAGE_EXAMPLE) from None
    try:
        parsed.get_dialect()
    except (sqlalchemy.exc.ArgumentError, ValueError):
        requirement = "names a database SQLAlchemy does not know (sqlite, postgresql, mysql, ...)"
        raise fail("storage", shown, requirement, _STORAGE_EXAMPLE) from None
    engine_kwargs: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        engine_kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_S}
        if parsed.database and parsed.database != ":memory:":
            with contextlib.suppress(OSError):  # an unusable folder is reported by the open below
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(_ATTEMPTS):
        try:
            return optuna.storages.RDBStorage(storage, engine_kwargs=engine_kwargs), shown
        except ImportError as error:
            driver = error.__cause__ or error
            raise fail(
                "storage", shown, "needs a database driver that is not installed", f"{driver}."
            ) from None
        except sqlalchemy.exc.SQLAlchemyError as error:
            if attempt + 1 < _ATTEMPTS and _is_race(error):
                time.sleep(0.2 * (attempt + 1))
                continue
            reason = str(error).splitlines()[0]
            raise fail("storage", shown, "could not be opened", f"{reason}. {_STORAGE_EXAMPLE}") from None
    raise AssertionError("unreachable")  # pragma: no cover


def open_study(
    storage: optuna.storages.BaseStorage,
    study_name: str,
    mode: Mode,
    sampler: optuna.samplers.BaseSampler,
    pruner: optuna.pruners.BasePruner,
) -> optuna.Study:
    """Create the study, or join it when another worker (even one racing this one) created it."""
    direction: Literal["minimize", "maximize"] = "minimize" if mode == "min" else "maximize"
    for attempt in range(_ATTEMPTS):
        try:
            study = optuna.create_study(
                storage=storage,
                study_name=study_name,
                direction=direction,
                sampler=sampler,
                pruner=pruner,
                load_if_exists=True,
            )
            break
        except (optuna.exceptions.DuplicatedStudyError, KeyError, sqlalchemy.exc.SQLAlchemyError) as error:
            if attempt + 1 == _ATTEMPTS or not _is_race(error):
                raise
            time.sleep(0.2 * (attempt + 1))
    existing = study.direction.name.lower()
    if existing != direction:
        raise fail(
            "mode",
            mode,
            f"does not match the existing study {study_name!r}, which is set to {existing}",
            "Use the study's mode, or a new `study_name`.",
        )
    return study


def _is_race(error: BaseException) -> bool:
    """An error another worker creating the same tables or study at the same moment can cause."""
    if isinstance(error, (optuna.exceptions.DuplicatedStudyError, KeyError, sqlalchemy.exc.IntegrityError)):
        return True
    text = str(error).lower()
    return "already exists" in text or "locked" in text or "unique constraint" in text


def _shown(url: str) -> str:
    try:
        return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    except (sqlalchemy.exc.ArgumentError, ValueError):
        return url


def claim_study(study: optuna.Study, fingerprint: str | None, url: str) -> None:
    """Refuse a study started on another config or search settings; mark a new one with ours."""
    if fingerprint is None:
        return
    stored = study.user_attrs.get("fingerprint")
    if stored is None:
        study.set_user_attr("fingerprint", fingerprint)
    elif stored != fingerprint:
        raise fail(
            "study_name",
            study.study_name,
            f"names a study in {url} that was run on another config or other search settings",
            "Give this search its own `study_name` (--study_name) or `run_dir`, or rerun it as it was.",
        )


def check_study_name(study_name: Any) -> str:
    """A study name: non-empty, and usable as a directory and a file name."""
    if not isinstance(study_name, str) or not study_name.strip():
        raise fail("study_name", study_name, "must be a non-empty string", "e.g. 'lightning-lr-search'.")
    if any(mark in study_name for mark in ("/", "\\", "\0")) or study_name in (".", ".."):
        raise fail(
            "study_name", study_name, "names a directory and a file, so it cannot hold path separators"
        )
    return study_name
