"""The app in shared mode (an ``[auth]`` section, ``st.user`` seeded by AppTest): the sign-in page for a visitor,
navigation filtered by role, a direct switch to a refused page, the Users page (grant, the last admin's refusal,
deactivate) and the Audit page (filters, CSV), idle expiry."""

from __future__ import annotations

import time

import pytest

from services import auth

SECRETS = '[auth]\nredirect_uri = "http://127.0.0.1:8501/oauth2callback"\ncookie_secret = "x"\nclient_id = "c"\n' \
          'client_secret = "s"\nserver_metadata_url = "http://127.0.0.1:9/.well-known/openid-configuration"\n'


@pytest.fixture
def shared(tmp_path, monkeypatch, db):
    """Sign-in configured; ``open_as(sub, **claims)`` runs the app signed in as that person (``None``: nobody)."""
    from streamlit.testing.v1 import AppTest

    from tests.ui.conftest import ROOT

    path = tmp_path / "secrets.toml"
    path.write_text(SECRETS, encoding="utf-8")
    monkeypatch.setenv(auth.ENV_AUTH_SECRETS, str(path))
    monkeypatch.setenv("REPORTLENS_ROLE_CLAIM", "groups")
    monkeypatch.setenv("REPORTLENS_ROLE_MAP", "lab=annotator,cardio=clinician,ml=researcher")

    def open_as(sub: str | None, page: str | None = None, iat: float | None = None, rl_actor=None, rl_login=None,
                **claims) -> AppTest:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
        if rl_actor is not None:  # the state a session kept from its earlier runs
            at.session_state["rl_actor"], at.session_state["rl_login"] = rl_actor, rl_login
        at.secrets["auth"] = {"client_id": "c"}
        at.user = ({"is_logged_in": True, "sub": sub, "iss": "http://idp", "iat": iat or time.time(),
                    "email": f"{sub}@h.test", "name": sub.title(), **claims} if sub else {"is_logged_in": False})
        at.run()
        if page is not None:
            at.switch_page(page).run()
        return at

    return open_as


def test_a_visitor_sees_only_the_sign_in_page(shared) -> None:
    at = shared(None)
    assert not at.exception
    assert [b.label for b in at.button] == ["Sign in"] and at.title[0].value == "ReportLens"
    assert auth.current_actor() is None


def test_navigation_lists_only_the_pages_of_the_roles(shared) -> None:
    from core.auth import Actor, Role
    from ui.navigation import PAGES, visible_pages

    shared("root")  # the first person to sign in: admin
    at = shared("ann", groups=["lab"])
    assert not at.exception
    assert "Signed in as" in at.sidebar.markdown[0].value and "Ann" in at.sidebar.markdown[0].value
    assert at.session_state["rl_actor"].subject == "ann" and auth.current_actor() is None  # outside a run: nobody
    ann = Actor("ann", roles={Role.ANNOTATOR})
    assert [e.title for e in visible_pages(ann)] == ["Overview", "Import", "Dataset", "Queue", "Label Studio"]
    assert [e.title for e in visible_pages(Actor("r", roles={Role.RESEARCHER}))] == [
        "Overview", "Train", "Models", "Explain", "Audit"]
    assert visible_pages(Actor("x", roles=set(Role))) == PAGES
    assert visible_pages(Actor("p", project_roles={3: {Role.CLINICIAN}}))[-1].title == "Review"  # one project's


def _refused_page(url_path: str, roles: tuple[str, ...]) -> None:
    """What app.py does with the page st.navigation chose (AppTest's switch_page runs a page file directly)."""
    from core.auth import Actor
    from ui import navigation

    class Chosen:
        def run(self) -> None:
            raise AssertionError("a refused page must not run")

    Chosen.url_path = url_path
    navigation.run(Chosen(), Actor("ann", display_name="Ann", roles=set(roles)))


@pytest.mark.parametrize(("url_path", "roles", "says"), [
    ("train", ("annotator",), "You need the researcher or admin role for Train; you hold annotator"),
    ("users", ("researcher", "clinician"), "You need the admin role for Users; you hold clinician, researcher"),
    ("", (), "hold no role yet"),
])
def test_a_refused_page_says_which_role_it_needs(db, url_path, roles, says) -> None:
    from streamlit.testing.v1 import AppTest

    from db.audit import events as audit_trail  # the db layer: after a shared-mode run nobody acts here
    from db.engine import make_engine

    at = AppTest.from_function(_refused_page, args=(url_path, roles), default_timeout=60).run()
    assert not at.exception
    assert says in at.error[0].value and "ask an admin" in at.error[0].value.lower()
    [row] = audit_trail(make_engine(db), action="page_refused")
    assert row.actor == "ann" and row.outcome == "refused" and row.details["page"] == (url_path or "overview")


