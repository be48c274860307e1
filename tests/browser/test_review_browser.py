"""The real app in a real browser: a clinician opens the Review page, accepts one suggested entity with the keyboard
shortcut, corrects another one's boundaries (snapped to tokens), relabels a third (which finishes the report: the page
says so and moves on), and the SQLite database holds the decisions and the review annotation; no request leaves the
machine."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from services.auth import local_actor
from tests.factories import REVIEW_TEXTS as TEXTS
from tests.factories import seed_review_project

try:
    from playwright.sync_api import Page, expect
except ImportError:  # the `browser` fixture skips these tests, saying why (and fails them when CI is set)
    Page = expect = None

pytestmark = pytest.mark.ui

ME = local_actor().subject  # who acts in single-user mode (the app runs as this OS user): decisions carry it


def _settle(page: Page) -> None:
    page.wait_for_selector("[data-testid=stApp][data-test-connection-state=CONNECTED]", timeout=60_000)
    page.wait_for_selector("[data-testid=stApp][data-test-script-state=notRunning]", timeout=60_000)
    page.wait_for_timeout(150)


def _button(page: Page, name: str):
    return page.get_by_role("button", name=re.compile(rf"^{re.escape(name)}\b"))


def _flash(page: Page, text: str) -> None:
    expect(page.get_by_test_id("stAlert").filter(has_text=text)).to_be_visible(timeout=60_000)
    _settle(page)


def test_review_accept_and_correct_entities_lands_in_the_database(page: Page, app, tmp_path, requests_seen):
    from db import models as m
    from db import review as db_review
    from db.engine import read_session

    seeded = seed_review_project(app.db_url, tmp_path)
    doc = seeded["ids"][1]
    text = TEXTS[0]
    page.goto(f"{app.url}/review")
    expect(page.get_by_role("heading", name="Review", level=1)).to_be_visible()
    _settle(page)
    expect(page.get_by_test_id("stException")).to_have_count(0)
    # no name to type: the sidebar says whose decisions these are (the local user, single-user mode)
    expect(page.get_by_label("Reviewer")).to_have_count(0)
    expect(page.get_by_test_id("stSidebar")).to_contain_text(f"Decisions are recorded as {ME}.")
    # the least confident report comes first; its text is shown with the suggestions highlighted
    marks = page.locator("mark")
    expect(marks).to_have_count(3)  # sinus bradycardia, 45 bpm, pleural effusion
    expect(marks.filter(has_text="sinus bradycardia")).to_be_visible()
    # low confidence stands out (0.58 < the 0.6 threshold): flagged and coloured
    expect(marks.filter(has_text="pleural effusion")).to_contain_text("⚠")
    expect(marks.filter(has_text="sinus bradycardia")).not_to_contain_text("⚠")

    # accept the highlighted suggestion ("sinus bradycardia") with the span view's key
    # someone acts: decisions are unlocked
    expect(page.get_by_test_id("stAlert").filter(has_text="Nobody is signed in")).to_have_count(0)
    _settle(page)
    page.locator(".rl-sv").focus()  # the span view's keys work while it has the focus
    page.keyboard.press("a")
    expect(page.locator(".rl-sv-status")).to_contain_text("Accepted RHYTHM", timeout=60_000)
    _settle(page)

    # the focus moved to "45 bpm": widen it to "heart rate 45 bpm" by its start offset in the offsets editor
    # (the accessible fallback), snapped to tokens
    page.get_by_text("Edit by offsets").click()
    start = page.get_by_label("Start").first
    start.fill(str(text.index("heart") + 2))  # inside "heart": snaps back to the word's start
    start.press("Enter")
    _settle(page)
    expect(page.get_by_text("“heart rate 45 bpm”")).to_be_visible()
    _button(page, "Change boundaries").click()
    _flash(page, "Boundaries of HR changed")

    # relabel "pleural effusion" (suggested as RHYTHM) as FINDING
    expect(page.get_by_role("combobox", name="Entity")).to_have_value(re.compile("pleural"))
    box = page.get_by_role("combobox", name="New label")
    box.click()
    page.get_by_role("option", name="FINDING", exact=True).click()
    _settle(page)
    _button(page, "Relabel").click()
    _flash(page, "as FINDING")
    expect(page.get_by_test_id("stException")).to_have_count(0)
    # that decision finished the report: the message names it and the page has moved on to the next report
    done = page.get_by_test_id("stAlert").filter(has_text=f"Report #{doc} reviewed (3 entities")
    expect(done).to_contain_text("Next report below")
    expect(_button(page, f"Back to report #{doc}")).to_be_visible()
    expect(page.get_by_text(f"next report after #{doc}")).to_be_visible()

    # what the database holds
    state = db_review.review_state(app.engine(), doc, ME)
    assert state.complete, state  # nothing pending any more: the review is training data
    assert sorted((text[s.start:s.end], s.label) for s in state.spans) == [
        ("heart rate 45 bpm", "HR"), ("pleural effusion", "FINDING"), ("sinus bradycardia", "RHYTHM")]
    decisions = list(reversed(db_review.list_decisions(app.engine(), document_id=doc)))
    assert [d.action for d in decisions] == ["accept", "adjust", "relabel"]
    assert all(d.reviewer == ME and d.model_version_id == seeded["version"].id for d in decisions)
    assert decisions[1].before["label"] == "HR" and text[decisions[1].after["start"]:decisions[1].after["end"]] == (
        "heart rate 45 bpm")
    with read_session(app.engine()) as s:
        rows = s.execute(select(m.Annotation.source, m.Annotation.author, m.Annotation.cancelled).where(
            m.Annotation.document_id == doc)).all()
    assert rows == [("review", ME, False)]
    expect(page.get_by_test_id("stMetric").filter(has_text="Reviewed")).to_contain_text("1 /")
    assert not requests_seen.outside(), requests_seen.outside()
