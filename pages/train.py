"""Train: the training form (one click with the defaults), what a run will do (steps, time on this machine, why each
default), live progress of the running job (with "v1 ready -> Models" when it ends), job history."""

import pandas as pd
import streamlit as st

from core.adaptconfig import AdaptConfig
from core.types import ReportLensError
from services import jobs as job_svc
from services.adapt import base_choices, base_versions, queue_adaptation, version_rows
from services.adapt import form_fields as adapt_fields
from services.training import form_fields, queue_training
from ui.jobs import live_jobs
from ui.state import engine, project_picker
from ui.train import adapt_form, show_plan, train_form, values_to_config

st.title("Train")
project = project_picker()
if project is None:
    st.info("No project yet. Import labeled reports on the **Import** page first.")
    st.page_link("pages/import_data.py", label="Import data", icon="📥")
    st.stop()
if project.n_labeled == 0:
    st.info(f"**{project.name}** has no labeled report yet: label some in Label Studio and import the export.")
    st.stop()

st.caption(f"{project.n_labeled} labeled reports · labels: {', '.join(project.labels) or '—'}. The defaults train a "
           "LoRA adapter on the bundled MiniLM BERT; the split into train/dev/test is fixed per project.")

bases = base_choices(engine(), project.id)
specs = form_fields(bases)
values, submitted = train_form(specs)
config = None
if submitted:
    try:
        config = values_to_config(specs, values)
        job, started = queue_training(engine(), project.id, config)
        st.success(f"Training job {job.id} queued" + (" and a worker started." if started else "."), icon="✅")
    except ReportLensError as exc:
        st.error(f"Not queued: {exc}", icon="🚫")
show_plan(project, config)

with st.expander(f"Adapt the base model to this project's text ({len(bases) - 1} base versions)"):
    st.caption("Adds the characters the base model cannot read to its vocabulary and continues its masked-language-"
               "model pretraining on all of this project's reports (labelled or not). The result is a base version "
               "that the training form above can start from; see the Dataset page for how much each base reads.")
    versions = base_versions(engine(), project.id)
    if versions:
        st.dataframe(pd.DataFrame(version_rows(versions)), hide_index=True, width="stretch")
    a_specs = adapt_fields()
    a_values, a_submitted = adapt_form(a_specs, bases)
    if a_submitted:
        try:
            job, started = queue_adaptation(engine(), project.id, values_to_config(a_specs, a_values, AdaptConfig))
            st.success(f"Adaptation job {job.id} ({job.params['name']}) queued"
                       + (" and a worker started." if started else "."), icon="✅")
        except ReportLensError as exc:
            st.error(f"Not queued: {exc}", icon="🚫")

live_jobs(project.id, curves=True, empty="No training job is running.", rerun_when_done=True)

st.subheader("Job history")
history = job_svc.recent_jobs(engine(), project.id)
if history:
    st.dataframe(pd.DataFrame([
        {"job": j.id, "kind": j.kind, "status": j.status, "created": j.created_at, "started": j.started_at,
         "finished": j.finished_at, "error": j.error}
        for j in history
    ]), hide_index=True, width="stretch")
else:
    st.caption("No job yet.")
