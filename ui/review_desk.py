"""The Review page's desk: one report under review in a fragment, so a decision reruns only the desk.

The report is shown in the span view (:mod:`ui.spanview`), where each keystroke or mouse selection sends one event;
:func:`handle_event` turns it into a decision through :func:`services.review.decide` (the same door as the buttons)
before the fragment reruns, and the view then highlights the next pending entity. A decision that finishes the
report reruns the whole page, which moves on to the next report. The offsets editor (:mod:`ui.review_offsets`)
stays below, in an expander, for those who cannot use the keyboard view.

Events are checked before anything is stored: an event for another report, one older than the last answered
(``seq``), one whose entity is no longer shown as the view showed it, or one with a malformed field is ignored and
says why; nothing raises.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from core.review import ReviewItem
from core.types import Entity, ReportLensError
from services import review as svc
from ui import review as view
from ui import review_offsets as offsets
from ui.render import label_colors
from ui.spanview import ACTIONS, KEYS_HELP, span_view
from ui.state import engine

KEY = "review_spans"  # the span view's widget key
SEQ = "review_span_seq"  # the last event answered
OUTCOME = "review_span_outcome"  # what the last event did, shown in the view
FOCUS = "review_span_focus"  # where the next entity is looked for after a decision
STATUS = {"pending": "pending", "accepted": "accepted", "reviewed": "corrected", "decided": "rejected"}


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

    def record(self, action: str, **kw: Any) -> tuple[svc.ReviewState, bool]:
        """One decision through :func:`services.review.decide`; the new state and whether it finished the report
        (which then sets the message and the move to the next report of the full page)."""
        rv = self.rv
        state = svc.decide(engine(), rv.document.id, self.reviewer, action, candidates=rv.candidates,
                           version_id=rv.version.id if rv.version else None, **kw)
        finished = state.complete and not rv.state.complete
        if finished:
            st.session_state["review_move_on"] = rv.document.id
        return state, finished

    def decide(self, action: str, done: str, **kw: Any) -> None:
        """A decision from a button: recorded, its message kept for the next run, then a rerun (of the desk, or of
        the page when it finished the report)."""
        rv = self.rv
        try:
            state, finished = self.record(action, **kw)
        except ReportLensError as exc:
            st.error(view.plain(exc))
            return
        st.session_state["review_flash"] = {"doc": rv.document.id,
                                            "text": view.flash_message(rv.document.id, done, state, finished)}
        where = kw["entity"].start if kw.get("entity") is not None else kw.get("start", 0)
        st.session_state[FOCUS] = {"doc": rv.document.id, "after": where}  # the span view highlights the next one
        # a new key for the entity picker: a fresh widget focused on the next pending suggestion (changing only its
        # default would leave the browser showing the old choice)
        st.session_state["review_seq"] = st.session_state.get("review_seq", 0) + 1
        # only the desk reruns, unless the decision finished the report (the page moves on) or this is a full run
        # (a fragment-scoped rerun is refused there)
        ctx = get_script_run_ctx()
        st.rerun(scope="fragment" if not finished and ctx is not None and ctx.fragment_ids_this_run else "app")

    def snapped(self, start: int, end: int) -> tuple[int, int] | None:
        """``[start, end)`` snapped to tokens, shown under the inputs; ``None`` (and why) when it covers no token."""
        text = self.rv.document.text
        try:
            tok = svc.project_tokenizer(engine(), self.rv.document.project_id, self.rv.version)
            s, e = svc.snap_range(tok, text, int(start), int(end))
        except ReportLensError as exc:
            st.caption(f"⚠️ {view.plain(exc)}")
            return None
        st.text(f"→ [{s}, {e}) “{text[s:e]}”")
        return s, e


# ---------------------------------------------------------------- events from the span view


@dataclass(frozen=True)
class Outcome:
    """What one event did: ``message`` (a decision was stored) or ``error`` (nothing stored, and why)."""

    seq: int
    message: str = ""
    error: str = ""
    finished: bool = False
    after: int | None = None  # look for the next pending entity from this offset
    state: svc.ReviewState | None = None  # the review after the decision


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _item(rv: svc.ReportReview, key: Any) -> ReviewItem | None:
    if not isinstance(key, list | tuple) or len(key) != 3:
        return None
    s, e, label = _int(key[0]), _int(key[1]), key[2]
    return next((it for it in rv.items if (it.entity.start, it.entity.end, it.entity.label) == (s, e, label)), None)


def handle_event(desk: Desk, event: Any, last_seq: int) -> Outcome | None:
    """Record the decision an event of the span view asks for; ``None`` for an event already answered (stale
    ``seq``). Never raises: a refused event's :attr:`Outcome.error` says why."""
    if not isinstance(event, dict) or _int(event.get("seq")) is None:
        return None
    seq, rv = int(event["seq"]), desk.rv
    if seq <= last_seq:
        return None
    action, text = event.get("action"), rv.document.text
    start, end, label = _int(event.get("start")), _int(event.get("end")), event.get("label")
    if event.get("doc") != rv.document.id:
        return Outcome(seq, error="That key was meant for another report; nothing was stored.")
    if desk.locked:
        return Outcome(seq, error="Nobody is signed in, so nothing was stored: sign in first.")
    if action not in ACTIONS or start is None or end is None or not 0 <= start < end <= len(text) or (
            action in ("add", "relabel", "correct") and (not isinstance(label, str) or label not in desk.labels)):
        return Outcome(seq, error=f"Malformed event ({action!r}, [{start}, {end}), {label!r}); nothing was stored.")
    try:
        if action == "add":
            return _done(seq, f"Added {label}.", start, *desk.record("add", start=start, end=end, label=label))
        item = _item(rv, event.get("item"))
        if item is None or (action == "reject" and item.status == "decided"):
            return Outcome(seq, error="That entity was already decided or changed; nothing was stored.")
        ent, words = item.entity, text[item.entity.start:item.entity.end]
        if action == "accept" and item.in_review:
            return Outcome(seq, message=f"{ent.label} “{words}” is already in your review.", after=ent.start)
        if action == "accept":
            return _done(seq, f"Accepted {ent.label} “{words}”.", ent.start, *desk.record("accept", entity=ent))
        if action == "reject":
            return _done(seq, f"Rejected {ent.label} “{words}”.", ent.start, *desk.record("reject", entity=ent))
        if action == "relabel":
            return _done(seq, f"Relabelled “{words}” as {label}.", ent.start,
                         *desk.record("relabel", entity=ent, label=label))
        if action == "adjust":
            return _done(seq, f"Boundaries of {ent.label} changed.", ent.start,
                         *desk.record("adjust", entity=ent, start=start, end=end))
        return _correct(desk, seq, ent, start, end, label)
    except ReportLensError as exc:
        return Outcome(seq, error=str(exc))


