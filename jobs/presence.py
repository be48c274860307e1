"""Which Streamlit apps are open on this host, so a worker leaves them their cores (:mod:`jobs.threads`).

The app calls :func:`announce_app` once per process (``app.py``, after sizing its own threads): it writes
``<data dir>/run/app-<host>-<pid>.json`` with the threads it takes. :func:`live_apps` lists this host's files whose
process still exists (a file whose process is gone is removed on the way). A file, not a database row: it needs no
migration, and cores are a matter of one host anyway (the host is in the name, so a data folder shared between
machines still works). A worker started with another data folder than the app's does not see the app; set
``REPORTLENS_TRAIN_THREADS`` there.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from db.engine import data_dir
from jobs.workers import HOST, pid_alive

RUN_DIR = "run"
_SAFE = re.compile(r"[^A-Za-z0-9_.-]")

__all__ = ["AppPresence", "announce_app", "live_apps"]


@dataclass(frozen=True)
class AppPresence:
    pid: int
    threads: int
    path: Path


def _run_dir(root: Path | None) -> Path:
    return (root or data_dir()) / RUN_DIR


def _prefix() -> str:
    return f"app-{_SAFE.sub('_', HOST)}-"


def announce_app(threads: int, root: Path | None = None) -> Path:
    """Record that this process is an app on this host taking ``threads`` torch threads (idempotent: a Streamlit
    rerun rewrites nothing when the file already says so)."""
    folder = _run_dir(root)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{_prefix()}{os.getpid()}.json"
    body = json.dumps({"host": HOST, "pid": os.getpid(), "threads": int(threads)})
    try:
        if path.read_text(encoding="utf-8") == body:
            return path
    except OSError:
        pass
    tmp = path.with_suffix(".tmp")
    tmp.write_text(body, encoding="utf-8")
    tmp.replace(path)  # a reader never sees half a file
    return path


def live_apps(root: Path | None = None) -> list[AppPresence]:
    """The apps open on this host (their process exists), oldest pid first; files of apps that are gone are removed."""
    folder = _run_dir(root)
    out: list[AppPresence] = []
    if not folder.is_dir():
        return out
    for path in sorted(folder.glob(f"{_prefix()}*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            pid, threads = int(data["pid"]), int(data["threads"])
        except (OSError, ValueError, KeyError, TypeError):
            continue  # being written, or not ours: skip it this time
        if data.get("host") != HOST:
            continue
        if not pid_alive(pid):
            path.unlink(missing_ok=True)
            continue
        out.append(AppPresence(pid, threads, path))
    return sorted(out, key=lambda a: a.pid)
