"""Overview: what ReportLens does, the projects in the database, and every page (from ``ui.navigation``)."""

import pandas as pd
import streamlit as st

from services.projects import list_projects
from ui.navigation import PAGES, page
from ui.state import engine

st.title("ReportLens")
st.caption("From medical report text to trustworthy extraction models, with people in the loop.")

projects = list_projects(engine())
if not projects:
    st.info(
        "No project yet. Go to **Import** to load a Label Studio export (JSON, JSON-MIN or CONLL2003), DICOM SR "
        "files or a brat corpus (.txt/.ann pairs), or run `python cli.py seed-demo` to create the demo project."
    )
    imp = page("pages/import_data.py")
    st.page_link(imp.path, label="Import data", icon=imp.icon)
    st.stop()

st.subheader("Projects")
st.dataframe(
    pd.DataFrame(
        [
            {
                "project": p.name,
                "documents": p.n_documents,
                "labeled": p.n_labeled,
                "labels": ", ".join(p.labels),
                "created": p.created_at,
            }
            for p in projects
        ]
    ),
    hide_index=True,
    width="stretch",
)
st.subheader("The loop")
for entry in PAGES:
    if entry.default:  # this page
        continue
    c1, c2 = st.columns([1, 4])
    c1.page_link(entry.path, label=entry.title, icon=entry.icon)
    c2.caption(f"{entry.section} · {entry.description}")
