"""People, roles and the audit trail as the pages and the CLI ask for them (issue 14).

``sign_in`` turns an OpenID Connect identity (``st.user``'s claims) into the :class:`~core.auth.Actor` that acts for
that session: the ``users`` row (created at the first sign-in; the first person, and those in
``REPORTLENS_ADMINS``, become admins), its roles from the database plus those mapped from a claim
(``REPORTLENS_ROLE_CLAIM`` / ``REPORTLENS_ROLE_MAP``). A deactivated person is refused. Both are audited.
The rest needs the ``users`` (admin) or ``audit`` (admin, researcher) permission and is checked by
:func:`services.auth.requires`; role changes and (de)activations are audited.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from core.auth import Actor, AuthSettings, ForbiddenError, Permission, Role, parse_role
from core.errors import IssueCode
from core.types import ReportLensError
from db import audit, users
from db.audit import OUTCOMES, AuditRow
from db.repository import require_project
from db.users import UserInfo
from services.auth import current_actor, open_to_all, record, requires

__all__ = ["OUTCOMES", "AuditRow", "UserInfo", "audit_trail", "grant_role", "list_people", "revoke_role", "set_active",
           "settings", "sign_in", "refresh", "acting_name", "idle_minutes", "IdleClock", "ENV_IDLE_MINUTES"]

ENV_IDLE_MINUTES = "REPORTLENS_SESSION_IDLE_MINUTES"
DEFAULT_IDLE_MINUTES = 30.0


@open_to_all
def settings() -> AuthSettings:
    """The sign-in settings from the environment (``REPORTLENS_ADMINS``, ``REPORTLENS_ROLE_CLAIM``, ...)."""
    return AuthSettings.from_env(os.environ)


@open_to_all
def sign_in(engine: Any, claims: Mapping[str, Any], auth: AuthSettings | None = None) -> Actor:
    """The actor for a signed-in person (``claims``: at least ``sub``; ``iss``, ``email``, ``name`` when given).
    Records the sign-in (``sign_in`` ok, or refused for a deactivated person). Open to all: it is how one gets
    roles."""
    auth = auth or settings()
    subject = str(claims.get("sub") or "").strip()
    if not subject:
        raise ReportLensError("The identity provider sent no 'sub' claim, so this person cannot be told apart; "
                              "check the provider's client configuration (the openid scope).")
    email = claims.get("email") or None
    name = claims.get("name") or claims.get("preferred_username") or None
    user, created = users.sign_in(engine, subject, issuer=str(claims.get("iss") or ""), email=email,
                                  display_name=name, make_admin=auth.is_named_admin(subject, email))
    actor = _actor(user, auth, claims)
    if not user.active:
        err = _deactivated(user)
        record("sign_in", actor=actor, engine=engine, outcome="refused", details={"message": str(err)})
        raise err
    record("sign_in", actor=actor, engine=engine, details={"created": created, "roles": sorted(actor.roles)})
    return actor


def _actor(user: UserInfo, auth: AuthSettings, claims: Mapping[str, Any]) -> Actor:
    return Actor(subject=user.subject, display_name=user.label, roles=user.roles | auth.claim_roles(claims),
                 user_id=user.id, email=user.email, project_roles=user.project_roles)


def _deactivated(user: UserInfo) -> ForbiddenError:
    return ForbiddenError(IssueCode.FORBIDDEN.msg(
        who=user.label, what="sign in", where="", roles="active account",
        fix="This account was deactivated; ask an admin to reactivate it (Users page, or cli.py users activate)."))


@open_to_all
def refresh(engine: Any, actor: Actor, claims: Mapping[str, Any], auth: AuthSettings | None = None) -> Actor:
    """``actor`` (from :func:`sign_in`) with the roles stored now, read again on every page run of the session, so
    a role an admin grants or revokes, or a deactivation, counts at once. Not audited (the sign-in was). Raises
    :class:`ForbiddenError` when the person was deactivated or removed since. Open to all: it is part of sign-in."""
    user = users.get_user(engine, actor.user_id) if actor.user_id is not None else None
    if user is None or not user.active:
        raise _deactivated(user) if user is not None else ForbiddenError(
            f"{actor.label} is no longer a known user; sign in again.")
    fresh = _actor(user, auth or settings(), claims)
    return actor if fresh == actor else fresh


@requires(Permission.USERS)
def list_people(engine: Any) -> list[UserInfo]:
    return users.list_users(engine)


def _change(engine: Any, who: str | int, role: Role | str, project: int | str | None, give: bool) -> dict[str, Any]:
    user = users.find_user(engine, who)
    project_id = require_project(engine, project).id if project is not None else None
    role = parse_role(role)
    changed = (users.grant if give else users.revoke)(engine, user.id, role, project_id)
    return {"user_id": user.id, "subject": user.subject, "role": role.value, "project_id": project_id,
            "changed": changed}


def _user_detail(result: Mapping[str, Any]) -> dict[str, Any]:
    return dict(result)


@requires(Permission.USERS, action="role_granted", detail=_user_detail)
def grant_role(engine: Any, who: str | int, role: Role | str, project: int | str | None = None) -> dict[str, Any]:
    """Give ``who`` (an id, subject or e-mail) ``role``, everywhere or in ``project``; ``changed`` is false when
    they already held it."""
    return _change(engine, who, role, project, give=True)


@requires(Permission.USERS, action="role_revoked", detail=_user_detail)
def revoke_role(engine: Any, who: str | int, role: Role | str, project: int | str | None = None) -> dict[str, Any]:
    """Take ``role`` from ``who``; the last active admin keeps theirs."""
    return _change(engine, who, role, project, give=False)


@requires(Permission.USERS, action="user_active_changed", detail=lambda u: {"user_id": u.id, "active": u.active})
def set_active(engine: Any, who: str | int, active: bool) -> UserInfo:
    """Deactivate (``active=False``) or reactivate a person; their past decisions stay attributed to them."""
    return users.set_active(engine, users.find_user(engine, who).id, active)


@requires(Permission.AUDIT)
def audit_trail(engine: Any, *, person: str | None = None, action: str | None = None,
                project: int | str | None = None, since: datetime | None = None, until: datetime | None = None,
                outcome: str | None = None, limit: int | None = None) -> list[AuditRow]:
    """The audit rows matching every filter given, oldest first (see :func:`db.audit.events`)."""
    return audit.events(engine, person=person, action=action, project=project, since=since, until=until,
                        outcome=outcome, limit=limit)


@open_to_all
def acting_name(given: str | None = None) -> str:
    """The name a decision, a batch or an import is stored under: a signed-in person's subject, always (a typed
    name cannot speak for someone else); in single-user mode and the CLI the name ``given``, else the actor's
    subject (``local:<user>``, ``cli:<user>``). Empty when nobody acts and none is given (the caller refuses)."""
    actor = current_actor()
    if actor is not None and actor.user_id is not None:
        return actor.subject
    name = (given or "").strip()
    return name or (actor.subject if actor is not None else "")


# ---------------------------------------------------------------- idle sessions


@open_to_all
def idle_minutes(environ: Mapping[str, str] | None = None) -> float:
    """How long a signed-in session may stay idle: ``REPORTLENS_SESSION_IDLE_MINUTES`` (default 30; ``0`` turns the
    expiry off)."""
    raw = (os.environ if environ is None else environ).get(ENV_IDLE_MINUTES, "").strip()
    if not raw:
        return DEFAULT_IDLE_MINUTES
    try:
        minutes = float(raw)
    except ValueError:
        minutes = -1.0
    if minutes < 0 or minutes != minutes:  # negative or NaN
        raise ReportLensError(f"{ENV_IDLE_MINUTES}={raw!r} is not a number of minutes; set e.g. 30 (0: sessions "
                              "never expire while the browser keeps its sign-in cookie).")
    return minutes


class IdleClock:
    """When each sign-in was last active, for the whole process (every browser tab of one sign-in shares it).

    A sign-in is named by its identity token (``sub`` and ``iat``, the time the provider issued it). One never seen
    by this process counts as last active when it was issued, so after a restart a browser cookie older than the
    idle time needs a fresh sign-in. An expired sign-in stays expired: only a new sign-in (a new token) goes on.
    """

    def __init__(self, minutes: float = DEFAULT_IDLE_MINUTES) -> None:
        self.minutes = minutes
        self._last: dict[tuple[str, float | None], float] = {}
        self._expired: set[tuple[str, float | None]] = set()
        self._lock = threading.Lock()

    @staticmethod
    def key(claims: Mapping[str, Any]) -> tuple[str, float | None]:
        iat = claims.get("iat")
        return str(claims.get("sub") or ""), float(iat) if isinstance(iat, int | float) else None

    def idle_s(self, key: tuple[str, float | None], now: float | None = None) -> float:
        now = time.time() if now is None else now
        with self._lock:
            last = self._last.get(key, key[1] if key[1] is not None else now)
        return max(0.0, now - last)

    def expired(self, key: tuple[str, float | None], now: float | None = None) -> bool:
        if key in self._expired:
            return True
        if self.minutes <= 0 or self.idle_s(key, now) <= self.minutes * 60:
            return False
        with self._lock:
            self._expired.add(key)
        return True

    def touch(self, key: tuple[str, float | None], now: float | None = None) -> None:
        """Record activity now (a full run of the app); forgets sign-ins idle for over a day."""
        now = time.time() if now is None else now
        with self._lock:
            self._last[key] = now
            stale = [k for k, t in self._last.items() if now - t > 86_400]
            for k in stale:
                del self._last[k]
