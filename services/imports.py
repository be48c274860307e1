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
def seed_demo(engine: Any, *, force: bool = False, n: int = 300, seed: int = 0, jobs: bool = False) -> dict[str, Any]:
    """Create the demo project (synthetic ECG and radiology reports) when the database has no project yet.

    The demo goes through the same path as a user's export: a Label Studio JSON file and its labeling config. With
    ``jobs`` (what ``make run`` / ``cli.py seed-demo`` do) it also queues the demo's first training job, a short run
    sized for a laptop (``core.demo.demo_train_config``), and after it a scoring run, so Models, Queue, Review and
    Explain have something to show a few minutes after the first start. Tests leave ``jobs`` off.
    """
    from core.demo import (
        DEMO_LABEL_CONFIG,
        DEMO_PROJECT_NAME,
        demo_score_config,
        demo_train_config,
        generate_demo_export,
    )
    from core.jobs import JobKind
    from db.repository import list_projects
    from services.jobs import queue_job
    from services.training import check

    if list_projects(engine) and not force:
        return {"seeded": False, "reason": "the database already has projects"}
    with tempfile.TemporaryDirectory(prefix="reportlens-demo-") as tmp:
        export = Path(tmp) / "demo-export.json"
        export.write_text(json.dumps(generate_demo_export(n=n, seed=seed)), encoding="utf-8")
        summary = import_file(engine, export, DEMO_PROJECT_NAME, config=parse_label_config(DEMO_LABEL_CONFIG),
                              file_name="demo-export.json (synthetic)")
    out: dict[str, Any] = {"seeded": True, **summary.to_dict()}
    if jobs:
        job, started = queue_job(engine, DEMO_PROJECT_NAME, JobKind.TRAIN, check(demo_train_config()).to_dict(),
                                 then=[(JobKind.SCORE, demo_score_config().to_dict())])
        log.info("demo: training job %s queued (then a scoring run); worker started: %s", job.id, started)
        out["jobs"] = {"train_job_id": job.id, "then": [str(JobKind.SCORE)], "worker_started": started}
    return out
