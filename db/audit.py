"""The audit trail: append a row (:func:`record`), read rows back with filters (:func:`events`).

Rows are append-only (migration 0007: triggers on SQLite and PostgreSQL, privileges on PostgreSQL). A row says who
(``actor`` subject, ``actor_user_id``), when (UTC), what (``action``), on what (project, document, model version),
and how it ended (``outcome``: ``ok``, ``refused``, ``failed``), with a small ``details`` object: ids, counts, file
names, the refusal message. Never report text: :func:`record` refuses a ``text`` key and long strings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, or_, select
from sqlalchemy.orm import Session

from db import models as m
from db.engine import json_safe, read_session, write_session

OUTCOMES = m.AUDIT_OUTCOMES
MAX_DETAIL_CHARS = 500  # a string detail longer than this is likely report text: refused
FORBIDDEN_KEYS = frozenset({"text", "report", "report_text", "content"})


@dataclass(frozen=True)
class AuditRow:
    id: int
    at: datetime
    actor: str
    actor_user_id: int | None
    action: str
    outcome: str
    project_id: int | None
    document_id: int | None
    model_version_id: int | None
    entity: str
    entity_id: int | None
    details: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["at"] = _utc(self.at).isoformat()
        return d


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)  # SQLite returns naive UTC


def _check_details(details: Mapping[str, Any], path: str = "details") -> None:
    for key, value in details.items():
        if str(key).lower() in FORBIDDEN_KEYS:
            raise ValueError(f"audit {path}[{key!r}]: report text never goes into the audit trail; record an id.")
        if isinstance(value, str) and len(value) > MAX_DETAIL_CHARS:
            raise ValueError(f"audit {path}[{key!r}] is {len(value)} characters (over {MAX_DETAIL_CHARS}): report "
                             "text never goes into the audit trail; record an id or a count.")
        if isinstance(value, Mapping):
            _check_details(value, f"{path}[{key!r}]")


def _project_id(s: Session, project: int | str | None, document_id: int | None,
                model_version_id: int | None) -> int | None:
    if isinstance(project, int):
        return project
    if project is not None:
        return s.scalars(select(m.Project.id).where(m.Project.name == project)).one_or_none()
    if document_id is not None:
        return s.scalars(select(m.Document.project_id).where(m.Document.id == document_id)).one_or_none()
    if model_version_id is not None:
        return s.scalars(select(m.ModelVersion.project_id).where(
            m.ModelVersion.id == model_version_id)).one_or_none()
    return None


def resolve_project_id(engine: Engine, *, project: int | str | None = None, document_id: int | None = None,
                       model_version_id: int | None = None) -> int | None:
    """The project id named by a project id or name, or owning a document or a model version (``None``: none)."""
    with read_session(engine) as s:
        return _project_id(s, project, document_id, model_version_id)


def record(engine: Engine, *, actor: str, action: str, outcome: str = "ok", actor_user_id: int | None = None,
           project_id: int | None = None, project: str | None = None, document_id: int | None = None,
           model_version_id: int | None = None, entity: str = "", entity_id: int | None = None,
           details: Mapping[str, Any] | None = None) -> int:
    """Append one audit row in its own transaction and return its id. ``project`` (a name) is resolved to its id
    when ``project_id`` is not given, and kept in ``details``; a document or model version gives its project."""
    with write_session(engine) as s:
        return add(s, actor=actor, action=action, outcome=outcome, actor_user_id=actor_user_id, project_id=project_id,
                   project=project, document_id=document_id, model_version_id=model_version_id, entity=entity,
                   entity_id=entity_id, details=details)


def add(s: Session, *, actor: str, action: str, outcome: str = "ok", actor_user_id: int | None = None,
        project_id: int | None = None, project: str | None = None, document_id: int | None = None,
        model_version_id: int | None = None, entity: str = "", entity_id: int | None = None,
        details: Mapping[str, Any] | None = None) -> int:
    """:func:`record` inside the caller's transaction (the job queue audits a job's end in the transaction that
    records it, so the row exists exactly when the outcome does)."""
    if outcome not in OUTCOMES:
        raise ValueError(f"audit outcome {outcome!r} is not one of {OUTCOMES}")
    data = dict(details or {})
    _check_details(data)
    if project_id is None:
        project_id = _project_id(s, project, document_id, model_version_id)
    if project is not None:
        data.setdefault("project", project)
    row = m.AuditEvent(actor=actor, actor_user_id=actor_user_id, action=action, outcome=outcome,
                       project_id=project_id, document_id=document_id, model_version_id=model_version_id,
                       entity=entity, entity_id=entity_id, details=json_safe(data))
    s.add(row)
    s.flush()
    return row.id


def events(engine: Engine, *, person: str | None = None, action: str | None = None, project: int | str | None = None,
           since: datetime | None = None, until: datetime | None = None, outcome: str | None = None,
           limit: int | None = None) -> list[AuditRow]:
    """Audit rows, oldest first. ``person``: an actor subject, or a user's e-mail or subject; ``project``: an id or
    a name (a name no project has matches nothing);
    ``since``/``until``: UTC bounds, inclusive / exclusive (naive datetimes are read as UTC)."""
    q = select(m.AuditEvent)
    with read_session(engine) as s:
        if person:
            users = select(m.User.id).where(or_(m.User.email == person, m.User.subject == person))
            q = q.where(or_(m.AuditEvent.actor == person, m.AuditEvent.actor_user_id.in_(users)))
        if action:
            q = q.where(m.AuditEvent.action == action)
        if outcome:
            q = q.where(m.AuditEvent.outcome == outcome)
        if project is not None:
            pid = project if isinstance(project, int) else s.scalars(
                select(m.Project.id).where(m.Project.name == project)).one_or_none()
            q = q.where(m.AuditEvent.project_id == pid) if pid is not None else q.where(m.AuditEvent.id.is_(None))
        if since is not None:
            q = q.where(m.AuditEvent.at >= _utc(since))
        if until is not None:
            q = q.where(m.AuditEvent.at < _utc(until))
        q = q.order_by(m.AuditEvent.at, m.AuditEvent.id)
        if limit is not None:
            q = q.limit(limit)
        return [AuditRow(id=r.id, at=_utc(r.at), actor=r.actor, actor_user_id=r.actor_user_id, action=r.action,
                         outcome=r.outcome, project_id=r.project_id, document_id=r.document_id,
                         model_version_id=r.model_version_id, entity=r.entity, entity_id=r.entity_id,
                         details=dict(r.details or {})) for r in s.scalars(q)]
