"""What the Streamlit app needs once per process, behind the service layer: the migrated database engine and the
tokenizer (``ui.state`` caches both with ``st.cache_resource``; projects come from :mod:`services.projects`)."""

from __future__ import annotations

from typing import Any

from services.auth import open_to_all


@open_to_all
def database_url() -> str:
    from db.engine import database_url as url

    return url()


@open_to_all
def open_database(url: str) -> Any:
    """The engine for ``url``, with the schema migrated to head first (idempotent)."""
    from db.engine import make_engine
    from db.migrate import upgrade

    upgrade(url)
    return make_engine(url)


@open_to_all
def load_tokenizer(model: str | None = None) -> Any:
    from training.encoding import load_tokenizer as load

    return load(model)


@open_to_all
def announce_app(threads: int) -> None:
    """Tell the workers on this host that an app is open taking ``threads`` torch threads, so they leave them to it
    (:mod:`jobs.presence`, :mod:`jobs.threads`); raises ``OSError`` when the data folder is not writable."""
    from jobs.presence import announce_app as announce

    announce(threads)
