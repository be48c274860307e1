"""Train: the training form (one click with the defaults), live progress of the running job, job history."""

import pandas as pd
import streamlit as st

from core.trainconfig import TrainConfig
from core.types import ReportLensError
from services import jobs as job_svc
from services.training import form_fields, queue_training
from ui.jobs import live_jobs
from ui.state import engine, project_picker

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

with st.form("train_form"):
    values = {}
    specs = form_fields()
    basic = [f for f in specs if not f.get("advanced")]
    advanced = [f for f in specs if f.get("advanced")]

    def widget(spec, container):  # noqa: ANN001, ANN202
        label, default, help_ = spec["name"].replace("_", " "), spec["default"], spec.get("help")
        key = f"cfg_{spec['name']}"
        if spec["type"] == "choice":
            return container.selectbox(label, spec["choices"], index=list(spec["choices"]).index(default), help=help_,
                                       key=key)
        if spec["type"] == "bool":
            return container.checkbox(label, value=bool(default), help=help_, key=key)
        if spec["type"] == "list":
            raw = container.text_input(label, ",".join(default), help=help_, key=key)
            return tuple(x.strip() for x in raw.split(",") if x.strip())
        if spec.get("optional"):
            raw = container.text_input(label + " (blank = auto)", "" if default is None else str(default), help=help_,
                                       key=key)
            return None if not raw.strip() else (int(raw) if spec["type"] == "int" else float(raw))
        if spec["type"] == "int":
            return container.number_input(label, value=int(default), step=1, help=help_, key=key)
        if spec["type"] == "float":
            return container.number_input(label, value=float(default), format="%g", help=help_, key=key)
        return container.text_input(label, str(default), help=help_, key=key)

    cols = st.columns(3)
    for i, spec in enumerate(basic):
        values[spec["name"]] = widget(spec, cols[i % 3])
    with st.expander("Advanced settings"):
        acols = st.columns(3)
        for i, spec in enumerate(advanced):
            values[spec["name"]] = widget(spec, acols[i % 3])
    submitted = st.form_submit_button("Start training", type="primary")

if submitted:
    try:
        config = TrainConfig.from_dict(values)
        job, started = queue_training(engine(), project.id, config)
        st.success(f"Training job {job.id} queued" + (" and a worker started." if started else "."), icon="✅")
    except (ReportLensError, ValueError) as exc:
        st.error(f"Not queued: {exc}", icon="🚫")


live_jobs(project.id, curves=True, empty="No training job is running.")

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
