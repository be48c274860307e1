"""Sign-in in a real browser against a real OpenID Connect provider (issue 14): ``oidc-provider-mock`` on a loopback
port with three people, the app started with an ``[auth]`` section pointing at it (``st.login``). An unauthenticated
visit shows only the sign-in page; an annotator sees their pages and is refused a direct URL to Review; a clinician's
decision carries their subject; an admin changes a role on the Users page, audited; sign-out ends the session.
One provider and one app for the module. No request leaves the machine: the provider's own pages ask for a CDN
stylesheet, which is aborted (and is the only one)."""

from __future__ import annotations

import re
import secrets
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from tests.browser.conftest import running_app

try:
    from playwright.sync_api import Page, expect
except ImportError:  # the `browser` fixture skips these tests, saying why (and fails them when CI is set)
    Page = expect = None

pytestmark = [pytest.mark.ui,  # the provider's Authlib server calls its own deprecated JWT hooks
              pytest.mark.filterwarnings("ignore:get_jwt_config:DeprecationWarning")]

CDN = "cdn.jsdelivr.net"  # oidc-provider-mock's templates link pico.css there: aborted, never fetched
PEOPLE = {
    "adam": {"email": "adam@hospital.test", "name": "Adam Admin", "groups": ["it"]},
    "ann": {"email": "ann@hospital.test", "name": "Ann Annotator", "groups": ["labelling"]},
    "cleo": {"email": "cleo@hospital.test", "name": "Cleo Clinician", "groups": ["cardiology"]},
}


@pytest.fixture(scope="module")
def oidc() -> Iterator[str]:
    """The provider on 127.0.0.1 (its issuer URL), with the three people as predefined users."""
    import werkzeug.serving
    from oidc_provider_mock import User, app

    server = werkzeug.serving.make_server(
        "127.0.0.1", 0, app(user_claims=[User(sub=s, claims=c) for s, c in PEOPLE.items()]), threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture(scope="module")
def app(browser, oidc, tmp_path_factory):
    """The app with sign-in configured (the conftest ``page`` fixture opens it). Roles: adam is named an admin,
    the others get theirs from the ``groups`` claim; the Review page has a project to show."""
    from tests.browser.conftest import _free_port
    from tests.factories import seed_review_project

    tmp = tmp_path_factory.mktemp("signin-app")
    port = _free_port()
    secrets_file = tmp / "secrets.toml"
    secrets_file.write_text(
        "[auth]\n"
        f'redirect_uri = "http://127.0.0.1:{port}/oauth2callback"\n'
        f'cookie_secret = "{secrets.token_hex(32)}"\n'
        'client_id = "reportlens-test"\n'
        f'client_secret = "{secrets.token_hex(16)}"\n'
        f'server_metadata_url = "{oidc}/.well-known/openid-configuration"\n', encoding="utf-8")
    env = {"REPORTLENS_AUTH_SECRETS": str(secrets_file), "STREAMLIT_SECRETS_FILES": str(secrets_file),
           "REPORTLENS_ADMINS": PEOPLE["adam"]["email"], "REPORTLENS_ROLE_CLAIM": "groups",
           "REPORTLENS_ROLE_MAP": "labelling=annotator,cardiology=clinician",
           "REPORTLENS_DATA_DIR": str(tmp / "data")}
    from db.engine import make_engine
    from db.migrate import upgrade
    from services.people import sign_in

    db_url = f"sqlite:///{tmp / 'browser.db'}"
    upgrade(db_url)
    seed_review_project(db_url, tmp)
    sign_in(make_engine(db_url), {"sub": "adam", "iss": oidc, **PEOPLE["adam"]})  # the first person: an admin
    with running_app(browser, tmp, env, port=port) as started:
        yield started


@pytest.fixture(autouse=True)
def _offline(page: Page) -> None:
    page.context.route(re.compile(r"^https?://(?!127\.0\.0\.1[:/])"), lambda route: route.abort())


def _settle(page: Page) -> None:
    page.wait_for_selector("[data-testid=stApp][data-test-connection-state=CONNECTED]", timeout=60_000)
    page.wait_for_selector("[data-testid=stApp][data-test-script-state=notRunning]", timeout=60_000)
    page.wait_for_timeout(150)


def _sign_in(page: Page, app, who: str) -> None:
    page.goto(app.url)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name=who, exact=True).click()  # the provider's form: its predefined users
    expect(page.get_by_test_id("stSidebar").get_by_text(PEOPLE[who]["name"])).to_be_visible(timeout=60_000)
    _settle(page)


def _nav(page: Page) -> list[str]:
    return [t.strip() for t in page.get_by_test_id("stSidebarNav").get_by_role("link").all_inner_texts()]


def _only_the_cdn_left(requests_seen) -> None:
    outside = requests_seen.outside()
    assert all(CDN in u for u in outside), outside


