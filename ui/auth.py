"""Who uses this app session (issue 14): single-user mode, or sign-in with OpenID Connect (``st.login``).

- **Single-user** (loopback, no ``[auth]`` section): ``local:<os user>`` acts, with every role; a small sidebar
  banner says so and shows the README section on sharing.
- **Shared** (an ``[auth]`` section): a visitor who has not signed in sees only the sign-in page. On sign-in,
  :func:`services.people.sign_in` turns ``st.user``'s claims into the session's :class:`~core.auth.Actor` (once per
  session, audited), kept in ``st.session_state`` and read again from the database on every full run (a role
  change or a deactivation counts at once). The services ask :func:`session_actor` (``set_actor_resolver``), so
  callbacks and ``st.fragment`` reruns act as that person. The sidebar names them and has **Sign out** (audited).
- **Idle expiry**: a sign-in unused for ``REPORTLENS_SESSION_IDLE_MINUTES`` (default 30) is signed out, with a
  message, and audited (``session_expired``); fragment reruns (job progress polling) do not count as activity.
- Any other address without sign-in: the app refuses to start (``services.auth.check_startup``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

import streamlit as st

from core.auth import Actor, ForbiddenError
from core.types import ReportLensError
from services.auth import (
    ENV_AUTH_SECRETS,
    REPO_ROOT,
    auth_configured,
    check_startup,
    local_actor,
    record,
    set_actor_resolver,
    set_process_actor,
)
from services.people import IdleClock, idle_minutes, refresh, sign_in

log = logging.getLogger("reportlens.ui.auth")
ACTOR_KEY = "rl_actor"  # the signed-in Actor
LOGIN_KEY = "rl_login"  # the sign-in it belongs to: (sub, iat)
REFUSED_KEY = "rl_refused"  # (sign-in, message) when sign-in was refused, so it is audited once
SHARING_SECTION = "Sharing ReportLens"  # the README section the single-user banner shows
CLOCK = IdleClock()  # process-wide: every tab of one sign-in shares its idle time


def start_session() -> str:
    """Check the start-up rule for the address Streamlit listens on (refusing with the reason and the fix, then
    stopping the script) and set who acts; returns the mode, ``"single-user"`` or ``"shared"``. In shared mode a
    visitor who is not signed in (or whose session expired, or who was deactivated) gets the sign-in page and the
    script stops there."""
    try:
        mode = check_startup(st.get_option("server.address"), auth_configured())
    except ReportLensError as exc:
        st.error(str(exc))
        st.stop()
    if mode == "single-user":
        set_actor_resolver(None)
        set_process_actor(local_actor())
        _single_user_banner()
        return mode
    set_process_actor(None)  # outside a signed-in session nobody acts
    set_actor_resolver(session_actor)
    _require_streamlit_auth()
    actor = _signed_in()
    _sidebar(actor)
    return mode


def session_actor() -> Actor | None:
    """The resolver the services ask: this session's signed-in person, ``None`` outside a script run, before
    sign-in and after the session expired."""
    from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx

    if get_script_run_ctx(suppress_warning=True) is None:
        return None
    actor, login = st.session_state.get(ACTOR_KEY), st.session_state.get(LOGIN_KEY)
    if actor is None or login is None or CLOCK.expired(login):
        return None
    return actor


# ---------------------------------------------------------------- shared mode


def _engine() -> Any:
    from ui.state import engine

    return engine()


def _require_streamlit_auth() -> None:
    """The ``[auth]`` section ReportLens found must be the one Streamlit reads (``secrets.files``)."""
    try:
        ok = "auth" in st.secrets
    except FileNotFoundError:
        ok = False
    if not ok:
        st.error(f"Sign-in is configured for ReportLens ({ENV_AUTH_SECRETS} or .streamlit/secrets.toml has an "
                 "[auth] section), but Streamlit does not read that file, so nobody could sign in. Start the app "
                 f"with `--secrets.files \"${ENV_AUTH_SECRETS}\"` (make run does) or set STREAMLIT_SECRETS_FILES to "
                 "the same path.")
        st.stop()


def _providers() -> list[str | None]:
    """``[None]`` for the ``[auth]`` section's own provider, else the names of its ``[auth.NAME]`` providers."""
    section = st.secrets["auth"]
    if "client_id" in section:
        return [None]
    return [name for name, value in section.items() if isinstance(value, Mapping) and "client_id" in value] or [None]


