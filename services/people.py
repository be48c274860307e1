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
from services.auth import open_to_all, record, requires

__all__ = ["OUTCOMES", "AuditRow", "UserInfo", "audit_trail", "grant_role", "list_people", "revoke_role", "set_active",
           "settings", "sign_in"]


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
    actor = Actor(subject=subject, display_name=user.label, roles=user.roles | auth.claim_roles(claims),
                  user_id=user.id, email=user.email, project_roles=user.project_roles)
    if not user.active:
        err = ForbiddenError(IssueCode.FORBIDDEN.msg(
            who=user.label, what="sign in", where="", roles="active account",
            fix="This account was deactivated; ask an admin to reactivate it (Users page, or cli.py users activate)."))
        record("sign_in", actor=actor, engine=engine, outcome="refused", details={"message": str(err)})
        raise err
    record("sign_in", actor=actor, engine=engine, details={"created": created, "roles": sorted(actor.roles)})
    return actor


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
