"""Import: upload an export (any format of core/formats/registry.py) into a project, see what was stored and what
was not."""

from pathlib import Path

import pandas as pd
import streamlit as st

from core.types import ReportLensError
from services.imports import FORMATS, SUPPORTED_UPLOADS, read_config_text
from services.projects import import_history, list_projects
from ui.imports import SOURCE_HELP, changed_documents, history_table, text_key_note
from ui.state import engine, remember_project, remembered_project
from ui.uploads import import_uploads

st.title("Import")
st.caption(
    "; ".join(f"**{f.title}** ({f.description})" for f in FORMATS) + ". The format is recognised from the content. "
    "One upload is one transaction: the valid part is stored and every skipped item is listed with the reason."
)

projects = list_projects(engine())
names = [p.name for p in projects]
uploader_key = f"uploads_{st.session_state.get('uploads_done', 0)}"  # a new key after each import: a fresh uploader
uploads = st.file_uploader("Export files", type=SUPPORTED_UPLOADS, accept_multiple_files=True, key=uploader_key)
# The target: the project this tab works on (picked elsewhere or ?project=NAME), else a new one named after the file,
# never silently the first project of the list.
current = remembered_project(names)
mode = st.radio("Project", ["New project", "Existing project"], index=1 if current else 0, horizontal=True,
                disabled=not names)
if mode == "Existing project" and names:
    project_name = st.selectbox("Existing project", names, index=names.index(current) if current in names else 0)
else:
    if uploads and not st.session_state.get("new_project_name"):
        st.session_state["new_project_name"] = Path(uploads[0].name).stem
    project_name = st.text_input("New project name", placeholder="e.g. ECG reports 2026", key="new_project_name")
    project_name = project_name.strip()
    if project_name in names:
        st.caption(f"**{project_name}** exists: the import adds to it.")

config_file = st.file_uploader(
    "Labeling config (optional, XML from Label Studio's Settings → Labeling Interface → Code)", type=["xml"]
)
source_name = st.text_input("Source name (optional)", help=SOURCE_HELP).strip() or None
strict = st.checkbox("Strict: store nothing if any item has an error or a stored text would change", value=False)

if st.button("Import", type="primary", disabled=not uploads or not project_name):
    bar = st.progress(0.0, text="Reading…")

    def progress(done: int, fraction: float | None) -> None:
        bar.progress(min(fraction or 0.0, 1.0), text=f"{done:,} items read")

    try:
        config = read_config_text(config_file.getvalue()) if config_file else None
        summary = import_uploads(engine(), uploads, project_name, config=config, strict=strict, progress=progress,
                                 source_name=source_name)
        bar.progress(1.0, text="Done")
        remember_project(project_name)
        st.session_state["last_import"] = summary
        st.session_state["uploads_done"] = st.session_state.get("uploads_done", 0) + 1
        st.session_state.pop("new_project_name", None)
        st.rerun()  # redraw the form with the new project in the list
    except ReportLensError as exc:
        bar.empty()
        st.session_state.pop("last_import", None)
        st.error(f"Nothing was imported. {exc}", icon="🚫")

last = st.session_state.get("last_import")
if last:
    if sum(last.get(k, 0) for k in ("documents_added", "documents_updated", "documents_unchanged")):
        st.success(f"Imported **{last['file_name']}** into **{last['project']}** ({last['format']}).", icon="✅")
    else:
        st.warning(f"**{last['file_name']}** was read as {last['format']} but holds no report: nothing was stored in "
                   f"**{last['project']}**. Check that it is the export you meant (the issues below say more).",
                   icon="⚠️")
    cols = st.columns(6)
    for col, (label, key) in zip(
        cols,
        [("Added", "documents_added"), ("Updated", "documents_updated"), ("Unchanged", "documents_unchanged"),
         ("Annotations", "annotations"), ("Predictions", "predictions"), ("Spans", "spans")],
        strict=True,
    ):
        col.metric(label, last.get(key, 0))
    text_key_note(last)
    changed_documents(last)
    issues = last.get("skipped", []) + last.get("warnings", []) + last.get("infos", [])
    if issues:
        st.subheader(f"Issues ({len(last.get('skipped', []))} skipped, {len(last.get('warnings', []))} repaired "
                     "or warned)")
        df = pd.DataFrame(issues)[["level", "code", "task", "span", "message"]]
        df["span"] = df["span"].map(lambda s: "" if not s else f"{s[0]}–{s[1]} {s[2]}")
        levels = st.multiselect("Show", ["error", "warning", "info"], default=["error", "warning", "info"])
        st.dataframe(df[df["level"].isin(levels)], hide_index=True, width="stretch",
                     column_config={"message": st.column_config.TextColumn(width="large")})
        st.download_button("Download issues (CSV)", df.to_csv(index=False), "import-issues.csv", "text/csv")
    else:
        st.caption("No issues: every task and span was stored as it was.")
    st.page_link("pages/dataset.py", label="Look at the dataset", icon="🗂️")

project = next((p for p in list_projects(engine()) if p.name == (st.session_state.get("project_name") or "")), None)
if project is not None:
    history = import_history(engine(), project.id)
    if history:
        st.subheader(f"Import history of {project.name}")
        history_table(history)
