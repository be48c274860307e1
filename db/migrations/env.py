"""Alembic environment: the URL (or an open connection) comes from db.migrate, never from an ini file."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from db.engine import database_url, make_engine
from db.models import Base

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    return config.attributes.get("url") or config.get_main_option("sqlalchemy.url") or database_url()


def run_migrations_offline() -> None:
    url = _url()
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=url.startswith("sqlite"),
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    is_sqlite = connection.dialect.name == "sqlite"
    if is_sqlite:
        # Batch mode rebuilds tables (copy, DROP, rename); with foreign keys ON a DROP would cascade-delete child
        # rows. The pragma only works outside a transaction, so set it on the raw connection before BEGIN.
        connection.connection.driver_connection.execute("PRAGMA foreign_keys = OFF")
    try:
        # transactional_ddl: SQLite can roll DDL back once SQLAlchemy emits BEGIN itself (db.engine), so every
        # upgrade is all-or-nothing on both dialects.
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=is_sqlite,
                          transactional_ddl=True)
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                # Two processes upgrading at once: the second waits, then finds the schema at head.
                connection.execute(text("SELECT pg_advisory_xact_lock(hashtext('reportlens:migrate'))"))
            context.run_migrations()
            if is_sqlite:
                problems = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if problems:
                    raise RuntimeError(f"Migration left rows that break foreign keys: {problems[:5]}")
    finally:
        if is_sqlite:
            connection.connection.driver_connection.execute("PRAGMA foreign_keys = ON")


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    with make_engine(_url()).connect() as conn:
        _run(conn)


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
