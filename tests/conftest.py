"""Shared fixtures."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

# ---------------------------------------------------------------- databases (db/)

PG_ENV = "REPORTLENS_TEST_PG_URL"
PG_HINT = 'export REPORTLENS_TEST_PG_URL="$(scripts/ensure_postgres.sh)"'


@pytest.fixture
def sqlite_url(tmp_path) -> Iterator[str]:
    """A fresh SQLite file in tmp_path, migrated to head."""
    from db.engine import dispose_engine
    from db.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'reportlens-test.db'}"
    upgrade(url)
    yield url
    dispose_engine(url)


@pytest.fixture(scope="session")
def _pg_session_url() -> Iterator[str]:
    """A fresh schema on the test PostgreSQL for this test session (one per xdist worker), migrated, dropped after."""
    base = os.environ.get(PG_ENV, "").strip()
    if not base:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but {PG_ENV} is not: the PostgreSQL tests must run in CI. Run {PG_HINT} first.",
                        pytrace=False)
        pytest.skip(f"PostgreSQL tests need {PG_ENV}; run {PG_HINT}")
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from db.engine import dispose_engine
    from db.migrate import upgrade

    schema = f"rl_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False)
    try:
        upgrade(url)
        yield url
    finally:
        dispose_engine(url)
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def pg_url(_pg_session_url: str) -> Iterator[str]:
    """The session's PostgreSQL schema, emptied before each test."""
    from sqlalchemy import text

    from db.engine import make_engine
    from db.models import Base

    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with make_engine(_pg_session_url).begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    yield _pg_session_url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request) -> str:
    """Each test that uses it runs on a migrated SQLite file and on PostgreSQL."""
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")
