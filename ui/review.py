"""The Review page's blocks: the sidebar, the worklist and report picker, the report's caption and notices, and the
structured result. The desk (the report in the span view, the decisions) is :mod:`ui.review_desk`; the offsets
editor and the report-level buttons are :mod:`ui.review_offsets`.

Everything reaches the data through :mod:`services.review`; report text and names are untrusted, so they go through
:func:`plain` in Markdown elements (the span view puts them in text nodes).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

import pandas as pd
import streamlit as st

from core.review import ReviewItem
from services import review as svc
from services.people import acting_name
from ui.state import engine

POLICY = ("A finished review is training data like an annotator's work and is stored as its own annotation (source "
          "*review*, author = you); nothing is overwritten. If the report has a ground-truth annotation, that one "
          "trains; otherwise the most recent annotation does. A review with suggestions still undecided is saved but "
          "does not train until none is left (or you accept the report); a review with no entity trains (as a "
          "negative example) only once you confirm *No entity here*.")
ORDERS = {"uncertainty": "Least sure first", "document": "By document"}


def plain(value: object) -> str:
    """Text (report words, names, messages with snippets) for elements that render Markdown: every Markdown
    character escaped, so nothing in it becomes a link, an image, a heading or an icon."""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|~<>$:&])", r"\\\1", str(value))


# ---------------------------------------------------------------- sidebar, progress


def sidebar(versions: Sequence[Any]) -> tuple[str, float, Any]:
    """Who reviews (the signed-in person, or ``local:<os user>`` in single-user mode: no typed name can speak for
    someone else), the low-confidence threshold and the model version chosen (``None``: no version)."""
    reviewer = acting_name()
    if reviewer:
        st.sidebar.caption(f"Decisions are recorded as **{plain(reviewer)}**.")
    threshold = st.sidebar.slider("Low confidence below", 0.0, 1.0, 0.6, 0.05, key="review_threshold")
    if not versions:
        return reviewer, threshold, None
    active = next((i for i, v in enumerate(versions) if v.is_active), 0)
    name = st.sidebar.selectbox("Model version", [v.name for v in versions], index=active, key="review_version")
    return reviewer, threshold, next(v for v in versions if v.name == name)


def progress_header(prog: svc.ReviewProgress, version: Any) -> None:
    c1, c2, c3 = st.columns(3)
    c1.metric("Reviewed", f"{prog.reviewed} / {prog.total}")
    c2.metric("In progress", prog.in_progress)
    c3.metric("Suggestions from", f"model {version.name} + rules" if version is not None else "rules")
    st.progress(prog.fraction, text=f"{prog.fraction:.0%} of the project reviewed")


# ---------------------------------------------------------------- worklist


def worklist(project_id: int, version: Any, labels: Sequence[str]) -> tuple[list[svc.WorklistRow], int]:
    """The worklist filters and the first 50 reports they keep (and how many match)."""
    w1, w2, w3 = st.columns([2, 2, 2])
    order = w1.radio("Order", list(ORDERS), horizontal=True, key="review_order", format_func=ORDERS.get)
    strategy = None
    if order == "uncertainty" and (run := svc.latest_scoring(engine(), project_id)) is not None and run.strategies:
        strategy = w1.selectbox("Uncertainty from", run.strategies, key="review_strategy",
                                help=f"Scores of the latest scoring run ({run.model_version or 'base model'}).")
    label = w2.selectbox("Label", ["(any)", *labels], key="review_label")
    hide = w3.checkbox("Hide reviewed", key="review_hide")
    return svc.worklist(engine(), project_id, version_id=version.id if version else None, order=order,
                        label=None if label == "(any)" else label, hide_reviewed=hide, strategy=strategy, limit=50)


def report_picker(rows: Sequence[svc.WorklistRow], total: int) -> svc.WorklistRow:
    """The worklist table, the report select box and the Next button; the chosen row."""
    with st.expander(f"Worklist ({total} report{'s' if total != 1 else ''}, first {len(rows)} shown)"):
        st.dataframe(pd.DataFrame([{"id": r.document_id, "status": r.status, "uncertainty": r.uncertainty,
                                    "confidence": r.confidence, "labels": ", ".join(r.labels), "preview": r.preview}
                                   for r in rows]), hide_index=True, width="stretch")
    by_id = {r.document_id: r for r in rows}
    ids = list(by_id)
    if (finished := st.session_state.pop("review_move_on", None)) is not None:
        # the decision finished that report: move on, deliberately, to the first report of the worklist not yet
        # reviewed (the message above the next report names the finished one)
        nxt = next((i for i in ids if i != finished and not by_id[i].status.startswith("reviewed")), None)
        if nxt is not None:
            st.session_state["review_doc"] = nxt
    if st.session_state.get("review_doc") not in by_id:
        st.session_state["review_doc"] = ids[0]

    def next_report() -> None:
        st.session_state["review_doc"] = ids[(ids.index(st.session_state["review_doc"]) + 1) % len(ids)]

    # no status in the option text: the browser keeps showing the chosen option's old text after a rerun
    n1, n2 = st.columns([6, 1])
    doc_id = n1.selectbox("Report", ids, format_func=lambda i: f"#{i} · {by_id[i].preview[:70]}", key="review_doc")
    n2.button("Next report", on_click=next_report, shortcut="N", help="Shortcut: N")
    return by_id[doc_id]


# ---------------------------------------------------------------- the report


def report_caption(rv: svc.ReportReview) -> None:
    task = rv.document.ls_task_id
    flash = st.session_state.get("review_flash")
    after = f" · next report after #{flash['doc']}" if flash and flash["doc"] != rv.document.id else ""
    st.caption(f"Report #{rv.document.id}" + (f" (Label Studio task {task})" if task else "") + f" · {rv.status}"
               + after)


def flash_message(doc_id: int, done: str, state: svc.ReviewState, finished: bool) -> str:
    """The message of a decision, true to the state it left: finished (trains now), or what is still pending."""
    n = len(state.spans)
    if finished:
        what = (f"{n} entit{'y' if n == 1 else 'ies'}, it now trains" if n
                else "no entity, it trains as a negative example")
        return f"Report #{doc_id} reviewed ({what}). {done}"
    if state.complete:
        return f"Report #{doc_id}: {done}"
    if state.pending:
        return (f"Report #{doc_id}: {done} Still in progress: {state.pending} suggestion(s) wait for a decision.")
    return (f"Report #{doc_id}: {done} Still in progress: the review has no entity; confirm \"No entity here\" if "
            "the report has none, or add the missing entities.")


def report_notices(rv: svc.ReportReview, reviewer: str) -> None:
    """The last decision's message, a missing reviewer name, annotators' work and whether the review trains yet."""
    if flash := st.session_state.pop("review_flash", None):
        if flash["doc"] == rv.document.id:
            st.success(plain(flash["text"]))
        else:  # the decision finished that report and the page moved on
            st.success(plain(flash["text"]) + f" Next report below: **#{rv.document.id}**.")
            st.button(f"Back to report #{flash['doc']}", on_click=st.session_state.__setitem__,
                      args=("review_doc", flash["doc"]), key="review_back")
    if not reviewer:
        st.warning("Nobody is signed in, so decisions cannot be recorded: sign in first.", icon="✍️")
    for a in rv.differing:
        st.warning(f"This report already has an annotation by **{plain(a.author or 'an annotator')}** "
                   f"({len(a.spans)} entities{', ground truth' if a.ground_truth else ''}) that differs from your "
                   f"review. Both are kept; the next training run uses **{plain(rv.trains)}**.", icon="⚖️")
    if rv.annotators and rv.state.annotation_id is None:
        names = ", ".join(sorted({plain(a.author or "an annotator") for a in rv.annotators}))
        st.info(f"Already annotated by {names}. Your review will be stored as a separate annotation; their work stays "
                "as it is.", icon="👥")
    if rv.state.annotation_id is not None and not rv.state.complete and rv.pending:
        st.info(f"{len(rv.pending)} suggestion(s) still wait for a decision: your review is saved but does not train "
                "until none is left (or you accept the report).")
    elif rv.state.annotation_id is not None and not rv.state.complete:
        st.info("Your review has no entity left and is still in progress. If the report has no entity, confirm "
                "**No entity here** (it then trains as a negative example); otherwise add the missing ones.")
    if rv.no_entity:
        st.info(f"Reviewed: no entity (confirmed by {plain(rv.state.reviewer)}); the report trains as a negative "
                "example.", icon="✅")
    st.caption(POLICY)


def is_low(it: ReviewItem, threshold: float) -> bool:
    """A suggestion still pending whose confidence is under the reviewer's threshold."""
    return it.status == "pending" and it.entity.score < threshold


# ---------------------------------------------------------------- structured result, project CSV


def structured_panel(rv: svc.ReportReview, project: Any) -> None:
    """The report's structured result (JSON, downloadable) and the whole project's CSV, prepared on demand."""
    st.subheader("Structured result")
    result = svc.structured(rv)
    st.json(result, expanded=False)
    st.download_button("Download JSON", json.dumps(result, ensure_ascii=False, indent=1),
                       file_name=f"report-{rv.document.id}.json", mime="application/json")
    if st.button("Prepare project CSV"):
        st.session_state["review_csv"] = (project.id, svc.project_csv(engine(), project.name))
    csv = st.session_state.get("review_csv")
    if csv and csv[0] == project.id:
        st.download_button("Download project CSV", csv[1], file_name=f"{project.name}-structured.csv",
                           mime="text/csv")
