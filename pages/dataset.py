"""Dataset: documents, labels, a document's spans and its token-level BIO view (with the project's training
settings, or others to preview), alignment issues."""

import streamlit as st

from core.types import ReportLensError
from services.dataset import training_settings
from ui import dataset as view
from ui.state import engine, project_picker, tokenizer

st.title("Dataset")
project = project_picker()
if project is None:
    st.info("No project yet. Import a Label Studio export on the **Import** page, or run "
            "`python cli.py seed-demo` for the demo project.")
    st.page_link("pages/import_data.py", label="Import data", icon="📥")
    st.stop()

settings = training_settings(engine(), project.id)
if settings.note:
    st.warning(f"{settings.note} Showing the training defaults instead.", icon="⚠️")
base_model = settings.base_model
try:
    tok = tokenizer(base_model)
except ReportLensError as exc:
    st.warning(f"The base model of {settings.source} cannot be loaded ({exc}); the default base model's tokenizer is "
               "used instead, so tokens may differ from what that model saw.", icon="⚠️")
    base_model, tok = None, tokenizer()

counts = view.overview(project, tok, base_model)
rows = view.document_list(project, counts)
if rows is None:
    st.stop()
doc = view.open_document(project, rows)
overlap_issues = view.document_view(project, doc)
tab_ann, tab_bio, tab_meta = st.tabs(["Annotations", "Tokens and BIO tags", "Metadata"])
with tab_ann:
    view.annotations_tab(doc)
with tab_bio:
    cfg = view.bio_tab(project, doc, tok, settings, overlap_issues)
with tab_meta:
    st.json(doc.meta, expanded=False)
view.alignment_section(project, tok, cfg, settings.align, settings.source)
