"""AppTest of the Review page's span view, the Python side: what the view is given (the text, the labels in key
order, every entity with its state, the one to highlight), and each event it can send becoming the right decision
through services.review (accept, reject, relabel, adjust, a boundaries-and-label correction, add), the highlight
moving to the next pending entity, and stale or malformed events ignored without a crash."""

from __future__ import annotations

import pytest

from db import review as db_review
from services.auth import local_actor
from tests.factories import REVIEW_TEXTS as TEXTS
from tests.factories import seed_review_project
from tests.ui.spanview_driver import key_of, send_event, view_data

pytestmark = pytest.mark.ui

PAGE = "pages/review.py"
ME = local_actor().subject  # who acts in single-user mode (app.py): decisions carry it
TEXT = TEXTS[0]  # "sinus bradycardia, heart rate 45 bpm. there is a pleural effusion."


@pytest.fixture
def desk(db, tmp_path, open_page):
    """The seeded review project open on its least confident report (TEXTS[0]) for the local user (single-user mode)."""
    seeded = seed_review_project(db, tmp_path)
    at = open_page(PAGE)
    assert not at.exception, at.exception
    return at, seeded["engine"], seeded["ids"][1], seeded


def actions(engine, doc):
    return [(d.action, d.reviewer) for d in reversed(db_review.list_decisions(engine, document_id=doc))]


def test_the_view_is_given_the_report_its_entities_and_the_first_pending_one(desk):
    at, _, doc, _ = desk
    data = view_data(at)
    assert data["doc"] == doc and data["text"] == TEXT and not data["locked"]
    assert [lab["name"] for lab in data["labels"]] == ["FINDING", "HR", "RHYTHM"]  # keys 1, 2, 3
    assert all(lab["color"].startswith("#") for lab in data["labels"])
    assert [(TEXT[i["start"]:i["end"]], i["label"], i["status"], i["low"]) for i in data["items"]] == [
        ("sinus bradycardia", "RHYTHM", "pending", False), ("45 bpm", "HR", "pending", False),
        ("pleural effusion", "RHYTHM", "pending", True)]
    assert data["current"] == 0 and data["seq"] == 0


def test_accept_event_records_the_decision_and_highlights_the_next_entity(desk):
    at, engine, doc, seeded = desk
    first = view_data(at)["items"][0]
    send_event(at, {"action": "accept", "item": key_of(first), "start": first["start"], "end": first["end"],
                    "label": first["label"], "seq": 1, "doc": doc})
    assert not at.exception, at.exception
    assert actions(engine, doc) == [("accept", ME)]
    (decision,) = db_review.list_decisions(engine, document_id=doc)
    assert decision.model_version_id == seeded["version"].id and decision.before["label"] == "RHYTHM"
    data = view_data(at)
    assert data["seq"] == 1 and data["error"] == "" and "Accepted RHYTHM" in data["message"]
    assert [i["status"] for i in data["items"]] == ["accepted", "pending", "pending"]
    assert data["current"] == 1  # "45 bpm"
    # the same event again (a resend, an old seq) is ignored: no second decision
    send_event(at, {"action": "accept", "item": key_of(first), "start": first["start"], "end": first["end"],
                    "label": first["label"], "seq": 1, "doc": doc})
    assert not at.exception, at.exception
    assert actions(engine, doc) == [("accept", ME)]


def test_reject_relabel_and_add_events_finish_the_report(desk):
    at, engine, doc, _ = desk
    items = view_data(at)["items"]
    hr, pleural = items[1], items[2]
    send_event(at, {"action": "reject", "item": key_of(hr), "start": hr["start"], "end": hr["end"],
                    "label": hr["label"], "seq": 1, "doc": doc})
    data = view_data(at)
    assert data["items"][1]["status"] == "rejected"  # still drawn (struck through), no longer pending
    assert TEXT[data["items"][data["current"]]["start"]:].startswith("pleural")  # the next pending one
    send_event(at, {"action": "relabel", "item": key_of(pleural), "start": pleural["start"], "end": pleural["end"],
                    "label": "FINDING", "seq": 2, "doc": doc})
    start = TEXT.index("heart")
    send_event(at, {"action": "add", "item": None, "start": start + 1, "end": TEXT.index("45") - 1, "label": "HR",
                    "seq": 3, "doc": doc})  # inside "heart" ... "rate": snapped to the words
    assert not at.exception, at.exception
    state = db_review.review_state(engine, doc, ME)
    assert not state.complete  # "sinus bradycardia" still waits
    assert sorted((TEXT[s.start:s.end], s.label) for s in state.spans) == [
        ("heart rate", "HR"), ("pleural effusion", "FINDING")]
    first = view_data(at)["items"][0]
    send_event(at, {"action": "accept", "item": key_of(first), "start": first["start"], "end": first["end"],
                    "label": first["label"], "seq": 4, "doc": doc})
    assert not at.exception, at.exception
    assert [a for a, _ in actions(engine, doc)] == ["reject", "relabel", "add", "accept"]
    assert db_review.review_state(engine, doc, ME).complete
    # that finished the report: the page moved on and says so
    assert view_data(at)["doc"] != doc
    assert any(f"Report #{doc} reviewed" in s.value.replace("\\", "") for s in at.success)


