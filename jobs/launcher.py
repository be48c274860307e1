"""Starting workers from the app: :func:`ensure_worker` spawns ``python -m jobs.worker`` (detached; it logs to
``<data dir>/logs/worker.log``, rotated by size, and anything it prints outside logging, such as a crash before
logging is set up, goes to ``worker.out``) when jobs are queued and no live worker is registered. Imports nothing
heavy."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import Engine

from db.engine import REPO_ROOT, data_dir, make_engine
from jobs import workers

RAW_OUTPUT_CAP = 5_000_000  # bytes of worker.out kept before it starts afresh

_children: list[subprocess.Popen[bytes]] = []  # the workers this process started (reaped when they exit)


def _child_url(engine: Engine) -> str:
    url = engine.url
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        url = url.set(database=str(Path(url.database).expanduser().resolve()))
    return url.render_as_string(hide_password=False)


def _logs_dir() -> Path:
    logs = data_dir() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    return logs


def ensure_worker(engine: Engine | None = None, *, idle_exit_s: float = 60.0,
                  extra_args: Sequence[str] = ()) -> bool:
    """Start ``python -m jobs.worker --idle-exit 60`` (detached, logging to ``<data dir>/logs/worker.log``) when
    jobs are queued and no live worker is registered. Returns whether one was started. Safe to call often and from
    several processes at once: the check and the start happen under one database lock."""
    engine = engine or make_engine()
    _children[:] = [child for child in _children if child.poll() is None]

    def spawn(worker_id: str) -> int:
        env = {**os.environ, "REPORTLENS_DATABASE_URL": _child_url(engine), "PYTHONUNBUFFERED": "1"}
        logs = _logs_dir()
        raw = logs / "worker.out"
        mode = "wb" if raw.exists() and raw.stat().st_size > RAW_OUTPUT_CAP else "ab"
        with open(raw, mode) as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "jobs.worker", "--idle-exit", f"{idle_exit_s:g}", "--worker-id", worker_id,
                 "--log-file", str(logs / "worker.log"), *extra_args],
                cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True, close_fds=True)
        _children.append(proc)
        threading.Thread(target=proc.wait, name=f"reap-worker-{proc.pid}", daemon=True).start()  # no zombie
        return proc.pid

    return workers.start_worker_if_needed(engine, spawn) is not None
