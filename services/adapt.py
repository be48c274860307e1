"""Adaptation as the Train page's Adapt form and ``cli.py adapt`` ask for it: queue an ``adapt`` job, list the
project's base model versions, the base models training can start from, and how much of the project's text each
base model cannot read (``[UNK]`` share; the Dataset page suggests adapting when it is high)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from core.adaptconfig import AdaptConfig, fields_for_form
from core.auth import Permission
from core.jobs import JobKind, JobStatus
from core.types import ReportLensError
from db.base_versions import (
    BaseVersionInfo,
    get_base_version,
    list_base_versions,
    next_auto_name,
    resolve_base_name,
)
from db.records import JobInfo
from db.repository import project_texts, require_project
from jobs import queue
from services.auth import job_detail, open_to_all, requires
from services.jobs import queue_job

BUNDLED = "bundled"
UNK_SUGGEST_SHARE = 0.05  # the Dataset page suggests adaptation above this share of [UNK] tokens
UNK_SAMPLE_DOCS = 500


@dataclass(frozen=True)
class UnkRow:
    base: str  # "bundled" or a base version's name
    unk_share: float
    tokens: int
    vocab_size: int
    suggest_adapt: bool


@open_to_all
def form_fields() -> list[dict[str, Any]]:
    return fields_for_form()


def _pending_names(engine: Any, project_id: int) -> set[str]:
    return {str(j.params.get("name")) for j in queue.active_jobs(engine, project_id, kind=JobKind.ADAPT)
            if j.status in (JobStatus.QUEUED, JobStatus.RUNNING) and j.params.get("name")}


@requires(Permission.TRAIN, action="adapt_queued", detail=job_detail)
def queue_adaptation(engine: Any, project: int | str, config: AdaptConfig) -> tuple[JobInfo, bool]:
    """Check the config (a free name, a parent that loads) and queue an ``adapt`` job; an empty name becomes
    ``adapted-N``."""
    from training.encoding import resolve_model

    info = require_project(engine, project)
    name = config.name or next_auto_name(engine, info.id)
    pending = _pending_names(engine, info.id)
    while not config.name and name in pending:
        name = f"adapted-{int(name.rsplit('-', 1)[1]) + 1}"
    if get_base_version(engine, info.id, name) is not None or name in pending:
        raise ReportLensError(f"Project {info.name!r} already has a base model version (or a queued adaptation) "
                              f"named {name!r}; choose another name.")
    resolve_model(resolve_base_name(engine, info.id, config.parent))  # a clear error now, not in the worker
    if config.extra_text:
        from training.adapt import read_extra_text

        if not read_extra_text(config.extra_text):  # a missing, broken or empty file: said on the form
            raise ReportLensError(f"extra_text {config.extra_text!r} holds no report text; give a plain-text file "
                                  "with one report per line or a Label Studio export of tasks with text.")
    return queue_job(engine, info.id, JobKind.ADAPT, replace(config, name=name).to_dict())


@requires(Permission.VIEW)
def base_versions(engine: Any, project: int | str) -> list[BaseVersionInfo]:
    return list_base_versions(engine, project)


@requires(Permission.VIEW)
def base_choices(engine: Any, project: int | str) -> list[str]:
    """What training (and a new adaptation) can start from by name: ``bundled`` and the project's base versions."""
    return [BUNDLED, *(v.name for v in list_base_versions(engine, project))]


@requires(Permission.VIEW)
def resolve_base(engine: Any, project: int | str, name: str) -> str:
    """A base model name as training loads it: a base version's folder, else ``name`` unchanged."""
    return resolve_base_name(engine, project, name)


@requires(Permission.DATASET)
def unk_by_base(engine: Any, project: int | str, limit: int = UNK_SAMPLE_DOCS) -> list[UnkRow]:
    """The ``[UNK]`` share of (up to ``limit`` of) the project's documents under ``bundled`` and each base
    version, with whether adapting is worth suggesting (share above :data:`UNK_SUGGEST_SHARE`)."""
    from training.encoding import load_tokenizer, measure_unk

    info = require_project(engine, project)
    texts = list(project_texts(engine, info.id, limit=limit))
    rows = []
    for name in base_choices(engine, info.id):
        try:
            tok = load_tokenizer(resolve_base_name(engine, info.id, name))
        except ReportLensError:
            continue  # a version whose folder is gone: the Train page says so when it is chosen
        unk, total = measure_unk(tok, texts, limit=limit)
        share = unk / total if total else 0.0
        rows.append(UnkRow(name, share, total, len(tok), share > UNK_SUGGEST_SHARE))
    return rows


@open_to_all
def version_rows(versions: list[BaseVersionInfo]) -> list[dict[str, Any]]:
    """One table row per base version (what the Train page and ``cli.py adapt --list`` show)."""
    return [{"name": v.name, "parent": v.parent, "vocab_added": v.vocab_added,
             "unk_before": v.vocab.get("unk_before"), "unk_after": v.vocab.get("unk_after"),
             "mlm_steps": v.mlm.get("steps"), "best_heldout_loss": v.mlm.get("best_heldout_loss"),
             "documents": v.corpus.get("documents"), "tokens": v.corpus.get("tokens"), "duration_s": v.duration_s,
             "created": v.created_at.isoformat() if v.created_at else None, "job": v.job_id}
            for v in versions]
