"""The real app in a real browser: upload an export on the Import page, see what was stored, read the database;
a malformed file stores nothing; report text is shown as text (never run as HTML); no request leaves the machine."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

try:
    from playwright.sync_api import Page, expect
except ImportError:  # the `browser` fixture skips these tests, saying why (and fails them when CI is set)
    Page = expect = None

pytestmark = pytest.mark.ui

XSS_TEXT = ('ECG: sinus rhythm. <img src=x onerror="window.__xss=1"> <script>window.__xss=2</script> '
            "QT interval normal.")


def _labelstudio_export(tmp_path: Path) -> Path:
    """3 tasks: a clean span, a span whose offsets drift by one character (re-anchored), an empty text (skipped)."""
    drift = "Findings: QT prolongation."
    qt = drift.index("QT prolongation")

    def task(tid: int, text: str, start: int, end: int, wanted: str, label: str) -> dict:
        region = {"id": f"r{tid}", "from_name": "label", "to_name": "text", "type": "labels",
                  "value": {"start": start, "end": end, "text": wanted, "labels": [label]}}
        return {"id": tid, "data": {"text": text}, "annotations": [{"id": 100 + tid, "completed_by": 1,
                                                                      "result": [region]}]}

    tasks = [
        task(1, "Sinus rhythm, rate 72 bpm.", 0, 12, "Sinus rhythm", "Rhythm"),
        task(2, drift, qt + 1, qt + 1 + len("QT prolongation"), "QT prolongation", "Finding"),
        {"id": 3, "data": {"text": ""}, "annotations": []},
    ]
    path = tmp_path / "ecg-export.json"
    path.write_text(json.dumps(tasks), encoding="utf-8")
    return path


# ---------------------------------------------------------------- helpers


def _settle(page: Page) -> None:
    """Wait until the script run that the last action started has finished (Streamlit marks it on stApp)."""
    page.wait_for_selector("[data-testid=stApp][data-test-connection-state=CONNECTED]", timeout=60_000)
    page.wait_for_selector("[data-testid=stApp][data-test-script-state=notRunning]", timeout=60_000)
    page.wait_for_timeout(100)


def _open(page: Page, app, path: str, title: str) -> None:
    page.goto(f"{app.url}/{path}")
    expect(page.get_by_role("heading", name=title, level=1)).to_be_visible()
    _settle(page)


def _choose_new_project(page: Page, name: str) -> None:
    radio = page.get_by_role("radio", name="New project")
    if radio.is_enabled() and not radio.is_checked():  # the page defaults to "Existing project" once one exists
        page.get_by_test_id("stRadio").get_by_text("New project", exact=True).click()
        _settle(page)
    box = page.get_by_label("New project name")
    box.fill(name)
    box.press("Enter")  # commits the value (a rerun)
    _settle(page)


def _select(page: Page, combobox, option: str) -> None:
    """Pick ``option`` in a Streamlit select box (a combobox whose value is the selected option)."""
    if combobox.input_value() != option:
        combobox.click()
        page.get_by_role("option", name=option, exact=True).click()
        _settle(page)
    expect(combobox).to_have_value(option)


def _choose_existing_project(page: Page, name: str) -> None:
    """A new tab has chosen no project, so the page asks (New project) instead of importing into the first one."""
    radio = page.get_by_role("radio", name="Existing project")
    if not radio.is_checked():
        page.get_by_test_id("stRadio").get_by_text("Existing project", exact=True).click()
        _settle(page)
    expect(radio).to_be_checked()
    _select(page, page.get_by_role("combobox", name="Existing project"), name)


def _upload_and_import(page: Page, path: Path) -> None:
    page.locator("input[type=file]").first.set_input_files(path)  # the export uploader (the 2nd is the XML config)
    expect(page.get_by_role("button", name=f"Remove {path.name}")).to_be_visible(timeout=30_000)  # uploaded
    _settle(page)
    button = page.get_by_role("button", name="Import", exact=True)
    expect(button).to_be_enabled()
    button.click()


def _metrics(page: Page) -> dict[str, str]:
    metrics = page.get_by_test_id("stMetric")
    expect(metrics).to_have_count(6)
    return {m.get_by_test_id("stMetricLabel").inner_text().strip():
            m.get_by_test_id("stMetricValue").inner_text().strip() for m in metrics.all()}


def _success(page: Page, file_name: str, project: str):
    ok = page.get_by_test_id("stAlert").filter(has_text=f"Imported {file_name} into {project}")
    expect(ok).to_be_visible(timeout=60_000)
    return ok


def _screenshot(page: Page, path: Path) -> None:
    """The whole page: Streamlit scrolls inside its main block, so grow the viewport to the content first."""
    height = page.evaluate("() => document.querySelector('[data-testid=stMain]').scrollHeight")
    page.set_viewport_size({"width": 1400, "height": max(1000, min(int(height) + 100, 6000))})
    page.wait_for_timeout(300)  # the canvas tables redraw
    page.screenshot(path=path)


def _counts(app) -> dict[str, int]:
    from db.repository import list_projects

    return {p.name: p.n_documents for p in list_projects(app.engine())}


def _no_exception(page: Page) -> None:
    expect(page.get_by_test_id("stException")).to_have_count(0)


# ---------------------------------------------------------------- tests


def test_upload_stores_the_export_and_lists_the_issues(page: Page, app, tmp_path, requests_seen):
    from db.repository import import_history

    export = _labelstudio_export(tmp_path)
    project = "ECG browser import"
    _open(page, app, "import", "Import")
    _choose_new_project(page, project)
    _upload_and_import(page, export)

    _success(page, export.name, project)
    _no_exception(page)
    metrics = _metrics(page)
    assert metrics["Added"] == "2" and metrics["Updated"] == "0" and metrics["Spans"] == "2", metrics
    expect(page.get_by_role("heading", name="Issues (1 skipped, 1 repaired or warned)")).to_be_visible()
    _screenshot(page, tmp_path / "import-first.png")

    # the issues table is a canvas: read it through its CSV download
    with page.expect_download() as dl:
        page.get_by_role("button", name="Download issues (CSV)").click()
    rows = list(csv.DictReader(dl.value.path().open(encoding="utf-8")))
    codes = {r["code"]: r for r in rows}
    assert {"empty_text", "offset_repaired"} <= set(codes), rows
    assert codes["empty_text"]["level"] == "error" and codes["empty_text"]["task"] == "Task 3"
    assert codes["offset_repaired"]["task"] == "Task 2" and "re-anchored" in codes["offset_repaired"]["message"]

    # what the database holds
    assert _counts(app)[project] == 2
    (run,) = import_history(app.engine(), project)
    assert run.status == "ok" and run.summary["documents_added"] == 2

    # the same file again, in a new session, into the now existing project: nothing duplicated
    again = page.context.new_page()
    _open(again, app, "import", "Import")
    expect(again.get_by_role("radio", name="New project")).to_be_checked()  # a new tab never targets a project it
    # did not choose
    _choose_existing_project(again, project)
    _upload_and_import(again, export)
    _success(again, export.name, project)
    _no_exception(again)
    metrics = _metrics(again)
    assert metrics["Added"] == "0", metrics
    assert int(metrics["Unchanged"]) + int(metrics["Updated"]) == 2, metrics
    assert _counts(app)[project] == 2
    assert [r.status for r in import_history(app.engine(), project)] == ["ok", "ok"]
    expect(again.get_by_role("heading", name=f"Import history of {project}")).to_be_visible()
    _screenshot(again, tmp_path / "import-again.png")

    assert not requests_seen.outside(), requests_seen.outside()


def test_malformed_json_stores_nothing_and_says_why(page: Page, app, tmp_path, requests_seen):
    bad = tmp_path / "broken-export.json"
    bad.write_text('[{"data": {"text": "x"}', encoding="utf-8")
    before = _counts(app)
    _open(page, app, "import", "Import")
    _choose_new_project(page, "Broken upload")
    _upload_and_import(page, bad)

    error = page.get_by_test_id("stAlert").filter(has_text="Nothing was imported")
    expect(error).to_be_visible(timeout=60_000)
    message = error.get_by_test_id("stMarkdownContainer").inner_text().strip()
    assert message.startswith("Nothing was imported"), message
    assert "not valid JSON" in message and "broken-export.json" in message, message
    _no_exception(page)
    expect(page.get_by_test_id("stMetric")).to_have_count(0)
    assert _counts(app) == before  # no project created, no document stored
    assert not requests_seen.outside(), requests_seen.outside()


def test_report_text_is_shown_as_text_never_run(page: Page, app, tmp_path, requests_seen):
    from services.imports import import_file

    project = "XSS check"
    start = XSS_TEXT.index("<img")
    end = XSS_TEXT.index("</script>") + len("</script>")
    export = tmp_path / "xss.json"
    export.write_text(json.dumps([{"id": 1, "data": {"text": XSS_TEXT}, "annotations": [{"id": 1, "result": [
        {"id": "x", "from_name": "label", "to_name": "text", "type": "labels",
         "value": {"start": start, "end": end, "text": XSS_TEXT[start:end], "labels": ["<b>Tag</b>"]}}]}]}]),
        encoding="utf-8")
    import_file(app.engine(), export, project)

    _open(page, app, "dataset", "Dataset")
    _select(page, page.get_by_test_id("stSidebar").get_by_role("combobox", name="Project"), project)
    expect(page.get_by_role("heading", name="Document #")).to_be_visible()
    _no_exception(page)

    shown = page.get_by_test_id("stHtml").filter(has_text="<img src=x")
    expect(shown).to_be_visible()
    expect(shown).to_contain_text('<script>window.__xss=2</script>')
    expect(page.get_by_test_id("stHtml").locator("mark")).to_contain_text("<b>Tag</b>")
    page.wait_for_timeout(300)  # an injected <img onerror> would have fired by now
    assert page.evaluate("window.__xss") is None
    assert page.locator('img[src="x"]').count() == 0
    _screenshot(page, tmp_path / "dataset-xss.png")
    assert not requests_seen.outside(), requests_seen.outside()


def test_no_request_leaves_the_machine(page: Page, app, tmp_path, requests_seen):
    from services.imports import import_file

    import_file(app.engine(), _labelstudio_export(tmp_path), "Network check")
    _open(page, app, "", "ReportLens")
    for title in ("Import", "Dataset"):  # through the sidebar, as users go
        page.get_by_test_id("stSidebarNav").get_by_role("link", name=title).click()
        expect(page.get_by_role("heading", name=title, level=1)).to_be_visible()
        _settle(page)
    expect(page.get_by_test_id("stPlotlyChart")).to_be_visible()  # the chart's scripts and fonts are local too
    page.wait_for_load_state("networkidle")
    _no_exception(page)
    assert any("/_stcore/stream" in u for u in requests_seen.urls), requests_seen.urls  # the websocket was seen
    assert len(requests_seen.urls) > 10
    assert not requests_seen.outside(), requests_seen.outside()
