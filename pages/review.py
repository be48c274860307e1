"""Review: a clinician checks the entities suggested for a report, accepts or corrects them, and the finished review
becomes training data (services/review.py explains the policy; ui/review.py draws the blocks)."""

import streamlit as st

from core.types import ReportLensError
from services import review as svc
from ui import review as view
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

try:
    rv = svc.open_report(engine(), row.document_id, reviewer, version.id if version else None)
except ReportLensError as exc:
    st.error(view.plain(exc))
    st.stop()
view.report_caption(rv, row)
if not rv.document.text:
    st.info("This report has no text; pick another one.")
    st.stop()
view.report_notices(rv, reviewer)
view.report_view(rv, labels, threshold)
desk = view.Desk(rv, reviewer, labels)
view.entity_panel(desk)
view.add_panel(desk)
view.structured_panel(rv, project)
