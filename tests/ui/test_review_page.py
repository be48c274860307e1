"""AppTest of the Review page through app.py: empty states, the values shown for a seeded project (progress, the
worklist, the suggested entities), then a reviewer accepts, relabels, adds and accepts a whole report, and the
database holds the decisions and the review annotation; a report an annotator labeled differently says so."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from core.types import ParsedTask
from db import models as m
from db import review as db_review
from db.engine import make_engine, read_session
from db.importer import import_tasks
from db.repository import get_document
from services.auth import local_actor
from tests.factories import REVIEW_PROJECT as PROJECT
from tests.factories import REVIEW_TEXTS as TEXTS
from tests.factories import seed_review_project
from tests.ui.spanview_driver import view_data
from ui.review import plain

pytestmark = pytest.mark.ui

PAGE = "pages/review.py"
ME = local_actor().subject  # who acts in single-user mode (app.py): decisions carry it


def button(at: AppTest, label: str):
    """The button labelled ``label`` (or ``label (…)``: "Accept report (2 pending suggestion(s))")."""
    return next(b for b in at.button if b.label == label or b.label.startswith(f"{label} ("))


def said(at: AppTest) -> list[str]:
    """The success messages as read (the Markdown escapes of untrusted text removed)."""
    return [s.value.replace("\\", "") for s in at.success]


def test_empty_database_says_what_to_do(open_page):
    at = open_page(PAGE)
    assert not at.exception, at.exception
    assert any("Import" in i.value for i in at.info), [i.value for i in at.info]


def metric(at: AppTest, label: str) -> str:
    return str(next(mt for mt in at.metric if mt.label == label).value)


def test_project_without_model_shows_the_rules_suggestions(db, open_page):
    import_tasks(make_engine(db), PROJECT, [ParsedTask(text=TEXTS[0], task_id=1)])
    at = open_page(PAGE)
    assert not at.exception, at.exception
    assert metric(at, "Reviewed") == "0 / 1" and metric(at, "Suggestions from") == "rules"
    assert not any(s.label == "Model version" for s in at.sidebar.selectbox)
    table = at.dataframe[-1].value
    assert set(table["source"]) == {"rule"}
    assert {"sinus bradycardia", "45 bpm"} <= set(table["text"]), table


def test_seeded_project_shows_progress_worklist_and_entities(db, tmp_path, open_page):
    seeded = seed_review_project(db, tmp_path)
    ids, version = seeded["ids"], seeded["version"]
    at = open_page(PAGE)
    assert not at.exception, at.exception
    # no name to type: decisions are recorded as whoever acts (single-user mode: the local OS user)
    assert f"Decisions are recorded as **{plain(ME)}**." in [c.value for c in at.sidebar.caption]
    assert at.sidebar.selectbox(key="review_version").value == version.name
    assert metric(at, "Reviewed") == f"0 / {len(ids)}" and metric(at, "In progress") == "0"
    assert metric(at, "Suggestions from") == f"model {version.name} + rules"
    assert at.get("progress")[0].proto.text == "0% of the project reviewed"
    assert at.expander[0].label == f"Worklist ({len(ids)} reports, first {len(ids)} shown)"
    worklist = at.dataframe[0].value
    first = worklist.iloc[0]  # the least confident stored prediction (0.41) comes first
    assert (first["id"], first["status"], first["confidence"], first["labels"]) == (
        ids[1], "not reviewed", pytest.approx(0.41), "HR, RHYTHM")
    assert at.selectbox(key="review_doc").value == ids[1]
    assert any(c.value.startswith(f"Report #{ids[1]} (Label Studio task 1) · not reviewed") for c in at.caption)
    # model + rules: the rules agree on two suggestions (source "both", raised confidence); the third is the model's
    # alone, under the 0.6 threshold, so it is flagged low
    entities = at.dataframe[-1].value
    assert list(zip(entities["text"], entities["label"], entities["source"], entities["status"], entities["low"],
                    strict=True)) == [
        ("sinus bradycardia", "RHYTHM", "both", "pending", False), ("45 bpm", "HR", "both", "pending", False),
        ("pleural effusion", "RHYTHM", "model", "pending", True)]
    assert entities["confidence"].iloc[2] == pytest.approx(0.58)
    # the report itself is drawn by the span view (tests/ui/test_review_spans.py): the low one is flagged there too
    assert [(i["label"], i["score"], i["low"]) for i in view_data(at)["items"]][2] == ("RHYTHM", 0.58, True)
    assert not any("signed in" in w.value for w in at.warning)  # someone acts: decisions are unlocked
    assert not button(at, "Accept").disabled


def test_reviewer_accepts_relabels_adds_and_accepts_the_report(db, tmp_path, open_page):
    seeded = seed_review_project(db, tmp_path)
    engine, ids, version = seeded["engine"], seeded["ids"], seeded["version"]
    at = open_page(PAGE)
    assert not at.exception, at.exception
    assert next(mt for mt in at.metric if mt.label == "Reviewed").value == f"0 / {len(ids)}"
    assert not button(at, "Accept").disabled  # single-user mode: the local user reviews, no name to type
    assert not at.exception, at.exception
    at.selectbox(key="review_doc").set_value(ids[1]).run()
    shown = {e.label for e in at.dataframe[-1].value.itertuples()} if at.dataframe else set()
    assert {"RHYTHM", "HR"} <= shown
    # the first pending suggestion (sinus bradycardia) is focused: accept it
    button(at, "Accept").click().run()
    assert not at.exception, at.exception
    assert any("Accepted RHYTHM" in s.value for s in at.success)
    # focus moves to the next pending one (45 bpm, HR); relabel the third (pleural effusion) as FINDING
    pick = next(s for s in at.selectbox if s.label == "Entity")
    assert "45 bpm" in pick.options[pick.value]
    third = next(i for i in pick.options if "pleural" in i)
    pick.set_value(pick.options.index(third) if isinstance(pick.value, int) else third).run()
    new_label = next(s for s in at.selectbox if s.label == "New label")
    new_label.set_value("FINDING").run()
    button(at, "Relabel").click().run()
    assert not at.exception, at.exception
    # add a missing entity by typing its words
    at.text_input(key=f"review_find_{ids[1]}").input("heart rate").run()
    next(s for s in at.selectbox if s.key == f"review_add_label_{ids[1]}").set_value("HR").run()
    button(at, "Add entity").click().run()
    assert not at.exception, at.exception
    assert any("Added HR" in s.value for s in at.success)
    state = db_review.review_state(engine, ids[1], ME)
    assert not state.complete  # "45 bpm" is still pending
    button(at, "Accept report").click().run()
    assert not at.exception, at.exception

    state = db_review.review_state(engine, ids[1], ME)
    text = TEXTS[0]
    assert state.complete and sorted((text[s.start:s.end], s.label) for s in state.spans) == [
        ("45 bpm", "HR"), ("heart rate", "HR"), ("pleural effusion", "FINDING"), ("sinus bradycardia", "RHYTHM")]
    actions = [d.action for d in reversed(db_review.list_decisions(engine, document_id=ids[1]))]
    assert actions == ["accept", "relabel", "add", "accept_all"]
    assert {d.model_version_id for d in db_review.list_decisions(engine, document_id=ids[1])} == {version.id}
    assert next(mt for mt in at.metric if mt.label == "Reviewed").value == f"1 / {len(ids)}"


def test_a_report_labeled_differently_by_an_annotator_says_so(db, tmp_path, open_page):
    seeded = seed_review_project(db, tmp_path)
    ids = seeded["ids"]
    at = open_page(PAGE)
    at.selectbox(key="review_doc").set_value(ids[2]).run()
    assert not any("anna" in w.value for w in at.warning)
    assert any("Already annotated by anna" in i.value for i in at.info)
    button(at, "Accept report").click().run()  # accepts only "atrial fibrillation": anna also labeled "nodule"
    assert not at.exception, at.exception
    # the review is finished: the page moved on to the next report, the message names the finished one
    assert at.selectbox(key="review_doc").value != ids[2]
    assert any(f"Report #{ids[2]} reviewed" in m and "Next report below" in m for m in said(at))
    button(at, f"Back to report #{ids[2]}").click().run()
    assert at.selectbox(key="review_doc").value == ids[2]
    warning = next(w.value for w in at.warning if "anna" in w.value)
    assert "differs" in warning and "your review" in warning
    human = [a for a in get_document(seeded["engine"], ids[2]).annotations if a.source == "human"]
    assert len(human) == 1 and len(human[0].spans) == 2  # the annotator's work is untouched

    button(at, "Next report").click().run()
    assert not at.exception, at.exception
    assert at.selectbox(key="review_doc").value != ids[2]


def test_structured_result_csv_and_report_text_shown_as_text(db, tmp_path, open_page):
    seeded = seed_review_project(db, tmp_path)
    engine, pid = seeded["engine"], seeded["project_id"]
    xss = 'sinus rhythm <img src=x onerror="window.__xss=1"> <script>alert(1)</script> heart rate 60 bpm.'
    import_tasks(engine, PROJECT, [ParsedTask(text=xss, task_id=50)])
    with read_session(engine) as s:
        doc = s.scalar(select(m.Document.id).where(m.Document.ls_task_id == 50))
    at = open_page(PAGE)
    at.selectbox(key="review_doc").set_value(doc).run()
    assert not at.exception, at.exception
    # the span view gets the text as data and draws it as text nodes (the browser test checks no element appears);
    # nothing else renders it as HTML
    assert view_data(at)["text"] == xss
    assert not any("<script" in h.proto.body or "<img" in h.proto.body for h in at.get("html"))
    result = at.json[0].proto.body
    assert '"schema"' in result and '"entities"' in result
    assert any(b.proto.label == "Download JSON" for b in at.get("download_button"))
    next(b for b in at.button if b.label == "Prepare project CSV").click().run()
    assert not at.exception, at.exception
    assert any(b.proto.label == "Download project CSV" for b in at.get("download_button"))
    assert pid


def test_project_without_reports_says_so(db, open_page):
    from db.repository import ensure_project

    ensure_project(make_engine(db), "Empty project")
    at = open_page(PAGE)
    assert not at.exception, at.exception
    assert any("has no report to review" in i.value for i in at.info), [i.value for i in at.info]


def test_report_with_nothing_suggested_is_confirmed_no_entity_here(db, tmp_path, open_page):
    seeded = seed_review_project(db, tmp_path)
    engine, ids = seeded["engine"], seeded["ids"]
    at = open_page(PAGE)
    at.selectbox(key="review_doc").set_value(ids[3]).run()  # "normal ecg.": no model entity, no rule fires
    assert not at.exception, at.exception
    assert any("Nothing was suggested" in c.value and "No entity here" in c.value for c in at.caption)
    button(at, "Accept report").click().run()  # an empty report is not "accepted": it is confirmed
    assert any("Nothing to accept" in e.value for e in at.error)
    assert db_review.review_state(engine, ids[3], ME).annotation_id is None
    button(at, "No entity here").click().run()
    assert not at.exception, at.exception
    state = db_review.review_state(engine, ids[3], ME)
    assert state.complete and state.spans == ()
    (row,) = db_review.list_decisions(engine, document_id=ids[3])
    assert (row.action, row.reviewer) == ("no_entity", ME)
    assert any(f"Report #{ids[3]} reviewed (no entity" in m for m in said(at))
    assert next(mt for mt in at.metric if mt.label == "Reviewed").value == f"1 / {len(ids)}"
    worklist = at.dataframe[0].value
    assert worklist.set_index("id").loc[ids[3], "status"] == "reviewed: no entity"
    at.selectbox(key="review_doc").set_value(ids[3]).run()
    assert any("Reviewed: no entity" in i.value for i in at.info)
    assert any(c.value.startswith(f"Report #{ids[3]} (Label Studio task 3) · reviewed: no entity") for c in at.caption)


def test_rejecting_every_suggestion_stays_in_progress_until_confirmed(db, tmp_path, open_page):
    seeded = seed_review_project(db, tmp_path)
    engine, ids = seeded["engine"], seeded["ids"]
    at = open_page(PAGE)
    at.selectbox(key="review_doc").set_value(ids[3]).run()
    at.selectbox(key="review_doc").set_value(ids[2]).run()  # the model's "atrial fibrillation", the rules' rate
    assert list(at.dataframe[-1].value["status"]) == ["pending", "pending"]
    for _ in range(2):  # the focus is on the first pending suggestion
        button(at, "Reject").click().run()
        assert not at.exception, at.exception
    assert not at.dataframe or len(at.dataframe) == 1  # only the worklist is left: no entity shown
    assert at.selectbox(key="review_doc").value == ids[2]  # not finished: the page stays
    flash = next(m for m in said(at) if "Rejected" in m)
    assert "Still in progress" in flash and "No entity here" in flash and "reviewed" not in flash.split(":")[0]
    assert not db_review.review_state(engine, ids[2], ME).complete
    assert metric(at, "Reviewed") == f"0 / {len(ids)}" and metric(at, "In progress") == "1"
    assert any("still in progress" in i.value for i in at.info)
    button(at, "No entity here").click().run()
    assert db_review.review_state(engine, ids[2], ME).complete
    assert metric(at, "Reviewed") == f"1 / {len(ids)}"


def test_accept_report_with_overlapping_model_and_rule_suggestions(db, tmp_path, open_page):
    """Issue 13: Shift+A accepted two model fragments, left the overlapping rule entity pending and said "Report
    accepted."; now the reviewer chooses, the choice rejects the fragments, and the report is then accepted."""
    from db.scores import save_predictions
    from tests.factories import _at

    seeded = seed_review_project(db, tmp_path)
    engine, version = seeded["engine"], seeded["version"]
    import_tasks(engine, PROJECT, [ParsedTask(text=TEXTS[0], task_id=60)])
    with read_session(engine) as s:
        doc = s.scalar(select(m.Document.id).where(m.Document.ls_task_id == 60))
    fragments = [_at(TEXTS[0], "sinus", "FINDING", 0.3), _at(TEXTS[0], "bradycardia", "FINDING", 0.35)]
    save_predictions(engine, version.id, {doc: (fragments, 0.3)})
    at = open_page(PAGE)
    at.selectbox(key="review_doc").set_value(doc).run()
    assert not at.exception, at.exception
    entities = at.dataframe[-1].value
    assert {("sinus", "model"), ("bradycardia", "model"), ("sinus bradycardia", "rule")} <= set(
        zip(entities["text"], entities["source"], strict=True)), entities
    assert any("Overlapping suggestions" in w.value for w in at.warning)
    button(at, "Accept report").click().run()
    assert any("overlapping suggestions need your choice" in e.value for e in at.error)
    assert db_review.list_decisions(engine, document_id=doc) == []  # nothing stored, nothing said "accepted"
    assert not any("accepted" in s.value.lower() for s in at.success)

    pick = next(s for s in at.selectbox if s.label == "Entity")
    rule = next(o for o in pick.options if "'sinus bradycardia'" in o)
    pick.set_value(pick.options.index(rule) if isinstance(pick.value, int) else rule).run()
    button(at, "Accept").click().run()
    assert not at.exception, at.exception
    assert not any("Overlapping suggestions" in w.value for w in at.warning)
    assert set(at.dataframe[-1].value["text"]) == {"sinus bradycardia", "45 bpm"}  # fragments rejected
    button(at, "Accept report").click().run()
    assert not at.exception, at.exception
    state = db_review.review_state(engine, doc, ME)
    assert state.complete and sorted(TEXTS[0][s.start:s.end] for s in state.spans) == ["45 bpm", "sinus bradycardia"]
    actions = sorted(d.action for d in db_review.list_decisions(engine, document_id=doc))
    assert actions == ["accept", "accept_all", "reject", "reject"]
    # finished: the message names this report and the page shows the next one, labelled as the next
    assert any(f"Report #{doc} reviewed (2 entities" in m for m in said(at)), said(at)
    assert at.selectbox(key="review_doc").value != doc
    assert any(f"next report after #{doc}" in c.value for c in at.caption)