def _done(seq: int, message: str, after: int, state: svc.ReviewState, finished: bool) -> Outcome:
    return Outcome(seq, message=message, finished=finished, after=after, state=state)


def _correct(desk: Desk, seq: int, ent: Entity, start: int, end: int, label: str) -> Outcome:
    """New boundaries and a new label: an ``adjust`` (snapped to tokens) then a ``relabel`` of its result, two
    decisions as with the buttons."""
    rv = desk.rv
    tok = svc.project_tokenizer(engine(), rv.document.project_id, rv.version)
    s, e = svc.snap_range(tok, rv.document.text, start, end)
    after = ent.start
    if (s, e) != (ent.start, ent.end):
        state, finished = desk.record("adjust", entity=ent, start=s, end=e)
        ent = Entity(s, e, ent.label, 1.0, "review")
        if label == ent.label:
            return _done(seq, f"Boundaries of {ent.label} changed.", after, state, finished)
    words = rv.document.text[s:e]
    return _done(seq, f"Corrected to {label} “{words}”.", after, *desk.record("relabel", entity=ent, label=label))


def _on_event(desk: Desk) -> None:
    """The span view's callback: runs before the rerun its event causes."""
    event = (st.session_state.get(KEY) or {}).get("event")
    outcome = handle_event(desk, event, st.session_state.get(SEQ, 0))
    if outcome is None:
        return
    st.session_state[SEQ] = outcome.seq
    if outcome.state is not None:  # a decision was stored: the offsets editor's entity picker starts afresh
        st.session_state["review_seq"] = st.session_state.get("review_seq", 0) + 1
    st.session_state[OUTCOME] = {"doc": desk.rv.document.id, "message": outcome.message, "error": outcome.error}
    if outcome.after is not None:
        st.session_state[FOCUS] = {"doc": desk.rv.document.id, "after": outcome.after}
    if outcome.finished and outcome.state is not None:
        st.session_state["review_flash"] = {"doc": desk.rv.document.id, "text": view.flash_message(
            desk.rv.document.id, outcome.message, outcome.state, True)}
        st.rerun()  # from a callback: the whole page reruns (not only the desk) and moves on to the next report


