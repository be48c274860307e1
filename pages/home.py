"""Overview: what ReportLens does and the projects in the database."""

import pandas as pd
import streamlit as st

from db.repository import list_projects
from ui.state import engine

st.title("ReportLens")
st.caption("From medical report text to trustworthy extraction models, with people in the loop.")

projects = list_projects(engine())
if not projects:
    st.info(
        "No project yet. Go to **Import** to load a Label Studio export (JSON, JSON-MIN or CONLL2003) or DICOM SR "
        "files, or run `python cli.py seed-demo` to create the demo project."
    )
    st.page_link("pages/import_data.py", label="Import data", icon="📥")
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
st.markdown(
    "**Next steps:** look at a project's documents, labels and token alignment on **Dataset**; "
    "add annotated exports on **Import**."
)
c1, c2 = st.columns(2)
c1.page_link("pages/dataset.py", label="Open the dataset", icon="🗂️")
c2.page_link("pages/import_data.py", label="Import more data", icon="📥")
