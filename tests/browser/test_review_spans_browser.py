"""The Review page's span view in a real browser (the real app, headless Chromium): the first pending entity is
highlighted, one key accepts it (the decision is in the database and the next entity is highlighted), a mouse
selection adds a span with the chosen label, and report text that looks like markup stays text. Decisions carry
whoever acts: single-user mode here, so the local OS user (the app runs as the same user as the tests)."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from services.auth import local_actor
from tests.factories import REVIEW_PREDICTED, REVIEW_PROJECT, seed_review_project
from tests.factories import REVIEW_TEXTS as TEXTS

try:
    from playwright.sync_api import Page, expect
except ImportError:  # the `browser` fixture skips these tests, saying why (and fails them when CI is set)
    Page = expect = None

pytestmark = pytest.mark.ui

XSS = "sinus rhythm <img src=x onerror=\"window.__xss=1\"> <b>bold</b> heart rate 60 bpm."
VIEW = ".rl-sv"
ME = local_actor().subject  # who acts in single-user mode: every test here reviews as this one person


@pytest.fixture(scope="module")
def seeded(app, tmp_path_factory):
    from core.types import ParsedTask
    from db import models as m
    from db.engine import read_session
    from db.importer import import_tasks
    from db.scores import save_predictions

    out = seed_review_project(app.db_url, tmp_path_factory.mktemp("review-spans"))
    # the mouse test gets its own copy of the least confident report, with the same stored suggestions: the tests
    # all review as the same person, so the keys test's decisions on ``ids[1]`` would be the mouse test's start.
    # Its confidence (0.95) ranks it after ids[1] and ids[2] (0.41, 0.9): the keys test's next report stays ids[2]
    import_tasks(out["engine"], REVIEW_PROJECT, [ParsedTask(text=XSS, task_id=77),
                                                 ParsedTask(text=TEXTS[0], task_id=78)])
    with read_session(out["engine"]) as s:
        out["xss"] = s.scalar(select(m.Document.id).where(m.Document.ls_task_id == 77))
        out["copy"] = s.scalar(select(m.Document.id).where(m.Document.ls_task_id == 78))
    save_predictions(out["engine"], out["version"].id, {out["copy"]: (REVIEW_PREDICTED[0], 0.95)})
    return out


def _settle(page: Page) -> None:
    page.wait_for_selector("[data-testid=stApp][data-test-connection-state=CONNECTED]", timeout=60_000)
    page.wait_for_selector("[data-testid=stApp][data-test-script-state=notRunning]", timeout=60_000)
    page.wait_for_timeout(150)


def _open(page: Page, app) -> None:
    """The Review page, decisions unlocked for the local user (no name to type: the sidebar says who records)."""
    page.goto(f"{app.url}/review")
    expect(page.get_by_role("heading", name="Review", level=1)).to_be_visible()
    _settle(page)
    expect(page.get_by_label("Reviewer")).to_have_count(0)
    expect(page.get_by_test_id("stSidebar")).to_contain_text(f"Decisions are recorded as {ME}.")
    expect(page.get_by_test_id("stAlert").filter(has_text="Nobody is signed in")).to_have_count(0)


def _pick(page: Page, doc: int) -> None:
    """Open report ``doc`` with the Report picker (the worklist order changes as the tests review)."""
    page.get_by_role("combobox", name="Report").click()
    page.get_by_role("option", name=re.compile(rf"^#{doc} ")).click()
    _settle(page)
    # a report without stored predictions is predicted on first opening (the model loads): allow for it
    expect(page.locator(VIEW)).to_have_attribute("data-doc", str(doc), timeout=60_000)
    _settle(page)


def _current(page: Page):
    return page.locator(f"{VIEW}-text mark.rl-sv-current")


def test_one_key_accepts_the_highlighted_entity_and_highlights_the_next(page: Page, app, seeded, requests_seen):
    from db import review as db_review

    doc, text = seeded["ids"][1], TEXTS[0]
    _open(page, app)
    view = page.locator(VIEW)
    expect(view).to_have_attribute("data-doc", str(doc))
    marks = page.locator(f"{VIEW}-text mark")
    expect(marks).to_have_count(3)
    expect(marks.filter(has_text="pleural effusion")).to_contain_text("⚠")  # low confidence (0.58 < 0.6)
    expect(_current(page)).to_contain_text("sinus bradycardia")
    view.focus()
    page.keyboard.press("a")
    expect(view).to_have_attribute("data-seq", "1", timeout=30_000)  # Python answered the event
    expect(_current(page)).to_contain_text("45 bpm")
    expect(marks.filter(has_text="sinus bradycardia")).to_have_class(re.compile("rl-sv-accepted"))
    decisions = db_review.list_decisions(app.engine(), document_id=doc)
    assert [(d.action, d.reviewer, text[d.before["start"]:d.before["end"]]) for d in decisions] == [
        ("accept", ME, "sinus bradycardia")]
    # X rejects the highlighted one ("45 bpm"): struck through, and the highlight moves on
    page.keyboard.press("x")
    expect(view).to_have_attribute("data-seq", "2", timeout=30_000)
    expect(_current(page)).to_contain_text("pleural effusion")
    assert [d.action for d in db_review.list_decisions(app.engine(), document_id=doc)] == ["reject", "accept"]
    # 1 relabels the highlighted one as the first label (FINDING): nothing is left pending, so the report is
    # finished and the page moves on to the next report, saying so
    page.keyboard.press("1")
    expect(page.get_by_test_id("stAlert").filter(has_text=f"Report #{doc} reviewed")).to_be_visible(timeout=60_000)
    state = db_review.review_state(app.engine(), doc, ME)
    assert state.complete and [(text[s.start:s.end], s.label) for s in state.spans] == [
        ("sinus bradycardia", "RHYTHM"), ("pleural effusion", "FINDING")]
    nxt = int(page.locator(VIEW).get_attribute("data-doc"))
    assert nxt != doc and nxt != seeded["copy"]  # the mouse test's copy is left alone
    # the page's own shortcut still works from inside the view: Shift+A accepts the (next) report
    page.locator(VIEW).focus()
    page.keyboard.press("Shift+A")
    expect(page.get_by_test_id("stAlert").filter(has_text=f"Report #{nxt} reviewed")).to_be_visible(timeout=60_000)
    assert db_review.review_state(app.engine(), nxt, ME).complete
    expect(page.get_by_test_id("stException")).to_have_count(0)
    assert not requests_seen.outside(), requests_seen.outside()


def test_a_mouse_selection_adds_a_span_with_the_chosen_label(page: Page, app, seeded):
    from db import review as db_review

    doc, text = seeded["copy"], TEXTS[0]  # a fresh copy of the keys test's report: nothing decided on it yet
    _open(page, app)
    _pick(page, doc)
    view = page.locator(VIEW)
    page.locator(".rl-sv-chip", has_text="HR").click()  # new spans get HR
    expect(page.locator(".rl-sv-chip.rl-sv-active")).to_contain_text("HR")
    # drag from the start of "heart" to the end of "rate" (real mouse events over the text)
    box = page.evaluate("""([from, to]) => {
        const root = document.querySelector('.rl-sv-text');
        const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
        let pos = 0, node, start = null, end = null;
        while ((node = walker.nextNode())) {
            if (node.parentElement.closest('.rl-sv-tag')) continue;
            const n = node.textContent.length;
            if (start === null && from < pos + n) start = [node, from - pos];
            if (end === null && to <= pos + n) end = [node, to - pos];
            pos += n;
        }
        const rect = (nd, off) => { const r = document.createRange(); r.setStart(nd, off); r.setEnd(nd, off + 1);
                                    return r.getBoundingClientRect(); };
        const a = rect(start[0], start[1]), b = rect(end[0], end[1] - 1);
        return {x1: a.left + 1, y1: a.top + a.height / 2, x2: b.right - 1, y2: b.top + b.height / 2};
    }""", [text.index("heart"), text.index("heart") + len("heart rate")])
    page.mouse.move(box["x1"], box["y1"])
    page.mouse.down()
    page.mouse.move(box["x2"], box["y2"], steps=5)
    page.mouse.up()
    expect(view).to_have_attribute("data-seq", "1", timeout=30_000)
    expect(page.locator(f"{VIEW}-text mark", has_text="heart rate")).to_have_class(re.compile("rl-sv-corrected"))
    state = db_review.review_state(app.engine(), doc, ME)
    assert [(text[s.start:s.end], s.label) for s in state.spans] == [("heart rate", "HR")]
    assert not state.complete  # the three suggestions still wait
    (decision,) = db_review.list_decisions(app.engine(), document_id=doc)
    assert (decision.action, decision.reviewer) == ("add", ME)
    # a click picks an entity; Shift+← widens its start by a word, Shift+Alt+→ narrows it back, Shift+← again,
    # Enter saves the new boundaries (snapped to tokens by Python)
    page.locator(f"{VIEW}-text mark", has_text="pleural effusion").click()
    expect(_current(page)).to_contain_text("pleural effusion")
    page.keyboard.press("Shift+ArrowLeft")
    expect(_current(page)).to_contain_text("a pleural effusion")
    page.keyboard.press("Shift+Alt+ArrowRight")
    expect(_current(page)).not_to_contain_text("a pleural")
    page.keyboard.press("Shift+ArrowLeft")
    page.keyboard.press("Enter")
    expect(view).to_have_attribute("data-seq", "2", timeout=30_000)
    last, first = db_review.list_decisions(app.engine(), document_id=doc)  # newest first
    assert first.action == "add" and last.reviewer == ME
    assert last.action == "adjust" and text[last.after["start"]:last.after["end"]] == "a pleural effusion"


def test_report_text_that_looks_like_markup_is_shown_as_text(page: Page, app, seeded):
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    _open(page, app)
    _pick(page, seeded["xss"])
    # the text, read back from the page without the entity tags, is the report character for character
    shown = page.evaluate("""() => {
        const walker = document.createTreeWalker(document.querySelector('.rl-sv-text'), NodeFilter.SHOW_TEXT);
        let out = '', node;
        while ((node = walker.nextNode())) if (!node.parentElement.closest('.rl-sv-tag')) out += node.textContent;
        return out;
    }""")
    assert shown == XSS
    assert page.locator(f"{VIEW}-text img, {VIEW}-text b, {VIEW} script").count() == 0
    assert page.evaluate("window.__xss") is None and not dialogs
