"""Base model versions: the base models an ``adapt`` job adapted to a project's text (``base_model_versions``).

A version is a plain Hugging Face model folder under ``<data dir>/base_models/<project id>/<name>``; training picks
it by ``name`` (:func:`resolve_base_name` turns the name into the folder). Recording is idempotent per job (a job
that is run again after a crash updates its row instead of adding a second one). Functions return
:class:`BaseVersionInfo`, never ORM objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from core.types import ReportLensError
from db import models as m
from db.engine import data_dir, json_safe, lock_project_key, read_session, write_session
from db.repository import _aware, _project_id

BASE_DIR = "base_models"
AUTO_PREFIX = "adapted-"


@dataclass(frozen=True)
class BaseVersionInfo:
    id: int
    project_id: int
    job_id: int | None
    name: str
    parent: str
    path: str  # as stored: relative to the data dir when inside it
    vocab_added: int
    vocab: dict[str, Any] = field(compare=False, hash=False)
    mlm: dict[str, Any] = field(compare=False, hash=False)
    corpus: dict[str, Any] = field(compare=False, hash=False)
    config: dict[str, Any] = field(compare=False, hash=False)
    duration_s: float | None
    created_at: datetime

    @property
    def model_dir(self) -> Path:
        p = Path(self.path)
        return p if p.is_absolute() else data_dir() / p


def base_dir(project_id: int, name: str) -> Path:
    """Where the base version ``name`` of a project is saved."""
    return data_dir() / BASE_DIR / str(project_id) / name


def _info(v: m.BaseModelVersion) -> BaseVersionInfo:
    return BaseVersionInfo(
        id=v.id, project_id=v.project_id, job_id=v.job_id, name=v.name, parent=v.parent, path=v.path,
        vocab_added=v.vocab_added, vocab=dict(v.vocab or {}), mlm=dict(v.mlm or {}), corpus=dict(v.corpus or {}),
        config=dict(v.config or {}), duration_s=v.duration_s, created_at=_aware(v.created_at))


def _stored(path: Path) -> str:
    resolved = Path(path).expanduser().resolve()
    try:
        return resolved.relative_to(data_dir().resolve()).as_posix()
    except ValueError:
        return str(resolved)


def next_auto_name(engine: Engine, project: int | str) -> str:
    """``adapted-N``, one more than the highest N the project has."""
    numbers = [int(n[len(AUTO_PREFIX):]) for n in (v.name for v in list_base_versions(engine, project))
               if n.startswith(AUTO_PREFIX) and n[len(AUTO_PREFIX):].isdigit()]
    return f"{AUTO_PREFIX}{max(numbers, default=0) + 1}"


def record_base_version(engine: Engine, project_id: int, job_id: int | None, name: str, parent: str, path: Path,
                        vocab: dict[str, Any], mlm: dict[str, Any], corpus: dict[str, Any], config: dict[str, Any],
                        duration_s: float | None) -> BaseVersionInfo:
    """Store (or, for the same job, update) a base version. A name another job already took is an error."""
    with write_session(engine) as s:
        lock_project_key(s, f"base_versions:{project_id}")
        row = s.scalar(select(m.BaseModelVersion).where(m.BaseModelVersion.job_id == job_id)) if job_id else None
        clash = s.scalar(select(m.BaseModelVersion).where(m.BaseModelVersion.project_id == project_id,
                                                          m.BaseModelVersion.name == name))
        if clash is not None and clash is not row:
            raise ReportLensError(f"The project already has a base model version named {name!r}; choose another "
                                  "name (or leave it empty for adapted-N).")
        row = row or m.BaseModelVersion(project_id=project_id, job_id=job_id)
        row.name, row.parent, row.path = name, parent, _stored(path)
        row.vocab_added = int(vocab.get("added", 0))
        row.vocab, row.mlm, row.corpus = json_safe(vocab), json_safe(mlm), json_safe(corpus)
        row.config, row.duration_s = json_safe(config), duration_s
        s.add(row)
        s.flush()
        return _info(row)


def list_base_versions(engine: Engine, project: int | str) -> list[BaseVersionInfo]:
    with read_session(engine) as s:
        pid = _project_id(s, project)
        rows = s.scalars(select(m.BaseModelVersion).where(m.BaseModelVersion.project_id == pid)
                         .order_by(m.BaseModelVersion.id)).all()
        return [_info(r) for r in rows]


def get_base_version(engine: Engine, project: int | str, name: str) -> BaseVersionInfo | None:
    with read_session(engine) as s:
        pid = _project_id(s, project)
        row = s.scalar(select(m.BaseModelVersion).where(m.BaseModelVersion.project_id == pid,
                                                        m.BaseModelVersion.name == name))
        return _info(row) if row is not None else None


def resolve_base_name(engine: Engine, project: int | str, name: str) -> str:
    """``name`` as a base model to load: a base version's folder when the project has one by that name, else
    ``name`` unchanged ('bundled', a folder, a cached Hub id)."""
    version = get_base_version(engine, project, name)
    if version is None:
        return name
    if not version.model_dir.is_dir():
        raise ReportLensError(f"Base model version {name!r} is recorded but its folder {version.model_dir} is "
                              "missing; adapt again or choose another base model.")
    return str(version.model_dir)


def name_of_path(engine: Engine, project: int | str, path: str | None) -> str | None:
    """The base version name whose folder is ``path`` (what a model version's ``base_model`` holds), if any."""
    if not path:
        return None
    target = Path(path).expanduser().resolve()
    for v in list_base_versions(engine, project):
        if v.model_dir.resolve() == target:
            return v.name
    return None

