"""Explain: attention heatmaps and bertviz views of a model version on a report; random-forest feature importances
(services/explain.py computes them; ui/explain.py draws the blocks)."""

import streamlit as st

from services import explain as svc
from ui import explain as view
from ui.state import engine, project_picker

st.title("Explain")
project = project_picker()
if project is None:
    st.info("No project yet. Import labeled reports on the **Import** page first.")
    st.stop()
versions = svc.model_versions(engine(), project.id)
tab = st.radio("View", ["Attention", "bertviz", "Feature importances"], horizontal=True, key="explain_view")

if tab == "Feature importances":
    view.features_tab(project, versions)
    st.stop()
if not versions:
    st.info(f"**{project.name}** has no trained model yet. Train one on the **Train** page; feature importances "
            "work without one.")
    st.stop()
version, doc = view.report_picker(project, versions)
av = view.attention_window(project.id, version.id, doc.id)
selection = view.controls(av)
if tab == "Attention":
    view.attention_tab(av, selection, doc.id, version.name)
else:
    view.bertviz_tab(av, selection)
