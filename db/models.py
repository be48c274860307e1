"""SQLAlchemy 2.x typed models. Portable between SQLite and PostgreSQL; schema changes go through Alembic.

These classes never leave ``db/``: repository functions return ``core`` types or frozen dataclasses.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from core.identity import LEGACY_SOURCE
from core.jobs import JobStatus

# Named constraints, so Alembic batch mode on SQLite can find and alter them later.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

DOCUMENT_SOURCES = ("labelstudio", "dicom", "conll", "brat", "demo")
ANNOTATION_SOURCES = ("human", "model", "rule", "review")
IMPORT_STATUSES = ("running", "ok", "failed")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    label_config: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # core.formats.labelconfig.LabelConfig.to_dict()
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # e.g. {"base_model": "..."}
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Document(Base):
    """A report text. Re-import key (:mod:`core.identity`): ``(source_key, ls_task_id)`` when the task has an id,
    else ``text_hash`` (sha256 hex of the text)."""

    __tablename__ = "documents"
    __table_args__ = (
        UniqueConstraint("project_id", "source_key", "ls_task_id"),
        Index("ix_documents_project_id_text_hash", "project_id", "text_hash"),
        Index("ix_documents_project_id_ls_task_id", "project_id", "ls_task_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    ls_task_id: Mapped[int | None] = mapped_column(BigInteger)
    source_key: Mapped[str] = mapped_column(String(300), default=LEGACY_SOURCE)  # where ls_task_id was counted
    text_hash: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    source: Mapped[str] = mapped_column(String(20), default="labelstudio")  # one of DOCUMENT_SOURCES
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ImportRun(Base):
    """One import of one file. ``project_id`` is NULL when the import failed before its project existed."""

    __tablename__ = "import_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id", ondelete="SET NULL"), index=True)
    project_name: Mapped[str] = mapped_column(String(200))
    file_name: Mapped[str | None] = mapped_column(String(500))
    format: Mapped[str | None] = mapped_column(String(50))
    source: Mapped[str] = mapped_column(String(20), default="labelstudio")
    strict: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(20), default="running")  # one of IMPORT_STATUSES
    error: Mapped[str | None] = mapped_column(Text)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # ImportSummary.to_dict(), issues capped
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Annotation(Base):
    """A human annotation, model prediction, rule output or review decision of one document.

    ``created_at``/``updated_at`` are Label Studio's ISO strings (they drive the training policy); ``stored_at`` is
    when this row was written. ``content_hash`` fingerprints the content so re-imports can skip unchanged rows.
    ``text_hash`` is the document text it was made on (NULL: the current one, as far as is known); ``stale`` is set
    by the importer when the document's text is no longer that one (a stale annotation never trains).
    """

    __tablename__ = "annotations"
    __table_args__ = (Index("ix_annotations_document_id_source", "document_id", "source"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(20))  # one of ANNOTATION_SOURCES
    external_id: Mapped[str | None] = mapped_column(String(100))
    author: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[str | None] = mapped_column(String(40))
    updated_at: Mapped[str | None] = mapped_column(String(40))
    ground_truth: Mapped[bool] = mapped_column(Boolean, default=False)
    cancelled: Mapped[bool] = mapped_column(Boolean, default=False)
    model_version: Mapped[str | None] = mapped_column(String(200))
    score: Mapped[float | None] = mapped_column(Float)
    choices: Mapped[list[Any]] = mapped_column(JSON, default=list)
    position: Mapped[int] = mapped_column(Integer, default=0)  # order within the task in its source file
    content_hash: Mapped[str | None] = mapped_column(String(64))
    text_hash: Mapped[str | None] = mapped_column(String(64))
    stale: Mapped[bool] = mapped_column(Boolean, default=False)
    import_id: Mapped[int | None] = mapped_column(ForeignKey("import_runs.id", ondelete="SET NULL"), index=True)
    stored_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Span(Base):
    __tablename__ = "spans"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    annotation_id: Mapped[int] = mapped_column(ForeignKey("annotations.id", ondelete="CASCADE"), index=True)
    start: Mapped[int] = mapped_column(Integer)
    end: Mapped[int] = mapped_column(Integer)
    label: Mapped[str] = mapped_column(String(200))
    score: Mapped[float | None] = mapped_column(Float)


AUDIT_OUTCOMES = ("ok", "refused", "failed")


class AuditEvent(Base):
    """Append-only (0007): SQLite triggers and PostgreSQL triggers and privileges refuse UPDATE and DELETE; write
    through ``db.audit.record``. ``actor`` is the subject string (kept when the user row changes); the ids are plain
    integers, not foreign keys, so the trail outlives what it names. ``details`` never holds report text."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_project_id_at", "project_id", "at"),
                      Index("ix_audit_events_actor", "actor"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(50))
    entity: Mapped[str] = mapped_column(String(50), default="")
    entity_id: Mapped[int | None] = mapped_column(Integer)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    actor_user_id: Mapped[int | None] = mapped_column(Integer)  # users.id; NULL for local:/cli: actors
    outcome: Mapped[str] = mapped_column(String(20), default="ok", server_default="ok")  # one of AUDIT_OUTCOMES
    project_id: Mapped[int | None] = mapped_column(Integer)
    document_id: Mapped[int | None] = mapped_column(Integer)
    model_version_id: Mapped[int | None] = mapped_column(Integer)


