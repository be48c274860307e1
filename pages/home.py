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
        "No project yet. Go to **Import** to load a Label Studio export (JSON, JSON-MIN or CONLL2003), DICOM SR "
        "files or a brat corpus (.txt/.ann pairs), or run `python cli.py seed-demo` to create the demo project."
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
st.subheader("The loop")
steps = [
    ("pages/import_data.py", "📥", "Import", "Label Studio exports (or DICOM SR, brat), validated and stored."),
    ("pages/dataset.py", "🗂️", "Dataset", "Documents, labels and their token-aligned BIO view."),
    ("pages/train.py", "🏋️", "Train", "Fine-tune with LoRA in a background job; watch loss and dev F1."),
    ("pages/models.py", "📊", "Models", "Compare versions, open their errors, activate one, export it."),
    ("pages/queue.py", "🎯", "Queue", "Rank unlabeled reports by uncertainty; pick the next batch to label."),
    ("pages/review.py", "🩺", "Review", "Accept or correct extracted entities; decisions become training data."),
    ("pages/explain.py", "🔍", "Explain", "Attention maps and feature importances for any version and report."),
]
for path, icon, label, text in steps:
    c1, c2 = st.columns([1, 4])
    c1.page_link(path, label=label, icon=icon)
    c2.caption(text)
