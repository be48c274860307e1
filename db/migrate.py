"""Schema migrations without an alembic.ini: ``python -m db.migrate`` upgrades the database to the newest revision.

Usage::

    python -m db.migrate                      # upgrade REPORTLENS_DATABASE_URL (or data/reportlens.db) to head
    python -m db.migrate --url URL            # another database
    python -m db.migrate current              # show the current revision
    python -m db.migrate revision -m "msg"    # autogenerate a revision from db/models.py (review it before use)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from alembic import command
from alembic.config import Config

from db.engine import database_url, make_engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str | None = None) -> Config:
    """An Alembic Config built in code; the URL travels in ``attributes`` (no ini file, no %-escaping)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["url"] = url or database_url()
    return cfg


def upgrade(url: str | None = None, revision: str = "head") -> None:
    """Upgrade the database at ``url`` (default :func:`db.engine.database_url`) to ``revision``. Idempotent."""
    url = url or database_url()
    cfg = alembic_config(url)
    with make_engine(url).connect() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def downgrade(url: str | None, revision: str) -> None:
    """Downgrade the database at ``url`` to ``revision`` (for tests and for going back to an older release)."""
    url = url or database_url()
    cfg = alembic_config(url)
    with make_engine(url).connect() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def current_revision(url: str | None = None) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with make_engine(url).connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m db.migrate", description="ReportLens database migrations.")
    parser.add_argument("action", nargs="?", default="upgrade", choices=["upgrade", "current", "revision"])
    parser.add_argument("--url", default=None, help="SQLAlchemy URL (default: REPORTLENS_DATABASE_URL or data/)")
    parser.add_argument("-m", "--message", default="change", help="message for a new revision")
    args = parser.parse_args(argv)
    url = args.url or database_url()
    if args.action == "upgrade":
        upgrade(url)
        print(f"Database at head: {current_revision(url)} ({make_engine(url).url.render_as_string()})")
    elif args.action == "current":
        print(current_revision(url) or "(empty database)")
    else:
        cfg = alembic_config(url)
        command.revision(cfg, message=args.message, autogenerate=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
