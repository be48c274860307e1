"""The Review page's offsets editor, kept beside the span view (:mod:`ui.review_desk`) as the accessible fallback:
pick an entity in a list, accept, reject, relabel it or type its new start and end; add a missing entity by its
words or offsets. Also the report-level buttons (Accept report, No entity here) and their shortcuts.

The entity buttons have no keyboard shortcuts: the span view owns A, X, 1-9 and the arrows while it has focus.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

from ui.review import plain

if TYPE_CHECKING:
    from core.types import Entity
    from ui.review_desk import Desk


def entity_panel(desk: Desk, focus: Entity | None = None) -> None:
    """One entity (``focus``, the one the span view highlights, else the first pending one, unless picked): accept,
    reject, relabel or change its boundaries."""
    shown, text, doc_id = desk.rv.shown, desk.rv.document.text, desk.rv.document.id
    if not shown:
        return
    st.markdown("**Entity**")
    first = next((i for i, it in enumerate(shown) if it.entity == focus),
                 next((i for i, it in enumerate(shown) if it.status == "pending"), 0))
    pick = st.selectbox("Entity", range(len(shown)), index=first,
                        key=f"review_pick_{doc_id}_{st.session_state.get('review_seq', 0)}",
                        format_func=lambda i: f"#{i + 1} {shown[i].entity.label} · "
                        f"{text[shown[i].entity.start:shown[i].entity.end][:50]!r} · {shown[i].status}")
    item = shown[pick]
    ent, words = item.entity, text[item.entity.start:item.entity.end]
    b1, b2, _ = st.columns([1, 1, 5])
    if b1.button("Accept", disabled=desk.locked or item.in_review, type="primary"):
        desk.decide("accept", f"Accepted {ent.label} “{words}”.", entity=ent)
    if b2.button("Reject", disabled=desk.locked):
        desk.decide("reject", f"Rejected {ent.label} “{words}”.", entity=ent)
    k = f"{doc_id}_{ent.start}_{ent.end}_{ent.label}"
    r1, r2 = st.columns([3, 1], vertical_alignment="bottom")
    new_label = r1.selectbox("New label", [lab for lab in desk.labels if lab != ent.label] or desk.labels,
                             key=f"review_label_{k}")
    if r2.button("Relabel", disabled=desk.locked):
        desk.decide("relabel", f"Relabelled “{words}” as {new_label}.", entity=ent, label=new_label)
    s1, s2, s3 = st.columns([1, 1, 1], vertical_alignment="bottom")
    new_start = s1.number_input("Start", 0, len(text) - 1, ent.start, key=f"review_start_{k}")
    new_end = s2.number_input("End", 1, len(text), ent.end, key=f"review_end_{k}")
    snapped = desk.snapped(new_start, new_end)
    if s3.button("Change boundaries", disabled=desk.locked or snapped is None):
        desk.decide("adjust", f"Boundaries of {ent.label} changed.", entity=ent, start=int(new_start),
                    end=int(new_end))


def add_panel(desk: Desk) -> None:
    """Add a missing entity, found by its words or given by offsets."""
    text, doc_id, labels = desk.rv.document.text, desk.rv.document.id, desk.labels
    st.markdown("**Add a missing entity**")
    find = st.text_input("Words to find (sets start and end to their first occurrence)", key=f"review_find_{doc_id}")
    pos = text.find(find) if find else -1
    if find and pos < 0:
        st.caption("⚠️ Not found in the report; type the words exactly as written, or give start and end.")
    a1, a2, a3 = st.columns(3)
    start = a1.number_input("Start", 0, len(text) - 1, max(pos, 0), key=f"review_add_start_{doc_id}_{pos}")
    end = a2.number_input("End", 1, len(text), pos + len(find) if pos >= 0 else min(len(text), 1),
                          key=f"review_add_end_{doc_id}_{pos}")
    label = a3.selectbox("Label", labels or ["(no label)"], key=f"review_add_label_{doc_id}")
    snapped = desk.snapped(start, end)
    if st.button("Add entity", disabled=desk.locked or snapped is None or not labels):
        desk.decide("add", f"Added {label}.", start=int(start), end=int(end), label=label)


def report_buttons(desk: Desk) -> None:
    """The overlap warning, then Accept report (Shift+A) and No entity here (Shift+X)."""
    rv, text = desk.rv, desk.rv.document.text
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
