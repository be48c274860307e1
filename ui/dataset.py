"""The Dataset page's sections: the project's numbers, the document list, one document with its annotations, its
token-level BIO view (the project's training settings, or others to preview) and the project's alignment check."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pandas as pd
import plotly.express as px
import streamlit as st

from core.alignment import PARTIAL_TOKEN_POLICIES, AlignConfig
from core.errors import IssueCode
from services.adapt import UNK_SUGGEST_SHARE, base_choices, unk_by_base
from services.dataset import (
    UNK_WARN_SHARE,
    annotation_status,
    bio_rows,
    describe_alignment,
    displayed_spans,
    project_alignment,
    project_unk_share,
    training_status,
)
from services.projects import document_in_project, get_document, label_counts, list_documents
from ui.render import highlight_html, label_colors, legend_html
from ui.state import engine

PAGE_SIZE = 25


@st.cache_data(show_spinner="Measuring how much of the text the model can read…", max_entries=32)
def _unk_share(database: str, project_id: int, n_documents: int, base_model: str | None, _tok: Any) -> float:
    return project_unk_share(engine(), project_id, _tok)  # n_documents: recomputed after an import


@st.cache_data(show_spinner="Measuring [UNK] per base model…", max_entries=32)
def _unk_rows(database: str, project_id: int, n_documents: int, n_bases: int) -> list[dict[str, Any]]:
    del database, n_documents, n_bases  # cache keys: recomputed after an import or an adaptation
    return [{"base model": r.base, "[UNK] share": f"{r.unk_share:.1%}", "tokens": r.tokens,
             "vocabulary": r.vocab_size, "_share": r.unk_share} for r in unk_by_base(engine(), project_id)]


def unk_per_base(project: Any) -> None:
    """How much of the project's text each base model cannot read (bundled and the project's base versions), and a
    suggestion to adapt when even the best one is above ``UNK_SUGGEST_SHARE``."""
    rows = _unk_rows(str(engine().url), project.id, project.n_documents, len(base_choices(engine(), project.id)))
    if not rows:
        return
    with st.expander("[UNK] share per base model", expanded=min(r["_share"] for r in rows) > UNK_SUGGEST_SHARE):
        st.table(pd.DataFrame(rows).drop(columns="_share").set_index("base model"))  # a few rows: a static table
        best = min(rows, key=lambda r: r["_share"])
        if best["_share"] > UNK_SUGGEST_SHARE:
            st.info(f"Every base model reads this project poorly (best: {best['base model']}, "
                    f"{best['_share']:.1%} [UNK]). Adapting adds the missing characters to the vocabulary and "
                    "continues pretraining on these reports: **Adapt** on the Train page.", icon="💡")
        elif best["base model"] != "bundled" and len(rows) > 1:
            st.caption(f"{best['base model']} reads the most of this project's text; pick it as the base model on "
                       "the Train page.")


def overview(project: Any, tok: Any, base_model: str | None) -> dict[str, int]:
    """Counts, the share of [UNK] tokens (with a warning when the base model cannot read the text) and the spans per
    label; returns the label counts."""
    unk = _unk_share(str(engine().url), project.id, project.n_documents, base_model, tok)
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Documents", project.n_documents)
    c2.metric("Labeled", project.n_labeled)
    c3.metric("Labels", len(project.labels))
    c4.metric("Unreadable tokens ([UNK])", f"{unk:.1%}")
    if unk >= UNK_WARN_SHARE:
        st.warning(
            f"The base model cannot read {unk:.0%} of this project's tokens (they become [UNK]). A model trained on "
            "it will miss those words. The bundled English MiniLM does not know most Chinese characters: adapt it "
            "to this project's text (**Adapt** on the Train page, or `cli.py adapt`), or choose a base model that "
            "reads this language (e.g. a local bert-base-chinese folder via REPORTLENS_BASE_MODEL).",
            icon="⚠️",
        )
    unk_per_base(project)

    counts = label_counts(engine(), project.id)
    if counts:
        df_counts = pd.DataFrame({"label": list(counts), "spans": list(counts.values())}).sort_values("spans")
        fig = px.bar(df_counts, x="spans", y="label", orientation="h", title="Spans per label (training view)",
                     height=max(260, 120 + 28 * len(counts)))
        st.plotly_chart(fig, width="stretch")
    else:
        st.info("No labeled documents yet: label tasks in Label Studio and import the export.")
    return counts


def document_list(project: Any, counts: dict[str, int]) -> list[Any] | None:
    """The filtered, paged document table; ``None`` when nothing matches."""
    st.subheader("Documents")
    f1, f2, f3 = st.columns([3, 2, 2])
    search = f1.text_input("Search text", placeholder="e.g. atrial fibrillation")
    label = f2.selectbox("Label", ["(any)", *sorted(counts)], index=0)
    status = f3.selectbox("Status", ["all", "labeled", "unlabeled"], index=0)
    labeled = {"all": None, "labeled": True, "unlabeled": False}[status]
    page = st.session_state.get("dataset_page", 0)
    rows, total = list_documents(engine(), project.id, search=search, label=None if label == "(any)" else label,
                                 labeled=labeled, limit=PAGE_SIZE, offset=page * PAGE_SIZE)
    if total == 0:
        st.info("No document matches. Clear the search or the filters.")
        return None
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(page, pages - 1)
    st.caption(f"{total:,} document{'s' if total != 1 else ''} · page {page + 1} of {pages}")
    table = pd.DataFrame([
        {"id": r.id, "task": r.ls_task_id, "preview": r.preview, "spans": r.n_spans, "labels": ", ".join(r.labels),
         "annotations": r.n_annotations, "source": r.source}
        for r in rows
    ])
    st.dataframe(table, hide_index=True, width="stretch")
    p1, p2, _ = st.columns([1, 1, 6])
    if p1.button("◀ Previous", disabled=page == 0):
        st.session_state["dataset_page"] = page - 1
        st.rerun()
    if p2.button("Next ▶", disabled=page >= pages - 1):
        st.session_state["dataset_page"] = page + 1
        st.rerun()
    return rows


def open_document(project: Any, rows: list[Any]) -> Any:
    """The document opened from elsewhere (e.g. an error example on the Models page, or a ?doc=ID link), else the one
    picked from the current page of the list."""
    focus = st.session_state.get("dataset_focus_doc") or st.query_params.get("doc")
    focus_doc = document_in_project(engine(), project.id, focus) if focus is not None else None
    if focus is not None and focus_doc is None:
        st.warning(f"Document #{focus} is not in project {project.name!r}; showing the list instead.")
    if focus_doc is not None:
        f1, f2 = st.columns([4, 1])
        origin = st.session_state.get("dataset_focus_from", "a link")
        f1.info(f"Showing document #{focus_doc.id}, opened from {origin}.")
        if f2.button("Back to the list"):
            st.session_state.pop("dataset_focus_doc", None)
            st.query_params.pop("doc", None)
            st.rerun()
        doc = focus_doc
    else:
        previews = {r.id: f"#{r.id} · {r.preview[:60]}" for r in rows}
        choice = st.selectbox("Open document", list(previews), format_func=previews.__getitem__)
        doc = get_document(engine(), choice)
    return doc


def document_view(project: Any, doc: Any) -> list[Any]:
    """The document's text with its training spans highlighted; returns the overlap issues of what is shown."""
    st.subheader(f"Document #{doc.id}" + (f" (Label Studio task {doc.ls_task_id})" if doc.ls_task_id else ""))
    spans = doc.training.spans if doc.training else ()
    if doc.training and doc.training.meta.get("choices"):
        st.caption("Document labels (Choices): " + ", ".join(map(str, doc.training.meta["choices"])))
    if doc.training and doc.training.meta.get("invalid_spans"):
        st.warning(f"{len(doc.training.meta['invalid_spans'])} span(s) of this document lie outside its current text "
                   "(the text changed in a later export) and are left out of training. Re-export the task from Label "
                   "Studio to fix them.", icon="⚠️")
    kept, overlap_issues = displayed_spans(doc)
    colors = label_colors(project.labels or [s.label for s in spans])
    if spans:
        st.html(legend_html({k: v for k, v in colors.items() if any(s.label == k for s in spans)}))
    else:
        st.caption(training_status(doc))
    st.html(highlight_html(doc.text, kept, colors))
    return overlap_issues


