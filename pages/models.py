"""Models: versions side by side, per-label F1, errors, activate a version, export a merged model."""

import pandas as pd
import plotly.express as px
import streamlit as st

from core.types import ReportLensError
from db import jobs
from db.model_versions import activate_model_version, list_model_versions
from services.models import version_rows
from ui.state import engine, project_picker

st.title("Models")
project = project_picker()
if project is None:
    st.info("No project yet. Import labeled reports on the **Import** page first.")
    st.stop()
versions = list_model_versions(engine(), project.id)
if not versions:
    st.info(f"**{project.name}** has no trained model yet. Start one on the **Train** page.")
    st.page_link("pages/train.py", label="Train a model", icon="🏋️")
    st.stop()

rows = version_rows(engine(), project.name)
st.dataframe(pd.DataFrame(rows).drop(columns=["model_dir"]), hide_index=True, width="stretch")

per_label = []
for v in versions:
    for split in ("dev", "test"):
        for label, m in (((v.metrics or {}).get(split) or {}).get("per_label") or {}).items():
            per_label.append({"version": v.name, "split": split, "label": label, "f1": m.get("f1")})
if per_label:
    df = pd.DataFrame(per_label)
    split = st.radio("Split", ["test", "dev"], horizontal=True)
    fig = px.bar(df[df["split"] == split], x="label", y="f1", color="version", barmode="group",
                 title=f"Entity F1 per label ({split})", range_y=[0, 1])
    st.plotly_chart(fig, width="stretch")

names = [v.name for v in versions]
chosen_name = st.selectbox("Version", names, index=next((i for i, v in enumerate(versions) if v.is_active), 0))
chosen = next(v for v in versions if v.name == chosen_name)
c1, c2 = st.columns(2)
if c1.button("Make active", disabled=chosen.is_active):
    activate_model_version(engine(), chosen.id)
    st.rerun()
if c2.button("Export merged model folder"):
    try:
        from training.inference import export_merged

        out = chosen.model_dir.parent / f"{chosen.model_dir.name}-merged"
        export_merged(chosen.model_dir, out)
        st.success(f"Exported to {out}: it loads with transformers.pipeline('token-classification', model=...).")
    except ReportLensError as exc:
        st.error(str(exc))

test = (chosen.metrics or {}).get("test") or {}
errors = (test.get("errors") or {})
if errors.get("counts"):
    st.subheader(f"Errors of {chosen.name} on the test split")
    st.write(errors["counts"])
    examples = errors.get("examples") or []
    if examples:
        st.dataframe(pd.DataFrame(examples), hide_index=True, width="stretch")

job = jobs.get_job(engine(), chosen.job_id) if chosen.job_id else None
if job is not None and job.history:
    hist = pd.DataFrame(list(job.history))
    if "loss" in hist:
        st.plotly_chart(px.line(hist.dropna(subset=["loss"]), x="step", y="loss", title="Training loss"),
                        width="stretch")
