"""Engine and sessions: SQLite by default, any SQLAlchemy URL via ``REPORTLENS_DATABASE_URL``.

SQLite connections get WAL journaling, a busy timeout, foreign keys, and explicit transaction control:
SQLAlchemy emits the ``BEGIN`` itself (pysqlite's implicit BEGIN is switched off, the recipe from the SQLAlchemy
SQLite dialect docs, "Enabling Non-Legacy SQLite Transactional Modes"). Every transaction begins with
``BEGIN IMMEDIATE`` (takes the write lock up front, so a transaction that reads and then writes never fails with
"database is locked"), except those opened by :func:`read_session`, which use a plain deferred ``BEGIN`` so readers
never wait for writers.

Callers own the session::

    with write_session(engine) as s:      # commits on success, rolls back on error
        s.execute(...)
    with read_session(engine) as s:       # never writes
        s.scalars(select(...))
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

REPO_ROOT = Path(__file__).resolve().parent.parent
ENV_URL = "REPORTLENS_DATABASE_URL"
ENV_DATA_DIR = "REPORTLENS_DATA_DIR"
ENV_BUSY_TIMEOUT = "REPORTLENS_SQLITE_BUSY_TIMEOUT_MS"
DEFAULT_BUSY_TIMEOUT_MS = 60_000
_BEGIN_OPTION = "reportlens_sqlite_begin"  # execution option read by the ``begin`` hook

_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def data_dir() -> Path:
    """Where ReportLens keeps its files (models, worker logs, the default SQLite database): ``REPORTLENS_DATA_DIR``
    if set, else ``<repo>/data``. Created when missing."""
    raw = os.environ.get(ENV_DATA_DIR, "").strip()
    path = Path(raw).expanduser().resolve() if raw else REPO_ROOT / "data"
    path.mkdir(parents=True, exist_ok=True)
    return path


def database_url() -> str:
    """``REPORTLENS_DATABASE_URL`` if set, else the SQLite file ``reportlens.db`` in :func:`data_dir`."""
    url = os.environ.get(ENV_URL, "").strip()
    if url:
        return url
    return f"sqlite:///{data_dir() / 'reportlens.db'}"


def _json_dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, default=str)


def json_safe(obj: Any) -> Any:
    """Plain JSON data: numpy/torch scalars and arrays to Python numbers and lists, NaN/inf to ``None`` (PostgreSQL
    ``json`` rejects NaN), paths and datetimes to strings."""
    if obj is None or isinstance(obj, str | bool | int):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [json_safe(v) for v in obj]
    if isinstance(obj, datetime):
        return obj.isoformat()
    tolist = getattr(obj, "tolist", None)  # numpy / torch scalars and arrays
    if callable(tolist):
        return json_safe(tolist())
    return str(obj)


def _busy_timeout_ms() -> int:
    raw = os.environ.get(ENV_BUSY_TIMEOUT, "")
    return int(raw) if raw.isdigit() else DEFAULT_BUSY_TIMEOUT_MS


def _configure_sqlite(engine: Engine, file_based: bool) -> None:
    busy_ms = _busy_timeout_ms()

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # SQLAlchemy emits BEGIN itself (see _on_begin)
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {busy_ms}")
        cur.execute("PRAGMA foreign_keys = ON")
        if file_based:
            cur.execute("PRAGMA journal_mode = WAL")
            cur.execute("PRAGMA synchronous = NORMAL")  # durable across app crashes in WAL mode
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get(_BEGIN_OPTION, "IMMEDIATE")
        conn.exec_driver_sql("BEGIN" if mode == "DEFERRED" else "BEGIN IMMEDIATE")


def make_engine(url: str | None = None) -> Engine:
    """The process-wide engine for ``url`` (default :func:`database_url`), created once and cached."""
    url = url or database_url()
    with _lock:
        engine = _engines.get(url)
        if engine is not None:
            return engine
        parsed = make_url(url)
        kwargs: dict[str, Any] = {"json_serializer": _json_dumps}
        if parsed.get_backend_name() == "sqlite":
            database = parsed.database or ""
            file_based = database not in ("", ":memory:") and not database.startswith("file::memory:")
            if file_based:
                Path(database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": _busy_timeout_ms() / 1000, "check_same_thread": False}
            engine = create_engine(url, **kwargs)
            _configure_sqlite(engine, file_based)
        else:
            engine = create_engine(url, pool_pre_ping=True, **kwargs)
        _engines[url] = engine
        return engine


def dispose_engine(url: str | None = None) -> None:
    """Close and forget the cached engine for ``url`` (all engines when ``None``). For tests and worker shutdown."""
    with _lock:
        keys = list(_engines) if url is None else [url]
        for key in keys:
            engine = _engines.pop(key, None)
            if engine is not None:
                engine.dispose()


@contextmanager
def write_session(engine: Engine) -> Iterator[Session]:
    """A session inside one write transaction (``BEGIN IMMEDIATE`` on SQLite): commits on success, else rolls back."""
    with Session(engine, expire_on_commit=False) as session, session.begin():
        yield session


@contextmanager
def read_session(engine: Engine) -> Iterator[Session]:
    """A session for reads (deferred ``BEGIN`` on SQLite, so it never waits for a writer); always rolled back."""
    bind = engine.execution_options(**{_BEGIN_OPTION: "DEFERRED"}) if engine.dialect.name == "sqlite" else engine
    with Session(bind) as session:
        try:
            yield session
        finally:
            session.rollback()


def lock_project_key(session: Session, key: str) -> None:
    """Serialize writers working on the same project (PostgreSQL advisory lock for this transaction).

    SQLite needs nothing: ``BEGIN IMMEDIATE`` already admits one writer at a time.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"reportlens:{key}"})


def refresh_planner_stats(session: Session, tables: tuple[str, ...]) -> None:
    """PostgreSQL: ``ANALYZE`` tables that a long transaction is filling. Without statistics the planner filters a
    1000-key ``IN`` list row by row over the whole project (quadratic on a first large import); ANALYZE inside the
    transaction counts its own uncommitted rows. SQLite plans by rule and needs nothing."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("ANALYZE " + ", ".join(tables)))
