"""Review: a clinician checks the entities suggested for a report, accepts or corrects them, and the finished review
becomes training data (services/review.py explains the policy; ui/review.py draws the blocks, ui/review_desk.py
the report under review: the span view, in a fragment, so a decision reruns only that part)."""

import streamlit as st

from services import review as svc
from ui import review as view
from ui import review_desk as desk
from ui.state import engine, project_picker

st.title("Review")
project = project_picker()
if project is None:
    st.info("No project yet. Import reports on the **Import** page (or `python cli.py seed-demo`), train a model, "
            "then review what it extracts here.")
    st.page_link("pages/import_data.py", label="Import data", icon="📥")
    st.stop()

reviewer, threshold, version = view.sidebar(svc.model_versions(engine(), project.id))
prog = svc.progress(engine(), project.id)
if prog.total == 0:
    st.info(f"**{view.plain(project.name)}** has no report to review. Import some on the **Import** page.")
    st.stop()
view.progress_header(prog, version)
labels = svc.project_labels(engine(), project.id, version)
rows, total = view.worklist(project.id, version, labels)
if prog.reviewed == prog.total:
    st.success("Every report of this project is reviewed. 🎉")
if not rows:
    st.info("Nothing to review with these filters: clear the label filter or show reviewed reports.")
    st.stop()
row = view.report_picker(rows, total)
desk.review_desk(row, reviewer, version.id if version else None, labels, threshold, project)
