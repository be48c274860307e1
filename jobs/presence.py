"""Which Streamlit apps are open on this host, and which of them are working, so a worker leaves a working app its
cores (:mod:`jobs.threads`).

The app calls :func:`announce_app` once per process (``app.py``, after sizing its own threads): it writes
``<data dir>/run/app-<host>-<pid>.json`` with the threads it takes. :func:`live_apps` lists this host's files whose
process still exists (a file whose process is gone is removed on the way). A file, not a database row: it needs no
migration, and cores are a matter of one host anyway (the host is in the name, so a data folder shared between
machines still works). A worker started with another data folder than the app's does not see the app; set
``REPORTLENS_TRAIN_THREADS`` there.

An open app is mostly idle: it waits for a click, and its live-progress panel costs about 12 ms every 2 s
(bench/README.md, "The live-progress panel's cost"). Leaving it a core all the time made a lone training job on 2
cores run on one thread, 1.67x slower than on two ("Two training jobs on one machine", quiet cores). So a worker
counts an app only while it works: :class:`AppActivity` reads the app process's CPU time (psutil) at each of the
job's looks (every few seconds) and counts the app when it used at least :data:`BUSY_CORES` of a core since the
previous look (scoring a report, an attention view, a feature report), or when it is seen for the first time (no
earlier look to compare with) or its CPU time cannot be read.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from db.engine import data_dir
from jobs.workers import HOST, pid_alive

RUN_DIR = "run"
_SAFE = re.compile(r"[^A-Za-z0-9_.-]")
# Cores an app must have used on average since the previous look to count as working. The idle app's panel refresh
# is well under 1% of a core; a scoring run or an attention view keeps a thread busy (close to 1 core).
BUSY_CORES = 0.25

__all__ = ["BUSY_CORES", "AppActivity", "AppPresence", "announce_app", "cpu_seconds", "live_apps"]


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


def cpu_seconds(pid: int) -> float | None:
    """The CPU time (user + system, all its threads) process ``pid`` has used, or None when it cannot be read (gone,
    or another user's process on a system that hides it)."""
    try:
        times = psutil.Process(pid).cpu_times()
    except (psutil.Error, OSError):
        return None
    return float(times.user + times.system)


class AppActivity:
    """Which open apps are working, from their CPU time between two looks of one job (one instance per job)."""

    def __init__(self, *, busy_cores: float = BUSY_CORES, clock: Callable[[], float] = time.monotonic,
                 cpu: Callable[[int], float | None] = cpu_seconds) -> None:
        self.busy_cores, self.clock, self.cpu = busy_cores, clock, cpu
        self._seen: dict[int, tuple[float, float]] = {}  # pid -> (when, its CPU seconds then)

    def busy(self, apps: Sequence[AppPresence]) -> list[AppPresence]:
        """The apps of ``apps`` to leave cores to now: those that used at least ``busy_cores`` since the previous
        look, and those with no previous look or whose CPU time cannot be read (counted, as before this check)."""
        now, seen, out = self.clock(), {}, []
        for app in apps:
            used = self.cpu(app.pid)
            before = self._seen.get(app.pid)
            if used is None:
                out.append(app)
                continue
            seen[app.pid] = (now, used)
            if before is None or now <= before[0] or (used - before[1]) / (now - before[0]) >= self.busy_cores:
                out.append(app)
        self._seen = seen
        return out
