"""Process-wide resources for the Streamlit app (engine, tokenizer) and the selected project.

Loaded once per process through ``st.cache_resource``; nothing is loaded at import time.
"""

from __future__ import annotations

import logging
from typing import Any

import streamlit as st

log = logging.getLogger("reportlens.ui")


def engine() -> Any:
    """The database engine for ``REPORTLENS_DATABASE_URL`` (or data/), migrated to the newest schema once."""
    from services.app import database_url

    return _engine(database_url())


@st.cache_resource(show_spinner="Opening the database…")
def _engine(url: str) -> Any:
    from services.app import open_database

    return open_database(url)


@st.cache_resource(show_spinner="Loading the tokenizer…")
def tokenizer(model: str | None = None) -> Any:
    from services.app import load_tokenizer

    return load_tokenizer(model)


QUERY_PARAM = "project"
CHOSEN = "project_chosen"  # session flag: this tab chose its project (sidebar, import, or ?project=NAME)


def remembered_project(names: list[str]) -> str | None:
    """The project this tab chose: picked in the sidebar or imported into during this session, or named by
    ``?project=NAME`` in the URL (a bookmark, a tab opened from a link); ``None`` when it chose none (the sidebar then
    shows a default, which is not a choice: the Import page asks instead of importing into it)."""
    current = st.session_state.get("project_name")
    if st.session_state.get(CHOSEN) and current in names:
        return current
    wanted = st.query_params.get(QUERY_PARAM)
    if wanted in names:
        st.session_state[CHOSEN] = True
        st.session_state["project_name"] = wanted
        return wanted
    return None


def remember_project(name: str) -> None:
    """Make ``name`` this tab's chosen project, in the session and in the URL (``?project=NAME``)."""
    st.session_state["project_name"] = name
    st.session_state[CHOSEN] = True
    if st.query_params.get(QUERY_PARAM) != name:
        st.query_params[QUERY_PARAM] = name


def project_picker(key: str = "project") -> Any:
    """A sidebar select box of projects. It shows the project this tab chose (:func:`remembered_project`; written
    to the URL as ``?project=NAME``, so reloads and tabs opened from it keep it), else the one shown before on
    another page, else the project worked on last (newest import or job), never simply the first by name. ``None``
    when there is no project."""
    from services.overview import most_recent_project
    from services.projects import list_projects

    projects = list_projects(engine())
    if not projects:
        return None
    names = [p.name for p in projects]
    current = remembered_project(names) or st.session_state.get("project_name")
    if current not in names:
        current = most_recent_project(engine())
    index = names.index(current) if current in names else 0
    widget_key = f"{key}_select"
    name = st.sidebar.selectbox("Project", names, index=index, key=widget_key,
                                on_change=lambda: remember_project(st.session_state[widget_key]))
    st.session_state["project_name"] = name
    if st.session_state.get(CHOSEN):
        remember_project(name)  # page switches drop query parameters: write it again
    return next(p for p in projects if p.name == name)


def announce_app(threads: int) -> None:
    """Tell the workers on this host that this app is open taking ``threads`` torch threads (they leave them to it:
    :mod:`jobs.presence`); a data folder that cannot be written is logged, not raised (workers then do not know)."""
    from services.app import announce_app as announce

    try:
        announce(threads)
    except OSError as exc:
        log.warning("could not announce the app to the workers: %s", exc)
