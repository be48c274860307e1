"""Overview: a guide to the loop for the selected project (each step's state and the next action), the demo's
background jobs while they run, and the projects in the database."""

import streamlit as st

from core.auth import Permission
from services.auth import current_actor
from services.overview import loop_state
from services.projects import list_projects
from ui.navigation import page, visible_pages
from ui.overview import delete_project_panel, jobs_and_demo_note, loop_guide, projects_table
from ui.state import engine, project_picker

st.title("ReportLens")
st.caption("From medical report text to trustworthy extraction models, with people in the loop.")

actor = current_actor()
pages = visible_pages(actor)  # the same table as the navigation, filtered by role
project = project_picker()
if project is None:
    st.info(
        "No project yet. Go to **Import** to load a Label Studio export (JSON, JSON-MIN or CONLL2003), DICOM SR "
        "files or a brat corpus (.txt/.ann pairs), or run `python cli.py seed-demo` to create the demo project."
    )
    imp = page("pages/import_data.py")
    if imp in pages:
        st.page_link(imp.path, label="Import data", icon=imp.icon)
    st.stop()

state = loop_state(engine(), project.id)
loop_guide(state, pages)
jobs_and_demo_note(state)
with st.expander("All projects"):
    projects_table(list_projects(engine()))
if actor is not None and actor.may(Permission.DELETE_PROJECT):
    delete_project_panel(project)
