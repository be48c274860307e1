"""Bearer tokens for the HTTP API and the Label Studio ML backend (issue 15).

An admin creates a token (``cli.py tokens create --name N [--project P]``); its secret is shown once and only its
sha256 is stored (``api_tokens``). A token acts as the :class:`~core.auth.Actor` ``token:<name>`` with the
``clinician`` and ``annotator`` roles (:data:`TOKEN_ROLES`: extraction and predictions, and the import a Label
Studio webhook makes), everywhere, or only in its project when it names one. Its use is recorded in
``last_used_at`` (to the minute: :data:`TOUCH_EVERY`, so busy clients do not cost a write transaction per request;
every request has its own audit row anyway); a refused token appends a ``refused`` audit row (``api_auth``), never
the secret.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from core.auth import Actor, Permission, Role
from core.types import ReportLensError
from db import tokens as token_db
from db.repository import require_project
from db.tokens import TokenInfo
from services.auth import check_startup, current_actor, open_to_all, record, requires

TOKEN_PREFIX = "rl_"
SUBJECT_PREFIX = "token:"
TOKEN_ROLES = frozenset({Role.CLINICIAN, Role.ANNOTATOR})
TOUCH_EVERY = timedelta(seconds=60)  # last_used_at is written at most once a minute per token, not once per request


class TokenError(ReportLensError):
    """A request without a usable token (HTTP 401)."""


@open_to_all
def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _created(result: Any) -> dict[str, Any]:
    info = result[0]
    return {"token_id": info.id, "name": info.name, "project_id": info.project_id}


@requires(Permission.USERS, action="api_token_created", detail=_created)
def create_token(engine: Any, name: str, project: str | None = None) -> tuple[TokenInfo, str]:
    """A new token named ``name`` (scoped to ``project`` when given): ``(info, secret)``; the secret is not stored."""
    name = (name or "").strip()
    if not name or len(name) > 200 or any(c.isspace() for c in name):
        raise ReportLensError(f"Token name {name!r}: give a short name without spaces, e.g. --name report-pipeline.")
    project_id = require_project(engine, project).id if project else None
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    actor = current_actor()
    return token_db.add_token(engine, name, hash_token(secret), project_id,
                              created_by=actor.user_id if actor else None), secret


@requires(Permission.USERS)
def list_tokens(engine: Any) -> list[TokenInfo]:
    return token_db.list_tokens(engine)


@requires(Permission.USERS, action="api_token_revoked",
          detail=lambda info: {"token_id": info.id, "name": info.name})
def revoke_token(engine: Any, which: str) -> TokenInfo:
    """Revoke a token by name or id; requests with it are refused from then on."""
    return token_db.revoke(engine, str(which).strip())


@open_to_all
def token_actor(info: TokenInfo) -> Actor:
    """The actor a token acts as: ``token:<name>``, :data:`TOKEN_ROLES` everywhere or in its project only."""
    subject = f"{SUBJECT_PREFIX}{info.name}"
    if info.project_id is None:
        return Actor(subject=subject, display_name=subject, roles=TOKEN_ROLES)
    return Actor(subject=subject, display_name=subject, project_roles={info.project_id: TOKEN_ROLES})


@open_to_all
def authenticate(engine: Any, secret: str | None, where: str = "api") -> tuple[TokenInfo, Actor]:
    """The token and actor of ``secret``, its use recorded; :class:`TokenError` (and a ``refused`` audit row) when
    it is missing, unknown or revoked. Like sign-in, it records its own audit rows (ids only, never the secret)."""
    if not secret:
        why = "no token given"
    else:
        info = token_db.find_by_hash(engine, hash_token(secret.strip()))
        if info is not None and info.active:
            if _stale(info.last_used_at):
                token_db.touch(engine, info.id)
            return info, token_actor(info)
        why = "token revoked" if info is not None else "unknown token"
    record("api_auth", actor=Actor(subject=f"{SUBJECT_PREFIX}(none)"), engine=engine, outcome="refused",
           details={"reason": why, "where": where})
    raise TokenError(f"{why.capitalize()}: send 'Authorization: Bearer <token>' with a token an admin made with "
                     "`cli.py tokens create --name NAME [--project P]` (README \"Serving\").")


def _stale(last_used: datetime | None) -> bool:
    if last_used is None:
        return True
    last = last_used if last_used.tzinfo is not None else last_used.replace(tzinfo=UTC)  # SQLite drops the zone
    return datetime.now(UTC) - last >= TOUCH_EVERY


@open_to_all
def check_serve_startup(engine: Any, host: str) -> str:
    """``single-user`` on loopback; a non-loopback ``host`` needs at least one active token (else a
    :class:`ReportLensError` saying how to make one). Every API request needs a token either way."""
    try:
        return check_startup(host, False)
    except ReportLensError:
        if token_db.count_active(engine) > 0:
            return "shared"
    raise ReportLensError(
        f"Refusing to serve on {host or '(every interface)'}: no API token exists, and the API reads reports. "
        "Create one first (`cli.py tokens create --name NAME [--project P]`), serve behind TLS (README "
        "\"Serving\"), or listen on 127.0.0.1.")
