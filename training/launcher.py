"""Starting workers from the app: :func:`ensure_worker` spawns ``python -m training.worker`` (detached, its output in
``<data dir>/logs/worker.log``) when jobs are queued and no live worker is registered. Imports nothing heavy."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import Engine

from db import workers
from db.engine import REPO_ROOT, data_dir, make_engine

LOG_ROTATE_BYTES = 5_000_000

_children: list[subprocess.Popen[bytes]] = []  # the workers this process started (reaped when they exit)


def _child_url(engine: Engine) -> str:
    url = engine.url
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        url = url.set(database=str(Path(url.database).expanduser().resolve()))
    return url.render_as_string(hide_password=False)


def _log_file() -> Path:
    logs = data_dir() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    path = logs / "worker.log"
    if path.exists() and path.stat().st_size > LOG_ROTATE_BYTES:
        path.replace(logs / "worker.log.1")
    return path


def ensure_worker(engine: Engine | None = None, *, idle_exit_s: float = 60.0,
                  extra_args: Sequence[str] = ()) -> bool:
    """Start ``python -m training.worker --idle-exit 60`` (detached, output to ``<data dir>/logs/worker.log``) when
    jobs are queued and no live worker is registered. Returns whether one was started. Safe to call often and from
    several processes at once: the check and the start happen under one database lock."""
    engine = engine or make_engine()
    _children[:] = [child for child in _children if child.poll() is None]

    def spawn(worker_id: str) -> int:
        env = {**os.environ, "REPORTLENS_DATABASE_URL": _child_url(engine), "PYTHONUNBUFFERED": "1"}
        with open(_log_file(), "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "training.worker", "--idle-exit", f"{idle_exit_s:g}", "--worker-id", worker_id,
                 *extra_args],
                cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, close_fds=True)
        _children.append(proc)
        threading.Thread(target=proc.wait, name=f"reap-worker-{proc.pid}", daemon=True).start()  # no zombie
        return proc.pid

    return workers.start_worker_if_needed(engine, spawn) is not None
