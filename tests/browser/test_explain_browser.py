"""The Explain page in a real browser: attention heatmaps render, the bertviz head and model views draw with the
scripts the app serves itself (require.js, d3, jQuery that npm ci put in static/vendor), and no request leaves the
machine."""

from __future__ import annotations

import pytest

try:
    from playwright.sync_api import Page, expect
except ImportError:  # the `browser` fixture skips these tests, saying why (and fails them when CI is set)
    Page = expect = None

pytestmark = pytest.mark.ui


def _settle(page: Page) -> None:
    page.wait_for_selector("[data-testid=stApp][data-test-connection-state=CONNECTED]", timeout=60_000)
    page.wait_for_selector("[data-testid=stApp][data-test-script-state=notRunning]", timeout=120_000)
    page.wait_for_timeout(100)


@pytest.fixture(scope="module")
def trained(app, tmp_path_factory):
    """The demo project in the app's database and a tiny BERT version trained on it."""
    from tests.factories import seed_with_version

    seed_with_version(app.db_url, tmp_path_factory.mktemp("explain-browser"))
    return app


def test_attention_and_bertviz_make_no_request_outside_the_machine(trained, page: Page, requests_seen):
    page.goto(f"{trained.url}/explain")
    expect(page.get_by_role("heading", name="Explain", level=1)).to_be_visible(timeout=60_000)
    _settle(page)
    charts = page.get_by_test_id("stPlotlyChart")
    expect(charts).to_have_count(2, timeout=60_000)  # the chosen head and the rollout
    expect(charts.first.locator(".main-svg").first).to_be_visible()

    page.get_by_test_id("stRadio").get_by_text("bertviz", exact=True).click()
    _settle(page)
    head = page.frame_locator("iframe[title='bertviz head view']")
    expect(head.locator("#vis svg").first).to_be_visible(timeout=60_000)  # drawn by d3: the scripts loaded
    expect(head.locator("#vis svg text", has_text="[CLS]").first).to_be_attached()
    expect(head.locator("#layer")).to_have_count(0)  # the page's Layer control picks the layer; no second one

    page.get_by_test_id("stRadio").get_by_text("model view", exact=True).click()
    _settle(page)
    model = page.frame_locator("iframe[title='bertviz model view']")
    expect(model.locator("#vis svg").first).to_be_visible(timeout=60_000)

    served = {u.rsplit("/", 1)[-1] for u in requests_seen.urls if "/app/static/vendor/node_modules/" in u}
    assert {"require.js", "d3.min.js", "jquery.min.js"} <= served, served
    assert requests_seen.outside() == [], requests_seen.outside()