def test_an_unauthenticated_visit_shows_only_the_sign_in_page(page: Page, app, requests_seen) -> None:
    for url in (app.url, f"{app.url}/review", f"{app.url}/users"):
        page.goto(url)
        expect(page.get_by_role("button", name="Sign in")).to_be_visible(timeout=60_000)
        _settle(page)
        expect(page.get_by_test_id("stSidebarNav")).to_have_count(0)
        expect(page.get_by_role("heading", name="Review")).to_have_count(0)
        expect(page.get_by_test_id("stException")).to_have_count(0)
        expect(page.get_by_text("Page not found")).to_have_count(0)
    assert not requests_seen.outside()


def test_an_annotator_sees_their_pages_and_is_refused_review(page: Page, app, requests_seen) -> None:
    _sign_in(page, app, "ann")
    nav = _nav(page)
    for title in ("Overview", "Import", "Dataset", "Queue", "Label Studio"):
        assert any(title in n for n in nav), nav
    for title in ("Train", "Review", "Models", "Users", "Audit"):
        assert not any(title in n for n in nav), nav
    page.goto(f"{app.url}/review")
    expect(page.get_by_text("You need the clinician or admin role for Review")).to_be_visible(timeout=60_000)
    _settle(page)
    expect(page.get_by_role("button", name=re.compile("^Accept"))).to_have_count(0)
    from services.people import audit_trail

    refused = audit_trail(app.engine(), person="ann", action="page_refused")
    assert refused and refused[-1].details["page"] == "review" and refused[-1].outcome == "refused"
    _only_the_cdn_left(requests_seen)


def test_a_clinicians_decision_carries_their_identity(page: Page, app) -> None:
    from db import models as m
    from db.engine import read_session

    _sign_in(page, app, "cleo")
    page.goto(f"{app.url}/review")
    expect(page.get_by_role("heading", name="Review", level=1)).to_be_visible(timeout=60_000)
    _settle(page)
    expect(page.get_by_test_id("stException")).to_have_count(0)
    # no name to type (nobody can speak for someone else): the sidebar names the signed-in subject
    expect(page.get_by_label("Reviewer")).to_have_count(0)
    expect(page.get_by_test_id("stSidebar")).to_contain_text("Decisions are recorded as cleo.")
    page.get_by_role("button", name=re.compile(r"^Accept report")).click()
    _settle(page)
    with read_session(app.engine()) as s:
        reviewers = set(s.scalars(select(m.ReviewDecision.reviewer)))
        authors = set(s.scalars(select(m.Annotation.author).where(m.Annotation.source == "review")))
    assert reviewers == {"cleo"} and authors == {"cleo"}
    from services.people import audit_trail

    rows = audit_trail(app.engine(), person="cleo", action="review_decision")
    assert rows and rows[-1].outcome == "ok" and rows[-1].actor_user_id is not None


def test_an_admin_changes_a_role_audited_then_signs_out(page: Page, app, requests_seen) -> None:
    from services.people import audit_trail, list_people

    _sign_in(page, app, "adam")
    assert "Users" in " ".join(_nav(page)) and "Audit" in " ".join(_nav(page))
    page.goto(f"{app.url}/users")
    expect(page.get_by_role("heading", name="Users", level=1)).to_be_visible(timeout=60_000)
    _settle(page)
    person = page.get_by_test_id("stSelectbox").filter(has_text="Person")
    person.click()
    page.get_by_role("option", name=re.compile("Ann Annotator")).click()
    _settle(page)
    # Ann's own role editor (its widget keys carry her id): under load the rerun for the pick can start after the
    # settle, replacing the editor a choice was made in (seen: "Save roles" stayed disabled)
    ann_id = next(p.id for p in list_people(app.engine()) if p.subject == "ann")
    roles = page.locator(f".st-key-people_roles_{ann_id}_everywhere").get_by_test_id("stMultiSelect")
    roles.click()
    page.get_by_role("option", name="researcher").click()
    page.keyboard.press("Escape")
    _settle(page)
    save = page.locator(f".st-key-people_save_{ann_id}").get_by_role("button", name="Save roles")
    expect(save).to_be_enabled(timeout=60_000)  # Python has the choice: the button knows there is a change
    save.click()
    expect(page.get_by_test_id("stAlert").filter(has_text="Roles of Ann Annotator")).to_be_visible(timeout=60_000)
    ann = next(p for p in list_people(app.engine()) if p.subject == "ann")
    assert {str(r) for r in ann.roles} == {"researcher"}  # stored; "annotator" comes from the claim at sign-in
    [granted] = audit_trail(app.engine(), action="role_granted")
    assert granted.actor == "adam" and granted.details["subject"] == "ann" and granted.details["role"] == "researcher"

    page.get_by_test_id("stSidebar").get_by_role("button", name="Sign out").click()
    page.get_by_role("button", name="End session").click()  # the provider's end-session form
    expect(page.get_by_role("button", name="Sign in")).to_be_visible(timeout=60_000)
    _settle(page)
    expect(page.get_by_test_id("stSidebarNav")).to_have_count(0)
    assert audit_trail(app.engine(), person="adam", action="sign_out")
    _only_the_cdn_left(requests_seen)
