"""API tokens (issue 15): rows of ``api_tokens``, of which only the sha256 of the secret is stored.

Returns frozen :class:`TokenInfo`; the secret itself never reaches the database (``services.api_tokens`` makes it,
shows it once and stores its hash here).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select, update

from core.types import ReportLensError
from db import models as m
from db.engine import read_session, write_session
from db.models import utcnow


@dataclass(frozen=True)
class TokenInfo:
    id: int
    name: str
    project_id: int | None
    project: str | None
    created_by: int | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def to_dict(self) -> dict[str, object]:
        return {"id": self.id, "name": self.name, "project": self.project, "project_id": self.project_id,
                "created_at": self.created_at.isoformat(), "active": self.active,
                "last_used_at": self.last_used_at.isoformat() if self.last_used_at else None,
                "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None}


def _info(row: m.ApiToken, project: str | None) -> TokenInfo:
    return TokenInfo(id=row.id, name=row.name, project_id=row.project_id, project=project, created_by=row.created_by,
                     created_at=row.created_at, last_used_at=row.last_used_at, revoked_at=row.revoked_at)


def _rows(s, *where):  # noqa: ANN001, ANN202
    q = select(m.ApiToken, m.Project.name).outerjoin(m.Project, m.Project.id == m.ApiToken.project_id)
    return s.execute(q.where(*where).order_by(m.ApiToken.id)).all()


def add_token(engine: Engine, name: str, token_hash: str, project_id: int | None,
              created_by: int | None = None) -> TokenInfo:
    """A new token; its name must not be held by an active token (a revoked one's name may be reused)."""
    with write_session(engine) as s:
        taken = s.scalar(select(m.ApiToken.id).where(m.ApiToken.name == name, m.ApiToken.revoked_at.is_(None)))
        if taken is not None:
            raise ReportLensError(f"An active API token is already named {name!r}; pick another name, or revoke it "
                                  f"first (cli.py tokens revoke {name}).")
        row = m.ApiToken(name=name, token_hash=token_hash, project_id=project_id, created_by=created_by,
                         created_at=utcnow())
        s.add(row)
        s.flush()
        project = s.get(m.Project, project_id).name if project_id is not None else None
        return _info(row, project)


def list_tokens(engine: Engine, include_revoked: bool = True) -> list[TokenInfo]:
    with read_session(engine) as s:
        where = () if include_revoked else (m.ApiToken.revoked_at.is_(None),)
        return [_info(row, project) for row, project in _rows(s, *where)]


def count_active(engine: Engine) -> int:
    return sum(1 for t in list_tokens(engine, include_revoked=False))


def find_by_hash(engine: Engine, token_hash: str) -> TokenInfo | None:
    """The token with this hash (revoked ones too: the caller says why it is refused)."""
    with read_session(engine) as s:
        found = _rows(s, m.ApiToken.token_hash == token_hash)
        return _info(*found[0]) if found else None


def touch(engine: Engine, token_id: int) -> None:
    """Record a use (``last_used_at``)."""
    with write_session(engine) as s:
        s.execute(update(m.ApiToken).where(m.ApiToken.id == token_id).values(last_used_at=utcnow()))


def revoke(engine: Engine, which: str) -> TokenInfo:
    """Revoke the active token named ``which``, or with that id."""
    with write_session(engine) as s:
        where = (m.ApiToken.id == int(which)) if which.isdigit() else (m.ApiToken.name == which)
        rows = [r for r, _ in _rows(s, where)]
        active = [r for r in rows if r.revoked_at is None]
        if not active:
            state = "is already revoked" if rows else "does not exist"
            raise ReportLensError(f"API token {which!r} {state}; list the tokens with `cli.py tokens list`.")
        row = active[-1]
        row.revoked_at = utcnow()
        s.flush()
        project = s.get(m.Project, row.project_id).name if row.project_id is not None else None
        return _info(row, project)
