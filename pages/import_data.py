"""Import: upload an export (any format of core/formats/registry.py) into a project, see what was stored and what
was not."""

import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from core.types import ReportLensError
from services.imports import FORMATS, SUPPORTED_UPLOADS, import_file, read_config_text
from services.projects import import_history, list_projects
from ui.imports import SOURCE_HELP, changed_documents
from ui.state import engine

st.title("Import")
st.caption(
    "; ".join(f"**{f.title}** ({f.description})" for f in FORMATS) + ". The format is recognised from the content. "
    "One upload is one transaction: the valid part is stored and every skipped item is listed with the reason."
)

projects = list_projects(engine())
names = [p.name for p in projects]
mode = st.radio("Project", ["New project", "Existing project"], index=1 if names else 0, horizontal=True,
                disabled=not names)
if mode == "Existing project" and names:
    current = st.session_state.get("project_name")
    project_name = st.selectbox("Existing project", names, index=names.index(current) if current in names else 0)
else:
    project_name = st.text_input("New project name", placeholder="e.g. ECG reports 2026").strip()

uploads = st.file_uploader("Export files", type=SUPPORTED_UPLOADS, accept_multiple_files=True)
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
        with tempfile.TemporaryDirectory(prefix="reportlens-upload-") as tmp:
            if len(uploads) == 1:
                target = Path(tmp) / Path(uploads[0].name).name
                target.write_bytes(uploads[0].getbuffer())
                label = uploads[0].name
            else:  # several files: a folder (DICOM SR files, brat .txt/.ann pairs)
                target = Path(tmp) / "upload"
                target.mkdir()
                for up in uploads:
                    (target / Path(up.name).name).write_bytes(up.getbuffer())
                label = f"{len(uploads)} files"
            summary = import_file(engine(), target, project_name, config=config, strict=strict,
                                  progress=progress, file_name=label, source_name=source_name)
        bar.progress(1.0, text="Done")
        st.session_state["project_name"] = project_name
        st.session_state["last_import"] = summary.to_dict()
        st.rerun()  # redraw the form with the new project in the list
    except ReportLensError as exc:
        bar.empty()
        st.session_state.pop("last_import", None)
        st.error(f"Nothing was imported. {exc}", icon="🚫")

last = st.session_state.get("last_import")
if last:
    st.success(f"Imported **{last['file_name']}** into **{last['project']}** ({last['format']}).", icon="✅")
    cols = st.columns(6)
    for col, (label, key) in zip(
        cols,
        [("Added", "documents_added"), ("Updated", "documents_updated"), ("Unchanged", "documents_unchanged"),
         ("Annotations", "annotations"), ("Predictions", "predictions"), ("Spans", "spans")],
        strict=True,
    ):
        col.metric(label, last.get(key, 0))
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
        rows = [
            {"file": h.file_name, "format": h.format, "status": h.status, "started": h.started_at,
             "added": (h.summary or {}).get("documents_added"), "updated": (h.summary or {}).get("documents_updated"),
             "skipped": len((h.summary or {}).get("skipped", [])), "error": h.error}
            for h in history
        ]
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
