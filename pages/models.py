"""Models: versions side by side, per-label F1, confusion matrix, errors you can open, curves, activate, export."""

import pandas as pd
import plotly.express as px
import streamlit as st

from core.types import ReportLensError
from services import jobs as job_svc
from services.models import activate, export_merged_version, list_versions, version_rows
from ui.jobs import dev_sample_note
from ui.models import onnx_export_section
from ui.state import engine, project_picker

st.title("Models")
project = project_picker()
if project is None:
    st.info("No project yet. Import labeled reports on the **Import** page first.")
    st.stop()
versions = list_versions(engine(), project.id)
if not versions:
    st.info(f"**{project.name}** has no trained model yet. Start one on the **Train** page.")
    st.page_link("pages/train.py", label="Train a model", icon="🏋️")
    st.stop()

rows = version_rows(engine(), project.name)
st.dataframe(pd.DataFrame(rows).drop(columns=["model_dir"]), hide_index=True, width="stretch")
st.caption("F1 is strict entity-level micro F1 for NER models and macro F1 over classes for classification models; "
           "both splits are fixed per project, so versions are comparable.")

per_label = []
for v in versions:
    for split in ("dev", "test"):
        for label, m in (((v.metrics or {}).get(split) or {}).get("per_label") or {}).items():
            per_label.append({"version": v.name, "split": split, "label": label, "f1": m.get("f1")})
if per_label:
    df = pd.DataFrame(per_label)
    split = st.radio("Split", ["test", "dev"], horizontal=True)
    fig = px.bar(df[df["split"] == split], x="label", y="f1", color="version", barmode="group",
                 title=f"F1 per label ({split})", range_y=[0, 1])
    st.plotly_chart(fig, width="stretch")

names = [v.name for v in versions]
chosen_name = st.selectbox("Version", names, index=next((i for i, v in enumerate(versions) if v.is_active), 0))
chosen = next(v for v in versions if v.name == chosen_name)
task = (chosen.config or {}).get("task", "ner")
c1, c2 = st.columns(2)
if c1.button("Make active", disabled=chosen.is_active):
    activate(engine(), chosen.id)
    st.rerun()
if c2.button("Export merged model folder"):
    try:
        out = export_merged_version(chosen)
        kind = "text-classification" if task == "classification" else "token-classification"
        st.success(f"Exported to {out}: it loads with transformers.pipeline('{kind}', model=...).")
    except ReportLensError as exc:
        st.error(str(exc))
onnx_export_section(engine(), chosen)

metrics = chosen.metrics or {}
split_name = "test" if metrics.get("test") else "dev"
result = metrics.get(split_name) or {}
if metrics.get("cv"):
    cv = metrics["cv"]
    st.subheader(f"{cv['folds']}-fold cross-validation")
    st.write(f"F1 {cv['mean_f1']:.3f} ± {cv['std_f1']:.3f} over {cv['folds']} folds "
             f"(each fold's documents scored by a model that never saw them).")
    st.dataframe(pd.DataFrame(cv["per_fold"]), hide_index=True)

if task == "classification" and result:
    st.subheader(f"{chosen.name} on the {split_name} split")
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Accuracy" + (" (exact set)" if result.get("multi_label") else ""), f"{result['accuracy']:.3f}")
    m2.metric("Macro F1", f"{result['f1']:.3f}")
    m3.metric("Micro F1", f"{result['micro_f1']:.3f}")
    m4.metric("ROC AUC", "n/a" if result.get("roc_auc") is None else f"{result['roc_auc']:.3f}")
    if result.get("auc_undefined"):
        st.caption("No ROC AUC for " + ", ".join(result["auc_undefined"]) + f": every or no {split_name} document "
                   "has that class.")
    classes = result.get("classes") or []
    matrix = result.get("confusion_matrix") or []
    if matrix and not result.get("multi_label"):
        fig = px.imshow(matrix, x=classes, y=classes, text_auto=True, color_continuous_scale="Blues",
                        labels={"x": "predicted", "y": "gold", "color": "documents"}, title="Confusion matrix")
        st.plotly_chart(fig, width="stretch")
    elif matrix:
        st.dataframe(pd.DataFrame([{"class": c, "TN": m[0][0], "FP": m[0][1], "FN": m[1][0], "TP": m[1][1]}
                                   for c, m in zip(classes, matrix, strict=True)]), hide_index=True)
    examples = result.get("errors") or []
elif result:
    errors = result.get("errors") or {}
    if errors.get("counts"):
        st.subheader(f"Errors of {chosen.name} on the {split_name} split")
        st.write(errors["counts"])
    examples = errors.get("examples") or []
else:
    examples = []

if examples:
    table = pd.DataFrame(examples)
    st.caption("Select a row to open its document in the Dataset page.")
    picked = st.dataframe(table, hide_index=True, width="stretch", on_select="rerun", selection_mode="single-row",
                          key=f"errors_{chosen.id}")
    rows_sel = picked.selection.rows if picked is not None and hasattr(picked, "selection") else []
    pick = int(table.iloc[rows_sel[0]]["doc_id"]) if rows_sel else None
    options = list(dict.fromkeys(int(d) for d in table["doc_id"]))
    doc_id = st.selectbox("Document", options, index=options.index(pick) if pick in options else 0,
                          format_func=lambda d: f"#{d}")
    if st.button(f"Open document #{doc_id} in Dataset", type="primary"):
        st.session_state["dataset_focus_doc"] = doc_id
        st.session_state["dataset_focus_from"] = f"the errors of model {chosen.name}"
        st.switch_page("pages/dataset.py")

job = job_svc.get_job(engine(), chosen.job_id) if chosen.job_id else None
if job is not None and job.history:
    hist = pd.DataFrame(list(job.history))
    c1, c2 = st.columns(2)
    if "loss" in hist:
        c1.plotly_chart(px.line(hist.dropna(subset=["loss"]), x="step", y="loss", title="Training loss"),
                        width="stretch")
    if "dev_f1" in hist:
        c2.plotly_chart(px.line(hist.dropna(subset=["dev_f1"]), x="step", y="dev_f1", markers=True,
                                title="Dev F1 at each evaluation", range_y=[0, 1]), width="stretch")
        if note := dev_sample_note(job.history):
            c2.caption(note)