# ---------------------------------------------------------------- people, roles and API tokens (0007)


class User(Base):
    """A person who signed in: ``(issuer, subject)`` is the OIDC identity (``issuer`` is "" for local ones).
    Deactivating keeps the row, so past decisions stay attributed."""

    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("issuer", "subject"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject: Mapped[str] = mapped_column(String(300))
    issuer: Mapped[str] = mapped_column(String(500), default="")
    email: Mapped[str | None] = mapped_column(String(300), index=True)
    display_name: Mapped[str | None] = mapped_column(String(300))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_seen_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class UserRole(Base):
    """One role of one person, everywhere (``project_id`` NULL) or in one project. Unique per (user, role,
    project), enforced by ``db.users.grant`` (NULL project ids are distinct to a UNIQUE constraint)."""

    __tablename__ = "user_roles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(20))  # a core.auth.Role
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    granted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ApiToken(Base):
    """A token for the HTTP API (issue 15): only its sha256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


# ---------------------------------------------------------------- background jobs and model versions



class Job(Base):
    """One background job. ``python -m jobs.worker`` claims queued rows, writes progress and a heartbeat, and
    records the outcome; the UI polls the row. ``history`` holds numeric progress points for curves (capped)."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_status_kind", "status", "kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(30))  # e.g. "train"
    status: Mapped[str] = mapped_column(String(20), default=JobStatus.QUEUED.value)  # a core.jobs.JobStatus
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # e.g. TrainConfig.to_dict()
    progress: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # latest: epoch, step, loss, eta_s, message
    history: Mapped[list[Any]] = mapped_column(JSON, default=list)  # numeric progress points, capped
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    worker_id: Mapped[str | None] = mapped_column(String(100))
    host: Mapped[str | None] = mapped_column(String(255))
    pid: Mapped[int | None] = mapped_column(Integer)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    error: Mapped[str | None] = mapped_column(Text)  # readable; the traceback tail goes to ``log``
    log: Mapped[str] = mapped_column(Text, default="")  # the tail, capped; never report text
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # how many times a worker claimed it


class Worker(Base):
    """A live (or recently live) worker process: registered at start, heartbeat every few seconds, removed at exit.
    ``jobs.launcher.ensure_worker`` reads it to decide whether a new worker must be started."""

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    job_id: Mapped[int | None] = mapped_column(Integer)  # the job it is running, if any (no FK: purely informative)


class ModelVersion(Base):
    """A trained model of a project (``name`` v1, v2, ...). Exactly one version per project is active (enforced by
    the functions in jobs.queue)."""

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"), index=True)
    name: Mapped[str] = mapped_column(String(50))
    base_model: Mapped[str | None] = mapped_column(String(500))
    method: Mapped[str | None] = mapped_column(String(30))  # "lora" | "full"
    adapter_path: Mapped[str | None] = mapped_column(String(1000))  # relative to the data dir when inside it
    label_schema: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # {"labels": [...]}
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # TrainConfig.to_dict()
    data_snapshot: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # document ids, annotation versions
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    duration_s: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    is_active: Mapped[bool] = mapped_column(Boolean, default=False)


# ---------------------------------------------------------------- active learning, predictions and review (0003)


class Prediction(Base):
    """The entities a model version predicted for a document (scoring jobs and the review page write these).
    ``spans`` is a list of ``{"start", "end", "label", "score"}``; ``score`` the document confidence (0..1)."""

    __tablename__ = "predictions"
    __table_args__ = (UniqueConstraint("document_id", "model_version_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"), index=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"), index=True)
    spans: Mapped[list[Any]] = mapped_column(JSON, default=list)
    score: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class UncertaintyScore(Base):
    """One document's score under one query strategy, from one scoring run (``job_id``) of one model version
    (``model_version_id`` is NULL for a cold-start run on base-model embeddings). Higher = label it sooner."""

    __tablename__ = "uncertainty_scores"
    __table_args__ = (
        Index("ix_uncertainty_scores_project_strategy", "project_id", "strategy", "model_version_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"), index=True)
    model_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"))
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"), index=True)
    strategy: Mapped[str] = mapped_column(String(100))  # str(strategy), e.g. "margin" or "bald(passes=10)"
    score: Mapped[float] = mapped_column(Float)
    n_tokens: Mapped[int | None] = mapped_column(Integer)
    queue_rank: Mapped[int] = mapped_column(Integer)  # 1 = label first, per (project, model version, strategy)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class QueueBatch(Base):
    """A batch of documents picked from a ranked queue and sent to annotators (file download or Label Studio).
    ``target`` records where it went: ``{"kind": "file"|"server", "url", "ls_project_id", "task_ids": {...}}``;
    never a token."""

    __tablename__ = "queue_batches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    model_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id", ondelete="SET NULL"))
    strategy: Mapped[str] = mapped_column(String(100))
    document_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    target: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(20), default="created")  # created | sent | pulled | failed
    created_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ReviewDecision(Base):
    """One clinician decision on one entity (or on the whole report, ``action == "accept_all"``).
    ``before``/``after`` are ``{"start", "end", "label", "score", "source"}`` or NULL (an added entity has no before,
    a rejected one no after). The reviewed report itself becomes an ``Annotation`` with ``source == "review"``."""

    __tablename__ = "review_decisions"
    __table_args__ = (Index("ix_review_decisions_document_id_decided_at", "document_id", "decided_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"))
    model_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id", ondelete="SET NULL"))
    reviewer: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(20))  # accept | reject | relabel | adjust | add | accept_all | no_entity
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    comment: Mapped[str | None] = mapped_column(Text)
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


# ---------------------------------------------------------------- adapted base models (0008)


class BaseModelVersion(Base):
    """A base model adapted to a project's text by an ``adapt`` job (vocabulary extension, continued masked-LM
    pretraining): a plain Hugging Face model folder that training can start from, picked by ``name``."""

    __tablename__ = "base_model_versions"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    parent: Mapped[str] = mapped_column(String(1000))  # the base it started from, as the config named it
    path: Mapped[str] = mapped_column(String(1000))  # relative to the data dir when inside it
    vocab_added: Mapped[int] = mapped_column(Integer, default=0)
    vocab: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # VocabReport.to_dict()
    mlm: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # loss curve, held-out losses, steps, stop reason
    corpus: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # documents, windows, tokens
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # AdaptConfig.to_dict()
    duration_s: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
