"""Label Studio: send queue batches to annotators as pre-annotated tasks (a file or a server) and pull their finished
annotations back. The CLI (`cli.py push` / `pull`) calls the same functions in services/labelstudio/."""

import os

import pandas as pd
import streamlit as st

from core.types import ReportLensError
from services.labelstudio import client, pull, push
from ui.imports import pull_results
from ui.state import engine, project_picker

st.title("Label Studio")
project = project_picker()
if project is None:
    st.info("No project yet. Import reports on the **Import** page first.")
    st.page_link("pages/import_data.py", label="Import data", icon="📥")
    st.stop()

st.subheader("Connection")
st.session_state.setdefault("ls_url", os.environ.get(client.ENV_URL, ""))
st.session_state.setdefault("ls_token", os.environ.get(client.ENV_TOKEN, ""))
c1, c2 = st.columns([3, 2])
c1.text_input("Label Studio URL", key="ls_url", placeholder="http://127.0.0.1:8080")
c2.text_input("API token", key="ls_token", type="password",
              help="Label Studio: Account & Settings → Access Token. Kept in this browser session only, never stored.")


def connection() -> client.LsConnection | None:
    try:
        return client.connection(st.session_state["ls_url"], st.session_state["ls_token"])
    except ReportLensError as exc:
        st.error(str(exc), icon="🔌")
        return None


if st.button("Test connection"):
    conn = connection()
    if conn is not None:
        try:
            info = client.check_connection(conn)
            st.success(f"Connected to {info['url']} as {info['user']} ({info['projects']} projects visible).",
                       icon="✅")
        except ReportLensError as exc:
            st.error(str(exc), icon="🔌")

link = push.linked_project(engine(), project.id)
if link is None:
    st.caption("Not linked to a Label Studio project yet: the first push creates one with this project's labels.")
else:
    st.caption(f"Linked to Label Studio project {link.ls_project_id} ({link.title or 'untitled'}) at {link.url}.")

st.subheader("Queue batches")
batches = push.saved_batches(engine(), project.id)
if not batches:
    st.info("No queue batch yet: score the unlabeled reports and save a batch on the **Queue** page.")
    st.page_link("pages/queue.py", label="Queue", icon="🎯")
else:
    table = pd.DataFrame([{
        "batch": b.id, "created": b.created_at, "strategy": b.strategy, "documents": len(b.document_ids),
        "status": b.status, "sent to": (f"Label Studio project {b.target.get('ls_project_id')}"
                                        if b.target.get("kind") == "server" else b.target.get("file_name") or ""),
        "error": b.target.get("error", "")} for b in batches])
    st.dataframe(table, hide_index=True, width="stretch")
    chosen = st.selectbox("Batch", [b.id for b in batches], format_func=lambda i: f"Batch {i}", key="ls_batch")
    c1, c2 = st.columns(2)
    with c1:
        if st.button("Build import file", help="A JSON file to import in Label Studio (tasks with predictions)"):
            try:
                with st.spinner("Building the import file…"):
                    st.session_state["ls_file"] = (chosen, push.import_file_bytes(engine(), project.name, chosen))
            except ReportLensError as exc:
                st.error(str(exc), icon="🚫")
        built = st.session_state.get("ls_file")
        if built and built[0] == chosen:
            st.download_button("Download import file", built[1], file_name=f"reportlens-batch-{chosen}.json",
                               mime="application/json")
    with c2:
        new_project = st.checkbox("Create a new Label Studio project", key="ls_new_project",
                                  help="Instead of the linked one (or when the linked one was deleted)")
        if st.button("Push to Label Studio", type="primary"):
            conn = connection()
            if conn is not None:
                try:
                    with st.spinner("Sending tasks and predictions…"):
                        res = push.push(engine(), project.name, conn, batch_id=chosen, new_ls_project=new_project)
                    st.success(f"Batch {chosen}: {res['created']} tasks created, {res['reused']} reused, "
                               f"{res['predictions_attached']} predictions attached in Label Studio project "
                               f"{res['ls_project_id']}.", icon="✅")
                    for note in res["notes"]:
                        st.info(note)
                except ReportLensError as exc:
                    st.error(str(exc), icon="🚫")

st.subheader("Pull annotations")
if link is None:
    st.info("Push a batch first; pulling reads the linked Label Studio project.")
elif st.button("Pull finished annotations"):
    conn = connection()
    if conn is not None:
        try:
            with st.spinner("Exporting from Label Studio and importing…"):
                st.session_state["ls_pulled"] = pull.pull(engine(), project.name, conn)
        except ReportLensError as exc:
            st.error(str(exc), icon="🚫")
pulled = st.session_state.get("ls_pulled")
if pulled and link is not None and pulled["ls_project_id"] == link.ls_project_id:
    pull_results(pulled)