def annotations_tab(doc: Any) -> None:
    if doc.annotations:
        st.dataframe(pd.DataFrame([
            {"source": a.source, "author": a.author, "updated": a.updated_at or a.created_at, "spans": len(a.spans),
             "choices": ", ".join(a.choices), "ground truth": a.ground_truth, "status": annotation_status(a),
             "model version": a.model_version, "score": a.score}
            for a in doc.annotations
        ]), hide_index=True, width="stretch")
        st.caption("Training uses the ground-truth annotation if there is one, else the most recent usable human or "
                   "finished review annotation. Cancelled tasks, review drafts and predictions never train.")


def bio_tab(project: Any, doc: Any, tok: Any, settings: Any, overlap_issues: list[Any]) -> AlignConfig:
    """Tokens and BIO tags with the training settings, or the ones picked to preview; returns the settings shown."""
    b1, b2 = st.columns([2, 3])
    trained = settings.align
    partial = b1.radio("Span edge inside a token", PARTIAL_TOKEN_POLICIES, horizontal=True,
                       index=PARTIAL_TOKEN_POLICIES.index(trained.partial_token), key=f"bio_partial_{project.id}",
                       help="expand: tag the whole token; shrink: only the tokens wholly inside the span")
    first_only = b2.checkbox("First sub-token only", value=not trained.label_all_subtokens,
                             key=f"bio_first_only_{project.id}",
                             help="tag only a word's first piece; the other pieces are ignored in training")
    cfg = replace(trained, partial_token=partial, label_all_subtokens=not first_only)
    if cfg == trained:
        st.caption(f"The training settings of {settings.source}: {describe_alignment(cfg)}.")
    else:
        st.caption(f"Preview, not the training settings of {settings.source}: {describe_alignment(cfg)}. To train "
                   "with them, set them under **Advanced settings** on the **Train** page.")
    bio, issues = bio_rows(tok, doc, cfg)
    st.dataframe(pd.DataFrame(bio), hide_index=True, width="stretch", height=320)
    for issue in overlap_issues + [i for i in issues if i.code != IssueCode.OVERLAP]:
        st.warning(issue.message, icon="⚠️")
    return cfg


def alignment_section(project: Any, tok: Any, cfg: AlignConfig, trained: AlignConfig, source: str) -> None:
    """The alignment issues of every labeled document, with the settings of the BIO view."""
    st.subheader("Alignment issues of the project")
    st.caption("Spans whose edges fall inside tokens, overlapping spans and spans without tokens, with the settings of "
               f"the BIO view above ({'preview' if cfg != trained else source}: {describe_alignment(cfg)}).")
    if st.button("Check alignment of all labeled documents"):
        st.session_state["alignment_report"] = {**project_alignment(engine(), project.id, tok, cfg), "config": cfg}
    report = st.session_state.get("alignment_report")
    if report and report["project_id"] == project.id and report.get("config") == cfg:
        st.write(report["summary"])
        if report["issues"]:
            st.dataframe(pd.DataFrame(report["issues"])[["level", "code", "task", "span", "message"]],
                         hide_index=True, width="stretch")
        else:
            st.success("Every span lines up with token boundaries.")