# ---------------------------------------------------------------- the desk


def view_data(desk: Desk, threshold: float) -> dict[str, Any]:
    """What the span view is given: the text, the labels in key order, every entity with its state, the one to
    highlight, and the last event's outcome."""
    rv, doc_id = desk.rv, desk.rv.document.id
    colors = label_colors([*desk.labels, *(it.entity.label for it in rv.items)])
    items = [{"start": it.entity.start, "end": it.entity.end, "label": it.entity.label,
              "score": round(float(it.entity.score), 3), "source": it.entity.source, "status": STATUS[it.status],
              "low": view.is_low(it, threshold)} for it in rv.items]
    focus = st.session_state.get(FOCUS) or {}
    after = focus.get("after", 0) if focus.get("doc") == doc_id else 0
    pending = [i for i, it in enumerate(rv.items) if it.status == "pending"]
    current = next((i for i in pending if rv.items[i].entity.start >= after), pending[0] if pending else -1)
    outcome = st.session_state.get(OUTCOME) or {}
    return {"doc": doc_id, "text": rv.document.text,
            "labels": [{"name": lab, "color": colors.get(lab, "#e5e7eb")} for lab in desk.labels],
            "items": items, "current": current, "seq": st.session_state.get(SEQ, 0), "locked": desk.locked,
            "message": outcome.get("message", "") if outcome.get("doc") == doc_id else "",
            "error": outcome.get("error", "") if outcome.get("doc") == doc_id else "", "autofocus": True}


@st.fragment
def review_desk(row: svc.WorklistRow, reviewer: str, version_id: int | None, labels: Sequence[str],
                threshold: float, project: Any) -> None:
    """One report under review: its notices, the span view, the report-level buttons, the entity table, the
    offsets editor and the structured result. ``reviewer`` is the one name decisions are recorded under."""
    try:
        rv = svc.open_report(engine(), row.document_id, reviewer, version_id)
    except ReportLensError as exc:
        st.error(view.plain(exc))
        return
    view.report_caption(rv)
    if not rv.document.text:
        st.info("This report has no text; pick another one.")
        return
    view.report_notices(rv, reviewer)
    desk = Desk(rv, reviewer, labels)
    st.caption(KEYS_HELP)
    data = view_data(desk, threshold)
    span_view(data, key=KEY, on_event=lambda: _on_event(desk))
    if not rv.candidates:
        st.caption("Nothing was suggested for this report: add missing entities below, or confirm No entity here.")
    offsets.report_buttons(desk)
    if rv.shown:
        with st.expander(f"Entities ({len(rv.shown)})", key="review_entities_table"):
            st.dataframe(entity_table(rv, threshold), hide_index=True, width="stretch")
    with st.expander("Edit by offsets (accessible fallback: pick an entity, type start and end)",
                     key="review_offsets_editor"):
        offsets.entity_panel(desk, rv.items[data["current"]].entity if data["current"] >= 0 else None)
        offsets.add_panel(desk)
    view.structured_panel(rv, project)


def entity_table(rv: svc.ReportReview, threshold: float) -> pd.DataFrame:
    text = rv.document.text
    return pd.DataFrame([{"#": i + 1, "text": text[it.entity.start:it.entity.end], "label": it.entity.label,
                          "start": it.entity.start, "end": it.entity.end, "confidence": round(it.entity.score, 3),
                          "source": it.entity.source, "status": it.status, "low": view.is_low(it, threshold)}
                         for i, it in enumerate(rv.shown)])