def test_boundary_and_label_correction_is_an_adjust_then_a_relabel(desk):
    at, engine, doc, _ = desk
    hr = view_data(at)["items"][1]  # "45 bpm", HR
    send_event(at, {"action": "correct", "item": key_of(hr), "start": TEXT.index("heart"), "end": hr["end"],
                    "label": "FINDING", "seq": 1, "doc": doc})
    assert not at.exception, at.exception
    assert [a for a, _ in actions(engine, doc)] == ["adjust", "relabel"]
    state = db_review.review_state(engine, doc, ME)
    assert [(TEXT[s.start:s.end], s.label) for s in state.spans] == [("heart rate 45 bpm", "FINDING")]
    statuses = {(TEXT[i["start"]:i["end"]], i["status"]) for i in view_data(at)["items"]}
    assert ("heart rate 45 bpm", "corrected") in statuses and ("45 bpm", "rejected") in statuses


def test_stale_foreign_and_malformed_events_are_ignored(desk):
    at, engine, doc, _ = desk
    first = view_data(at)["items"][0]
    accept = {"action": "accept", "item": key_of(first), "start": first["start"], "end": first["end"],
              "label": first["label"], "doc": doc}
    send_event(at, {**accept, "seq": 5})
    assert actions(engine, doc) == [("accept", ME)]
    # an older seq than the last answered one: ignored
    second = view_data(at)["items"][1]
    send_event(at, {**accept, "item": key_of(second), "seq": 3})
    assert not at.exception, at.exception
    assert len(actions(engine, doc)) == 1 and view_data(at)["seq"] == 5
    # an entity no longer pending: rejected once (stored), the same reject again is refused
    reject = {"action": "reject", "item": key_of(second), "start": second["start"], "end": second["end"],
              "label": second["label"], "doc": doc}
    send_event(at, {**reject, "seq": 6})
    assert len(actions(engine, doc)) == 2
    send_event(at, {**reject, "seq": 7})
    assert "already decided or changed" in view_data(at)["error"] and len(actions(engine, doc)) == 2
    # an entity the view never showed (changed since, or made up): nothing stored
    send_event(at, {**reject, "item": [0, 5, "RHYTHM"], "seq": 8})
    assert "already decided or changed" in view_data(at)["error"]
    # another report's event, a label the project does not have, offsets outside the text, nonsense: ignored
    for seq, bad in enumerate([{**accept, "doc": doc + 999}, {**accept, "action": "add", "label": "<b>NOPE</b>"},
                               {**accept, "end": len(TEXT) + 5}, {**accept, "action": "explode"},
                               {**accept, "start": "0"}, {"seq": "x"}, {}], start=9):
        send_event(at, {**bad, "seq": seq} if bad else bad)
        assert not at.exception, (bad, at.exception)
    assert len(actions(engine, doc)) == 2
    assert view_data(at)["error"]


def test_report_text_reaches_the_view_as_data_never_as_markup(db, tmp_path, open_page):
    from sqlalchemy import select

    from core.types import ParsedTask
    from db import models as m
    from db.engine import read_session
    from db.importer import import_tasks
    from tests.factories import REVIEW_PROJECT

    seeded = seed_review_project(db, tmp_path)
    xss = "sinus rhythm <img src=x onerror=alert(1)> heart rate 60 bpm."
    import_tasks(seeded["engine"], REVIEW_PROJECT, [ParsedTask(text=xss, task_id=50)])
    with read_session(seeded["engine"]) as s:
        doc = s.scalar(select(m.Document.id).where(m.Document.ls_task_id == 50))
    at = open_page(PAGE)
    at.selectbox(key="review_doc").set_value(doc).run()
    assert not at.exception, at.exception
    assert view_data(at)["text"] == xss  # the script puts it in text nodes (the browser test checks no <img>)
    assert not any("<img" in h.proto.body for h in at.get("html"))
