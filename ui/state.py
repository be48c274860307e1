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


def remembered_project(names: list[str]) -> str | None:
    """The project this tab works on: this session's choice, else ``?project=NAME`` in the URL (a bookmark, a new
    tab opened from a link), else ``None``."""
    for wanted in (st.session_state.get("project_name"), st.query_params.get(QUERY_PARAM)):
        if wanted in names:
            return wanted
    return None


def remember_project(name: str) -> None:
    """Make ``name`` the selected project of this session and of the URL (``?project=NAME``)."""
    st.session_state["project_name"] = name
    if st.query_params.get(QUERY_PARAM) != name:
        st.query_params[QUERY_PARAM] = name


def project_picker(key: str = "project") -> Any:
    """A sidebar select box of projects; remembers the choice across pages and, through ``?project=NAME`` in the
    URL, across reloads and tabs opened from it. Without a choice: the project worked on last (newest import or
    job). ``None`` when there is no project."""
    from services.overview import most_recent_project
    from services.projects import list_projects

    projects = list_projects(engine())
    if not projects:
        return None
    names = [p.name for p in projects]
    current = remembered_project(names) or most_recent_project(engine())
    index = names.index(current) if current in names else 0
    name = st.sidebar.selectbox("Project", names, index=index, key=f"{key}_select")
    remember_project(name)
    return next(p for p in projects if p.name == name)
