"""Train: the training form (one click with the defaults), how long a run takes, live progress of the running job
(with "v1 ready -> Models" when it ends), job history."""

import pandas as pd
import streamlit as st

from core.types import ReportLensError
from services import jobs as job_svc
from services.training import form_fields, queue_training
from ui.jobs import live_jobs
from ui.state import engine, project_picker
from ui.train import run_estimate, train_form, values_to_config

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

specs = form_fields()
values, submitted = train_form(specs)
config = None
if submitted:
    try:
        config = values_to_config(specs, values)
        job, started = queue_training(engine(), project.id, config)
        st.success(f"Training job {job.id} queued" + (" and a worker started." if started else "."), icon="✅")
    except ReportLensError as exc:
        st.error(f"Not queued: {exc}", icon="🚫")
st.caption(run_estimate(engine(), project, config))

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
