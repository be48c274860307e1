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
from tests.factories import REVIEW_PROJECT as PROJECT
from tests.factories import REVIEW_TEXTS as TEXTS
from tests.factories import seed_review_project

pytestmark = pytest.mark.ui

PAGE = "pages/review.py"


def button(at: AppTest, label: str):
    return next(b for b in at.button if b.label.startswith(label))


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
    at = open_page(PAGE, reviewer_name="dr. lee")
    assert not at.exception, at.exception
    assert at.sidebar.text_input(key="review_reviewer").value == "dr. lee"
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
    bodies = " ".join(h.proto.body for h in at.get("html"))
    assert "pleural effusion" in bodies and "RHYTHM 0.58 ⚠" in bodies and "low confidence ⚠" in bodies
    assert not any("Reviewer" in w.value for w in at.warning)  # a name is set: decisions are unlocked
    assert not button(at, "Accept").disabled


def test_reviewer_accepts_relabels_adds_and_accepts_the_report(db, tmp_path, open_page):
    seeded = seed_review_project(db, tmp_path)
    engine, ids, version = seeded["engine"], seeded["ids"], seeded["version"]
    at = open_page(PAGE)
    assert not at.exception, at.exception
    assert next(mt for mt in at.metric if mt.label == "Reviewed").value == f"0 / {len(ids)}"
    assert any("Reviewer" in w.value for w in at.warning)  # no name yet: decisions are locked
    assert button(at, "Accept").disabled

    at.sidebar.text_input(key="review_reviewer").input("dr. lee").run()
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
    state = db_review.review_state(engine, ids[1], "dr. lee")
    assert not state.complete  # "45 bpm" is still pending
    button(at, "Accept report").click().run()
    assert not at.exception, at.exception

    state = db_review.review_state(engine, ids[1], "dr. lee")
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
    at.sidebar.text_input(key="review_reviewer").input("dr. lee").run()
    at.selectbox(key="review_doc").set_value(ids[2]).run()
    assert not any("anna" in w.value for w in at.warning)
    assert any("Already annotated by anna" in i.value for i in at.info)
    button(at, "Accept report").click().run()  # accepts only "atrial fibrillation": anna also labeled "nodule"
    assert not at.exception, at.exception
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
    bodies = " ".join(h.proto.body for h in at.get("html"))
    # the model may cut the text into marks anywhere; the markup of the report itself never comes through
    assert "<script" not in bodies and "<img" not in bodies and "&lt;" in bodies and "&gt;" in bodies
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


def test_report_with_nothing_suggested_can_be_accepted_as_empty(db, tmp_path, open_page):
    seeded = seed_review_project(db, tmp_path)
    engine, ids = seeded["engine"], seeded["ids"]
    at = open_page(PAGE)
    at.sidebar.text_input(key="review_reviewer").input("dr. lee").run()
    at.selectbox(key="review_doc").set_value(ids[3]).run()  # "normal ecg.": no model entity, no rule fires
    assert not at.exception, at.exception
    assert any("Nothing was suggested" in c.value for c in at.caption)
    button(at, "Accept report").click().run()
    state = db_review.review_state(engine, ids[3], "dr. lee")
    assert state.complete and state.spans == ()
    assert next(mt for mt in at.metric if mt.label == "Reviewed").value == f"1 / {len(ids)}"
