"""Import one file or folder, in any format of :mod:`core.formats.registry`, into a project: the operation behind
the Import page and ``cli.py import``; and the demo project seeded on first run through the same Label Studio path."""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.auth import Permission
from core.errors import IssueCode
from core.formats import registry
from core.formats.labelconfig import LabelConfig, parse_label_config
from core.formats.report import ParseReport, check_source
from core.types import ReportLensError
from services.auth import open_to_all, requires

log = logging.getLogger("reportlens.import")

FORMATS = registry.FORMATS
SUPPORTED_UPLOADS = registry.upload_types()
Progress = Callable[[int, "float | None"], None]


@open_to_all
def read_config_text(data: bytes) -> LabelConfig:
    """A labeling config from uploaded bytes, with a clear message when it is not UTF-8 XML."""
    try:
        xml = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ReportLensError(
            f"The labeling config is not UTF-8 (bad byte at offset {exc.start}); save it as UTF-8 and upload again."
        ) from None
    return parse_label_config(xml)


def _import_detail(summary: Any) -> dict[str, Any]:
    """The audit row of an import: the import run's id, the file's name and format, counts."""
    return {"import_id": summary.import_id, "file_name": summary.file_name, "format": summary.format,
            "documents": summary.documents, "documents_added": summary.documents_added, "spans": summary.spans}


@requires(Permission.IMPORT, action="imported", detail=_import_detail)
def import_file(
    engine: Any,
    path: Path,
    project: str,
    *,
    config: LabelConfig | None = None,
    strict: bool = False,
    progress: Progress | None = None,
    file_name: str | None = None,
    source_name: str | None = None,
) -> Any:
    """Parse ``path`` while storing it in one transaction; returns the importer's ``ImportSummary``.

    ``source_name`` names where the file comes from (a Label Studio server, a hospital...): it is part of each
    document's identity (:mod:`core.identity`), so task ids of different sources never overwrite one another.

    Raises :class:`ReportLensError` (nothing stored) for an unreadable file, or in strict mode when any item has an
    error. Log lines name files, projects and counts, never report text.
    """
    from db.importer import import_tasks

    path = check_source(path)  # missing, a symlink loop, a device: said as such
    if not project or not project.strip():
        raise ReportLensError("Give the project a name.")
    spec = registry.detect(path)
    report = ParseReport()
    tasks = registry.iter_tasks(path, config, report, fmt=spec.name)
    size = path.stat().st_size if path.is_file() else 0

    def on_progress(n: int) -> None:
        if progress is not None:
            read = getattr(report, "bytes_read", 0)
            progress(n, read / size if size and read else None)

    log.info("importing %s into project %r (strict=%s)", file_name or path.name, project, strict)
    summary = import_tasks(
        engine, project.strip(), tasks, report=report, file_name=file_name or path.name, strict=strict,
        source=spec.source, progress=on_progress, source_name=source_name, actor=None,  # audited by @requires
    )
    log.info("imported %s: %s", file_name or path.name, {k: v for k, v in summary.to_dict().items()
                                                          if isinstance(v, int)})
    return summary


@open_to_all
def text_key_notes(summary: Any) -> list[str]:
    """The ``text_key_kept`` warnings of an import (an ``ImportSummary`` or its dict): the file held its text under
    another key than the project's; it was read with its own key and the project kept its (README, "Command
    line"). The CLI prints them on stderr; the Import page shows them above the issues."""
    data = summary.to_dict() if hasattr(summary, "to_dict") else dict(summary)
    return [str(i.get("message")) for i in data.get("warnings") or [] if i.get("code") == IssueCode.TEXT_KEY_KEPT]


