"""Model versions: each finished training job stores one (v1, v2, ... per project). Exactly one version per project
is active: the first one recorded, then whichever :func:`activate_model_version` picks (both under a per-project
lock). Functions return :class:`db.records.ModelVersionInfo`, never ORM objects.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from core.types import ReportLensError
from db import models as m
from db.engine import data_dir, json_safe, lock_project_key, read_session, write_session
from db.records import ModelVersionInfo
from db.repository import _aware, _project_id

__all__ = [
    "ModelVersionInfo", "activate_model_version", "active_model_version", "get_model_version", "list_model_versions",
    "record_model_version",
]


def _field(result_like: Any, name: str, default: Any = None) -> Any:
    if isinstance(result_like, Mapping):
        return result_like.get(name, default)
    return getattr(result_like, name, default)


def _as_dict(obj: Any) -> dict[str, Any]:
    if obj is None:
        return {}
    if hasattr(obj, "to_dict"):
        return dict(obj.to_dict())
    if hasattr(obj, "to_json"):
        return dict(json.loads(obj.to_json()))
    if isinstance(obj, Mapping):
        return dict(obj)
    if hasattr(obj, "labels"):
        return {"labels": list(obj.labels)}
    raise TypeError(f"cannot store {type(obj).__name__} as JSON")


def _stored_path(path: Any) -> str | None:
    if not path:
        return None
    resolved = Path(path).expanduser().resolve()
    try:
        return resolved.relative_to(data_dir().resolve()).as_posix()
    except ValueError:
        return str(resolved)


def _version_info(v: m.ModelVersion) -> ModelVersionInfo:
    return ModelVersionInfo(
        id=v.id, project_id=v.project_id, job_id=v.job_id, name=v.name, base_model=v.base_model, method=v.method,
        adapter_path=v.adapter_path, label_schema=dict(v.label_schema or {}), config=dict(v.config or {}),
        data_snapshot=dict(v.data_snapshot or {}), metrics=dict(v.metrics or {}), duration_s=v.duration_s,
        created_at=_aware(v.created_at), is_active=bool(v.is_active),
    )


def _record_model_version(s: Session, project_id: int, job_id: int | None, result_like: Any) -> m.ModelVersion:
    lock_project_key(s, f"model_versions:{project_id}")
    config = _as_dict(_field(result_like, "config"))
    names = s.scalars(select(m.ModelVersion.name).where(m.ModelVersion.project_id == project_id)).all()
    numbers = [int(g.group(1)) for n in names if (g := re.fullmatch(r"v(\d+)", n))]
    has_active = s.scalar(select(func.count(m.ModelVersion.id)).where(
        m.ModelVersion.project_id == project_id, m.ModelVersion.is_active.is_(True))) or 0
    duration = _field(result_like, "duration_s")
    version = m.ModelVersion(
        project_id=project_id, job_id=job_id, name=f"v{max(numbers, default=0) + 1}",
        base_model=_field(result_like, "base_model") or config.get("base_model"),
        method=_field(result_like, "method") or config.get("method"),
        adapter_path=_stored_path(_field(result_like, "model_dir") or _field(result_like, "adapter_path")),
        label_schema=json_safe(_as_dict(_field(result_like, "schema") or _field(result_like, "label_schema"))),
        config=json_safe(config), data_snapshot=json_safe(dict(_field(result_like, "data_snapshot") or {})),
        metrics=json_safe(dict(_field(result_like, "metrics") or {})),
        duration_s=float(duration) if duration is not None else None, is_active=not has_active,
    )
    s.add(version)
    s.flush()
    return version


def record_model_version(engine: Engine, project: int | str, job_id: int | None, result_like: Any) -> ModelVersionInfo:
    """Store a trained model as the project's next version (v1, v2, ...); the first becomes active.

    ``result_like``: a ``training.trainer.TrainResult`` or a mapping with ``model_dir``, ``schema`` (a LabelSchema
    or dict), ``config`` (a TrainConfig or dict; ``base_model`` and ``method`` are read from it unless given
    directly), ``metrics``, ``data_snapshot``, ``duration_s``."""
    with write_session(engine) as s:
        return _version_info(_record_model_version(s, _project_id(s, project), job_id, result_like))


def list_model_versions(engine: Engine, project: int | str) -> list[ModelVersionInfo]:
    """A project's versions, newest first."""
    with read_session(engine) as s:
        q = select(m.ModelVersion).where(m.ModelVersion.project_id == _project_id(s, project))
        return [_version_info(v) for v in s.scalars(q.order_by(m.ModelVersion.id.desc())).all()]


def get_model_version(engine: Engine, key: int | tuple[int | str, str]) -> ModelVersionInfo | None:
    """A version by id, or by ``(project id or name, version name)``."""
    with read_session(engine) as s:
        if isinstance(key, tuple):
            project, name = key
            q = select(m.ModelVersion).where(m.ModelVersion.project_id == _project_id(s, project),
                                             m.ModelVersion.name == name)
            version = s.scalars(q).one_or_none()
        else:
            version = s.get(m.ModelVersion, key)
        return _version_info(version) if version is not None else None


def activate_model_version(engine: Engine, version_id: int) -> ModelVersionInfo:
    """Make this version its project's only active one."""
    with write_session(engine) as s:
        version = s.get(m.ModelVersion, version_id)
        if version is None:
            raise ReportLensError(f"No model version with id {version_id}; list them with `cli.py models`.")
        lock_project_key(s, f"model_versions:{version.project_id}")
        s.execute(update(m.ModelVersion).where(m.ModelVersion.project_id == version.project_id,
                                               m.ModelVersion.id != version.id).values(is_active=False))
        version.is_active = True
        s.flush()
        return _version_info(version)


def active_model_version(engine: Engine, project: int | str) -> ModelVersionInfo | None:
    with read_session(engine) as s:
        q = select(m.ModelVersion).where(m.ModelVersion.project_id == _project_id(s, project),
                                         m.ModelVersion.is_active.is_(True)).order_by(m.ModelVersion.id.desc())
        version = s.scalars(q).first()
        return _version_info(version) if version is not None else None
