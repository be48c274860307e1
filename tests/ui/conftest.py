"""Shared fixtures of the AppTest page tests: an empty, migrated SQLite file and data folder for the app under test
(worker processes a test started are stopped and the engine disposed afterwards), and ``open_page``, which runs the
app on it and switches to a page."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def migrate_db() -> bool:
    """Whether ``db`` migrates its file before the test. A test that wants the app's first start on a database file
    that does not exist yet (the app migrates it itself) overrides it: ``@pytest.mark.parametrize("migrate_db",
    [False], ids=["fresh"])``."""
    return True


@pytest.fixture
def db(tmp_path, monkeypatch, migrate_db):
    from db.engine import dispose_engine, make_engine
    from db.migrate import upgrade
    from jobs.workers import live_workers

    url = f"sqlite:///{tmp_path / 'ui.db'}"
    monkeypatch.setenv("REPORTLENS_DATABASE_URL", url)
    monkeypatch.setenv("REPORTLENS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(ROOT)
    if migrate_db:
        upgrade(url)
    yield url
    for w in live_workers(make_engine(url)):
        try:
            os.kill(w.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    dispose_engine(url)


@pytest.fixture
def retire_this_process(db):
    """For tests that claim jobs in this process (registering it as a worker): its worker rows are retired before
    the ``db`` fixture stops the live workers it finds, which would otherwise be this test run."""
    yield
    from db.engine import make_engine
    from jobs import workers

    engine = make_engine(db)
    for w in workers.live_workers(engine):
        if w.pid == os.getpid():
            workers.retire_worker(engine, w.id, force=True)


@pytest.fixture
def open_page(db):
    """``open_page("pages/review.py", reviewer_name="dr. lee")``: the app (``app.py``) run once, then switched to
    the page, with the given session state set first; the ``AppTest`` after that run. ``open_page()`` (no page)
    stops after the first run, on the Overview. Uses the ``db`` fixture, so the app reads the test's empty, migrated
    database (a test that sets ``REPORTLENS_DATABASE_URL`` itself before calling it gets that database instead)."""
    from streamlit.testing.v1 import AppTest

    def run(path: str | None = None, **state: object) -> AppTest:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
        for key, value in state.items():
            at.session_state[key] = value
        at.run()
        if path is not None:
            at.switch_page(path).run()
        return at

    return run
