"""Browser fixtures: the real app (``streamlit run app.py``) in a subprocess on a free loopback port with its own
SQLite database, and a headless system Chromium driven by Playwright.

Chromium comes from Debian (``scripts/ensure_chromium.sh``, called by ``make test``); Playwright's own browser
download is never used. Without Chromium (or Playwright) these tests skip, saying why, and fail when ``CI`` is set.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("REPORTLENS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
STARTUP_TIMEOUT_S = 60
LOCAL_HOSTS = {"127.0.0.1"}


def _unavailable(reason: str) -> None:
    hint = "run `bash scripts/ensure_chromium.sh` (as root) and `pip install -r requirements.txt`"
    if os.environ.get("CI"):
        pytest.fail(f"CI is set but the browser tests cannot run: {reason}; {hint}.", pytrace=False)
    pytest.skip(f"browser tests need Chromium and Playwright: {reason}; {hint}")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- the app


@dataclass
class App:
    url: str  # http://127.0.0.1:<port>
    db_url: str  # the SQLite database the app uses
    log: Path  # the app's stdout + stderr

    def engine(self):
        from db.engine import make_engine

        return make_engine(self.db_url)


def _wait_healthy(proc: subprocess.Popen, url: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode} before answering:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                if resp.read().decode().strip() == "ok":
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"streamlit did not answer {url}/_stcore/health within {STARTUP_TIMEOUT_S} s:\n"
                       f"{log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    except ProcessLookupError:
        pass


def _warm_up(browser, url: str) -> None:
    """Open the main page once. Until a first session has run ``app.py`` (its ``st.navigation``), Streamlit does not
    know the pages: a first visit straight to ``/import`` shows a "Page not found" dialog over the right page, which
    makes the page inert (streamlit/streamlit#9992). Users who bookmark a page see it once after each server start."""
    context = browser.new_context()
    try:
        pg = context.new_page()
        pg.goto(url)
        pg.get_by_role("heading", name="ReportLens", level=1).wait_for(timeout=60_000)
    finally:
        context.close()


@contextmanager
def running_app(browser, tmp: Path, env: dict[str, str] | None = None, port: int | None = None) -> Iterator[App]:
    """``streamlit run app.py`` on a free loopback port (or ``port``) with a migrated SQLite database in ``tmp``
    (``env`` added to the environment), opened once; stopped, with its process group, afterwards."""
    from db.engine import dispose_engine
    from db.migrate import upgrade

    db_url = f"sqlite:///{tmp / 'browser.db'}"
    upgrade(db_url)  # the app would do it too; done here so tests can read the DB before the first page load
    port = port or _free_port()
    url = f"http://127.0.0.1:{port}"
    full_env = {**os.environ, "REPORTLENS_DATABASE_URL": db_url, "PYTHONUNBUFFERED": "1", **(env or {})}
    log = tmp / "streamlit.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.address", "127.0.0.1",
             "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false"],
            cwd=ROOT, env=full_env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group, killed as a whole afterwards
        )
    try:
        _wait_healthy(proc, url, log)
        _warm_up(browser, url)
        yield App(url, db_url, log)
    finally:
        _stop(proc)
        dispose_engine(db_url)


@pytest.fixture(scope="module")
def start_app(browser):
    """``start_app(tmp, env)``: :func:`running_app` as a context manager, for modules that prepare the data first."""
    return lambda tmp, env=None: running_app(browser, tmp, env)


@pytest.fixture(scope="module")
def app(browser, tmp_path_factory) -> Iterator[App]:
    """The real app, one process per test module, on a fresh migrated SQLite database, opened once."""
    with running_app(browser, tmp_path_factory.mktemp("browser-app")) as started:
        yield started


# ---------------------------------------------------------------- the browser


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """Headless system Chromium; Playwright starts it with a fresh temporary profile (user-data-dir)."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        _unavailable(f"{CHROMIUM} is missing")
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed")
    with sync_playwright() as pw:
        try:
            b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        except Error as exc:
            _unavailable(f"Chromium at {CHROMIUM} did not start ({str(exc).splitlines()[0]})")
        yield b
        b.close()


@dataclass
class Requests:
    """Every URL the page asked for (documents, scripts, websockets, favicons, …)."""

    urls: list[str] = field(default_factory=list)

    def outside(self) -> list[str]:
        return [u for u in self.urls if urlsplit(u).scheme not in ("data", "blob", "about")
                and urlsplit(u).hostname not in LOCAL_HOSTS]


@pytest.fixture
def requests_seen() -> Requests:
    return Requests()


@pytest.fixture
def page(browser, app, requests_seen) -> Iterator[object]:
    """A new browser context (fresh Streamlit session) with every request recorded; downloads accepted."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    context.set_default_timeout(30_000)
    context.on("request", lambda r: requests_seen.urls.append(r.url))
    # websockets are not "request"s; the context has no websocket event, each page has
    context.on("page", lambda p: p.on("websocket", lambda ws: requests_seen.urls.append(ws.url)))
    pg = context.new_page()
    try:
        yield pg
    finally:
        context.close()