def test_users_page_grants_refuses_the_last_admin_and_deactivates(shared, db) -> None:
    from db.audit import events as audit_trail  # the db layer: after a shared-mode run nobody acts here
    from db.engine import make_engine
    from db.users import list_users as list_people

    shared("root")
    shared("ann", groups=["lab"])
    at = shared("root", "pages/users.py")
    assert not at.exception and at.title[0].value == "Users"
    assert len(at.dataframe[0].value) == 2
    at.selectbox(key="people_pick").set_value(1).run()  # ann
    at.multiselect(key="people_roles_2_everywhere").set_value(["clinician"]).run()
    at.button(key="people_save_2").click().run()
    assert not at.exception and "Roles of Ann everywhere: clinician" in at.success[0].value
    engine = make_engine(db)
    [granted] = audit_trail(engine, action="role_granted")
    assert granted.actor == "root" and granted.details["subject"] == "ann"
    # the last admin cannot drop the role: the service's message is shown
    at.selectbox(key="people_pick").set_value(0).run()
    at.multiselect(key="people_roles_1_everywhere").set_value([]).run()
    at.button(key="people_save_1").click().run()
    assert "last admin" in at.error[0].value
    at.selectbox(key="people_pick").set_value(1).run()
    at.button(key="people_off_2").click().run()
    assert not next(p for p in list_people(engine) if p.subject == "ann").active
    refused = shared("ann", groups=["lab"])  # a deactivated person cannot sign in
    assert "deactivated" in refused.error[0].value and [b.label for b in refused.button] == ["Sign out"]


def test_audit_page_filters_and_downloads_csv(shared, db) -> None:
    shared("root")
    shared("rita", groups=["ml"])
    at = shared("rita", "pages/audit.py", groups=["ml"])  # a researcher reads the trail
    assert not at.exception and at.title[0].value == "Audit"
    frame = at.dataframe[0].value
    assert {"sign_in"} <= set(frame["action"]) and "text" not in frame.columns
    at.selectbox(key="audit_person").set_value("root").run()
    assert set(at.dataframe[0].value["actor"]) == {"root"}
    at.selectbox(key="audit_outcome").set_value("refused").run()
    assert at.info and "No audit rows" in at.info[0].value


def test_audit_csv_cells_are_spreadsheet_safe() -> None:
    from datetime import UTC, datetime

    from db.audit import AuditRow
    from ui.people import audit_csv

    row = AuditRow(1, datetime(2026, 1, 2, tzinfo=UTC), "=HYPERLINK(\"x\")", None, "sign_in", "ok", None, None,
                   None, "", None, {"n": 1})
    text = audit_csv([row], {}).decode()
    assert text.splitlines()[0].startswith("at,actor,action") and "'=HYPERLINK" in text


def test_an_idle_session_is_signed_out_with_a_message(shared, db, monkeypatch) -> None:
    from db.audit import events as audit_trail  # the db layer: after a shared-mode run nobody acts here
    from db.engine import make_engine

    monkeypatch.setenv("REPORTLENS_SESSION_IDLE_MINUTES", "1")
    at = shared("root", iat=time.time() - 600)  # a cookie from before this process: idle since issued
    assert not at.exception
    assert at.warning and "signed out after 1 minutes without activity" in at.warning[0].value
    assert [b.label for b in at.button] == ["Sign in"] and "rl_actor" not in at.session_state
    assert not audit_trail(make_engine(db), action="session_expired")  # this session never held it


def test_a_session_that_goes_idle_is_signed_out_and_audited(shared, db, monkeypatch) -> None:
    from db.audit import events as audit_trail  # the db layer: after a shared-mode run nobody acts here
    from db.engine import make_engine
    from ui.auth import CLOCK

    monkeypatch.setenv("REPORTLENS_SESSION_IDLE_MINUTES", "5")
    iat = time.time()
    at = shared("root", iat=iat)
    assert not at.exception and at.session_state["rl_actor"].subject == "root"
    login = at.session_state["rl_login"]
    CLOCK._last[login] = time.time() - 301  # five minutes and a second without a full run
    # AppTest reruns a page file without app.py: the resolver alone refuses (nobody acts in an expired session)
    at.run()
    assert at.exception and "Nobody signed in" in at.exception[0].value
    # the next full run of that session (a click, a reload) says why and signs out
    again = shared("root", iat=iat, rl_actor=at.session_state["rl_actor"], rl_login=login)
    assert not again.exception
    assert "signed out after 5 minutes" in again.warning[0].value and "rl_actor" not in again.session_state
    [row] = audit_trail(make_engine(db), action="session_expired")
    assert row.actor == "root" and row.details["idle_minutes"] == 5
