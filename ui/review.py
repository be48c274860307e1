"""The Review page's blocks: the sidebar, the worklist and report picker, the report with its highlighted
suggestions, the decision buttons for one entity, adding a missing entity, and the structured result.

Everything reaches the data through :mod:`services.review`; report text and names are untrusted, so they go through
:func:`plain` (Markdown elements) or :mod:`ui.render` (HTML).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import streamlit as st

from core.review import ReviewItem
from core.types import ReportLensError, Span
from services import review as svc
from ui.render import highlight_html, label_colors, legend_html
from ui.state import engine

LOW = "#fca5a5"
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
    """The reviewer's name, the low-confidence threshold and the model version chosen (``None``: no version)."""
    reviewer = st.sidebar.text_input("Reviewer", value=st.session_state.get("reviewer_name", ""),
                                     placeholder="your name", key="review_reviewer").strip()
    st.session_state["reviewer_name"] = reviewer
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


def report_caption(rv: svc.ReportReview, row: svc.WorklistRow) -> None:
    task = rv.document.ls_task_id
    flash = st.session_state.get("review_flash")
    after = f" · next report after #{flash['doc']}" if flash and flash["doc"] != rv.document.id else ""
    st.caption(f"Report #{rv.document.id}" + (f" (Label Studio task {task})" if task else "") + f" · {row.status}"
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
        st.warning("Type your name in **Reviewer** (sidebar) to record decisions.", icon="✍️")
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


def _is_low(it: ReviewItem, threshold: float) -> bool:
    return it.status == "pending" and it.entity.score < threshold


def report_view(rv: svc.ReportReview, labels: Sequence[str], threshold: float) -> None:
    """The report text with the shown entities highlighted (low-confidence suggestions flagged ⚠), their legend and
    their table."""
    text, shown = rv.document.text, rv.shown
    colors = label_colors([*labels, *(it.entity.label for it in rv.items)])
    marks, mark_colors = [], {}
    for it in shown:
        e, low = it.entity, _is_low(it, threshold)
        tag = f"{e.label} {'✓' if it.in_review else f'{e.score:.2f}'}{' ⚠' if low else ''}"
        marks.append(Span(e.start, e.end, tag))
        mark_colors[tag] = LOW if low else colors.get(e.label, "#e5e7eb")
    st.html(legend_html({k: v for k, v in colors.items() if any(it.entity.label == k for it in shown)}
                        | ({"low confidence ⚠": LOW} if any(m.label.endswith("⚠") for m in marks) else {})))
    st.html(highlight_html(text, marks, mark_colors))
    if not rv.candidates:
        st.caption("Nothing was suggested for this report: add missing entities below, or confirm No entity here.")
    if shown:
        st.dataframe(pd.DataFrame([{"#": i + 1, "text": text[it.entity.start:it.entity.end], "label": it.entity.label,
                                    "start": it.entity.start, "end": it.entity.end,
                                    "confidence": round(it.entity.score, 3), "source": it.entity.source,
                                    "status": it.status, "low": _is_low(it, threshold)}
                                   for i, it in enumerate(shown)]), hide_index=True, width="stretch")


# ---------------------------------------------------------------- decisions


@dataclass(frozen=True)
class Desk:
    """What a decision needs: the report under review, who decides, and the project's and model's labels."""

    rv: svc.ReportReview
    reviewer: str
    project_labels: Sequence[str]

    @property
    def locked(self) -> bool:
        return not self.reviewer

    @property
    def labels(self) -> list[str]:
        """The labels to choose from: the project's, the model's and the suggestions'."""
        return sorted({*self.project_labels, *(e.label for e in self.rv.candidates)})

    def decide(self, action: str, done: str, **kw: Any) -> None:
        rv = self.rv
        try:
            state = svc.decide(engine(), rv.document.id, self.reviewer, action, candidates=rv.candidates,
                               version_id=rv.version.id if rv.version else None, **kw)
        except ReportLensError as exc:
            st.error(plain(exc))
            return
        finished = state.complete and not rv.state.complete
        st.session_state["review_flash"] = {"doc": rv.document.id,
                                            "text": flash_message(rv.document.id, done, state, finished)}
        if finished:
            st.session_state["review_move_on"] = rv.document.id
        # a new key for the entity picker: a fresh widget focused on the next pending suggestion (changing only its
        # default would leave the browser showing the old choice)
        st.session_state["review_seq"] = st.session_state.get("review_seq", 0) + 1
        st.rerun()

    def snapped(self, start: int, end: int) -> tuple[int, int] | None:
        """``[start, end)`` snapped to tokens, shown under the inputs; ``None`` (and why) when it covers no token."""
        text = self.rv.document.text
        try:
            tok = svc.project_tokenizer(engine(), self.rv.document.project_id, self.rv.version)
            s, e = svc.snap_range(tok, text, int(start), int(end))
        except ReportLensError as exc:
            st.caption(f"⚠️ {plain(exc)}")
            return None
        st.text(f"→ [{s}, {e}) “{text[s:e]}”")
        return s, e


def entity_panel(desk: Desk) -> None:
    """One entity (the first pending one unless picked): accept, reject, relabel or change its boundaries."""
    shown, text, doc_id = desk.rv.shown, desk.rv.document.text, desk.rv.document.id
    if not shown:
        return
    st.subheader("Entity")
    first = next((i for i, it in enumerate(shown) if it.status == "pending"), 0)
    pick = st.selectbox("Entity", range(len(shown)), index=first,
                        key=f"review_pick_{doc_id}_{st.session_state.get('review_seq', 0)}",
                        format_func=lambda i: f"#{i + 1} {shown[i].entity.label} · "
                        f"{text[shown[i].entity.start:shown[i].entity.end][:50]!r} · {shown[i].status}")
    item = shown[pick]
    ent, words = item.entity, text[item.entity.start:item.entity.end]
    b1, b2, _ = st.columns([1, 1, 5])
    if b1.button("Accept", shortcut="A", disabled=desk.locked or item.in_review, type="primary", help="Shortcut: A"):
        desk.decide("accept", f"Accepted {ent.label} “{words}”.", entity=ent)
    if b2.button("Reject", shortcut="X", disabled=desk.locked, help="Shortcut: X"):
        desk.decide("reject", f"Rejected {ent.label} “{words}”.", entity=ent)
    k = f"{doc_id}_{ent.start}_{ent.end}_{ent.label}"
    r1, r2 = st.columns([3, 1], vertical_alignment="bottom")
    new_label = r1.selectbox("New label", [lab for lab in desk.labels if lab != ent.label] or desk.labels,
                             key=f"review_label_{k}")
    if r2.button("Relabel", shortcut="L", disabled=desk.locked, help="Shortcut: L"):
        desk.decide("relabel", f"Relabelled “{words}” as {new_label}.", entity=ent, label=new_label)
    s1, s2, s3 = st.columns([1, 1, 1], vertical_alignment="bottom")
    new_start = s1.number_input("Start", 0, len(text) - 1, ent.start, key=f"review_start_{k}")
    new_end = s2.number_input("End", 1, len(text), ent.end, key=f"review_end_{k}")
    snapped = desk.snapped(new_start, new_end)
    if s3.button("Change boundaries", shortcut="B", disabled=desk.locked or snapped is None, help="Shortcut: B"):
        desk.decide("adjust", f"Boundaries of {ent.label} changed.", entity=ent, start=int(new_start),
                    end=int(new_end))


def add_panel(desk: Desk) -> None:
    """Add a missing entity (found by its words or given by offsets), then the Accept report button."""
    text, doc_id, labels = desk.rv.document.text, desk.rv.document.id, desk.labels
    with st.expander("Add a missing entity", expanded=not desk.rv.candidates):
        find = st.text_input("Words to find (sets start and end to their first occurrence)",
                             key=f"review_find_{doc_id}")
        pos = text.find(find) if find else -1
        if find and pos < 0:
            st.caption("⚠️ Not found in the report; type the words exactly as written, or give start and end.")
        a1, a2, a3 = st.columns(3)
        start = a1.number_input("Start", 0, len(text) - 1, max(pos, 0), key=f"review_add_start_{doc_id}_{pos}")
        end = a2.number_input("End", 1, len(text), pos + len(find) if pos >= 0 else min(len(text), 1),
                              key=f"review_add_end_{doc_id}_{pos}")
        label = a3.selectbox("Label", labels or ["(no label)"], key=f"review_add_label_{doc_id}")
        snapped = desk.snapped(start, end)
        if st.button("Add entity", shortcut="D", disabled=desk.locked or snapped is None or not labels,
                     help="Shortcut: D"):
            desk.decide("add", f"Added {label}.", start=int(start), end=int(end), label=label)
    rv = desk.rv
    if conflicts := rv.conflicts:
        st.warning("Overlapping suggestions: choose one of each group (accept it, the others are rejected as "
                   "overlapping) before accepting the report: " + "; ".join(
                       " / ".join(f"{e.label} “{plain(text[e.start:e.end])}” ({e.source})" for e in g)
                       for g in conflicts), icon="↔️")
    label = (f"Accept report ({len(conflicts)} overlap(s) to choose first)" if conflicts
             else f"Accept report ({len(rv.pending)} pending suggestion(s))")
    c1, c2 = st.columns(2)
    if c1.button(label, shortcut="Shift+A", disabled=desk.locked, type="primary",
                 help="Accept every pending suggestion and finish the review. Shortcut: Shift+A"):
        desk.decide("accept_all", f"Accepted {len(rv.pending)} pending suggestion(s).")
    if c2.button("No entity here", shortcut="Shift+X", disabled=desk.locked or bool(rv.state.spans) or rv.no_entity,
                 help="Confirm the report has no entity: pending suggestions are rejected and the review finishes "
                 "with zero entities (a negative training example). Reject the entities of your review first. "
                 "Shortcut: Shift+X"):
        desk.decide("no_entity", f"Confirmed no entity here ({len(rv.pending)} suggestion(s) rejected).")


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
