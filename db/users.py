"""People and their roles: sign-in upserts, look-ups, grants and revocations. Returns frozen :class:`UserInfo`.

The first person to sign in becomes an admin (checked and written in one transaction, serialized, so two first
sign-ins at once make one admin). Local (``local:``) and CLI (``cli:``) identities are never stored here: they act
with every role in single-user mode and appear in the audit trail by subject.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from core.auth import Role, parse_role
from core.types import ReportLensError
from db import models as m
from db.engine import lock_project_key, read_session, write_session


@dataclass(frozen=True)
class UserInfo:
    id: int
    subject: str
    issuer: str
    email: str | None
    display_name: str | None
    active: bool
    created_at: datetime
    last_seen_at: datetime | None
    roles: frozenset[Role]  # held everywhere
    project_roles: dict[int, frozenset[Role]]  # project id -> roles held there

    @property
    def label(self) -> str:
        return self.display_name or self.email or self.subject

    def to_dict(self) -> dict[str, object]:
        return {"id": self.id, "subject": self.subject, "issuer": self.issuer, "email": self.email,
                "display_name": self.display_name, "active": self.active,
                "created_at": self.created_at.isoformat(),
                "last_seen_at": self.last_seen_at.isoformat() if self.last_seen_at else None,
                "roles": sorted(self.roles),
                "project_roles": {str(k): sorted(v) for k, v in sorted(self.project_roles.items())}}


def _info(s: Session, user: m.User) -> UserInfo:
    roles: set[Role] = set()
    per_project: dict[int, set[Role]] = {}
    for role, project_id in s.execute(select(m.UserRole.role, m.UserRole.project_id).where(
            m.UserRole.user_id == user.id)):
        if project_id is None:
            roles.add(Role(role))
        else:
            per_project.setdefault(project_id, set()).add(Role(role))
    return UserInfo(id=user.id, subject=user.subject, issuer=user.issuer, email=user.email,
                    display_name=user.display_name, active=user.active, created_at=user.created_at,
                    last_seen_at=user.last_seen_at, roles=frozenset(roles),
                    project_roles={k: frozenset(v) for k, v in per_project.items()})


def _has(s: Session, user_id: int, role: Role, project_id: int | None) -> m.UserRole | None:
    q = select(m.UserRole).where(m.UserRole.user_id == user_id, m.UserRole.role == role.value)
    q = q.where(m.UserRole.project_id.is_(None) if project_id is None else m.UserRole.project_id == project_id)
    return s.scalars(q).first()


def sign_in(engine: Engine, subject: str, *, issuer: str = "", email: str | None = None,
            display_name: str | None = None, make_admin: bool = False) -> tuple[UserInfo, bool]:
    """Record a sign-in: create the user (the first one ever becomes an admin; ``make_admin`` too) or refresh
    their e-mail, name and last-seen time. Returns the user and whether it was created. An inactive user stays
    inactive (the caller refuses them)."""
    now = m.utcnow()
    with write_session(engine) as s:
        lock_project_key(s, "users")
        user = s.scalars(select(m.User).where(m.User.issuer == issuer, m.User.subject == subject)).one_or_none()
        created = user is None
        if user is None:
            first = s.scalar(select(func.count()).select_from(m.User)) == 0
            user = m.User(subject=subject, issuer=issuer, email=email, display_name=display_name, active=True,
                          created_at=now, last_seen_at=now)
            s.add(user)
            s.flush()
            make_admin = make_admin or first
        else:
            user.email, user.display_name = email or user.email, display_name or user.display_name
            user.last_seen_at = now
        if make_admin and _has(s, user.id, Role.ADMIN, None) is None:
            s.add(m.UserRole(user_id=user.id, role=Role.ADMIN.value, project_id=None))
            s.flush()
        return _info(s, user), created


def get_user(engine: Engine, user_id: int) -> UserInfo | None:
    with read_session(engine) as s:
        user = s.get(m.User, user_id)
        return _info(s, user) if user is not None else None


def find_user(engine: Engine, who: str | int) -> UserInfo:
    """The user with this id, subject or e-mail (case-insensitive); a clear error when there is none or several."""
    with read_session(engine) as s:
        if isinstance(who, int) or (isinstance(who, str) and who.isdigit()):
            user = s.get(m.User, int(who))
            found = [user] if user is not None else []
        else:
            key = who.strip().lower()
            found = list(s.scalars(select(m.User).where(
                (func.lower(m.User.subject) == key) | (func.lower(m.User.email) == key))))
        if not found:
            raise ReportLensError(f"No user {who!r}: people appear once they have signed in (cli.py users lists "
                                  "them); give an id, a subject or an e-mail.")
        if len(found) > 1:
            ids = ", ".join(str(u.id) for u in found)
            raise ReportLensError(f"{who!r} names {len(found)} users (ids {ids}); give the id instead.")
        return _info(s, found[0])


def list_users(engine: Engine) -> list[UserInfo]:
    with read_session(engine) as s:
        return [_info(s, u) for u in s.scalars(select(m.User).order_by(m.User.id))]


def grant(engine: Engine, user_id: int, role: Role | str, project_id: int | None = None) -> bool:
    """Give ``role`` (everywhere, or in one project); ``False`` when the user already had it."""
    role = parse_role(role)
    with write_session(engine) as s:
        lock_project_key(s, "users")
        _require(s, user_id, project_id)
        if _has(s, user_id, role, project_id) is not None:
            return False
        s.add(m.UserRole(user_id=user_id, role=role.value, project_id=project_id))
        return True


def revoke(engine: Engine, user_id: int, role: Role | str, project_id: int | None = None) -> bool:
    """Take ``role`` away; ``False`` when the user did not have it. The last active admin cannot lose the role."""
    role = parse_role(role)
    with write_session(engine) as s:
        lock_project_key(s, "users")
        _require(s, user_id, project_id)
        row = _has(s, user_id, role, project_id)
        if row is None:
            return False
        if role is Role.ADMIN and project_id is None and _admins(s) == [user_id]:
            raise ReportLensError("This is the last admin: grant admin to someone else first, so that somebody "
                                  "can still manage people and roles.")
        s.delete(row)
        return True


def set_active(engine: Engine, user_id: int, active: bool) -> UserInfo:
    """Deactivate (or reactivate) a person; their rows and past decisions stay attributed to them."""
    with write_session(engine) as s:
        lock_project_key(s, "users")
        user = _require(s, user_id, None)
        if not active and _admins(s) == [user_id]:
            raise ReportLensError("This is the last active admin: grant admin to someone else before deactivating.")
        user.active = active
        s.flush()
        return _info(s, user)


def _admins(s: Session) -> list[int]:
    return list(s.scalars(select(m.UserRole.user_id).join(m.User, m.User.id == m.UserRole.user_id).where(
        m.UserRole.role == Role.ADMIN.value, m.UserRole.project_id.is_(None), m.User.active.is_(True)).distinct()))


def _require(s: Session, user_id: int, project_id: int | None) -> m.User:
    user = s.get(m.User, user_id)
    if user is None:
        raise ReportLensError(f"No user with id {user_id}; cli.py users lists them.")
    if project_id is not None and s.get(m.Project, project_id) is None:
        raise ReportLensError(f"No project with id {project_id}; cli.py projects lists them.")
    return user