@requires(Permission.IMPORT, action="demo_seeded")
def seed_demo(engine: Any, *, force: bool = False, n: int = 300, seed: int = 0, jobs: bool = False,
              chinese: bool = True) -> dict[str, Any]:
    """Create the demo projects when the database has no project yet: the English one (synthetic ECG and radiology
    reports) and, with ``chinese`` (the default), the Chinese one (Holter summaries and 12-lead reports labelled HR,
    VALUE, TIME, EVENT, DIAG; :mod:`core.demo_zh`), ``n`` reports each.

    Each goes through the same path as a user's export: a Label Studio JSON file and its labeling config. The
    English project is created first (project 1) and imported last, so a new tab opens it (the project worked on
    last). With ``jobs`` (what ``make run`` / ``cli.py seed-demo`` do) it also queues the English demo's first
    training job, a short run sized for a laptop (``core.demo.demo_train_config``), then a scoring run, then the
    same two for the Chinese demo, after extending the bundled model's vocabulary with its characters (an ``adapt``
    job, :func:`core.demo_zh.zh_demo_adapt_config`): one chain, so the two trainings never share the cores. Models,
    Queue, Review and Explain have something to show a few minutes after the first start. Tests leave ``jobs`` off.

    Returns the English import's summary (as before) with ``projects``: one summary per demo project.
    """
    from core.demo import (
        DEMO_LABEL_CONFIG,
        DEMO_PROJECT_NAME,
        demo_score_config,
        demo_train_config,
        generate_demo_export,
    )
    from core.demo_zh import (
        ZH_DEMO_BASE_NAME,
        ZH_DEMO_LABEL_CONFIG,
        ZH_DEMO_PROJECT_NAME,
        generate_zh_export,
        zh_demo_adapt_config,
    )
    from core.jobs import JobKind
    from db.repository import ensure_project, list_projects
    from services.jobs import queue_job
    from services.training import check

    if list_projects(engine) and not force:
        return {"seeded": False, "reason": "the database already has projects"}
    demos = [(DEMO_PROJECT_NAME, DEMO_LABEL_CONFIG, generate_demo_export, "demo-export.json")]
    if chinese:
        demos.append((ZH_DEMO_PROJECT_NAME, ZH_DEMO_LABEL_CONFIG, generate_zh_export, "demo-zh-export.json"))
    ensure_project(engine, DEMO_PROJECT_NAME)  # id 1 whatever the import order
    summaries: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="reportlens-demo-") as tmp:
        for name, config, generate, file_name in reversed(demos):
            export = Path(tmp) / file_name
            export.write_text(json.dumps(generate(n=n, seed=seed), ensure_ascii=False), encoding="utf-8")
            summary = import_file(engine, export, name, config=parse_label_config(config),
                                  file_name=f"{file_name} (synthetic)")
            summaries[name] = summary.to_dict()
    out: dict[str, Any] = {"seeded": True, **summaries[DEMO_PROJECT_NAME],
                           "projects": {name: {k: v for k, v in summary.items() if isinstance(v, int | str)}
                                        for name, summary in summaries.items()}}
    if jobs:
        train, score = check(demo_train_config()).to_dict(), demo_score_config().to_dict()
        then: list[Any] = [(JobKind.SCORE, score)]
        if chinese:
            zh = ensure_project(engine, ZH_DEMO_PROJECT_NAME).id
            then += [(JobKind.ADAPT, zh_demo_adapt_config().to_dict(), zh),
                     (JobKind.TRAIN, {**train, "base_model": ZH_DEMO_BASE_NAME}, zh), (JobKind.SCORE, score, zh)]
        job, started = queue_job(engine, DEMO_PROJECT_NAME, JobKind.TRAIN, train, then=then)
        log.info("demo: training job %s queued (then %d more); worker started: %s", job.id, len(then), started)
        out["jobs"] = {"train_job_id": job.id, "then": [str(JobKind.SCORE)], "worker_started": started,
                       "chain": [f"{step[0]} ({ZH_DEMO_PROJECT_NAME if len(step) > 2 else DEMO_PROJECT_NAME})"
                                 for step in then]}
    return out