def _sign_in_page(note: str | None = None, warn: bool = False) -> None:
    """What a visitor who is not signed in sees, and nothing else: the app's name, why, and the sign-in button."""
    _closed_navigation("Sign in")
    st.title("ReportLens")
    st.caption("From medical report text to trustworthy extraction models, with people in the loop.")
    if note:
        (st.warning if warn else st.error)(note)
    st.write("Reports are confidential: sign in with your organisation's account to continue.")
    for provider in _providers():
        label = "Sign in" if provider is None else f"Sign in with {provider}"
        if st.button(label, type="primary", key=f"sign_in_{provider or 'default'}"):
            st.login(provider)
    st.stop()


def _nothing() -> None:
    """Every page of a visitor who is not signed in (the content is drawn by :func:`_sign_in_page`)."""


def _closed_navigation(title: str) -> None:
    """A navigation with no menu whose every URL (``/review``, a bookmark) shows the sign-in page, rather than
    Streamlit's "Page not found" or, without any ``st.navigation``, the ``pages/`` folder's own menu."""
    from ui.navigation import PAGES

    st.navigation([st.Page(_nothing, title=title, default=True)]
                  + [st.Page(_nothing, title=e.title, url_path=e.url_path, visibility="hidden")
                     for e in PAGES if not e.default], position="hidden")


def _signed_in() -> Actor:
    """The session's actor; shows the sign-in page (and stops) when there is none."""
    claims = st.user.to_dict()
    if not claims.get("is_logged_in"):
        st.session_state.pop(ACTOR_KEY, None)
        _sign_in_page()
    login = CLOCK.key(claims)
    CLOCK.minutes = idle_minutes()
    if CLOCK.expired(login):
        _expire(login)
    refused = st.session_state.get(REFUSED_KEY)
    if refused and refused[0] == login:
        _refused_page(refused[1])
    actor = st.session_state.get(ACTOR_KEY)
    try:
        if actor is None or st.session_state.get(LOGIN_KEY) != login:
            actor = sign_in(_engine(), claims)
        else:
            actor = refresh(_engine(), actor, claims)
    except (ForbiddenError, ReportLensError) as exc:
        st.session_state.pop(ACTOR_KEY, None)
        st.session_state[REFUSED_KEY] = (login, str(exc))
        _refused_page(str(exc))
    st.session_state[ACTOR_KEY], st.session_state[LOGIN_KEY] = actor, login
    CLOCK.touch(login)
    return actor


def _expire(login: tuple[str, float | None]) -> None:
    """An idle sign-in: audited once (by the session that held it), then the sign-in page with the reason."""
    actor = st.session_state.pop(ACTOR_KEY, None)
    if actor is not None:
        record("session_expired", actor=actor, engine=_engine(), details={"idle_minutes": CLOCK.minutes})
        log.info("session of %s expired after %s idle minutes", actor.subject, CLOCK.minutes)
    _sign_in_page(f"You were signed out after {CLOCK.minutes:g} minutes without activity, so that an unattended "
                  "screen does not stay open on patient reports. Sign in again to go on.", warn=True)


def _refused_page(message: str) -> None:
    _closed_navigation("Signed out")
    st.title("ReportLens")
    st.error(message)
    if st.button("Sign out"):
        st.logout()
    st.stop()


def _sidebar(actor: Actor) -> None:
    roles = ", ".join(sorted(actor.roles_in())) or "no role yet"
    st.sidebar.markdown(f"Signed in as **{_escape(actor.label)}**")
    st.sidebar.caption(f"{roles} · `{_escape(actor.subject)}`")
    if st.sidebar.button("Sign out", key="rl_sign_out"):
        record("sign_out", actor=actor, engine=_engine())
        st.session_state.pop(ACTOR_KEY, None)
        st.logout()
        st.stop()


def _escape(text: str) -> str:
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|<>~$])", r"\\\1", text)


# ---------------------------------------------------------------- single-user mode


def _single_user_banner() -> None:
    user = local_actor()
    st.sidebar.caption(f"Single-user mode: you act as `{user.subject}` with every role; the app listens on this "
                       f"machine only. To share it with a team, read README: {SHARING_SECTION}.")
    with st.sidebar.popover(f"README: {SHARING_SECTION}", width="stretch"):
        st.markdown(readme_section(SHARING_SECTION))


@st.cache_data(show_spinner=False)
def readme_section(title: str) -> str:
    """The text of the README section ``## title`` (up to the next ``## ``)."""
    try:
        text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    except OSError:
        return f"See the README, section “{title}”."
    m = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, flags=re.S | re.M)
    return m.group(1).strip() if m else f"See the README, section “{title}”."
